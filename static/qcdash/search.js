// Navbar search: while the user types, fetch the results fragment from the suggest URL and show
// it as a dropdown under the input. Enter still submits the form to the full search page.
(function () {
  "use strict";

  var DELAY_MS = 200;

  function setUp(form) {
    var input = form.querySelector("input[name=q]");
    var dropdown = form.querySelector(".qc-search-dropdown");
    var url = form.getAttribute("data-suggest-url");
    var timer = null;
    var controller = null;

    function hide() {
      dropdown.classList.remove("show");
    }

    function show(html) {
      dropdown.innerHTML = html;
      dropdown.classList.add("show");
    }

    function fetchResults() {
      var query = input.value.trim();
      if (!query) {
        hide();
        return;
      }
      if (controller) {
        controller.abort();
      }
      controller = new AbortController();
      fetch(url + "?q=" + encodeURIComponent(query), {
        headers: { "X-Requested-With": "fetch" },
        credentials: "same-origin",
        signal: controller.signal,
      })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.text();
        })
        .then(show)
        .catch(function (error) {
          if (error.name === "AbortError") {
            return;
          }
          var message = document.createElement("p");
          message.className = "dropdown-item-text small text-danger mb-0";
          message.textContent = "Search failed (" + error.message + "). Press Enter to open the search page.";
          dropdown.replaceChildren(message);
          dropdown.classList.add("show");
        });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(fetchResults, DELAY_MS);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        hide();
      } else if (event.key === "ArrowDown") {
        var first = dropdown.querySelector("a");
        if (first && dropdown.classList.contains("show")) {
          event.preventDefault();
          first.focus();
        }
      }
    });
    dropdown.addEventListener("keydown", function (event) {
      var links = Array.prototype.slice.call(dropdown.querySelectorAll("a"));
      var index = links.indexOf(document.activeElement);
      if (event.key === "ArrowDown" && index < links.length - 1) {
        event.preventDefault();
        links[index + 1].focus();
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        (index > 0 ? links[index - 1] : input).focus();
      } else if (event.key === "Escape") {
        hide();
        input.focus();
      }
    });
    document.addEventListener("click", function (event) {
      if (!form.contains(event.target)) {
        hide();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.qc-search-bar").forEach(setUp);
  });
})();
