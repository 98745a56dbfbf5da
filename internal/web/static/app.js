// netpulse status page: loads probes and history from /api/v1, draws the
// charts as SVG and follows /api/v1/events for live updates. No libraries,
// no network access beyond the agent.
"use strict";
(() => {
  // Chart geometry in viewBox units: ping cards are about 400 px wide,
  // speed-test cards twice that on wide screens (SW keeps their text size).
  const W = 400, SW = 800, H = 130, L = 34, R = 6, T = 8, B = 18;
  const SPEED_RANGE = 30 * 86400; // speed-test history shown
  const state = { info: null, probes: [], range: 3600, series: new Map(), live: false, hadError: false };
  const main = document.getElementById("probes");

  // ---- helpers -------------------------------------------------------
  function el(tag, attrs, ...children) {
    const ns = ["svg", "path", "rect", "line", "text", "circle", "g"].includes(tag) ? "http://www.w3.org/2000/svg" : null;
    const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  const key = (p, t) => p + "\u0000" + t;
  async function getJSON(url, opts) {
    const r = await fetch(url, opts);
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw Object.assign(new Error(body.error || r.statusText), { status: r.status });
    return body;
  }
  const api = (p, t, what) => `api/v1/probes/${encodeURIComponent(p)}/targets/${encodeURIComponent(t)}/${what}`;
  const num = (v) => v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toFixed(3);
  const ms = (s) => s == null ? "–" : num(s * 1000) + " ms";
  const pct = (r) => r == null ? "–" : (r * 100).toFixed(r > 0 && r < 0.1 ? 1 : 0) + " %";
  const mbps = (b) => b == null ? "–" : b >= 1e9 ? num(b / 1e9) + " Gbit/s" : num(b / 1e6) + " Mbit/s";
  const day = (d) => d.toLocaleDateString([], { month: "short", day: "numeric" });
  const hhmm = (d) => d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  function ago(iso) {
    if (!iso) return "never";
    const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (s < 90) return Math.round(s) + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 172800) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }
  // A probe's values are found by role: the API lists each type's values
  // (probes[].values, declared with the type in Go), so the page names no
  // value and no type. Rates are bytes per second; the page shows bits.
  const roleName = (p, role) => { const d = (p.values || []).find((x) => x.role === role); return d ? d.name : role; };
  // A latency-view type may lack jitter or loss (a TCP connect, an HTTP
  // request): its card leaves them out and its bars show failed runs.
  const hasRole = (p, role) => (p.values || []).some((x) => x.role === role);
  const roleLabel = (p, role, dflt) => { const d = (p.values || []).find((x) => x.role === role); return d ? d.label : dflt; };
  const rv = (p, vals, role) => { const v = (vals || {})[roleName(p, role)]; return v == null ? null : v; };
  const bits = (p, vals, role) => { const v = rv(p, vals, role); return v == null ? null : v * 8; };
  const loaded = (p, v) => { const d = rv(p, v, "loaded_download"), u = rv(p, v, "loaded_upload"); return d == null ? u : u == null ? d : Math.max(d, u); };
  const throughput = (p) => p.view === "throughput";
  // Phases (role "phase", in run order) make up a run's latency; their
  // short name is the value's name without its unit suffix.
  const phases = (p) => (p.values || []).filter((x) => x.role === "phase");

  // ---- page ----------------------------------------------------------
  async function load() {
    try {
      state.info = await getJSON("api/v1/info");
      state.probes = (await getJSON("api/v1/probes")).probes;
    } catch (e) {
      main.replaceChildren(el("p", { class: "error", text: "Cannot load the agent's API: " + e.message }));
      return;
    }
    document.getElementById("version").textContent = state.info.version || "";
    render();
    await loadHistory();
  }

  // The fault-domain verdict, the page's first line when targets have a
  // tier (info.verdict): where a fault is, and why.
  function verdictLine() {
    const v = state.info.verdict;
    if (!v) return null;
    const head = v.domain === "none" ? "No fault" : v.domain === "unknown" ? "Fault: cannot tell where" : "Fault: " + v.domain;
    return el("p", { id: "verdict", class: "verdict", "data-domain": v.domain },
      el("b", { text: head }), " ", el("span", { class: "muted", text: v.reason }));
  }
  // After results, the verdict is read again (at most every 2 s).
  function refreshVerdict() {
    if (!state.info || !state.info.verdict || state.verdictTimer) return;
    state.verdictTimer = setTimeout(async () => {
      state.verdictTimer = null;
      try { state.info = await getJSON("api/v1/info"); } catch (e) { return; }
      const line = verdictLine(), old = document.getElementById("verdict");
      if (line && old) old.replaceWith(line);
    }, 2000);
  }

  function render() {
    main.replaceChildren();
    const verdict = verdictLine();
    if (verdict) main.append(verdict);
    for (const p of state.probes) {
      const speed = throughput(p);
      const grid = el("div", { class: "grid" });
      main.append(el("section", { "data-probe": p.name },
        el("h2", {}, p.name + " ", el("small", { text: `${p.type}, every ${p.interval_seconds} s` })), grid));
      for (const t of p.targets) {
        const card = speed ? speedCard(p, t) : pingCard(p, t);
        grid.append(card);
        state.series.set(key(p.name, t.name), { probe: p, target: t, card, buckets: [], results: [], step: 60 });
        update(card, p, t.last_result, t.last_success);
      }
    }
  }

  function runButton(p, t) {
    const rn = state.info.run_now || {};
    if (!rn.enabled) return null;
    return el("button", { type: "button", class: "run", onclick: (ev) => runNow(p, t, ev.target) }, "Run now");
  }

  function pingCard(p, t) {
    return el("div", { class: "card", "data-probe": p.name, "data-target": t.name, "data-status": t.status },
      el("div", { class: "head" }, el("h3", { text: t.name }), el("span", { class: "host", text: t.host }),
        el("span", { class: "badge", text: t.status })),
      el("div", { class: "stats" },
        el("div", {}, el("b", { class: "v-rtt", text: "–" }), el("span", { text: roleLabel(p, "latency", "RTT") })),
        hasRole(p, "jitter") ? el("div", {}, el("b", { class: "v-jitter", text: "–" }), el("span", { text: "jitter" })) : null,
        hasRole(p, "loss") ? el("div", {}, el("b", { class: "v-loss", text: "–" }), el("span", { text: "loss" })) : null),
      phases(p).length ? el("div", { class: "phases", hidden: true }) : null,
      el("div", { class: "error" }),
      el("div", { class: "chart-box" }),
      el("div", { class: "legend" }, el("span", {}, el("i", { class: "l-rtt" }), roleLabel(p, "latency", "RTT") + ", ms (band: min–max)"),
        el("span", {}, el("i", { class: "l-loss" }), hasRole(p, "loss") ? "loss" : "failed runs")),
      el("div", { class: "meta" }, el("span", { class: "ago" }), el("span", { class: "trace" }), runButton(p, t)));
  }

  function speedCard(p, t) {
    return el("div", { class: "card speed", "data-probe": p.name, "data-target": t.name, "data-status": t.status },
      el("div", { class: "head" }, el("h3", { text: t.name }), el("span", { class: "host", text: t.host }),
        el("span", { class: "badge", text: t.status })),
      el("div", { class: "stats" },
        el("div", {}, el("b", { class: "v-down", text: "–" }), el("span", { text: "download" })),
        el("div", {}, el("b", { class: "v-up", text: "–" }), el("span", { text: "upload" })),
        el("div", {}, el("b", { class: "v-idle", text: "–" }), el("span", { text: "idle latency" })),
        el("div", {}, el("b", { class: "v-loaded", text: "–" }), el("span", { text: "loaded latency (max)" }))),
      el("div", { class: "error" }),
      el("div", { class: "chart-box" }),
      el("div", { class: "legend" }, el("span", {}, el("i", { class: "l-down" }), "download, ", el("span", { class: "rate-unit", text: "Mbit/s" })),
        el("span", {}, el("i", { class: "l-up" }), "upload")),
      el("div", { class: "table-wrap" }),
      el("div", { class: "meta" }, el("span", { class: "ago" }), el("span", { class: "trace" }), runButton(p, t)));
  }

  // update shows a target's latest result on its card.
  function update(card, p, rec, lastSuccess) {
    if (!rec) return;
    const status = rec.outcome === "success" ? "up" : "down";
    card.dataset.status = status;
    card.dataset.runId = rec.run_id;
    card.dataset.start = rec.start;
    const badge = card.querySelector(".badge");
    badge.textContent = status;
    badge.className = "badge " + status;
    const v = rec.values || {};
    if (throughput(p)) {
      card.querySelector(".v-down").textContent = mbps(bits(p, v, "download"));
      card.querySelector(".v-up").textContent = mbps(bits(p, v, "upload"));
      card.querySelector(".v-idle").textContent = ms(rv(p, v, "idle_latency"));
      card.querySelector(".v-loaded").textContent = ms(loaded(p, v));
    } else {
      card.querySelector(".v-rtt").textContent = ms(rv(p, v, "latency"));
      if (hasRole(p, "jitter")) card.querySelector(".v-jitter").textContent = ms(rv(p, v, "jitter"));
      if (hasRole(p, "loss")) card.querySelector(".v-loss").textContent = pct(rv(p, v, "loss"));
      drawPhases(card.querySelector(".phases"), p, v);
    }
    card.querySelector(".error").textContent = rec.outcome === "success" ? "" :
      `${rec.outcome}${rec.error_type ? " (" + rec.error_type + ")" : ""}: ${rec.error || ""}`;
    const agoEl = card.querySelector(".ago");
    agoEl.dataset.at = rec.start;
    agoEl.textContent = "last run " + ago(rec.start) + (lastSuccess && status === "down" ? ", last success " + ago(lastSuccess) : "");
    const trace = card.querySelector(".trace");
    trace.replaceChildren();
    const url = state.info.trace_url && rec.trace_id ? state.info.trace_url.replaceAll("{trace_id}", rec.trace_id) : null;
    if (url) trace.append(el("a", { href: url, target: "_blank", rel: "noopener", text: "trace" }));
    trace.append(el("a", { href: "api/v1/runs/" + rec.run_id, text: url ? " · debug" : "debug" }));
  }

  // drawPhases shows the last run's phases as a stacked bar (widths in
  // proportion) over a list "connect 0.3 ms · tls 1.9 ms"; hidden when the
  // run measured none (a failed connect, a type without phases).
  function drawPhases(box, p, v) {
    if (!box) return;
    const ph = phases(p).map((d, i) => ({ d, i, s: v[d.name] })).filter((x) => x.s != null);
    const sum = ph.reduce((a, x) => a + x.s, 0);
    box.hidden = ph.length === 0;
    const bar = el("div", { class: "bar" }, ...ph.map((x) => {
      const seg = el("i", { class: "ph" + (x.i % 5), title: x.d.label });
      seg.style.flexGrow = sum > 0 ? x.s / sum : 1; // CSSOM: the page's CSP forbids style attributes
      return seg;
    }));
    box.replaceChildren(bar,
      el("div", { class: "list" }, ...ph.map((x) => el("span", { title: x.d.label },
        el("i", { class: "ph" + (x.i % 5) }), x.d.name.replace(/_seconds$/, "") + " " + ms(x.s)))));
  }

  // ---- history and charts ---------------------------------------------
  async function loadHistory() {
    await Promise.all([...state.series.values()].map(async (s) => {
      try {
        if (throughput(s.probe)) {
          const r = await getJSON(api(s.probe.name, s.target.name, "results") + `?since=${SPEED_RANGE}s&order=desc&limit=500`);
          s.results = r.results.reverse();
          drawSpeed(s);
        } else {
          s.step = Math.max(Math.ceil(state.range / 240), Math.round(s.probe.interval_seconds));
          const r = await getJSON(api(s.probe.name, s.target.name, "aggregate") + `?since=${state.range}s&step=${s.step}s&values=${roleName(s.probe, "latency")},${roleName(s.probe, "loss")}`);
          s.buckets = r.buckets;
          drawPing(s);
        }
      } catch (e) {
        s.card.querySelector(".error").textContent = "history: " + e.message;
      }
    }));
  }

  function niceMax(v) {
    if (!(v > 0)) return 1e-3;
    const e = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * e) return m * e;
    return 10 * e;
  }

  function frame(svg, W, t0, t1, ymax, fmt) {
    for (const f of [0, 0.5, 1]) {
      const y = T + (H - T - B) * (1 - f);
      svg.append(el("line", { class: "grid-line", x1: L, x2: W - R, y1: y, y2: y }),
        el("text", { x: L - 4, y: y + 4, "text-anchor": "end", text: fmt(ymax * f) }));
    }
    svg.append(el("text", { x: L, y: H - 4, text: t1 - t0 > 86400e3 ? day(new Date(t0)) : hhmm(new Date(t0)) }),
      el("text", { x: W - R, y: H - 4, "text-anchor": "end", text: t1 - t0 > 86400e3 ? "today" : "now" }));
  }

  function drawPing(s) {
    const box = s.card.querySelector(".chart-box");
    const t1 = Date.now(), t0 = t1 - state.range * 1000;
    const x = (t) => L + (t - t0) / (t1 - t0) * (W - L - R);
    const lat = roleName(s.probe, "latency"), loss = roleName(s.probe, "loss");
    const pts = s.buckets.filter((b) => b.values && b.values[lat] && Date.parse(b.start) >= t0 - s.step * 1000);
    const ymax = niceMax(Math.max(0, ...pts.map((b) => b.values[lat].max)) * 1.1);
    const y = (v) => T + (H - T - B) * (1 - Math.min(v, ymax) / ymax);
    const svg = el("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-label": `RTT and loss of ${s.target.name}, last ${state.range / 3600} h`, "data-points": pts.length });
    frame(svg, W, t0, t1, ymax, (v) => v === 0 ? "0" : num(v * 1000));
    // Loss bars along the bottom (full height = 100% loss over a third of the plot).
    const bw = Math.max(1, s.step * 1000 / (t1 - t0) * (W - L - R));
    for (const b of s.buckets) {
      const lr = b.values && b.values[loss] ? b.values[loss].avg : (b.failures ? b.failures / b.runs : 0);
      if (lr > 0) {
        const h = lr * (H - T - B) / 3;
        svg.append(el("rect", { class: "loss", x: x(Date.parse(b.start)), y: H - B - h, width: bw, height: h }));
      }
    }
    // RTT line (mean of runs) and band (min–max of run means); gaps break them.
    let line = "", band = [], bands = [], prev = null;
    for (const b of pts) {
      const t = Date.parse(b.start) + s.step * 500, st = b.values[lat];
      const gap = prev === null || t - prev > s.step * 2500;
      line += (gap ? "M" : "L") + x(t).toFixed(1) + "," + y(st.avg).toFixed(1);
      if (gap && band.length) { bands.push(band); band = []; }
      band.push([x(t), y(st.min), y(st.max)]);
      prev = t;
    }
    if (band.length) bands.push(band);
    for (const bd of bands) {
      const d = "M" + bd.map((p) => p[0].toFixed(1) + "," + p[2].toFixed(1)).join("L") + "L" +
        bd.slice().reverse().map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1)).join("L") + "Z";
      svg.append(el("path", { class: "band", d }));
    }
    if (line) svg.append(el("path", { class: "rtt", d: line }));
    box.replaceChildren(svg);
  }

  function drawSpeed(s) {
    const box = s.card.querySelector(".chart-box");
    const rs = s.results.filter((r) => r.outcome === "success");
    const t1 = Date.now(), t0 = Math.min(t1 - 86400e3, ...rs.map((r) => Date.parse(r.start)));
    const x = (t) => L + (t - t0) / (t1 - t0) * (SW - L - R);
    const p = s.probe, rate = (vals, dir) => bits(p, vals, dir);
    const ymax = niceMax(Math.max(0, ...rs.map((r) => Math.max(rate(r.values, "download") || 0, rate(r.values, "upload") || 0))) * 1.1);
    const y = (v) => T + (H - T - B) * (1 - v / ymax);
    const svg = el("svg", { class: "chart", viewBox: `0 0 ${SW} ${H}`, role: "img",
      "aria-label": `speed-test history of ${s.target.name}`, "data-points": rs.length });
    const unit = ymax >= 2e9 ? 1e9 : 1e6;
    s.card.querySelector(".rate-unit").textContent = unit === 1e9 ? "Gbit/s" : "Mbit/s";
    frame(svg, SW, t0, t1, ymax, (v) => v === 0 ? "0" : num(v / unit));
    for (const [dir, cls] of [["download", "down"], ["upload", "upl"]]) {
      const ok = rs.filter((r) => rate(r.values, dir) != null);
      if (ok.length) svg.append(el("path", { class: cls, d: "M" + ok.map((r) => x(Date.parse(r.start)).toFixed(1) + "," + y(rate(r.values, dir)).toFixed(1)).join("L") }));
      for (const r of ok) svg.append(el("circle", { class: cls === "down" ? "dot-down" : "dot-up", r: 2.5, cx: x(Date.parse(r.start)), cy: y(rate(r.values, dir)) }));
    }
    box.replaceChildren(svg);
    const rows = s.results.slice(-10).reverse().map((r) => el("tr", {},
      el("td", { text: day(new Date(r.start)) + " " + hhmm(new Date(r.start)) }),
      el("td", { text: r.outcome === "success" ? mbps(rate(r.values, "download")) : r.error_type || r.outcome }),
      el("td", { text: mbps(rate(r.values, "upload")) }), el("td", { text: ms(rv(p, r.values, "idle_latency")) }),
      el("td", { text: ms(rv(p, r.values, "loaded_download")) + " / " + ms(rv(p, r.values, "loaded_upload")) })));
    s.card.querySelector(".table-wrap").replaceChildren(el("table", {},
      el("thead", {}, el("tr", {}, ...["time", "download", "upload", "idle", "loaded ↓ / ↑"].map((h) => el("th", { text: h })))),
      el("tbody", {}, ...rows)));
  }

  // addResult folds a live result into the series' chart data.
  function addResult(s, rec) {
    if (throughput(s.probe)) {
      s.results.push(rec);
      drawSpeed(s);
      return;
    }
    const t = Date.parse(rec.start), stepMs = s.step * 1000;
    const start = new Date(Math.floor(t / stepMs) * stepMs).toISOString();
    let b = s.buckets.find((x) => Date.parse(x.start) === Date.parse(start));
    if (!b) { b = { start, runs: 0, failures: 0, values: {} }; s.buckets.push(b); }
    b.runs++;
    if (rec.outcome !== "success") b.failures++;
    for (const [k, v] of Object.entries(rec.values || {})) {
      if (v == null) continue;
      const st = b.values[k];
      b.values[k] = st ? { min: Math.min(st.min, v), max: Math.max(st.max, v), avg: st.avg + (v - st.avg) / b.runs } : { min: v, max: v, avg: v };
    }
    drawPing(s);
  }

  // ---- run now -------------------------------------------------------
  async function runNow(p, t, button) {
    const card = button.closest(".card");
    const headers = { "Content-Type": "application/json" };
    const tok = sessionStorage.getItem("netpulse-token");
    if (tok) headers.Authorization = "Bearer " + tok;
    button.disabled = true;
    try {
      const r = await fetch(`api/v1/probes/${encodeURIComponent(p.name)}/runs`, { method: "POST", headers, body: JSON.stringify({ target: t.name }) });
      const body = await r.json().catch(() => ({}));
      if (r.status === 401) {
        const entered = window.prompt("API token (api.token):");
        if (entered) { sessionStorage.setItem("netpulse-token", entered); button.disabled = false; return runNow(p, t, button); }
      }
      if (!r.ok) throw new Error(body.error || r.statusText);
      card.querySelector(".badge").textContent = "running";
      card.dataset.pending = body.runs[0].run_id;
    } catch (e) {
      card.querySelector(".error").textContent = "run now: " + e.message;
      button.disabled = false;
    }
  }

  // ---- live updates --------------------------------------------------
  function connect() {
    const live = document.getElementById("live");
    const es = new EventSource("api/v1/events");
    es.onopen = () => {
      live.textContent = "live"; live.className = "live on";
      if (state.hadError) { state.hadError = false; load(); } // missed events: reload
    };
    es.onerror = () => { live.textContent = "reconnecting…"; live.className = "live off"; state.hadError = true; };
    es.addEventListener("started", (ev) => {
      const d = JSON.parse(ev.data), s = state.series.get(key(d.probe, d.target));
      if (s) s.card.querySelector(".badge").textContent = "running";
    });
    es.addEventListener("result", (ev) => {
      const rec = JSON.parse(ev.data), s = state.series.get(key(rec.probe, rec.target));
      if (!s) return;
      update(s.card, s.probe, rec, null);
      refreshVerdict();
      if (s.card.dataset.pending === rec.run_id) {
        delete s.card.dataset.pending;
        const b = s.card.querySelector("button.run");
        if (b) b.disabled = false;
      }
      addResult(s, rec);
    });
  }

  // ---- controls ------------------------------------------------------
  for (const b of document.querySelectorAll("[data-range]")) {
    b.addEventListener("click", () => {
      state.range = Number(b.dataset.range);
      for (const o of document.querySelectorAll("[data-range]")) o.classList.toggle("on", o === b);
      loadHistory();
    });
  }
  const themes = ["auto", "dark", "light"];
  function applyTheme(t) {
    if (t === "auto") delete document.documentElement.dataset.theme; else document.documentElement.dataset.theme = t;
    document.getElementById("theme").title = "theme: " + t;
  }
  let theme = localStorage.getItem("netpulse-theme") || "auto";
  applyTheme(theme);
  document.getElementById("theme").addEventListener("click", () => {
    theme = themes[(themes.indexOf(theme) + 1) % themes.length];
    localStorage.setItem("netpulse-theme", theme);
    applyTheme(theme);
  });
  setInterval(() => {
    for (const e of document.querySelectorAll(".ago[data-at]")) e.textContent = e.textContent.replace(/last run [^,]*/, "last run " + ago(e.dataset.at));
  }, 5000);

  load().then(connect);
})();
