/* Thunderbolt dashboard front end: hand-written, no dependencies, no build step.
 *
 * Safety rule: every value from the cluster goes into the page through textContent or
 * setAttribute on a fixed list of attributes; nothing here ever parses strings as markup,
 * and links are only built from our own paths or http(s) URLs.
 */
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const SAFE_ATTRS = new Set([
  "class", "id", "href", "title", "role", "scope", "for", "type", "name", "value", "min",
  "max", "step", "placeholder", "tabindex", "colspan", "aria-label", "aria-live",
  "aria-describedby", "aria-labelledby", "aria-current", "aria-valuenow", "aria-valuemin",
  "aria-valuemax", "aria-sort", "autocomplete", "viewBox", "x", "y", "x1", "x2", "y1", "y2",
  "cx", "cy", "r", "width", "height", "d", "points", "fill", "stroke", "stroke-width",
  "text-anchor", "dominant-baseline", "transform", "opacity", "focusable",
  "data-trial", "data-metric", "data-param", "data-value", "data-revision", "data-outcome",
  "data-phase", "data-rank", "data-name",
]);

function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (!SAFE_ATTRS.has(k)) throw new Error("attribute not allowed: " + k);
    if (k === "href" && !safeHref(String(v))) continue;
    node.setAttribute(k, String(v));
  }
  return node;
}

function safeHref(v) {
  return v.startsWith("/") && !v.startsWith("//") || /^https?:\/\//i.test(v) || v.startsWith("#");
}

