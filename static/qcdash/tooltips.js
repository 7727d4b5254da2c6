// Show elements marked data-bs-toggle="tooltip" with Bootstrap tooltips, including those in
// fragments that htmx swaps in later (htmx fires htmx:load for each new fragment).
(function () {
  "use strict";

  function initTooltips(root) {
    root.querySelectorAll('[data-bs-toggle="tooltip"]').forEach(function (element) {
      bootstrap.Tooltip.getOrCreateInstance(element);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    initTooltips(document);
  });
  document.addEventListener("htmx:load", function (event) {
    initTooltips(event.detail.elt);
  });
})();
