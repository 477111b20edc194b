// On a narrow screen the main menu collapses behind a "Menu" button (without JavaScript it simply wraps).
(function () {
  var bar = document.querySelector(".topbar");
  var button = bar && bar.querySelector(".menu-toggle");
  if (!button) { return; }
  bar.classList.add("collapsible");
  button.hidden = false;
  button.addEventListener("click", function () {
    var open = bar.classList.toggle("open");
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });
})();
