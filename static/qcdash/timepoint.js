// Timepoint page: report a review request that failed, because htmx leaves the page unchanged
// on an error response and the reviewer would otherwise see nothing happen.
(function () {
  "use strict";

  function showError(text) {
    var box = document.getElementById("request-error");
    box.textContent = text;
    box.classList.remove("d-none");
    box.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    showError(
      "Saving the review failed (HTTP " + status + "). Reload the page and try again. " +
      "If it keeps failing, tell a dashboard admin."
    );
  });
  document.addEventListener("htmx:sendError", function () {
    showError("The server could not be reached, so the review was not saved. Check the connection and try again.");
  });
})();
