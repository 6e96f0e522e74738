/* Offline search over search-index.js (window.KFM_SEARCH: [kind, label, url, keys]).
   Paths, run ids, STAC ids match as substrings; a digest matches by prefix, with or
   without "sha256:". No request leaves the page. */
(function () {
  "use strict";
  var index = window.KFM_SEARCH || [];
  var input = document.getElementById("search-q");
  var list = document.getElementById("search-results");
  var status = document.getElementById("search-status");
  var form = document.getElementById("search-form");
  if (!input || !list) { return; }
  var LIMIT = 50;
  var HEX = /^(sha256:)?[0-9a-f]{4,}$/;

  function normalise(text) {
    var q = text.trim().toLowerCase();
    if (HEX.test(q)) {
      q = "sha256:" + q.replace(/^sha256:/, "").slice(0, 16);
    }
    return q;
  }

  function render(query) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    var q = normalise(query);
    if (q.length < 2) { status.textContent = ""; return; }
    var found = 0;
    for (var i = 0; i < index.length && found < LIMIT; i++) {
      var entry = index[i], keys = entry[3], hit = null;
      for (var k = 0; k < keys.length; k++) {
        if (keys[k].indexOf(q) !== -1) { hit = keys[k]; break; }
      }
      if (hit === null) { continue; }
      found++;
      var li = document.createElement("li");
      var kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = entry[0];
      var a = document.createElement("a");
      a.href = entry[2];
      a.textContent = entry[1];
      li.appendChild(kind);
      li.appendChild(a);
      if (hit !== entry[1].toLowerCase()) {
        var why = document.createElement("span");
        why.className = "note";
        why.textContent = " — matches " + (hit.indexOf("sha256:") === 0 ? hit + "…" : hit);
        li.appendChild(why);
      }
      list.appendChild(li);
    }
    status.textContent = found === 0 ? "Nothing matches." :
      found + (found === LIMIT ? "+" : "") + " result" + (found === 1 ? "" : "s") + ".";
  }

  input.addEventListener("input", function () { render(input.value); });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    render(input.value);
    var first = list.querySelector("a");
    if (first) { first.focus(); }
  });
  var params = new URLSearchParams(window.location.search);
  if (params.get("q")) { input.value = params.get("q"); render(input.value); }
})();
