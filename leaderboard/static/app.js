/* harness leaderboard: sorting, filtering and paging of each track's table, from window.HARNESS_LEADERBOARD
 * (assets/data.js). Plain ES5-style script, no dependencies, works from file:// URLs.
 * Every value from a record is put into the page with textContent, never as HTML.
 * Only one page of rows is in the DOM at a time, so 10,000 entries stay responsive. */
(function () {
  "use strict";
  var DATA = window.HARNESS_LEADERBOARD || {};

  function human(n) {
    var units = [["T", 1e12], ["B", 1e9], ["M", 1e6], ["K", 1e3]];
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(n) >= units[i][1]) return String(parseFloat((n / units[i][1]).toPrecision(3))) + units[i][0];
    }
    return String(n);
  }

  /* Mirrors harness.leaderboard.columns.format_value. */
  function fmt(value, format) {
    if (value === null || value === undefined) return "\u2013";
    if (format === "score") return value.toFixed(3);
    if (format === "tokens") return human(value);
    if (format === "passes") return value.toFixed(2);
    if (format === "date") return String(value).slice(0, 10);
    return String(value);
  }

  function sortValue(row, col) {
    var v = row[col.key];
    if (v === null || v === undefined) return null;
    if (col.format === "date") return Date.parse(v);
    if (col.format === "text") return String(v).toLowerCase();
    return v;
  }

  /* Missing values sort last in both directions; ties keep the ranking order. */
  function comparator(col, dir) {
    var sign = dir === "asc" ? 1 : -1;
    return function (a, b) {
      var x = sortValue(a, col), y = sortValue(b, col);
      if (x === null || y === null) {
        if (x === null && y === null) return a._order - b._order;
        return x === null ? 1 : -1;
      }
      if (x < y) return -sign;
      if (x > y) return sign;
      return a._order - b._order;
    };
  }

  function cell(row, col) {
    var td = document.createElement("td");
    if (col.key === "name") {
      td.className = "entry";
      var a = document.createElement("a");
      a.setAttribute("href", "entries/" + encodeURIComponent(row.id) + ".html");
      a.textContent = row.name;
      td.appendChild(a);
      if (row.authors) {
        var div = document.createElement("div");
        div.className = "authors";
        div.textContent = row.authors;
        td.appendChild(div);
      }
      return td;
    }
    td.className = col.format === "text" ? "text" : "num";
    if (col.key === "subset_tokens") td.title = row.subset_documents + " documents";
    td.textContent = fmt(row[col.key], col.format);
    return td;
  }

  function setup(section) {
    var data = DATA[section.getAttribute("data-track")];
    if (!data) return;
    var columns = {};
    data.columns.forEach(function (c) { columns[c.key] = c; });
    data.rows.forEach(function (r, i) {
      r._order = i;
      r._text = (r.name + "\n" + r.authors + "\n" + r.id + "\n" + r.checked).toLowerCase();
    });
    var state = { key: "rank", dir: "asc", filter: "", page: 0 };
    var view = data.rows;
    var tbody = section.querySelector("tbody");
    var headers = section.querySelectorAll("th[data-key]");
    var status = section.querySelector(".status");
    var pageLabel = section.querySelector(".page");
    var prev = section.querySelector(".prev"), next = section.querySelector(".next");

    function recompute() {
      var needle = state.filter.trim().toLowerCase();
      view = needle ? data.rows.filter(function (r) { return r._text.indexOf(needle) !== -1; }) : data.rows.slice();
      view.sort(comparator(columns[state.key], state.dir));
    }

    function render() {
      var pages = Math.max(1, Math.ceil(view.length / data.pageSize));
      state.page = Math.min(state.page, pages - 1);
      var start = state.page * data.pageSize, end = Math.min(view.length, start + data.pageSize);
      var frag = document.createDocumentFragment();
      for (var i = start; i < end; i++) {
        var tr = document.createElement("tr");
        for (var j = 0; j < data.columns.length; j++) tr.appendChild(cell(view[i], data.columns[j]));
        frag.appendChild(tr);
      }
      tbody.textContent = "";
      tbody.appendChild(frag);
      var shown = view.length ? (start + 1) + "\u2013" + end : "0";
      status.textContent = "Showing " + shown + " of " + view.length + " entries" +
        (view.length !== data.rows.length ? " (filtered from " + data.rows.length + ")" : "");
      pageLabel.textContent = "Page " + (state.page + 1) + " of " + pages;
      prev.disabled = state.page === 0;
      next.disabled = state.page >= pages - 1;
      for (var k = 0; k < headers.length; k++) {
        var th = headers[k];
        if (th.getAttribute("data-key") === state.key) {
          th.setAttribute("aria-sort", state.dir === "asc" ? "ascending" : "descending");
        } else {
          th.removeAttribute("aria-sort");
        }
      }
    }

    Array.prototype.forEach.call(headers, function (th) {
      th.querySelector("button").addEventListener("click", function () {
        var key = th.getAttribute("data-key");
        /* First click: best first (the column's own direction); clicking again reverses. */
        if (state.key === key) state.dir = state.dir === "asc" ? "desc" : "asc";
        else { state.key = key; state.dir = columns[key].direction; }
        state.page = 0;
        recompute();
        render();
      });
    });
    section.querySelector("input.filter").addEventListener("input", function (ev) {
      state.filter = ev.target.value;
      state.page = 0;
      recompute();
      render();
    });
    prev.addEventListener("click", function () { state.page -= 1; render(); });
    next.addEventListener("click", function () { state.page += 1; render(); });
    recompute();
    render();
  }

  Array.prototype.forEach.call(document.querySelectorAll("section.track"), setup);
})();
