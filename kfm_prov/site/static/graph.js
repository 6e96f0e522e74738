/* The interactive lineage graph: cytoscape.js with the dagre layered layout.

   Data: window.KFM_GRAPHS[key] = {target, nodes: {id: node}, edges: [{from, to, relation,
   role, proved}], issues}. Edges point cause -> effect. The first view shows the target
   and its ancestry up to MAX_INITIAL nodes; every node with hidden neighbours carries a
   "⊕" and its details offer to expand upstream or downstream, so a closure of thousands
   of nodes stays readable. Colour follows the zone, and the zone is also written in the
   label; sensitive and redacted nodes carry a symbol. Details are built with textContent
   (never innerHTML), and nothing is fetched. */
(function () {
  "use strict";
  var MAX_INITIAL = 200;
  var DAGRE_MAX = 150;  // above this, the positions computed by kfm-prov (dagre is slow)
  var ZONES = {
    raw: {bg: "#cdeccf", border: "#1e6b23", shape: "round-rectangle"},
    work: {bg: "#ffe9a8", border: "#7a5c00", shape: "round-rectangle"},
    processed: {bg: "#cfe0ff", border: "#1f4e9c", shape: "round-rectangle"},
    external: {bg: "#eeeeee", border: "#444444", shape: "round-rectangle"},
    run: {bg: "#e6ddff", border: "#4b2f99", shape: "rectangle"},
    stac: {bg: "#f7d9f3", border: "#7b2a85", shape: "tag"}
  };
  window.kfmGraphs = window.kfmGraphs || {};

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  function mount(block) {
    var key = block.getAttribute("data-graph");
    var data = (window.KFM_GRAPHS || {})[key];
    var box = block.querySelector(".graph");
    if (!data || !box || typeof window.cytoscape !== "function") { return; }
    var root = block.getAttribute("data-root") || "";
    var nodes = data.nodes, ids = Object.keys(nodes).sort();
    var into = {}, out = {};
    ids.forEach(function (id) { into[id] = []; out[id] = []; });
    data.edges.forEach(function (e) {
      if (nodes[e.from] && nodes[e.to]) { out[e.from].push(e); into[e.to].push(e); }
    });
    var visible = {};
    initialView();
    var started = performance.now();
    var cy = window.cytoscape({
      container: box, elements: [], minZoom: 0.05, maxZoom: 3,
      boxSelectionEnabled: false, autounselectify: false,
      style: style()
    });
    var proved = false;
    var state = {cy: cy, key: key, layoutMs: null, selected: null};
    window.kfmGraphs[key] = state;
    cy.one("render", function () { state.drawnAt = performance.now(); });
    redraw();

    function initialView() {
      var all = window.location.hash === "#all";
      if (all) { ids.forEach(function (id) { visible[id] = true; }); return; }
      var start = ids.filter(function (id) { return nodes[id].side === "target"; });
      start.forEach(function (id) { visible[id] = true; });
      var frontier = start, count = start.length;
      while (frontier.length) {
        var next = [];
        frontier.forEach(function (id) {
          into[id].forEach(function (e) {
            if (!visible[e.from] && next.indexOf(e.from) === -1) { next.push(e.from); }
          });
        });
        if (!next.length || count + next.length > MAX_INITIAL) { break; }
        next.forEach(function (id) { visible[id] = true; });
        count += next.length;
        frontier = next;
      }
    }

    function hidden(id, edges, end) {
      return edges[id].filter(function (e) { return !visible[e[end]]; }).length;
    }

    function label(n) {
      var text = "";
      if (n.sensitivity && n.sensitivity !== "public") { text += "⚠ "; }
      if (n.redacted) { text += "✂ "; }
      text += n.label;
      if (hidden(n.id, into, "from") || hidden(n.id, out, "to")) { text += " ⊕"; }
      return text;
    }

    function redraw() {
      var elements = [], count = 0;
      ids.forEach(function (id) { if (visible[id]) { count++; } });
      var big = count > DAGRE_MAX;  // no edge labels: measuring thousands of them is slow
      ids.forEach(function (id) {
        if (!visible[id]) { return; }
        var n = nodes[id];
        elements.push({group: "nodes", data: {id: id, label: label(n), zone: n.zone,
          proved: n.proved ? 1 : 0, target: n.side === "target" ? 1 : 0},
          position: {x: n.x || 0, y: n.y || 0}, classes: big ? "big" : ""});
      });
      data.edges.forEach(function (e, i) {
        if (visible[e.from] && visible[e.to]) {
          elements.push({group: "edges", data: {id: "e" + i, source: e.from, target: e.to,
            label: big ? "" : e.relation, proved: e.proved ? 1 : 0}, classes: big ? "big" : ""});
        }
      });
      var t0 = performance.now();
      cy.batch(function () {
        cy.elements().remove();
        cy.add(elements);
      });
      state.addMs = performance.now() - t0;
      var small = cy.nodes().length <= DAGRE_MAX;
      if (small) {
        cy.layout({name: "dagre", rankDir: "LR", nodeSep: 14, rankSep: 45, edgeSep: 8,
          animate: false, fit: true, padding: 20}).run();
      } else {
        fitPositions();  // the nodes sit at kfm-prov's positions already
      }
      state.layoutName = small ? "dagre" : "preset";
      if (cy.zoom() > 1.3) { cy.zoom(1.3); cy.center(); }
      state.layoutMs = performance.now() - t0;
      state.sinceLoadMs = performance.now() - started;
      if (!state.doneAt) { state.doneAt = performance.now(); }  // since navigation start
      box.setAttribute("data-nodes-drawn", String(cy.nodes().length));
      box.setAttribute("data-edges-drawn", String(cy.edges().length));
      box.setAttribute("data-layout-ms", String(Math.round(state.layoutMs)));
      applyProved();
      var t1 = performance.now();
      fillList();
      state.listMs = performance.now() - t1;
      if (state.selected && cy.getElementById(state.selected).length) {
        cy.getElementById(state.selected).select();
      }
    }

    function fitPositions() {
      // fit() would measure every label first; the extent of the positions is enough
      var minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
      ids.forEach(function (id) {
        if (!visible[id]) { return; }
        var n = nodes[id];
        minX = Math.min(minX, n.x || 0); maxX = Math.max(maxX, n.x || 0);
        minY = Math.min(minY, n.y || 0); maxY = Math.max(maxY, n.y || 0);
      });
      var w = box.clientWidth || 800, h = box.clientHeight || 500, pad = 100;
      var zoom = Math.min(w / (maxX - minX + 2 * pad), h / (maxY - minY + 2 * pad), 1.3);
      zoom = Math.max(zoom, cy.minZoom());
      cy.viewport({zoom: zoom, pan: {x: w / 2 - zoom * (minX + maxX) / 2,
        y: h / 2 - zoom * (minY + maxY) / 2}});
    }

    function applyProved() {
      cy.elements().removeClass("faded");
      if (proved) { cy.elements("[proved = 0]").addClass("faded"); }
    }

    function fillList() {
      var list = block.querySelector(".node-list");
      if (!list) { return; }
      while (list.firstChild) { list.removeChild(list.firstChild); }
      ids.filter(function (id) { return visible[id]; })
        .sort(function (a, b) { return nodes[a].label < nodes[b].label ? -1 : 1; })
        .forEach(function (id) {
          var li = el("li"), b = el("button", nodes[id].zone.toUpperCase() + " · " + label(nodes[id]));
          b.type = "button";
          b.addEventListener("click", function () { select(id, true); });
          li.appendChild(b);
          list.appendChild(li);
        });
    }

    function expand(id, direction) {
      var edges = direction === "up" ? into[id] : out[id];
      edges.forEach(function (e) { visible[direction === "up" ? e.from : e.to] = true; });
      redraw();
      select(id, false);
    }

    function row(dl, term, value, asCode) {
      if (value === undefined || value === null || value === "") { return; }
      dl.appendChild(el("dt", term));
      var dd = el("dd");
      dd.appendChild(asCode ? el("code", value) : document.createTextNode(String(value)));
      dl.appendChild(dd);
    }

    function select(id, centre) {
      var n = nodes[id];
      state.selected = id;
      var panel = block.querySelector(".node-details");
      while (panel.firstChild) { panel.removeChild(panel.firstChild); }
      var kindText = n.kind === "file" ? n.zone.toUpperCase() + " file" :
        (n.kind === "run" ? "Run" : "STAC item");
      panel.appendChild(el("h3", kindText));
      var dl = el("dl");
      if (n.kind === "run") {
        row(dl, "Run id", n.run_id, true);
        row(dl, "Pipeline", n.pipeline_id, true);
        row(dl, "Commit", n.git_commit, true);
        row(dl, "Status", n.status);
        row(dl, "Validation", n.validation);
        row(dl, "Started", n.started_at);
      } else if (n.kind === "item") {
        row(dl, "STAC id", n.item_id, true);
        row(dl, "Version", n.family + " " + n.version);
      } else {
        row(dl, "sha256", n.digest, true);
        (n.paths || []).forEach(function (p) { row(dl, "Path (" + p.zone + ")", p.path, true); });
        (n.raw || []).forEach(function (r) {
          row(dl, "License", r.license || "missing");
          row(dl, "Attribution", r.attribution || "missing");
          row(dl, "Sensitivity", r.sensitivity || "public");
        });
        if (!(n.raw || []).length) { row(dl, "Sensitivity", n.sensitivity); }
        if (n.redacted) { row(dl, "Redacted", "yes: made by a recorded redaction"); }
        (n.promotions || []).forEach(function (p) { row(dl, "Published as", p); });
      }
      row(dl, "Proved by the certificate", n.proved ? "yes" : "no");
      row(dl, "Side", n.side === "down" ? "derived from this version" :
        (n.side === "target" ? "this version" : "upstream"));
      panel.appendChild(dl);
      (data.issues || []).forEach(function (i) {
        if (i.node === id) { panel.appendChild(el("p", "✗ " + i.code + ": " + i.message, "problem")); }
      });
      if (n.kind === "run") {
        var a = el("a", "Open the run's page");
        a.href = root + "runs/" + encodeURIComponent(n.run_id) + ".html";
        panel.appendChild(el("p")).appendChild(a);
      } else if (n.kind === "item") {
        var v = el("a", "Open the version's page");
        v.href = root + "families/" + encodeURIComponent(n.family) + "/" +
          encodeURIComponent(n.version) + "/index.html";
        panel.appendChild(el("p")).appendChild(v);
      }
      var up = hidden(id, into, "from"), down = hidden(id, out, "to");
      [["up", up, "Expand upstream"], ["down", down, "Expand downstream"]].forEach(function (x) {
        if (!x[1]) { return; }
        var b = el("button", x[2] + " (" + x[1] + ")");
        b.type = "button";
        b.setAttribute("data-expand", x[0]);
        b.addEventListener("click", function () { expand(id, x[0]); });
        panel.appendChild(b);
      });
      cy.elements().unselect();
      var node = cy.getElementById(id);
      node.select();
      if (centre) { cy.animate({center: {eles: node}}, {duration: 150}); }
    }

    cy.on("tap", "node", function (evt) { select(evt.target.id(), false); });
    block.querySelectorAll("[data-action]").forEach(function (button) {
      button.addEventListener("click", function () {
        var action = button.getAttribute("data-action");
        if (action === "fit") { cy.fit(undefined, 20); }
        if (action === "all") { ids.forEach(function (id) { visible[id] = true; }); redraw(); }
        if (action === "down") {
          ids.forEach(function (id) { if (nodes[id].side === "down") { visible[id] = true; } });
          redraw();
        }
        if (action === "proved") {
          proved = !proved;
          button.setAttribute("aria-pressed", proved ? "true" : "false");
          applyProved();
        }
      });
    });
    box.addEventListener("keydown", function (event) {
      var step = 60;
      var moves = {ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step],
        ArrowDown: [0, -step]};
      if (moves[event.key]) { cy.panBy({x: moves[event.key][0], y: moves[event.key][1]}); }
      else if (event.key === "+" || event.key === "=") { cy.zoom(cy.zoom() * 1.2); }
      else if (event.key === "-") { cy.zoom(cy.zoom() / 1.2); }
      else { return; }
      event.preventDefault();
    });
  }

  function style() {
    var s = [
      {selector: "node", style: {
        "label": "data(label)", "text-wrap": "wrap", "text-max-width": 130,
        "text-valign": "center", "text-halign": "center", "font-size": 10,
        "color": "#111111", "width": 140, "height": 40, "border-width": 2,
        "background-color": "#eeeeee", "border-color": "#444444", "shape": "round-rectangle"}},
      {selector: "node[target = 1]", style: {"border-width": 4, "border-style": "double"}},
      {selector: "node:selected", style: {"overlay-color": "#b3470b", "overlay-opacity": 0.25,
        "overlay-padding": 4}},
      {selector: "edge", style: {
        "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5,
        "line-color": "#6b6b6b", "target-arrow-color": "#6b6b6b", "line-style": "dashed",
        "label": "data(label)", "font-size": 8, "color": "#333333",
        "text-background-color": "#ffffff", "text-background-opacity": 0.85}},
      {selector: "edge[proved = 1]", style: {"width": 3.5, "line-style": "solid",
        "line-color": "#111111", "target-arrow-color": "#111111"}},
      {selector: ".faded", style: {"opacity": 0.2}},
      // a big view: labels only once legible, straight edges (drawing stays fast)
      {selector: "node.big", style: {"min-zoomed-font-size": 8}},
      {selector: "edge.big", style: {"curve-style": "straight"}}
    ];
    Object.keys(ZONES).forEach(function (zone) {
      var z = ZONES[zone];
      s.splice(1, 0, {selector: "node[zone = '" + zone + "']", style: {
        "background-color": z.bg, "border-color": z.border, "shape": z.shape}});
    });
    return s;
  }

  function start() {
    document.querySelectorAll(".graph-block[data-graph]").forEach(mount);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
