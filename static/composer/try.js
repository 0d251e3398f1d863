// "Try it": an example button puts its input in the box.
(function () {
  "use strict";
  document.querySelectorAll("button.try-example").forEach(function (button) {
    button.addEventListener("click", function () {
      var box = document.getElementById("try-text");
      box.value = button.dataset.input;
      box.focus();
    });
  });
})();
