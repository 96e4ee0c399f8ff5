// mmbench leaderboard site: tabs, sortable columns and row filters. No dependencies; works from file://.
(function () {
  "use strict";

  function setupTabs() {
    var buttons = Array.prototype.slice.call(document.querySelectorAll(".tabs [data-tab]"));
    if (!buttons.length) return;
    function show(key) {
      buttons.forEach(function (b) {
        var on = b.getAttribute("data-tab") === key;
        b.setAttribute("aria-selected", on ? "true" : "false");
        var panel = document.getElementById("tab-" + b.getAttribute("data-tab"));
        if (panel) panel.hidden = !on;
      });
    }
    buttons.forEach(function (b) {
      b.addEventListener("click", function () {
        show(b.getAttribute("data-tab"));
        if (window.history && history.replaceState) history.replaceState(null, "", "#" + b.getAttribute("data-tab"));
      });
    });
    function fromHash() {
      var wanted = (window.location.hash || "").slice(1);
      var known = buttons.some(function (b) { return b.getAttribute("data-tab") === wanted; });
      show(known ? wanted : buttons[0].getAttribute("data-tab"));
    }
    window.addEventListener("hashchange", fromHash);
    fromHash();
  }

  function cellKey(row, col, numeric) {
    var raw = row.cells[col].getAttribute("data-value");
    if (!numeric) return raw;
    var value = parseFloat(raw);
    return isNaN(value) ? null : value;
  }

  function sortTable(table, th) {
    var col = parseInt(th.getAttribute("data-col"), 10);
    var numeric = th.getAttribute("data-type") === "num";
    var current = th.getAttribute("aria-sort");
    var ascending = current ? current !== "ascending" : th.getAttribute("data-first") !== "descending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (r, i) { r._order = i; });
    rows.sort(function (a, b) {
      var x = cellKey(a, col, numeric), y = cellKey(b, col, numeric);
      if (x === null || y === null) {  // missing values last, whatever the direction
        return x === y ? a._order - b._order : (x === null ? 1 : -1);
      }
      var d = numeric ? x - y : String(x).localeCompare(String(y));
      if (d === 0) return a._order - b._order;
      return ascending ? d : -d;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function setupSorting() {
    Array.prototype.forEach.call(document.querySelectorAll("table.board"), function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
        th.querySelector("button").addEventListener("click", function () { sortTable(table, th); });
      });
    });
  }

  function setupFilters() {
    var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
    var shown = document.querySelector(".filters .shown");
    function apply() {
      var tables = document.querySelectorAll("table.board");
      var visible = 0, total = 0;
      Array.prototype.forEach.call(tables, function (table, t) {
        Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
          var ok = selects.every(function (s) {
            return !s.value || row.getAttribute("data-" + s.getAttribute("data-filter")) === s.value;
          });
          row.hidden = !ok;
          if (t === 0) { total += 1; if (ok) visible += 1; }
        });
      });
      if (shown) shown.textContent = visible + " of " + total + " rows shown";
    }
    selects.forEach(function (s) { s.addEventListener("change", apply); });
    apply();
  }

  setupTabs();
  setupSorting();
  setupFilters();
})();
