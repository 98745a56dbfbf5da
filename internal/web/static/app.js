// netpulse status page: the overview (counts, fault verdict, open outages,
// every target grouped by probe and tier), live updates over
// /api/v1/events and run now. charts.js draws the charts (uPlot, embedded
// in the binary), views.js the per-target page and the run view. No
// network access beyond the agent.
"use strict";
const NP = (() => {
  const state = { info: null, probes: [], range: 3600, cards: new Map(), live: false, hadError: false, outages: null };
  const main = document.getElementById("main");

  // ---- helpers -------------------------------------------------------
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
    return e;
  }
  const key = (p, t) => p + "\u0000" + t;
  async function getJSON(url, opts) {
    const r = await fetch(url, opts);
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw Object.assign(new Error(body.error || r.statusText), { status: r.status, body });
    return body;
  }
  const enc = encodeURIComponent;
  const api = (p, t, what) => `api/v1/probes/${enc(p)}/targets/${enc(t)}/${what}`;
  const num = (v) => v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toFixed(3);
  const ms = (s) => s == null ? "–" : num(s * 1000) + " ms";
  const pct = (r) => r == null ? "–" : (r * 100).toFixed(r > 0 && r < 0.1 ? 1 : 0) + " %";
  const uptime = (r) => r == null ? "–" : (r * 100).toFixed(r >= 0.9995 || r === 0 ? 0 : r > 0.99 ? 2 : 1) + " %";
  const mbps = (b) => b == null ? "–" : b >= 1e9 ? num(b / 1e9) + " Gbit/s" : num(b / 1e6) + " Mbit/s";
  const when = (iso) => { const d = new Date(iso); return d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }); };
  function every(s) {
    if (s % 86400 === 0) return s / 86400 + " d";
    if (s % 3600 === 0) return s / 3600 + " h";
    if (s % 60 === 0) return s / 60 + " min";
    return s + " s";
  }
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
  // type. Rates are bytes per second; the page shows bits.
  const roleName = (p, role) => { const d = (p.values || []).find((x) => x.role === role); return d ? d.name : null; };
  const hasRole = (p, role) => roleName(p, role) !== null;
  const roleLabel = (p, role, dflt) => { const d = (p.values || []).find((x) => x.role === role); return d ? d.label : dflt; };
  const rv = (p, vals, role) => { const n = roleName(p, role), v = n && vals ? vals[n] : null; return v == null ? null : v; };
  const bits = (p, vals, role) => { const v = rv(p, vals, role); return v == null ? null : v * 8; };
  const throughput = (p) => p.view === "throughput";
  const phases = (p) => (p.values || []).filter((x) => x.role === "phase");
  const traces = () => !!(state.info && state.info.trace_url);
  const traceURL = (id) => traces() && id ? state.info.trace_url.replaceAll("{trace_id}", id) : null;

  // status mirrors the API's (probe.Degraded): down when the run failed,
  // degraded when it exceeded one of the target's thresholds, with why.
  function status(p, t, rec) {
    if (!rec || !rec.outcome) return { state: t.status || "unknown", reason: t.status_reason || "" };
    if (rec.outcome !== "success") return { state: "down", reason: rec.error_type || rec.outcome };
    const th = t.thresholds || {}, why = [], v = rec.values || {};
    const over = (role, what, lim, fmt) => { const x = rv(p, v, role); if (lim != null && x != null && x > lim) why.push(`${what} ${fmt(x)} > ${fmt(lim)}`); };
    over("latency", "latency", th.latency_seconds, ms);
    over("jitter", "jitter", th.jitter_seconds, ms);
    over("loss", "loss", th.loss_ratio, (r) => +(r * 100).toFixed(2) + "%");
    for (const [role, lim] of [["download", th.download_bytes_per_second], ["upload", th.upload_bytes_per_second]]) {
      const x = rv(p, v, role);
      if (lim != null && x != null && x < lim) why.push(`${role} ${mbps(x * 8)} < ${mbps(lim * 8)}`);
    }
    return why.length ? { state: "degraded", reason: why.join(", ") } : { state: "up", reason: "" };
  }
  function badge(st) {
    return el("span", { class: "badge " + st.state, title: st.reason || null, text: st.state });
  }

  // ---- loading and routing ------------------------------------------
  async function load() {
    try {
      state.info = await getJSON("api/v1/info");
      state.probes = (await getJSON("api/v1/probes")).probes;
    } catch (e) {
      main.replaceChildren(el("p", { class: "error", text: "Cannot load the agent's API: " + e.message }));
      return;
    }
    document.getElementById("version").textContent = state.info.version || "";
    await route();
  }
  function find(p, t) {
    const probe = state.probes.find((x) => x.name === p);
    return probe ? { probe, target: probe.targets.find((x) => x.name === t) } : {};
  }
  async function route() {
    state.cards.clear();
    state.view = null;
    const h = decodeURI(location.hash || "#/");
    let m;
    if ((m = /^#\/runs\/([0-9a-f]+)$/.exec(h))) return NP.runView(m[1]);
    if ((m = /^#\/targets\/([^/]+)\/(.+)$/.exec(h))) return NP.targetView(decodeURIComponent(m[1]), decodeURIComponent(m[2]));
    return overview();
  }

  // ---- overview ------------------------------------------------------
  function overview() {
    document.title = "netpulse";
    main.replaceChildren(el("div", { id: "summary" }));
    summary();
    for (const p of state.probes) {
      const tiers = [...new Set(p.targets.map((t) => t.tier || ""))];
      const sec = el("section", { "data-probe": p.name, "aria-labelledby": "probe-" + p.name },
        el("h2", { id: "probe-" + p.name }, p.name + " ", el("small", { text: `${p.type}, every ${every(p.interval_seconds)}` })));
      for (const tier of tiers) {
        const grid = el("div", { class: "grid" });
        if (tiers.length > 1 || tier) sec.append(el("h3", { class: "tier", text: tier ? "tier " + tier : "no tier" }));
        sec.append(grid);
        for (const t of p.targets.filter((x) => (x.tier || "") === tier)) {
          const card = card_(p, t);
          grid.append(card);
          state.cards.set(key(p.name, t.name), { probe: p, target: t, card, buckets: [], results: [] });
          update(card, p, t, t.last_result, t.last_success);
        }
      }
      main.append(sec);
    }
    loadHistory();
    loadOutages();
  }

  // summary: counts by state, the fault-domain verdict (when targets have
  // tiers), open outages (when the agent records them) and why run now is
  // off (when it is).
  function summary() {
    const box = document.getElementById("summary");
    if (!box) return;
    const n = { up: 0, degraded: 0, down: 0, unknown: 0 };
    for (const p of state.probes) for (const t of p.targets) n[t.status] = (n[t.status] || 0) + 1;
    const counts = el("p", { id: "counts", class: "counts" }, ...["up", "degraded", "down", "unknown"].filter((s) => s !== "unknown" || n[s])
      .map((s) => el("span", { class: "count", "data-state": s }, el("b", { class: "badge " + s, text: String(n[s]) }), " " + s)));
    box.replaceChildren(counts);
    const v = state.info.verdict;
    if (v) {
      const head = v.domain === "none" ? "No fault" : v.domain === "unknown" ? "Fault: cannot tell where" : "Fault: " + v.domain;
      box.append(el("p", { id: "verdict", class: "verdict", "data-domain": v.domain }, el("b", { text: head }), " ", el("span", { class: "muted", text: v.reason })));
    }
    const open = (state.outages || []).filter((o) => !o.end);
    if (open.length) box.append(el("div", { id: "open-outages", class: "verdict" }, el("b", { text: `Open outages (${open.length})` }),
      el("ul", {}, ...open.map((o) => el("li", {}, el("a", { href: `#/targets/${enc(o.probe)}/${enc(o.target)}`, text: `${o.probe}/${o.target}` }),
        ` since ${when(o.start)}` + (o.domain ? `, ${o.domain}` : "") + (o.verdict ? ` (${o.verdict})` : ""))))));
    const rn = state.info.run_now || {};
    if (!rn.enabled) box.append(runNowOff());
  }
  function runNowOff() {
    const rn = state.info.run_now || {};
    const why = (rn.reason || "").replace(/^run now is disabled: /, "");
    return el("p", { id: "runnow-off", class: "note" }, el("b", { text: "Run now is off: " }),
      why + ". To enable it, set ", el("code", { text: "api.token" }), " in the configuration (the page asks for it when you run), or listen on loopback only (",
      el("code", { text: "--web.listen-address 127.0.0.1:9517" }), ").");
  }
  // Outages come from GET /api/v1/outages when the agent has it; a 404
  // (an agent without it) hides them.
  async function loadOutages() {
    try {
      state.outages = (await getJSON("api/v1/outages?since=720h")).outages || [];
    } catch (e) {
      state.outages = null;
      return;
    }
    summary();
  }

  function card_(p, t) {
    const speed = throughput(p);
    const stats = speed ? [["v-down", "download"], ["v-up", "upload"], ["v-idle", "idle latency"], ["v-loaded", "loaded latency"]]
      : [["v-rtt", roleLabel(p, "latency", "latency")], hasRole(p, "jitter") && ["v-jitter", "jitter"], hasRole(p, "loss") && ["v-loss", "loss"], ["v-uptime", "uptime 24 h"]];
    return el("article", { class: "card" + (speed ? " speed" : ""), "data-probe": p.name, "data-target": t.name, "data-status": t.status },
      el("div", { class: "head" }, el("h3", {}, el("a", { href: `#/targets/${enc(p.name)}/${enc(t.name)}`, text: t.name })),
        el("span", { class: "host", text: t.host }), badge({ state: t.status, reason: t.status_reason })),
      el("p", { class: "reason" }),
      el("div", { class: "stats" }, ...stats.filter(Boolean).map(([c, l]) => el("div", {}, el("b", { class: c, text: "–" }), el("span", { text: l })))),
      phases(p).length ? el("div", { class: "phases", hidden: true }) : null,
      el("p", { class: "error" }),
      el("div", { class: "chart-box" }), NP.legend(p),
      speed ? el("div", { class: "table-wrap" }) : el("div", { class: "beats", role: "img", "aria-label": "recent history" }),
      el("div", { class: "meta" }, el("span", { class: "ago" }), el("span", { class: "links" }), el("span", { class: "progress", role: "status" }), runButton(p, t)));
  }

  function runButton(p, t) {
    if (!(state.info.run_now || {}).enabled) return null;
    return el("button", { type: "button", class: "run", onclick: (ev) => runNow(p, t, ev.currentTarget) }, "Run now");
  }

  // update shows a target's latest result on its card.
  function update(card, p, t, rec, lastSuccess) {
    if (!rec) return;
    const st = status(p, t, rec);
    t.status = st.state;
    t.status_reason = st.reason;
    card.dataset.status = st.state;
    card.dataset.runId = rec.run_id;
    card.querySelector(".badge").replaceWith(badge(st));
    card.querySelector(".reason").textContent = st.state === "degraded" ? st.reason : "";
    const v = rec.values || {}, set = (c, s) => { const e = card.querySelector("." + c); if (e) e.textContent = s; };
    if (throughput(p)) {
      set("v-down", mbps(bits(p, v, "download")));
      set("v-up", mbps(bits(p, v, "upload")));
      set("v-idle", ms(rv(p, v, "idle_latency")));
      const d = rv(p, v, "loaded_download"), u = rv(p, v, "loaded_upload");
      set("v-loaded", ms(d == null ? u : u == null ? d : Math.max(d, u)));
    } else {
      set("v-rtt", ms(rv(p, v, "latency")));
      set("v-jitter", ms(rv(p, v, "jitter")));
      set("v-loss", pct(rv(p, v, "loss")));
      drawPhases(card.querySelector(".phases"), p, v);
    }
    card.querySelector(".error").textContent = rec.outcome === "success" ? "" :
      `${rec.outcome}${rec.error_type ? " (" + rec.error_type + ")" : ""}: ${rec.error || ""}`;
    const agoEl = card.querySelector(".ago");
    agoEl.dataset.at = rec.start;
    agoEl.textContent = "last run " + ago(rec.start) + (lastSuccess && st.state === "down" ? ", last success " + ago(lastSuccess) : "");
    card.querySelector(".links").replaceChildren(...runLinks(rec));
  }
  // runLinks: the run's debug view and, when traces are exported, its trace.
  function runLinks(rec) {
    const out = [el("a", { href: "#/runs/" + rec.run_id, text: "details" })];
    const url = traceURL(rec.trace_id);
    if (url) out.push(" · ", el("a", { href: url, target: "_blank", rel: "noopener", class: "trace", text: "trace" }));
    return out;
  }

  // drawPhases shows the last run's phases as a stacked bar over a list
  // "connect 0.3 ms · tls 1.9 ms"; hidden when the run measured none.
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
    box.replaceChildren(bar, el("div", { class: "list" }, ...ph.map((x) => el("span", { title: x.d.label },
      el("i", { class: "ph" + (x.i % 5) }), x.d.name.replace(/_seconds$/, "") + " " + ms(x.s)))));
  }

  // ---- history -------------------------------------------------------
  // loadHistory loads every card's history, three at a time: the agent
  // runs at most four heavy queries (over 24 h) at once and refuses more.
  async function loadHistory() {
    const queue = [...state.cards.values()];
    const worker = async () => {
      for (let s; (s = queue.shift());) {
        await NP.loadSeries(s, state.range).catch((e) => { s.card.querySelector(".error").textContent = "history: " + e.message; });
      }
    };
    await Promise.all([worker(), worker(), worker()]);
  }

  // ---- run now -------------------------------------------------------
  async function runNow(p, t, button) {
    const headers = { "Content-Type": "application/json" };
    const tok = sessionStorage.getItem("netpulse-token");
    if (tok) headers.Authorization = "Bearer " + tok;
    const box = button.closest(".card, .target-page");
    const note = box.querySelector(".progress");
    button.disabled = true;
    try {
      const r = await fetch(`api/v1/probes/${enc(p.name)}/runs`, { method: "POST", headers, body: JSON.stringify({ target: t.name }) });
      const body = await r.json().catch(() => ({}));
      if (r.status === 401) {
        const entered = window.prompt("API token (api.token):");
        if (entered) { sessionStorage.setItem("netpulse-token", entered); button.disabled = false; return runNow(p, t, button); }
      }
      if (!r.ok) throw new Error(body.error || r.statusText);
      const run = body.runs[0];
      box.dataset.pending = run.run_id;
      if (run.joined) box.dataset.joined = run.run_id;
      note.textContent = run.joined ? `joined the run in flight (started ${when(run.start)})` : "running…";
      note.dataset.run = run.run_id;
    } catch (e) {
      note.textContent = "run now: " + e.message;
      button.disabled = false;
    }
  }

  // ---- live updates --------------------------------------------------
  const listeners = { result: [], progress: [], started: [] };
  const on = (ev, f) => listeners[ev].push(f);
  function connect() {
    const live = document.getElementById("live");
    const es = new EventSource("api/v1/events");
    es.onopen = () => {
      live.textContent = "live"; live.className = "live on";
      if (state.hadError) { state.hadError = false; load(); } // missed events: reload
    };
    es.onerror = () => { live.textContent = "reconnecting…"; live.className = "live off"; state.hadError = true; };
    for (const name of Object.keys(listeners)) {
      es.addEventListener(name, (ev) => { const d = JSON.parse(ev.data); for (const f of listeners[name]) f(d); });
    }
  }
  on("started", (d) => {
    const s = state.cards.get(key(d.probe, d.target));
    if (s) s.card.querySelector(".badge").textContent = "running";
  });
  on("progress", (d) => {
    const s = state.cards.get(key(d.probe, d.target));
    const note = s ? s.card.querySelector(".progress") : document.querySelector(`.target-page[data-key="${CSS.escape(key(d.probe, d.target))}"] .progress`);
    if (!note) return;
    const joined = note.closest("[data-joined]");
    note.textContent = (joined && joined.dataset.joined === d.run_id ? "joined the run in flight: " : "") +
      d.phase.replace("_", " ") + (d.bytes_per_second > 0 ? " " + mbps(d.bytes_per_second * 8) : "") + "…";
    note.dataset.run = d.run_id;
  });
  on("result", (rec) => {
    const { probe: p, target: t } = find(rec.probe, rec.target);
    if (t) { t.last_result = rec; if (rec.outcome === "success") t.last_success = rec.start; }
    const s = state.cards.get(key(rec.probe, rec.target));
    if (s) {
      update(s.card, p, t, rec, null);
      const note = s.card.querySelector(".progress");
      if (note.dataset.run === rec.run_id) note.textContent = "";
      if (s.card.dataset.pending === rec.run_id) {
        delete s.card.dataset.pending;
        const b = s.card.querySelector("button.run");
        if (b) b.disabled = false;
      }
      NP.addResult(s, rec);
    } else if (t) {
      t.status = status(p, t, rec).state;
    }
    if (!state.summaryTimer) state.summaryTimer = setTimeout(() => { state.summaryTimer = null; summary(); }, 500); // at most twice a second
    refreshInfo();
  });
  // After results, the verdict is read again (at most every 2 s).
  function refreshInfo() {
    if (!state.info || !state.info.verdict || state.infoTimer) return;
    state.infoTimer = setTimeout(async () => {
      state.infoTimer = null;
      try { state.info = await getJSON("api/v1/info"); } catch (e) { return; }
      summary();
    }, 2000);
  }

  // ---- controls ------------------------------------------------------
  function start() {
    for (const b of document.querySelectorAll("[data-range]")) {
      b.addEventListener("click", () => {
        state.range = Number(b.dataset.range);
        for (const o of document.querySelectorAll("[data-range]")) { o.classList.toggle("on", o === b); o.setAttribute("aria-pressed", String(o === b)); }
        if (state.view) state.view.reload(); else loadHistory();
      });
    }
    const themes = ["auto", "dark", "light"], btn = document.getElementById("theme");
    const apply = (t) => {
      if (t === "auto") delete document.documentElement.dataset.theme; else document.documentElement.dataset.theme = t;
      btn.setAttribute("aria-label", "theme: " + t);
      btn.title = "theme: " + t;
    };
    let theme = localStorage.getItem("netpulse-theme") || "auto";
    apply(theme);
    btn.addEventListener("click", () => {
      theme = themes[(themes.indexOf(theme) + 1) % themes.length];
      localStorage.setItem("netpulse-theme", theme);
      apply(theme);
      window.dispatchEvent(new Event("netpulse-theme")); // charts repaint in the theme's colours
    });
    setInterval(() => {
      for (const e of document.querySelectorAll(".ago[data-at]")) e.textContent = e.textContent.replace(/last run [^,]*/, "last run " + ago(e.dataset.at));
    }, 5000);
    window.addEventListener("hashchange", () => { window.scrollTo(0, 0); route(); });
    load().then(connect);
  }
  document.addEventListener("DOMContentLoaded", start);

  return { state, el, getJSON, api, enc, num, ms, pct, uptime, mbps, when, ago, every, roleName, hasRole, roleLabel, rv, bits,
    throughput, phases, traceURL, status, badge, find, key, runButton, update, runNowOff, runLinks, drawPhases, on, main };
})();
