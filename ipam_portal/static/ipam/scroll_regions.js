// A table, map or YAML block wider than the screen scrolls inside its card (ipam.css): while it
// does, it takes the keyboard focus (Tab reaches it, the arrow keys scroll it) and is named for
// screen readers by its caption or the heading of its card. It gives the focus up when it fits.
(function () {
  var SELECTOR = "table.data, .scroll, .map-wrap, pre";

  function nameOf(el) {
    var caption = el.querySelector("caption");
    if (caption) { return caption.textContent.trim(); }
    var card = el.closest("section, .card");
    var heading = card && card.querySelector("h1, h2, h3");
    return heading ? heading.textContent.trim() : "Scrollable content";
  }

  function update() {
    document.querySelectorAll(SELECTOR).forEach(function (el) {
      var scrolls = el.scrollWidth > el.clientWidth + 1;
      if (scrolls && !el.hasAttribute("tabindex")) {
        el.setAttribute("tabindex", "0");
        el.setAttribute("data-scroll-region", "");
        if (el.tagName !== "TABLE") {  // a table keeps its role; a div or pre becomes a named region
          el.setAttribute("role", "region");
          el.setAttribute("aria-label", nameOf(el));
        }
      } else if (!scrolls && el.hasAttribute("data-scroll-region")) {
        el.removeAttribute("tabindex");
        el.removeAttribute("data-scroll-region");
        if (el.tagName !== "TABLE") { el.removeAttribute("role"); el.removeAttribute("aria-label"); }
      }
    });
  }

  update();
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(update, 100);
  });
})();
