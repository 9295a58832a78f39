/* The console's own script (htmx does the rest): the CSRF header on htmx requests, closing a
   card, focus after a swap, the inbox's select-all and selection count, and a banner when the
   network or the server fails. No inline scripts anywhere: the pages' CSP forbids them. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) {
      event.detail.headers["X-CSRF-Token"] = token;
    }
  });

  function banner(text) {
    var box = document.getElementById("net-error");
    if (!box) {
      return;
    }
    box.textContent = text;
    box.hidden = false;
  }

  function clearBanner() {
    var box = document.getElementById("net-error");
    if (box) {
      box.hidden = true;
      box.textContent = "";
    }
  }

  document.addEventListener("htmx:sendError", function () {
    banner("The console could not reach the server. Check your connection and try again.");
  });
  document.addEventListener("htmx:responseError", function (event) {
    banner("The server could not answer (" + event.detail.xhr.status + "). Try again.");
  });
  document.addEventListener("htmx:beforeRequest", clearBanner);

  function updateSelection() {
    var boxes = document.querySelectorAll('input[name="selected"]:not(:disabled)');
    var chosen = document.querySelectorAll('input[name="selected"]:checked:not(:disabled)');
    var button = document.getElementById("approve-selected");
    var all = document.querySelector("[data-select-all]");
    if (button) {
      button.disabled = chosen.length === 0;
      var count = button.querySelector("[data-count]");
      if (count) {
        count.textContent = chosen.length ? " (" + chosen.length + ")" : "";
      }
    }
    if (all) {
      all.checked = boxes.length > 0 && chosen.length === boxes.length;
      all.indeterminate = chosen.length > 0 && chosen.length < boxes.length;
    }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("[data-select-all]")) {
      document.querySelectorAll('input[name="selected"]:not(:disabled)').forEach(function (box) {
        box.checked = target.checked;
      });
    }
    updateSelection();
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-close-card]") : null;
    if (!button) {
      return;
    }
    var slot = button.closest(".card-slot");
    if (!slot) {
      return;
    }
    var opener = document.getElementById(slot.getAttribute("data-opener"));
    slot.innerHTML = "";
    if (opener) {
      opener.setAttribute("aria-expanded", "false");
      opener.focus();
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target.classList && target.classList.contains("card-slot")) {
      var opener = document.getElementById(target.getAttribute("data-opener"));
      if (opener) {
        opener.setAttribute("aria-expanded", target.children.length ? "true" : "false");
      }
    }
    var focus = target.querySelector ? target.querySelector("[data-autofocus]") : null;
    if (focus && event.detail.requestConfig && event.detail.requestConfig.verb !== "get" ||
        focus && target.classList.contains("card-slot")) {
      focus.focus();
    }
    updateSelection();
  });

  /* A decision taken in a card: its inbox row shows it and leaves the selection. */
  document.addEventListener("decided", function (event) {
    var detail = event.detail || {};
    var row = document.getElementById("row-" + detail.id);
    if (!row) {
      return;
    }
    row.classList.add("is-decided");
    var box = row.querySelector('input[name="selected"]');
    if (box) {
      box.checked = false;
      box.disabled = true;
    }
    var state = row.querySelector("[data-row-status]");
    if (state) {
      state.textContent = detail.status;
    }
    var sla = row.querySelector(".sla");
    if (sla) {
      sla.textContent = "decided";
      sla.className = "sla sla-closed";
    }
    row.classList.remove("overdue", "soon");
    updateSelection();
  });

  document.addEventListener("DOMContentLoaded", updateSelection);
})();