function add(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function el(tag, attrs, ...children) {
  return add(setAttrs(document.createElement(tag), attrs), children);
}

function sv(tag, attrs, ...children) {
  return add(setAttrs(document.createElementNS(SVGNS, tag), attrs), children);
}

const enc = encodeURIComponent;
const objPath = (kind, ns, name) => `/ns/${enc(ns)}/${kind}/${enc(name)}`;
const fmt = (v) => (v === null || v === undefined ? "-" : typeof v === "number" ? +v.toPrecision(4) + "" : String(v));

/* ---------- tables ---------- */

function table(caption, headers, rows, opts = {}) {
  const t = el("table", { class: opts.cls || "grid" },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", r.attrs || {}, r.cells.map((c) => el("td", {}, c))))),
  );
  return el("div", { class: "table-wrap", role: "region", "aria-label": caption, tabindex: "0" }, t);
}

function badge(phase) {
  return el("span", { class: "badge phase-" + String(phase).toLowerCase() }, phase);
}

function dl(pairs) {
  return el("dl", { class: "facts" }, pairs.filter((p) => p[1] !== null && p[1] !== undefined && p[1] !== "")
    .map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function section(title, ...children) {
  const id = "s-" + title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return el("section", { "aria-labelledby": id }, el("h2", { id }, title), children);
}

/* ---------- plots (SVG) ---------- */

function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

function scale(domain, range, log) {
  let [d0, d1] = domain;
  if (log) { d0 = Math.log10(d0); d1 = Math.log10(d1); }
  if (d0 === d1) { d0 -= 0.5; d1 += 0.5; }
  const f = (v) => range[0] + ((log ? Math.log10(v) : v) - d0) / (d1 - d0) * (range[1] - range[0]);
  f.ticks = () => log ? logTicks(domain) : niceTicks(domain[0] === domain[1] ? domain[0] - 0.5 : domain[0], domain[0] === domain[1] ? domain[1] + 0.5 : domain[1]);
  return f;
}

function logTicks([lo, hi]) {
  const out = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    const v = Math.pow(10, e);
    if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
  }
  return out.length ? out : [lo, hi];
}

function extent(values) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return lo === Infinity ? [0, 1] : [lo, hi];
}

function pad([lo, hi]) {
  const p = (hi - lo) * 0.05 || Math.abs(lo) * 0.05 || 0.5;
  return [lo - p, hi + p];
}

/* A scatter/line chart. x is numeric, or categorical when opts.categories is given. */
function chart(opts) {
  const W = opts.width || 560, H = opts.height || 260, M = { l: 56, r: 12, t: 10, b: 40 };
  const pts = opts.points || [], lines = opts.lines || [];
  const allY = pts.map((p) => p.y).concat(lines.flatMap((l) => l.points.map((p) => p.y)));
  const ydom = opts.ydomain || pad(extent(allY));
  const y = scale(ydom, [H - M.b, M.t], false);
  let x, xticks;
  if (opts.categories) {
    const n = opts.categories.length, band = (W - M.l - M.r) / Math.max(1, n);
    x = (v) => M.l + band * (opts.categories.indexOf(v) + 0.5);
    xticks = opts.categories;
  } else {
    const allX = pts.map((p) => p.x).concat(lines.flatMap((l) => l.points.map((p) => p.x)));
    const xe = extent(allX);
    x = scale(opts.log ? xe : pad(xe), [M.l, W - M.r], opts.log);
    xticks = x.ticks();
  }
  const g = sv("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label, class: "plot", focusable: "false" });
  g.appendChild(sv("title", {}, opts.label));
  for (const t of y.ticks ? niceTicks(ydom[0], ydom[1]) : []) {
    g.appendChild(sv("line", { x1: M.l, x2: W - M.r, y1: y(t), y2: y(t), class: "grid" }));
    g.appendChild(sv("text", { x: M.l - 6, y: y(t), "text-anchor": "end", "dominant-baseline": "middle", class: "tick" }, fmt(t)));
  }
  for (const t of xticks) {
    g.appendChild(sv("text", { x: x(t), y: H - M.b + 16, "text-anchor": "middle", class: "tick" }, fmt(t)));
  }
  g.appendChild(sv("line", { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: "axis" }));
  g.appendChild(sv("line", { x1: M.l, x2: M.l, y1: M.t, y2: H - M.b, class: "axis" }));
  g.appendChild(sv("text", { x: (M.l + W - M.r) / 2, y: H - 6, "text-anchor": "middle", class: "axis-label" }, opts.xLabel || ""));
  g.appendChild(sv("text", { x: 12, y: (M.t + H - M.b) / 2, "text-anchor": "middle", class: "axis-label", transform: `rotate(-90 12 ${(M.t + H - M.b) / 2})` }, opts.yLabel || ""));
  for (const l of lines) {
    if (!l.points.length) continue;
    const d = l.points.map((p, i) => (i ? "L" : "M") + x(p.x).toFixed(1) + " " + y(p.y).toFixed(1)).join(" ");
    g.appendChild(sv("path", { d, class: "line " + (l.cls || ""), "data-metric": l.name || null }));
  }
  for (const p of pts) {
    g.appendChild(sv("circle", { cx: x(p.x).toFixed(1), cy: y(p.y).toFixed(1), r: p.r || 3.5, class: "dot " + (p.cls || ""), "data-trial": p.trial || null },
      sv("title", {}, p.label || "")));
  }
  return el("figure", {}, g, el("figcaption", {}, opts.caption || opts.label));
}

/* Several objectives: the first two as a scatter, the front highlighted and joined, and
   the front as a table (the numbers of `thunderbolt compare` without --by). */
function paretoFront(v) {
  const p = v.pareto, [a, b] = p.objectives, better = { maximize: "higher is better", minimize: "lower is better" };
  if (!p.points.length) return el("p", {}, "No succeeded trials with every objective yet.");
  const pt = (q) => ({ x: q.values[0], y: q.values[1], trial: q.trial, cls: q.front ? "front" : "", r: q.front ? 5 : 3.5,
    label: `${q.trial}${q.front ? " (front)" : ""}: ${a.metric}=${fmt(q.values[0])}, ${b.metric}=${fmt(q.values[1])}` });
  const front = p.points.filter((q) => q.front);
  const label = `${b.metric} against ${a.metric}: ${front.length} of ${p.points.length} trials on the Pareto front`;
  return [
    chart({ label, xLabel: `${a.metric} (${better[a.direction]})`, yLabel: `${b.metric} (${better[b.direction]})`, height: 300,
      points: p.points.filter((q) => !q.front).map(pt).concat(front.map(pt)),
      lines: [{ name: "front", cls: "front", points: front.slice().sort((q, r) => q.values[0] - r.values[0]).map((q) => ({ x: q.values[0], y: q.values[1] })) }] }),
    table(`The Pareto front (${front.length}): no other trial is better on every objective`, ["Trial", ...p.objectives.map((o) => `${o.metric} (${o.direction.slice(0, 3)})`)],
      front.map((q) => ({ attrs: { "data-trial": q.trial }, cells: [el("a", { href: objPath("trials", v.namespace, q.trial) }, q.trial), ...q.values.map(fmt)] })), { cls: "grid pareto" }),
  ];
}

function colorFor(t) { // t in [0,1]: 0 bad (grey-blue) .. 1 good (orange)
  const h = 220 - 190 * t, s = 60 + 20 * t, l = 55 - 10 * t;
  return `hsl(${h.toFixed(0)} ${s.toFixed(0)}% ${l.toFixed(0)}%)`;
}

function parallelCoordinates(view) {
  const params = view.parameters, pts = view.points;
  const W = Math.max(560, 120 * (params.length + 1)), H = 300, M = { l: 50, r: 60, t: 24, b: 30 };
  const axes = params.map((p) => p.name).concat([view.metric]);
  const ax = (i) => M.l + (W - M.l - M.r) * (axes.length === 1 ? 0 : i / (axes.length - 1));
  const scales = axes.map((name, i) => {
    if (i === axes.length - 1) {
      const s = scale(pad(extent(pts.map((p) => p.objective))), [H - M.b, M.t], false);
      return { f: (p) => s(p.objective), ticks: s.ticks(), at: s };
    }
    const spec = params[i];
    if (spec.type === "categorical") {
      const cats = spec.choices && spec.choices.length ? spec.choices : [...new Set(pts.map((p) => String(p.params[name])))];
      const band = (H - M.t - M.b) / Math.max(1, cats.length - 1 || 1);
      const at = (v) => cats.length === 1 ? (H - M.b + M.t) / 2 : H - M.b - band * Math.max(0, cats.indexOf(String(v)));
      return { f: (p) => at(p.params[name]), ticks: cats, at };
    }
    const vals = pts.map((p) => p.params[name]).filter((v) => typeof v === "number");
    const dom = spec.low !== undefined && spec.low !== null ? [spec.low, spec.high] : extent(vals);
    const s = scale(dom, [H - M.b, M.t], spec.log && dom[0] > 0);
    return { f: (p) => s(p.params[name]), ticks: s.ticks(), at: s };
  });
  const [olo, ohi] = extent(pts.map((p) => p.objective));
  const good = (v) => { const t = ohi > olo ? (v - olo) / (ohi - olo) : 1; return view.direction === "maximize" ? t : 1 - t; };
  const g = sv("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "plot", "aria-label": `Parallel coordinates of ${axes.length - 1} parameters and ${view.metric}`, focusable: "false" });
  g.appendChild(sv("title", {}, `Parallel coordinates: ${axes.join(", ")}`));
  const sorted = pts.slice().sort((a, b) => good(a.objective) - good(b.objective));
  for (const p of sorted) {
    const coords = scales.map((s, i) => ax(i).toFixed(1) + "," + (+s.f(p) || 0).toFixed(1)).join(" ");
    g.appendChild(sv("polyline", { points: coords, class: "pc-line", stroke: colorFor(good(p.objective)), "data-trial": p.trial },
      sv("title", {}, `${p.trial}: ${view.metric}=${fmt(p.objective)}`)));
  }
  axes.forEach((name, i) => {
    g.appendChild(sv("line", { x1: ax(i), x2: ax(i), y1: M.t, y2: H - M.b, class: "axis" }));
    g.appendChild(sv("text", { x: ax(i), y: M.t - 8, "text-anchor": "middle", class: "axis-label" }, name));
    for (const t of scales[i].ticks) {
      g.appendChild(sv("text", { x: ax(i) + 4, y: scales[i].at(t), class: "tick", "dominant-baseline": "middle" }, fmt(t)));
    }
  });
  return el("figure", {}, g, el("figcaption", {}, `Each line is a succeeded trial; warmer is better ${view.metric}.`));
}

function bars(label, items, opts = {}) { // items: [{name, value (0..1 or raw), text}]
  const W = 560, row = 26, M = { l: 150, r: 60 };
  const H = Math.max(row, items.length * row) + 8;
  const max = opts.max || Math.max(1e-12, ...items.map((i) => i.value));
  const g = sv("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "plot bars", focusable: "false" });
  g.appendChild(sv("title", {}, label));
  items.forEach((it, i) => {
    const w = (W - M.l - M.r) * Math.max(0, it.value) / max;
    g.appendChild(sv("text", { x: M.l - 6, y: i * row + 17, "text-anchor": "end", class: "tick" }, it.name));
    g.appendChild(sv("rect", { x: M.l, y: i * row + 5, width: w.toFixed(1), height: row - 10, class: "bar " + (it.cls || ""), "data-name": it.name }));
    g.appendChild(sv("text", { x: M.l + w + 4, y: i * row + 17, class: "tick" }, it.text));
    if (opts.limit !== undefined) {
      const lx = M.l + (W - M.l - M.r) * opts.limit / max;
      g.appendChild(sv("line", { x1: lx, x2: lx, y1: i * row + 2, y2: i * row + row - 2, class: "limit" }));
    }
  });
  return el("figure", {}, g, el("figcaption", {}, opts.caption || label));
}

/* ---------- pages ---------- */

const PAGES = {};
const state = { view: null, csrf: "", actions: false, body: null };

PAGES.experiments = {
  api: () => "/api/experiments?selector=" + enc(state.selector || ""),
  relevant: (c) => c.kind === "experiments" || c.kind === "trials" || c.kind === "*",
  render(view) {
    const rows = view.experiments.map((e) => ({
      attrs: { "data-name": e.name, "data-phase": e.phase },
      cells: [e.namespace, el("a", { href: objPath("experiments", e.namespace, e.name) }, e.name), badge(e.phase),
        el("span", {}, el("progress", { max: e.maxTrials || 1, value: Math.min(e.finished, e.maxTrials || e.finished), "aria-label": `${e.name} progress` }), " ", e.progress),
        e.running, e.best, e.eta, e.age,
        Object.entries(e.labels).map(([k, v]) => el("span", { class: "label" }, `${k}=${v}`))],
    }));
    return [
      rows.length ? table(`${rows.length} experiment(s)`, ["Namespace", "Name", "Phase", "Progress", "Running", "Best", "ETA", "Age", "Labels"], rows, { cls: "grid experiments" })
        : el("p", {}, view.synced.includes("experiments") ? "No Experiments match." : "Loading Experiments…"),
    ];
  },
  header() {
    const input = el("input", { id: "selector", name: "selector", type: "search", placeholder: "app=iris,team!=ml", value: state.selector || "", autocomplete: "off" });
    const form = el("form", { class: "filter", role: "search", "aria-label": "Filter experiments by label" },
      el("label", { for: "selector" }, "Label selector"), input, el("button", { type: "submit" }, "Filter"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      state.selector = input.value;
      history.replaceState(null, "", "/?selector=" + enc(input.value));
      refresh();
    });
    return form;
  },
};

PAGES.deployments = {
  api: () => "/api/deployments",
  relevant: (c) => c.kind === "modeldeployments" || c.kind === "*",
  render(view) {
    const rows = view.deployments.map((d) => ({ cells: [d.namespace, el("a", { href: objPath("modeldeployments", d.namespace, d.name) }, d.name), badge(d.phase), fmt(d.revision), d.strategy, d.endpoint] }));
    return [rows.length ? table("ModelDeployments", ["Namespace", "Name", "Phase", "Revision", "Strategy", "Endpoint"], rows) : el("p", {}, "No ModelDeployments.")];
  },
};

function pipeline(stages) {
  return el("ol", { class: "pipeline", "aria-label": "Pipeline" }, stages.map((s) =>
    el("li", { class: "stage stage-" + s.state, "data-name": s.name },
      el("span", { class: "stage-name" }, s.name), " ", el("span", { class: "stage-state" }, s.state), el("div", { class: "stage-detail" }, s.detail))));
}

function maxTrialsForm(view) {
  if (!state.actions) return null;
  const input = el("input", { id: "max-trials", name: "maxTrials", type: "number", min: (view.maxTrials || 0) + 1, value: (view.maxTrials || 0) + 10 });
  const out = el("span", { role: "status", class: "action-result" });
  const form = el("form", { class: "action", "aria-label": "Raise maxTrials" },
    el("label", { for: "max-trials" }, "Raise maxTrials to"), input, el("button", { type: "submit" }, "Apply"), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    out.textContent = await act(`/api${objPath("experiments", view.namespace, view.name)}/max-trials`, { maxTrials: Number(input.value) });
  });
  return form;
}

async function act(url, body) {
  const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": state.csrf }, body: JSON.stringify(body) });
  const text = await r.text();
  try { const j = JSON.parse(text); return j.error || "done"; } catch (e) { return text.slice(0, 200); }
}

PAGES.experiment = {
  api: () => `/api${objPath("experiments", state.body.namespace, state.body.name)}`,
  relevant: (c) => c.kind === "*" || c.namespace === state.body.namespace && (
    c.kind === "experiments" && c.name === state.body.name || c.kind === "trials" && c.experiment === state.body.name || c.kind === "modeldeployments"),
  render(v) {
    const hist = v.history;
    const out = [
      dl([["Namespace", v.namespace], ["Phase", badge(v.phase)], ["Objective", `${v.direction} ${v.metric}` + (v.goal !== null ? ` (goal ${fmt(v.goal)})` : "")],
        ["Progress", v.progress], ["ETA", v.eta], ["Best", v.bestTrial ? el("span", {}, el("a", { href: objPath("trials", v.namespace, v.bestTrial) }, v.bestTrial), " ", v.best) : "-"],
        ["Deployment", v.deployment ? el("a", { href: objPath("modeldeployments", v.namespace, v.deployment) }, v.deployment) : null],
        ["Message", v.message], ["Labels", Object.entries(v.labels).map(([k, x]) => el("span", { class: "label" }, `${k}=${x}`))]]),
      maxTrialsForm(v),
      section("Pipeline", pipeline(v.stages)),
      section("Objective by trial",
        hist.length ? chart({
          label: `${v.metric} by trial number, with the running best`, xLabel: "trial number", yLabel: v.metric,
          points: hist.map((h) => ({ x: h.number, y: h.objective, trial: h.trial, label: `${h.trial}: ${fmt(h.objective)}` })),
          lines: [{ name: "best", cls: "best", points: hist.map((h) => ({ x: h.number, y: h.best })) }],
        }) : el("p", {}, "No succeeded trials yet.")),
    ];
    if (v.points.length && v.parameters.length) {
      out.push(section("Parallel coordinates", parallelCoordinates(v)));
    }
    out.push(section("Parameter importance", el("div", { id: "importance" }, "Computing…")));
    if (v.points.length) {
      out.push(section("Slices", el("div", { class: "slices" }, v.parameters.map((p) => chart({
        label: `${v.metric} against ${p.name}`, xLabel: p.name, yLabel: v.metric, width: 360, height: 220,
        categories: p.type === "categorical" ? (p.choices && p.choices.length ? p.choices : [...new Set(v.points.map((q) => String(q.params[p.name])))]) : null,
        log: p.log,
        points: v.points.filter((q) => q.params[p.name] !== undefined).map((q) => ({ x: p.type === "categorical" ? String(q.params[p.name]) : q.params[p.name], y: q.objective, trial: q.trial, label: `${q.trial}: ${p.name}=${q.params[p.name]}, ${fmt(q.objective)}` })),
      })))));
    }
    for (const c of v.comparisons) {
      out.push(section(`Comparison by ${c.param}`,
        table(`${v.metric} by ${c.param} (as thunderbolt compare)`, [c.param, "N", `Mean ${v.metric}`, `Best ${v.metric}`, "Std"],
          c.groups.map((g) => ({ attrs: { "data-value": g.value }, cells: [g.value, g.n, g.mean, g.best, g.std] })), { cls: "grid compare" }),
        c.winner !== null ? el("p", { class: "winner" }, `best mean ${v.metric}: ${c.param}=${c.winner} (${v.direction})`) : null,
        c.groups.length ? chart({
          label: `${v.metric} of each trial by ${c.param}`, xLabel: c.param, yLabel: v.metric, categories: c.groups.map((g) => g.value), height: 220,
          points: c.groups.flatMap((g) => g.objectives.map((o, i) => ({ x: g.value, y: o, trial: g.trials[i], label: `${g.trials[i]}: ${fmt(o)}` }))),
        }) : null));
    }
    if (v.pareto) out.push(section("Pareto front", paretoFront(v)));
    const lb = v.leaderboard;
    out.push(section("Leaderboard", lb.rows.length ? [
      table(`Succeeded trials, best first (${lb.total})`, ["Rank", "Trial", v.metric, ...(lb.rows.some((r) => r.std !== null) ? ["±Std"] : []), ...lb.params, "Duration"],
        lb.rows.map((r) => ({ attrs: { "data-rank": r.rank, "data-trial": r.trial }, cells: [r.tied ? `${r.rank}~` : r.rank, el("a", { href: objPath("trials", v.namespace, r.trial) }, r.trial), r.objective,
          ...(lb.rows.some((x) => x.std !== null) ? [r.std === null ? "-" : r.std] : []), ...r.params, r.duration] })), { cls: "grid leaderboard" }),
      lb.notes.map((n) => el("p", { class: "note" }, n))] : el("p", {}, "No succeeded trials yet.")));
    out.push(section("Trials", table(`All trials (${v.trials.length})`, ["#", "Trial", "Phase", v.metric, "Reason", "Age"],
      v.trials.map((t) => ({ attrs: { "data-trial": t.name }, cells: [t.number, el("a", { href: objPath("trials", v.namespace, t.name) }, t.name), badge(t.phase), t.objective, t.reason, t.age] })), { cls: "grid trials" })));
    return out;
  },
  after(v) { loadImportance(v); },
};

let importanceKey = "";
async function loadImportance(v) {
  const box = document.getElementById("importance");
  const key = v.namespace + "/" + v.name + "/" + v.history.length;
  if (importanceKey === key && state.importance) { box.replaceChildren(state.importance); return; }
  importanceKey = key;
  try {
    const r = await fetch(`/api${objPath("experiments", v.namespace, v.name)}/importance`);
    const j = await r.json();
    const node = j.importances.length
      ? bars(`Parameter importance (${j.evaluator}, ${j.note})`, j.importances.map((i) => ({ name: i.param, value: i.importance, text: (i.importance * 100).toFixed(1) + "%" })), { max: 1 })
      : el("p", {}, `Not yet: ${j.note}.`);
    state.importance = node;
    const now = document.getElementById("importance");
    if (now) now.replaceChildren(node);
  } catch (e) {
    box.textContent = "Importance unavailable.";
  }
}

PAGES.trial = {
  api: () => `/api${objPath("trials", state.body.namespace, state.body.name)}`,
  relevant: (c) => c.kind === "*" || c.kind === "trials" && c.namespace === state.body.namespace && c.name === state.body.name,
  render(v) {
    const curves = v.curves.filter((c) => c.points.length);
    return [
      dl([["Experiment", el("a", { href: objPath("experiments", v.namespace, v.experiment) }, v.experiment)], ["Number", v.number], ["Phase", badge(v.phase)],
        ["Reason", v.reason], ["Message", v.message], ["Objective", v.objective + (v.objectiveStd !== "-" ? ` ± ${v.objectiveStd}` : "")], ["Duration", v.duration],
        ["MLflow run", v.mlflowRunUrl ? el("a", { href: v.mlflowRunUrl, rel: null }, v.mlflowRunUrl) : null], ["Model version", v.mlflowModelVersion], ["Model", v.modelUri]]),
      section("Learning curves", curves.length ? el("div", { class: "slices" }, curves.map((c) => chart({
        label: `${c.metric} by step`, xLabel: "step", yLabel: c.metric, width: 420, height: 240,
        points: c.points.map((p) => ({ x: p.step, y: p.value, label: `step ${p.step}: ${fmt(p.value)}` })),
        lines: [{ name: c.metric, points: c.points.map((p) => ({ x: p.step, y: p.value })) }],
      }))) : el("p", {}, "No reports yet.")),
      section("Parameters", table("Parameters", ["Name", "Value"], v.parameters.map((p) => ({ cells: [p.name, p.value] })))),
      v.metrics.length ? section("Final metrics", table("Metrics", ["Name", "Value"], v.metrics.map((m) => ({ cells: [m.name, m.value] })))) : null,
      v.validation ? section("Validation",
        el("p", {}, `Verdict: ${v.validation.verdict}` + (v.validation.failed.length ? `; failed: ${v.validation.failed.join(", ")}` : "")),
        v.validation.findings.length ? table("Findings", ["Kind", "Severity", "Message"], v.validation.findings.map((f) => ({ cells: [f.kind, f.severity, f.message] }))) : null,
        v.validation.recommendations.length ? table("Recommendations", ["For", "What to do"], v.validation.recommendations.map((r) => ({ cells: [r.finding, r.text] }))) : null) : null,
      section("Events", eventsTable(v.events)),
      section("Log tail", v.log ? el("pre", { class: "log", tabindex: "0", "aria-label": "Log tail of the trial's pod" }, v.log) : el("p", {}, "No pod log.")),
    ];
  },
};

function eventsTable(events) {
  return events.length ? table("Events, newest first", ["Type", "Reason", "Message", "Count", "Age"],
    events.map((e) => ({ cells: [e.type, e.reason, e.message, e.count, e.age] }))) : el("p", {}, "No Events.");
}

function timeline(v) {
  const items = v.timeline;
  if (!items.length) return el("p", {}, "No revisions yet.");
  const W = 640, row = 28, M = { l: 70, r: 120 }, H = items.length * row + 24;
  const starts = items.map((i) => i.start).filter((s) => s !== null);
  const t0 = starts.length ? Math.min(...starts) : v.now - 60, t1 = v.now;
  const x = (t) => M.l + (W - M.l - M.r) * ((t - t0) / Math.max(1, t1 - t0));
  const g = sv("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "plot timeline", "aria-label": `Revision history of ${items.length} revisions`, focusable: "false" });
  g.appendChild(sv("title", {}, "Revision history"));
  items.forEach((it, i) => {
    const a = it.start ?? t0, b = it.end ?? t1;
    g.appendChild(sv("text", { x: M.l - 6, y: i * row + 18, "text-anchor": "end", class: "tick" }, `rev ${it.number}`));
    g.appendChild(sv("rect", { x: x(a).toFixed(1), y: i * row + 6, width: Math.max(3, x(b) - x(a)).toFixed(1), height: row - 10, class: "seg outcome-" + it.outcome.toLowerCase(), "data-revision": it.number, "data-outcome": it.outcome },
      sv("title", {}, `revision ${it.number} (${it.source}): ${it.outcome}${it.reason ? " — " + it.reason : ""}`)));
    g.appendChild(sv("text", { x: W - M.r + 6, y: i * row + 18, class: "tick" }, it.outcome));
  });
  return el("figure", {}, g, el("figcaption", {}, "Each bar: when a revision served, coloured by its outcome."));
}

PAGES.modeldeployment = {
  api: () => `/api${objPath("modeldeployments", state.body.namespace, state.body.name)}`,
  relevant: (c) => c.kind === "*" || c.kind === "modeldeployments" && c.namespace === state.body.namespace && c.name === state.body.name,
  render(v) {
    const cur = v.current;
    const f = v.figures;
    const out = [
      dl([["Phase", badge(v.phase)], ["Strategy", v.strategy], ["Reason", v.reason], ["Message", v.message], ["Endpoint", v.endpoint]]),
      section("Current revision", cur ? dl([["Revision", cur.number], ["Source", cur.source], ["Trial", cur.trial ? el("a", { href: objPath("trials", v.namespace, cur.trial) }, cur.trial) : null],
        ["Experiment", cur.experiment ? el("a", { href: objPath("experiments", v.namespace, cur.experiment) }, cur.experiment) : null], ["Objective", cur.objective], ["Model", cur.modelUri], ["Deployed", cur.deployedAt]]) : el("p", {}, "Nothing serving yet.")),
      section("Traffic", v.traffic.length ? bars("Traffic split by revision", v.traffic.map((t) => ({ name: `rev ${t.revision} (${t.role})`, value: t.weight, text: t.weight + "%", cls: t.role })), { max: 100 }) : el("p", {}, "No traffic."),
        v.canary ? el("p", {}, `Canary revision ${v.canary.revision}: step ${v.canary.step + 1}/${v.canary.steps}, weight ${v.canary.weight}%`) : null),
    ];
    if (v.analysis) {
      out.push(section("Canary analysis", f ? [
        bars("Canary error rate against its limit", [{ name: "error rate", value: f.errorRate, text: (f.errorRate * 100).toFixed(2) + "%", cls: f.errorRate > f.maxErrorRate ? "bad" : "" }], { max: Math.max(f.maxErrorRate * 2, f.errorRate), limit: f.maxErrorRate, caption: `limit ${(f.maxErrorRate * 100).toFixed(2)}% (line)` }),
        f.p99Ms !== null ? bars("Canary p99 latency against its limit", [{ name: "p99 ms", value: f.p99Ms, text: f.p99Ms.toFixed(1) + " ms", cls: f.p99Ms > f.maxLatencyP99Ms ? "bad" : "" }], { max: Math.max(f.maxLatencyP99Ms * 2, f.p99Ms), limit: f.maxLatencyP99Ms, caption: `limit ${f.maxLatencyP99Ms} ms (line)` }) : null,
        el("p", {}, `${fmt(f.requests)} requests from ${f.pods} pod(s): ${f.verdict}`)]
        : el("p", {}, `Limits: error rate ≤ ${(v.analysis.maxErrorRate ?? 0.01) * 100}%, p99 ≤ ${v.analysis.maxLatencyP99Ms ?? 100} ms, after ${v.analysis.minRequests ?? 50} requests. No canary is being judged now.`),
        v.verdicts.length ? table("Analysis and rollout events", ["Reason", "Message", "Age"], v.verdicts.map((e) => ({ cells: [e.reason, e.message, e.age] }))) : null));
    }
    out.push(section("History", timeline(v),
      table("Revisions", ["Revision", "Outcome", "Source", "Objective", "Deployed", "Retired", "Reason"],
        v.timeline.slice().reverse().map((h) => ({ attrs: { "data-revision": h.number }, cells: [h.number, h.outcome, h.source, h.objective, h.deployedAt, h.retiredAt, h.reason] })), { cls: "grid history" }),
      decisionForm(v), rollbackForm(v)));
    out.push(section("Events", eventsTable(v.events)));
    return out;
  },
};

function decisionForm(v) {
  if (!state.actions) return null;
  const waiting = v.timeline.filter((h) => h.outcome === "PendingApproval").map((h) => h.number);
  if (!waiting.length) return null;
  const select = el("select", { id: "decide-revision", name: "revision" }, waiting.reverse().map((n) => el("option", { value: n }, `revision ${n}`)));
  const reason = el("input", { id: "decide-reason", name: "reason", type: "text", required: "required", maxlength: "512" });
  const out = el("span", { role: "status", class: "action-result" });
  const send = (decision) => async (ev) => {
    ev.preventDefault();
    out.textContent = await act(`/api${objPath("modeldeployments", v.namespace, v.name)}/decision`, { decision, revision: Number(select.value), reason: reason.value });
  };
  const approve = el("button", { type: "submit" }, "Approve");
  const reject = el("button", { type: "button" }, "Reject");
  const form = el("form", { class: "action", "aria-label": "Approve or reject" }, el("label", { for: "decide-revision" }, "Waiting for approval"), select, el("label", { for: "decide-reason" }, "Reason"), reason, approve, reject, out);
  form.addEventListener("submit", send("approve"));
  reject.addEventListener("click", send("reject"));
  return form;
}

function rollbackForm(v) {
  if (!state.actions) return null;
  const older = v.timeline.map((h) => h.number).filter((n) => v.current && n < v.current.number);
  if (!older.length) return null;
  const select = el("select", { id: "rollback-to", name: "revision" }, older.reverse().map((n) => el("option", { value: n }, `revision ${n}`)));
  const out = el("span", { role: "status", class: "action-result" });
  const form = el("form", { class: "action", "aria-label": "Roll back" }, el("label", { for: "rollback-to" }, "Roll back to"), select, el("button", { type: "submit" }, "Roll back"), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    out.textContent = await act(`/api${objPath("modeldeployments", v.namespace, v.name)}/rollback`, { revision: Number(select.value) });
  });
  return form;
}

/* ---------- rendering and live updates ---------- */

function render(view) {
  state.view = view;
  const page = PAGES[state.page];
  const content = document.getElementById("content");
  const focused = document.activeElement && document.activeElement.id;
  content.replaceChildren(...page.render(view).flat().filter((n) => n));
  if (focused) { const f = document.getElementById(focused); if (f) f.focus(); }
  document.body.dataset.rendered = String((+document.body.dataset.rendered || 0) + 1);
  if (page.after) page.after(view);
}

let inflight = false, dirty = false;
async function refresh() {
  if (inflight) { dirty = true; return; }
  inflight = true;
  try {
    do {
      dirty = false;
      const r = await fetch(PAGES[state.page].api(), { headers: { Accept: "application/json" } });
      if (r.status === 404) { document.getElementById("content").replaceChildren(el("p", { class: "gone" }, "This object no longer exists.")); return; }
      if (r.ok) render(await r.json());
    } while (dirty);
  } catch (e) {
    setLive("reconnecting…");
  } finally {
    inflight = false;
  }
}

function setLive(text) { document.getElementById("live").textContent = text; }

function connect() {
  const es = new EventSource("/api/stream");
  es.addEventListener("hello", () => setLive("live"));
  es.onmessage = (ev) => {
    const change = JSON.parse(ev.data);
    if (PAGES[state.page].relevant(change)) refresh();
  };
  es.onerror = () => setLive("reconnecting…");
}

function main() {
  const b = document.body.dataset;
  state.body = b;
  state.page = b.page;
  state.selector = b.selector || "";
  state.csrf = document.querySelector('meta[name="csrf-token"]').content;
  state.actions = document.querySelector('meta[name="actions"]').content === "on";
  const page = PAGES[state.page];
  if (page.header) document.getElementById("main").insertBefore(page.header(), document.getElementById("content"));
  render(JSON.parse(document.getElementById("initial").textContent));
  connect();
}

main();
