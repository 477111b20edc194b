// Forms with data-confirm ask before they submit (instead of inline onsubmit handlers, which CSP forbids).
document.addEventListener("submit", function (event) {
  var message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) { event.preventDefault(); }
});
