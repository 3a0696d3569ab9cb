// cnndsl graph report: lays out and draws the network from the data embedded in the page.
// Nothing is fetched; the layout is a plain layered one (longest path from the inputs, rows
// ordered by the mean position of their predecessors), recomputed when a block opens or closes.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("cnndsl-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const groups = new Map(data.groups.map((g) => [g.path, g]));
  const nodes = new Map(data.nodes.map((n) => [n.name, n]));
  const collapsed = new Set();
  let selected = null;

  function el(name, attrs, parent) {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  }
  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toPrecision(3)) + " " + units[i];
  }
  function count(n) {
    for (const [p, s] of [["T", 1e12], ["G", 1e9], ["M", 1e6], ["K", 1e3]]) {
      if (n >= s) return (n / s).toPrecision(3) + " " + p;
    }
    return String(n);
  }
  function ancestors(path) {  // the group chain of a node or group, outermost first
    const chain = [];
    let g = path;
    while (g) { chain.unshift(g); g = groups.get(g).parent; }
    return chain;
  }
  function owner(name) {  // what stands for a node on screen: itself or its outermost closed group
    for (const g of ancestors(nodes.get(name).group)) if (collapsed.has(g)) return "group:" + g;
    return name;
  }
  function collapseTo(depth) {
    collapsed.clear();
    for (const g of data.groups) if (ancestors(g.path).length === depth) collapsed.add(g.path);
  }

  function visibleGraph() {
    const order = [];
    const seen = new Set();
    for (const n of data.nodes) {
      const o = owner(n.name);
      if (!seen.has(o)) { seen.add(o); order.push(o); }
    }
    const edges = [];
    const edgeSeen = new Set();
    for (const [s, t, label] of data.edges) {
      const a = owner(s), b = owner(t);
      if (a === b || edgeSeen.has(a + "\u0000" + b)) continue;
      edgeSeen.add(a + "\u0000" + b);
      edges.push([a, b, label]);
    }
    return { order, edges };
  }

  function layout(graph) {
    const preds = new Map(graph.order.map((v) => [v, []]));
    const succs = new Map(graph.order.map((v) => [v, []]));
    for (const [a, b] of graph.edges) { preds.get(b).push(a); succs.get(a).push(b); }
    // Kahn's order (IR order breaks ties), so a closed group never sits above its inputs
    const indeg = new Map(graph.order.map((v) => [v, preds.get(v).length]));
    const ready = graph.order.filter((v) => indeg.get(v) === 0);
    const topo = [];
    const placed = new Set();
    while (ready.length) {
      const v = ready.shift();
      topo.push(v); placed.add(v);
      for (const w of succs.get(v)) {
        indeg.set(w, indeg.get(w) - 1);
        if (indeg.get(w) === 0) ready.push(w);
      }
    }
    for (const v of graph.order) if (!placed.has(v)) topo.push(v);  // a cycle through a group
    const layer = new Map();
    for (const v of topo) {
      let l = 0;
      for (const p of preds.get(v)) if (layer.has(p)) l = Math.max(l, layer.get(p) + 1);
      layer.set(v, l);
    }
    const rows = [];
    for (const v of topo) (rows[layer.get(v)] = rows[layer.get(v)] || []).push(v);
    const size = new Map();
    for (const v of topo) {
      const lines = labelLines(v);
      const w = Math.max(110, 7 * Math.max(...lines.map((s) => s.length)) + 16);
      size.set(v, { w, h: 16 + 14 * lines.length });
    }
    const x = new Map();
    const y = new Map();
    const gap = 28, rowGap = 46;
    let top = 20;
    for (const row of rows) {
      if (!row) continue;
      const want = (v) => {
        const ps = preds.get(v).filter((p) => x.has(p));
        return ps.length ? ps.reduce((s, p) => s + x.get(p), 0) / ps.length : 0;
      };
      row.sort((a, b) => want(a) - want(b));
      const width = row.reduce((s, v) => s + size.get(v).w, 0) + gap * (row.length - 1);
      let left = -width / 2;
      const centre = row.reduce((s, v) => s + want(v), 0) / row.length;
      left += centre;
      let tallest = 0;
      for (const v of row) {
        const s = size.get(v);
        x.set(v, left + s.w / 2);
        y.set(v, top);
        left += s.w + gap;
        tallest = Math.max(tallest, s.h);
      }
      top += tallest + rowGap;
    }
    return { x, y, size, height: top };
  }

  function labelLines(v) {
    if (v.startsWith("group:")) {
      const g = groups.get(v.slice(6));
      return [g.path, g.block + " (" + g.layers + " layers)", count(g.params) + " params"];
    }
    const n = nodes.get(v);
    return [n.name, n.kind + (n.detail ? " " + n.detail : "")];
  }

  function draw() {
    const graph = visibleGraph();
    const pos = layout(graph);
    const svg = document.getElementById("graph");
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    let minX = Infinity, maxX = -Infinity;
    for (const v of graph.order) {
      const s = pos.size.get(v);
      minX = Math.min(minX, pos.x.get(v) - s.w / 2);
      maxX = Math.max(maxX, pos.x.get(v) + s.w / 2);
    }
    const pad = 40;
    const width = maxX - minX + 2 * pad;
    svg.setAttribute("width", width);
    svg.setAttribute("height", pos.height);
    svg.setAttribute("viewBox", `${minX - pad} 0 ${width} ${pos.height}`);
    const frames = el("g", { class: "frames" }, svg);
    const edgeLayer = el("g", { class: "edges" }, svg);
    const nodeLayer = el("g", { class: "nodes" }, svg);
    // a dashed frame around each open group's visible members; its label closes the group
    const boxes = new Map();
    for (const v of graph.order) {
      const chain = v.startsWith("group:") ? ancestors(groups.get(v.slice(6)).parent)
        : ancestors(nodes.get(v).group);
      for (const g of chain) {
        if (collapsed.has(g)) break;
        const s = pos.size.get(v);
        const b = boxes.get(g) || { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
        b.x0 = Math.min(b.x0, pos.x.get(v) - s.w / 2);
        b.x1 = Math.max(b.x1, pos.x.get(v) + s.w / 2);
        b.y0 = Math.min(b.y0, pos.y.get(v));
        b.y1 = Math.max(b.y1, pos.y.get(v) + s.h);
        boxes.set(g, b);
      }
    }
    for (const [g, b] of boxes) {
      const inset = 8 * (4 - Math.min(3, ancestors(g).length));
      const frame = el("g", { class: "frame", "data-group": g }, frames);
      el("rect", { x: b.x0 - inset, y: b.y0 - inset - 6, width: b.x1 - b.x0 + 2 * inset,
                   height: b.y1 - b.y0 + 2 * inset + 6 }, frame);
      const label = el("text", { x: b.x0 - inset + 4, y: b.y0 - inset + 3 }, frame);
      label.textContent = "\u25be " + g + ": " + groups.get(g).block;
      label.addEventListener("click", () => { collapsed.add(g); draw(); });
    }
    for (const [a, b, label] of graph.edges) {
      const sa = pos.size.get(a);
      const x1 = pos.x.get(a), y1 = pos.y.get(a) + sa.h;
      const x2 = pos.x.get(b), y2 = pos.y.get(b);
      const bend = Math.max(18, (y2 - y1) / 2);
      el("path", { class: "edge", d: `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2}`,
                   "marker-end": "url(#arrow)" }, edgeLayer);
      const t = el("text", { class: "edge-label", x: (x1 + x2) / 2 + 4, y: (y1 + y2) / 2 + 3 },
                   edgeLayer);
      t.textContent = label;
    }
    const defs = el("defs", {}, svg);
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
                                  markerWidth: 7, markerHeight: 7, orient: "auto" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8a93a5" }, marker);
    for (const v of graph.order) {
      const s = pos.size.get(v);
      const isGroup = v.startsWith("group:");
      const name = isGroup ? v.slice(6) : v;
      const g = el("g", { class: "node " + (isGroup ? "block" : "layer"), "data-name": name,
                          transform: `translate(${pos.x.get(v) - s.w / 2},${pos.y.get(v)})` },
                   nodeLayer);
      if (!isGroup && name === selected) g.classList.add("selected");
      el("rect", { width: s.w, height: s.h, fill: isGroup ? "#e9effa" : colour(nodes.get(v).kind) }, g);
      labelLines(v).forEach((line, i) => {
        const t = el("text", { x: 8, y: 16 + 14 * i, class: i ? "sub" : "" }, g);
        t.textContent = line;
      });
      const tip = el("title", {}, g);
      tip.textContent = isGroup ? "click to open " + name : tooltip(nodes.get(v));
      g.addEventListener("click", () => isGroup ? expand(name) : select(name));
    }
    document.getElementById("visible-count").textContent =
      graph.order.length + " shown of " + data.nodes.length + " layers";
  }

  function colour(kind) {
    const base = kind.split(":")[0];
    if (base.includes("pool")) return "#d7f0ee";
    return { conv: "#dbe8fb", conv_transpose: "#dbe8fb", linear: "#e6dcf7", batchnorm: "#f1f1f1",
             add: "#fde9c9", mul: "#fde9c9", concat: "#fde9c9", input: "#d9f2dc" }[base] || "#ffffff";
  }
  function tooltip(n) {
    return `${n.name}: ${n.kind} ${n.detail}\noutput ${n.shape}\nparams ${n.params.toLocaleString()}` +
      `\nMACs ${count(n.macs)}\nactivation ${bytes(n.activation_bytes)}\nreceptive field ${n.rf}`;
  }
  function expand(path) {
    collapsed.delete(path);
    for (const g of data.groups) if (g.parent === path) collapsed.add(g.path);
    draw();
  }
  function select(name) {
    selected = name;
    for (const row of document.querySelectorAll("#layers tr.selected")) row.classList.remove("selected");
    const row = document.querySelector(`#layers tr[data-name="${CSS.escape(name)}"]`);
    if (row) { row.classList.add("selected"); row.scrollIntoView({ block: "nearest" }); }
    draw();
  }

  function table() {
    const body = document.querySelector("#layers tbody");
    for (const n of data.nodes) {
      const tr = document.createElement("tr");
      tr.dataset.name = n.name;
      const cells = [n.name, n.kind, n.shape, n.params.toLocaleString(), count(n.macs),
                     bytes(n.activation_bytes), n.rf, n.jump];
      cells.forEach((c, i) => {
        const td = document.createElement("td");
        td.textContent = c;
        if (i >= 3) td.className = "num";
        tr.appendChild(td);
      });
      tr.addEventListener("click", () => select(n.name));
      body.appendChild(tr);
    }
  }

  function chart() {
    const events = data.timeline;
    const box = document.getElementById("chart");
    if (!events.length) { box.textContent = "no timeline"; return; }
    const W = 640, H = 220, L = 64, B = 28, T = 10;
    const svg = el("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}` }, null);
    box.appendChild(svg);
    const top = Math.max(...events.map((e) => e.peak));
    const xs = (i) => L + (W - L - 10) * (events.length > 1 ? i / (events.length - 1) : 0);
    const ys = (v) => H - B - (H - B - T) * (top ? v / top : 0);
    let start = 0;
    for (let i = 1; i <= events.length; i++) {  // shade the backward pass
      if (i === events.length || events[i].phase !== events[start].phase) {
        if (events[start].phase === "backward") {
          el("rect", { class: "phase", x: xs(start), y: T, width: xs(i - 1) - xs(start),
                       height: H - B - T }, svg);
        }
        if (i - start > 1) {  // setup and the optimizer step are one event each
          const label = el("text", { x: xs(start) + 2, y: H - 6 }, svg);
          label.textContent = events[start].phase;
        }
        start = i;
      }
    }
    el("line", { class: "axis", x1: L, y1: H - B, x2: W - 10, y2: H - B }, svg);
    el("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }, svg);
    for (const f of [0, 0.5, 1]) {
      const t = el("text", { x: 4, y: ys(top * f) + 3 }, svg);
      t.textContent = bytes(Math.round(top * f));
    }
    const line = (key) => events.map((e, i) => `${i ? "L" : "M"}${xs(i)},${ys(e[key])}`).join(" ");
    el("path", { class: "peak", d: line("peak") }, svg);
    el("path", { class: "live", d: line("live") }, svg);
    events.forEach((e, i) => {
      const dot = el("circle", { cx: xs(i), cy: ys(e.peak), r: 2.2, fill: "transparent" }, svg);
      const tip = el("title", {}, dot);
      tip.textContent = `${e.phase} ${e.node}: live ${bytes(e.live)}, peak ${bytes(e.peak)}`;
    });
  }

  document.getElementById("expand-all").addEventListener("click", () => { collapsed.clear(); draw(); });
  document.getElementById("collapse-all").addEventListener("click", () => { collapseTo(1); draw(); });
  if (data.nodes.length > 60) collapseTo(1);
  table();
  chart();
  draw();
  document.body.dataset.ready = "true";
})();
