// The web form (issue 25), progressively enhanced: the page works without this script (plain
// submit, a spare empty action row). With it: drafts save themselves (about 20 s after a change,
// and when the page is hidden or left), a "Saved at HH:MM" status is announced, action rows can
// be added and removed (names renumbered from 1, as the server reads them), text boxes grow with
// their text, and the error summary takes the focus. No inline script: the CSP forbids it.
(function () {
  "use strict";
  var SAVE_AFTER_MS = 20000;

  function focusSummary() {
    var summary = document.getElementById("error-summary");
    if (summary) { summary.focus(); }
  }

  function grow(box) {
    box.style.height = "auto";
    box.style.height = (box.scrollHeight + 2) + "px";
  }

  function growAll(root) {
    if (window.CSS && CSS.supports && CSS.supports("field-sizing", "content")) { return; }
    Array.prototype.forEach.call(root.querySelectorAll("textarea.grow"), grow);
  }

  // --- action rows ---------------------------------------------------------------------------

  function renumber(table) {
    var key = table.dataset.table;
    var rows = table.querySelectorAll("[data-rows] > [data-row]");
    Array.prototype.forEach.call(rows, function (row, index) {
      var n = String(index + 1);
      row.id = "r-" + key + "." + n;
      Array.prototype.forEach.call(row.querySelectorAll("[data-row-number]"), function (el) {
        el.textContent = n;
      });
      Array.prototype.forEach.call(row.querySelectorAll("input, textarea"), function (control) {
        var column = control.name.slice(control.name.lastIndexOf(".") + 1);
        var name = key + "." + n + "." + column;
        var label = row.querySelector('label[for="' + control.id + '"]');
        control.name = name;
        control.id = "f-" + name;
        if (label) { label.htmlFor = control.id; }
      });
    });
    var add = table.querySelector("[data-add-row]");
    if (add) { add.disabled = rows.length >= Number(table.dataset.maxRows || 200); }
    Array.prototype.forEach.call(rows, function (row) {
      var remove = row.querySelector("[data-remove-row]");
      if (remove) { remove.hidden = false; }
    });
  }

  function setUpTable(table, changed) {
    var template = table.querySelector("template");
    var holder = table.querySelector("[data-rows]");
    var add = table.querySelector("[data-add-row]");
    if (!template || !holder || !add) { return; }
    add.hidden = false;
    add.addEventListener("click", function () {
      var row = template.content.firstElementChild.cloneNode(true);
      holder.appendChild(row);
      renumber(table);
      var first = row.querySelector("input, textarea");
      if (first) { first.focus(); }
      changed();
    });
    holder.addEventListener("click", function (event) {
      var button = event.target.closest("[data-remove-row]");
      if (!button) { return; }
      var row = button.closest("[data-row]");
      var rows = holder.querySelectorAll("[data-row]");
      if (rows.length > 1) {
        holder.removeChild(row);
      } else {
        Array.prototype.forEach.call(row.querySelectorAll("input, textarea"), function (c) { c.value = ""; });
      }
      renumber(table);
      add.focus();
      changed();
    });
    renumber(table);
  }

  // --- autosave --------------------------------------------------------------------------------

  function setUpSaving(form) {
    var url = form.dataset.saveUrl;
    var status = document.getElementById("save-status");
    var dirty = false, timer = null, submitting = false;

    function body() {
      var params = new URLSearchParams(new FormData(form));
      params.set("intent", "save");
      return params;
    }

    function say(text) { if (status) { status.textContent = text; } }

    function now() {
      var d = new Date();
      return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
    }

    function save() {
      timer = null;
      if (!dirty || submitting || !url) { return; }
      dirty = false;
      say("Saving…");
      fetch(url, {
        method: "POST", body: body(), credentials: "same-origin", redirect: "error"
      }).then(function (response) {
        // {"saved": true, "at": "30/11/2026 14:05"}, or {"saved": false, "message": why}
        return response.json().catch(function () { return { saved: false }; });
      }).then(function (answer) {
        if (!answer || !answer.saved) {
          var error = new Error("not saved");
          error.said = answer && answer.message;
          throw error;
        }
        say("Saved at " + (answer.at || now()));
      }).catch(function (error) {
        dirty = true;
        say(error && error.said ? "Not saved. " + error.said + " Your answers stay on this page until you leave it."
          : "Not saved: check your connection. Your answers stay on this page; choose Save draft to try again.");
      });
    }

    function changed() {
      dirty = true;
      if (!timer) { timer = window.setTimeout(save, SAVE_AFTER_MS); }
    }

    function saveNow() {  // the page is hidden or being left: a beacon outlives the page
      if (!dirty || submitting || !url || !navigator.sendBeacon) { return; }
      if (navigator.sendBeacon(url, body())) { dirty = false; }
    }

    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
    form.addEventListener("submit", function () { submitting = true; });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") { saveNow(); }
    });
    window.addEventListener("pagehide", saveNow);
    return changed;
  }

  function start() {
    focusSummary();
    var form = document.getElementById("webform");
    if (!form) { return; }
    var changed = setUpSaving(form);
    Array.prototype.forEach.call(form.querySelectorAll("[data-table]"), function (table) {
      setUpTable(table, changed);
    });
    growAll(form);
    form.addEventListener("input", function (event) {
      if (event.target.matches && event.target.matches("textarea.grow")) { growAll(event.target.parentNode); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
