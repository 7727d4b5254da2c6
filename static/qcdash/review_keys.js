// Keyboard review on the timepoint page (a table of scan rows) and the scan page (one review
// form). The help overlay (templates/qc/_shortcut_help.html) lists every shortcut.
//
// Timepoint page: j/k or the arrow keys move a visible selection over the scan rows. a, f and b
// act on the selected row, whose form saves through htmx, and after a saved decision the
// selection moves to the next row. s opens a sign-off confirmation for the selected row's session.
// Scan page: n/p follow the previous and next scan links; a, f and b use the review form; s
// opens the sign-off confirmation page.
(function () {
  "use strict";

  var STATE_KEYS = { a: "approved", f: "flagged", b: "blacklisted" };
  var STATE_LABELS = { flagged: "Flag", blacklisted: "Blacklist" };

  var isTimepointPage = document.querySelector(".scan-row") !== null;
  var selectedScanId = null;
  // The row whose decision was submitted by a shortcut; the selection moves past it once the
  // response shows the decision was saved.
  var submittedScanId = null;

  // Where focus may be for the shortcut keys to act: besides the page body, the scan rows, the
  // scan page's review form and shortcut links, the help button and the review's own modals.
  // Keys pressed anywhere else (the header search and its suggestions, menus, other links and
  // buttons, other modals) belong to that element, so a stray "a" reviews nothing.
  var REVIEW_UI =
    ".scan-row, form[data-review-form], [data-shortcut], [data-bs-target='#shortcut-help'], " +
    "#shortcut-help, #sign-off-confirm";
  var TEXT_ENTRY = "input, textarea, select, [contenteditable]";
  var OTHER_WIDGETS = ".dropdown-menu, [role=listbox], [role=menu], [role=combobox]";

  function shortcutsApply(target) {
    if (!target || target === document.body || target === document.documentElement) {
      return true;
    }
    if (!target.closest || target.closest(TEXT_ENTRY + ", " + OTHER_WIDGETS)) {
      return false;
    }
    return target.closest(REVIEW_UI) !== null;
  }

  function openModal() {
    return document.querySelector(".modal.show");
  }

  function modal(id) {
    var element = document.getElementById(id);
    return element ? bootstrap.Modal.getOrCreateInstance(element) : null;
  }

  // --- The review form of the selected row, or of the scan page -------------------------

  function activeForm() {
    if (!isTimepointPage) {
      return document.querySelector("form[data-review-form]");
    }
    var row = selectedRow();
    return row ? row.querySelector("form.review-form") : null;
  }

  function stateButton(form, state) {
    return form.querySelector('button[name="state"][value="' + state + '"]:not([data-action])');
  }

  function commentBox(form) {
    return form.querySelector('textarea[name="comment"]');
  }

  function clearPending(form) {
    delete form.dataset.pendingState;
    var hint = form.querySelector(".pending-hint");
    if (hint) {
      hint.remove();
    }
  }

  // Flag and blacklist need a comment: open the comment box and save on Enter.
  function startComment(form, state) {
    clearPending(form);
    form.dataset.pendingState = state;
    var box = commentBox(form);
    var hint = document.createElement("div");
    hint.className = "pending-hint form-text";
    hint.textContent = STATE_LABELS[state] + ": type a comment, Enter saves, Esc cancels.";
    box.insertAdjacentElement("afterend", hint);
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  function submit(form, state) {
    var button = stateButton(form, state);
    if (!button) {
      return;
    }
    clearPending(form);
    if (isTimepointPage) {
      submittedScanId = selectedScanId;
    }
    button.click();
  }

  function decide(state) {
    var form = activeForm();
    if (!form) {
      return;
    }
    if (state === "approved") {
      submit(form, state);
    } else {
      startComment(form, state);
    }
  }

  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches('textarea[name="comment"]')) {
      return;
    }
    var form = box.form;
    if (!form || !form.dataset.pendingState) {
      return;
    }
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      submit(form, form.dataset.pendingState);
    } else if (event.key === "Escape") {
      event.preventDefault();
      clearPending(form);
      box.blur();
      if (isTimepointPage) {
        select(selectedScanId);
      }
    }
  });

  // --- Timepoint page: the selected row -------------------------------------------------

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll(".scan-row"));
  }

  function selectedRow() {
    return selectedScanId ? document.getElementById("scan-" + selectedScanId) : null;
  }

  function select(scanId) {
    rows().forEach(function (row) {
      row.classList.remove("is-selected");
    });
    var row = scanId ? document.getElementById("scan-" + scanId) : null;
    if (!row) {
      selectedScanId = null;
      return;
    }
    selectedScanId = row.dataset.scanId;
    row.classList.add("is-selected");
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    var all = rows();
    if (!all.length) {
      return;
    }
    var index = all.indexOf(selectedRow());
    var next = index === -1 ? 0 : Math.min(Math.max(index + step, 0), all.length - 1);
    select(all[next].dataset.scanId);
  }

  function wasSaved(row) {
    return row.querySelector(".review-conflict, .alert-danger, .is-invalid") === null;
  }

  if (isTimepointPage) {
    // htmx replaces the whole row; select the new element, then move on if the save worked.
    // This waits for the settle step, because htmx copies the server's class attribute onto
    // the new row then and would drop the selection class.
    document.body.addEventListener("htmx:afterSettle", function (event) {
      var swapped = event.detail.target;
      if (!swapped.classList || !swapped.classList.contains("scan-row")) {
        return;
      }
      // With an outerHTML swap the event's target is the replaced element, so look the new
      // row up by its id.
      var scanId = swapped.dataset.scanId;
      var row = document.getElementById("scan-" + scanId);
      var submitted = submittedScanId === scanId;
      submittedScanId = null;
      if (scanId !== selectedScanId) {
        return;
      }
      if (submitted && wasSaved(row)) {
        var all = rows();
        var index = all.indexOf(row);
        select(all[Math.min(index + 1, all.length - 1)].dataset.scanId);
      } else {
        select(scanId);
      }
    });

    // A click or a focus inside a row selects it, so keys act on what the reviewer looks at.
    document.addEventListener("focusin", function (event) {
      var row = event.target.closest && event.target.closest(".scan-row");
      if (row && row.dataset.scanId !== selectedScanId) {
        rows().forEach(function (other) {
          other.classList.remove("is-selected");
        });
        selectedScanId = row.dataset.scanId;
        row.classList.add("is-selected");
      }
    });

    var target = window.location.hash.match(/^#scan-(\d+)$/);
    if (target) {
      select(target[1]);
    }
  }

  // --- Sign-off ---------------------------------------------------------------------------

  function confirmSignOff() {
    if (!isTimepointPage) {
      var link = document.querySelector('[data-shortcut="sign-off"]');
      if (link) {
        window.location.href = link.href;
      }
      return;
    }
    var row = selectedRow() || rows()[0];
    var card = row ? row.closest(".session-card") : document.querySelector(".session-card");
    if (!card || !card.dataset.signOffUrl) {
      return;
    }
    var element = document.getElementById("sign-off-confirm");
    var form = element.querySelector("form");
    form.action = card.dataset.signOffUrl;
    element.querySelector('[data-field="session"]').textContent = card.dataset.session;

    var list = element.querySelector('[data-field="new-scans"]');
    var ids = element.querySelector('[data-field="approve-ids"]');
    list.replaceChildren();
    ids.replaceChildren();
    card.querySelectorAll(".scan-row").forEach(function (scanRow) {
      var badge = scanRow.querySelector(".scan-summary .qc-state");
      if (!badge || badge.dataset.state !== "new") {
        return;
      }
      var item = document.createElement("li");
      item.textContent = scanRow.dataset.tag + " (" + scanRow.dataset.scan + ")";
      list.appendChild(item);
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "approve_scan_ids";
      input.value = scanRow.dataset.scanId;
      ids.appendChild(input);
    });
    var none = list.children.length === 0;
    list.classList.toggle("d-none", none);
    element.querySelector('[data-field="new-scans-intro"]').classList.toggle("d-none", none);
    element.querySelector('[data-field="no-new-scans"]').classList.toggle("d-none", !none);
    modal("sign-off-confirm").show();
  }

  var signOffElement = document.getElementById("sign-off-confirm");
  if (signOffElement) {
    signOffElement.addEventListener("shown.bs.modal", function () {
      signOffElement.querySelector('[data-action="confirm-sign-off"]').focus();
    });
  }

  // --- Shortcut keys ----------------------------------------------------------------------

  function follow(name) {
    var link = document.querySelector('[data-shortcut="' + name + '"]');
    if (link) {
      window.location.href = link.href;
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (!shortcutsApply(event.target)) {
      return;
    }
    if (event.key === "?") {
      event.preventDefault();
      var help = document.getElementById("shortcut-help");
      if (help.classList.contains("show")) {
        modal("shortcut-help").hide();
      } else if (!openModal()) {
        modal("shortcut-help").show();
      }
      return;
    }
    if (openModal()) {
      return;
    }

    var key = event.key;
    if (isTimepointPage && (key === "j" || key === "ArrowDown")) {
      event.preventDefault();
      move(1);
    } else if (isTimepointPage && (key === "k" || key === "ArrowUp")) {
      event.preventDefault();
      move(-1);
    } else if (!isTimepointPage && key === "n") {
      follow("next-scan");
    } else if (!isTimepointPage && key === "p") {
      follow("previous-scan");
    } else if (STATE_KEYS[key]) {
      event.preventDefault();
      if (isTimepointPage && !selectedRow()) {
        // Select the first row but decide nothing, so a stray key reviews no unseen scan.
        move(1);
        return;
      }
      decide(STATE_KEYS[key]);
    } else if (key === "s") {
      event.preventDefault();
      confirmSignOff();
    }
  });
})();
