// The per-target page (#/targets/{probe}/{target}: chart, uptime, runs,
// outages, objectives) and the debug view of one run (#/runs/{id}: what
// it measured, its phases, log lines and configuration), for people; the
// JSON stays at its API address.
"use strict";
(() => {
  const { el, getJSON, api, enc, ms, pct, mbps, when, ago, every, rv, bits, throughput, state, main } = NP;

  function legend(p) {
    if (throughput(p)) {
      return el("p", { class: "legend" }, el("span", {}, el("i", { class: "l-down" }), "download, ", el("span", { class: "rate-unit", text: "Mbit/s" })),
        el("span", {}, el("i", { class: "l-up" }), "upload"), el("span", {}, el("i", { class: "l-plan" }), "expected"));
    }
    return el("p", { class: "legend" }, el("span", {}, el("i", { class: "l-rtt" }), "median (colour: loss none, <5 %, <20 %, more)"),
      el("span", {}, el("i", { class: "l-band" }), "p25–p75, p10–p90, min–max"),
      el("span", {}, el("i", { class: "l-loss" }), NP.hasRole(p, "loss") ? "loss (right scale)" : "failed runs (right scale)"));
  }
  NP.legend = legend;

  // ---- per-target page -------------------------------------------------
  NP.targetView = async function (pn, tn) {
    const { probe: p, target: t } = NP.find(pn, tn);
    if (!t) { main.replaceChildren(el("p", { class: "error", text: `No target ${tn} in probe ${pn}.` }), back()); return; }
    document.title = `${t.name} – netpulse`;
    const speed = throughput(p);
    const stats = speed ? [["v-down", "download"], ["v-up", "upload"], ["v-idle", "idle latency"], ["v-loaded", "loaded latency"]]
      : [["v-rtt", NP.roleLabel(p, "latency", "latency")], NP.hasRole(p, "jitter") && ["v-jitter", "jitter"], NP.hasRole(p, "loss") && ["v-loss", "loss"],
        ["v-uptime", "uptime 24 h"], ["v-uptime30", "uptime 30 d"]];
    const page = el("section", { class: "target-page card" + (speed ? " speed" : ""), "data-key": NP.key(p.name, t.name), "data-probe": p.name, "data-target": t.name },
      back(),
      el("div", { class: "head" }, el("h2", { text: t.name }), el("span", { class: "host", text: `${t.host} · ${p.name} (${p.type}, every ${every(p.interval_seconds)})` }),
        NP.badge({ state: t.status, reason: t.status_reason })),
      el("p", { class: "reason" }),
      el("div", { class: "stats" }, ...stats.filter(Boolean).map(([c, l]) => el("div", {}, el("b", { class: c, text: "–" }), el("span", { text: l })))),
      thresholds(t),
      NP.phases(p).length ? el("div", { class: "phases", hidden: true }) : null,
      el("p", { class: "error" }),
      el("div", { class: "chart-box big" }), legend(p),
      speed ? el("div", { class: "table-wrap" }) : null,
      el("div", { class: "meta" }, el("span", { class: "ago" }), el("span", { class: "links" }), el("span", { class: "progress", role: "status" }),
        NP.runButton(p, t)),
      (state.info.run_now || {}).enabled ? null : NP.runNowOff(),
      el("h3", { text: "Recent runs" }), el("div", { class: "beats runs", role: "list", "aria-label": "recent runs" }),
      el("div", { class: "table-wrap runs-table" }),
      el("div", { class: "outages", hidden: true }), objectives(t));
    main.replaceChildren(page);
    const s = { probe: p, target: t, card: page, buckets: [], results: [], rows: 20 };
    state.cards.set(NP.key(p.name, t.name), s);
    state.view = { reload: () => NP.loadSeries(s, state.range) };
    if (t.last_result) NP.update(page, p, t, t.last_result, t.last_success);
    await Promise.all([NP.loadSeries(s, state.range).then(() => uptime30(s))
      .catch((e) => { page.querySelector(".error").textContent = "history: " + e.message; }), recentRuns(s), outages(s)]);
  };
  const back = () => el("p", { class: "back" }, el("a", { href: "#/", text: "← all targets" }));

  function thresholds(t) {
    const th = t.thresholds;
    if (!th) return null;
    const parts = [];
    if (th.latency_seconds != null) parts.push("latency " + ms(th.latency_seconds));
    if (th.jitter_seconds != null) parts.push("jitter " + ms(th.jitter_seconds));
    if (th.loss_ratio != null) parts.push("loss " + pct(th.loss_ratio));
    if (th.download_bytes_per_second != null) parts.push("download " + mbps(th.download_bytes_per_second * 8));
    if (th.upload_bytes_per_second != null) parts.push("upload " + mbps(th.upload_bytes_per_second * 8));
    return el("p", { class: "muted thresholds", text: "Degraded past: " + parts.join(", ") });
  }

  async function uptime30(s) {
    if (throughput(s.probe)) return;
    if (state.range >= 30 * 86400 && s.buckets.length) { // the chart's buckets cover it
      s.card.querySelector(".v-uptime30").textContent = NP.uptime(NP.uptimeOf(s.buckets));
      return;
    }
    try {
      const d = await getJSON(api(s.probe.name, s.target.name, "aggregate") + "?since=720h&step=86400s&values=_");
      s.card.querySelector(".v-uptime30").textContent = NP.uptime(NP.uptimeOf(d.buckets));
    } catch (e) { /* the figure stays – */ }
  }

  // recentRuns: a heartbeat of the last 60 runs and a table of the last
  // 20, each linking to its debug view.
  async function recentRuns(s) {
    const { probe: p, target: t } = s;
    let rs;
    try { rs = (await getJSON(api(p.name, t.name, "results") + "?since=720h&order=desc&limit=60")).results; } catch (e) { return; }
    const beats = s.card.querySelector(".beats.runs");
    beats.replaceChildren(...rs.slice().reverse().map((r) => {
      const st = NP.status(p, t, r);
      return el("a", { class: st.state, role: "listitem", href: "#/runs/" + r.run_id, "aria-label": `${when(r.start)}: ${st.state}${st.reason ? ", " + st.reason : ""}`, title: `${when(r.start)}: ${st.state}${st.reason ? " (" + st.reason + ")" : ""}` });
    }));
    if (throughput(p)) return;
    const rows = rs.slice(0, 20).map((r) => {
      const st = NP.status(p, t, r);
      return el("tr", {}, el("td", {}, el("a", { href: "#/runs/" + r.run_id, text: when(r.start) })), el("td", {}, NP.badge(st)),
        el("td", { text: ms(rv(p, r.values, "latency")) }), el("td", { class: "wide", text: NP.hasRole(p, "loss") ? pct(rv(p, r.values, "loss")) : "" }),
        el("td", { class: "wide left", text: st.reason }));
    });
    s.card.querySelector(".runs-table").replaceChildren(el("table", {}, el("caption", { class: "sr", text: "last runs" }),
      el("thead", {}, el("tr", {}, ...["time", "status", NP.roleLabel(p, "latency", "latency"), "loss", "why"].map((h, i) => el("th", { scope: "col", class: i > 2 ? "wide" : null, text: h })))),
      el("tbody", {}, ...rows)));
  }

  // outages of the target when the agent records them (faults); hidden
  // when the endpoint is absent.
  async function outages(s) {
    let os;
    try { os = (await getJSON(`api/v1/outages?probe=${enc(s.probe.name)}&target=${enc(s.target.name)}&since=720h`)).outages || []; } catch (e) { return; }
    const box = s.card.querySelector(".outages");
    box.hidden = false;
    box.replaceChildren(el("h3", { text: `Outages, 30 days (${os.length})` }), os.length ? el("div", { class: "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, ...["start", "end", "duration", "domain"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...os.map((o) => el("tr", {}, el("td", { text: when(o.start) }), el("td", { text: o.end ? when(o.end) : "open" }),
        el("td", { text: o.duration_seconds != null ? every(Math.round(o.duration_seconds)) : "–" }), el("td", { text: o.domain || o.verdict || "" })))))) :
      el("p", { class: "muted", text: "None." }));
  }

  // objectives and maintenance of the target, when the agent has them (slo).
  function objectives(t) {
    const out = [];
    if (t.maintenance && t.maintenance.active) {
      out.push(el("p", { class: "note" }, el("b", { text: "Maintenance" }), ` until ${when(t.maintenance.until)}: ${t.maintenance.reason || ""}`));
    }
    if (t.objectives && t.objectives.length) {
      out.push(el("h3", { text: "Objectives" }), el("div", { class: "table-wrap" }, el("table", {},
        el("thead", {}, el("tr", {}, ...["objective", "target", "window", "now", "budget left"].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, ...t.objectives.map((o) => el("tr", {}, el("td", { text: o.name }), el("td", { text: pct(o.target > 1 ? o.target / 100 : o.target) }),
          el("td", { text: every(o.window_seconds) }), el("td", { text: o.sli == null ? "–" : pct(o.sli) }),
          el("td", { text: o.budget_remaining == null ? "–" : pct(o.budget_remaining) })))))));
    }
    return out.length ? el("div", { class: "objectives" }, ...out) : null;
  }

  // ---- run view --------------------------------------------------------
  NP.runView = async function (id) {
    document.title = "run " + id + " – netpulse";
    let run;
    try { run = await getJSON("api/v1/runs/" + id); } catch (e) {
      main.replaceChildren(back(), el("p", { class: "error", text: "Run " + id + ": " + e.message }));
      return;
    }
    const { probe: p, target: t } = NP.find(run.probe, run.target);
    const res = run.result, values = (p && p.values) || [];
    const st = res && p ? NP.status(p, t, res) : { state: run.status, reason: "" };
    const page = el("section", { class: "run-page card", "data-run": id },
      el("p", { class: "back" }, el("a", { href: "#/", text: "← all targets" }), p ? " · " : null,
        p ? el("a", { href: `#/targets/${enc(run.probe)}/${enc(run.target)}`, text: `${run.probe}/${run.target}` }) : null),
      el("div", { class: "head" }, el("h2", { text: `Run of ${run.probe}/${run.target}` }), NP.badge(st)),
      el("dl", { class: "facts" }, ...fact("started", when(run.start) + ` (${ago(run.start)})`),
        ...(res ? fact("duration", ms(res.duration_seconds)) : []), ...(res ? fact("outcome", res.outcome + (res.error_type ? ` (${res.error_type})` : "")) : fact("status", run.status)),
        ...(st.reason && st.state === "degraded" ? fact("degraded", st.reason) : []), ...(res && res.error ? fact("error", res.error) : []),
        ...(res && res.on_demand ? fact("started by", "run now") : [])),
      el("p", { class: "links" }, el("a", { href: "api/v1/runs/" + id, text: "JSON" }),
        NP.traceURL(run.trace_id) ? " · " : null, NP.traceURL(run.trace_id) ? el("a", { href: NP.traceURL(run.trace_id), target: "_blank", rel: "noopener", text: "trace" }) : null),
      el("p", { class: "progress", role: "status" }));
    if (res) {
      const ph = el("div", { class: "phases", hidden: true });
      page.append(ph);
      if (p) NP.drawPhases(ph, p, res.values || {});
      page.append(el("h3", { text: "Measured" }), el("div", { class: "table-wrap" }, el("table", { class: "values" },
        el("tbody", {}, ...Object.keys(res.values || {}).sort().map((k) => {
          const d = values.find((x) => x.name === k) || { name: k, unit: "" };
          return el("tr", {}, el("th", { scope: "row", text: d.label || k }), el("td", { text: fmtUnit(res.values[k], d.unit) }), el("td", { class: "muted left", text: k }));
        })))));
      const logs = res.logs || [];
      page.append(el("h3", { text: `Log lines (${logs.length})` }), logs.length ? el("ol", { class: "logs" }, ...logs.map((l) => el("li", { "data-level": l.level },
        el("span", { class: "muted", text: new Date(l.time).toLocaleTimeString([], { hourCycle: "h23" }) + " " }), el("b", { text: l.level + " " }), l.msg,
        ...(l.attrs || []).map((a) => el("span", { class: "attr" }, " ", el("span", { class: "muted", text: a.key + "=" }), a.value))))) :
        el("p", { class: "muted", text: "None kept (log lines are kept for failed and on-demand runs)." }));
    } else {
      page.append(el("p", { class: "muted", text: "Running… this view updates when it ends." }));
      const done = (rec) => { if (rec.run_id === id && location.hash.endsWith(id)) NP.runView(id); };
      NP.on("result", done);
    }
    if (run.config) page.append(el("h3", { text: "Configuration it ran with" }), el("pre", { class: "config", tabindex: "0", text: yaml(run.config, "") }));
    main.replaceChildren(page);
  };
  const fact = (k, v) => [el("dt", { text: k }), el("dd", { text: v })];

  // fmtUnit writes a value in its UCUM unit as people read it.
  function fmtUnit(v, unit) {
    if (v == null) return "–";
    switch (unit) {
      case "s": return ms(v);
      case "1": return pct(v);
      case "By/s": return mbps(v * 8);
      case "By": return v >= 1e6 ? NP.num(v / 1e6) + " MB" : v >= 1e3 ? NP.num(v / 1e3) + " kB" : v + " B";
      default: return String(+v.toFixed(6));
    }
  }
  // yaml writes the run's configuration as the file would read.
  function yaml(v, ind) {
    if (Array.isArray(v)) return v.length ? v.map((x) => "\n" + ind + "- " + yaml(x, ind + "  ").replace(/^\n\s*/, "")).join("") : " []";
    if (v && typeof v === "object") {
      const ks = Object.keys(v);
      return ks.length ? ks.map((k) => "\n" + ind + k + ":" + (v[k] && typeof v[k] === "object" ? yaml(v[k], ind + "  ") : " " + JSON.stringify(v[k]))).join("") : " {}";
    }
    return JSON.stringify(v);
  }
})();
