// Upload progress for forms marked data-upload-progress: send with XMLHttpRequest so the
// browser reports bytes sent. On success the server redirects (followed by XHR) and we go
// there; on a validation error we show the page the server rendered.
(function () {
  "use strict";

  function formatBytes(n) {
    var units = ["B", "KB", "MB", "GB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return n.toFixed(i ? 1 : 0) + " " + units[i];
  }

  function attach(form) {
    var bar = form.querySelector("[data-progress]");
    var text = form.querySelector("[data-progress-text]");
    var button = form.querySelector("button[type=submit]");

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action || window.location.href);
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        bar.hidden = false;
        bar.value = Math.round((100 * e.loaded) / e.total);
        text.textContent = formatBytes(e.loaded) + " of " + formatBytes(e.total) +
          (e.loaded === e.total ? " sent; checking the files…" : "");
      });
      xhr.addEventListener("load", function () {
        var landed = xhr.responseURL && xhr.responseURL !== (form.action || window.location.href);
        if (xhr.status < 400 && landed) {
          window.location.assign(xhr.responseURL);
          return;
        }
        // Show the page the server rendered (form with its errors) in place.
        document.open();
        document.write(xhr.responseText);
        document.close();
      });
      xhr.addEventListener("error", function () {
        text.textContent = "The upload failed (connection lost). Please try again.";
        button.disabled = false;
        button.removeAttribute("aria-busy");
      });
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
      bar.hidden = false;
      bar.value = 0;
      xhr.send(new FormData(form));
    });
  }

  document.querySelectorAll("form[data-upload-progress]").forEach(attach);
})();
