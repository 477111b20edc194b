// Progressive enhancement of the job page: while the job is pending or running, fetch the
// progress fragment every data-poll-ms milliseconds and swap it in; stop once the job has ended.
(function () {
  var box = document.getElementById("job-progress");
  var holder = document.getElementById("progress");
  if (!box || !holder || !window.fetch) { return; }
  var pollMs = parseInt(holder.dataset.pollMs, 10) || 2000;
  function poll() {
    if (box.dataset.active !== "1") { return; }
    fetch(box.dataset.url, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var parsed = document.createElement("div");
        parsed.innerHTML = html.trim();
        var fresh = parsed.querySelector("#job-progress");
        if (fresh) { box.replaceWith(fresh); box = fresh; }
        setTimeout(poll, pollMs);
      })
      .catch(function () { setTimeout(poll, pollMs * 3); });
  }
  setTimeout(poll, pollMs);
})();
