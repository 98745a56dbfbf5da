// Charts of the status page, drawn with uPlot (vendored under static/,
// embedded in the binary): a target's latency distribution ("smoke": the
// median coloured by loss over percentile bands, loss on its own scale),
// speed-test history with the expected rates, and heartbeat bars.
"use strict";
(() => {
  const { el, getJSON, api, num, ms, mbps, when, roleName, rv, bits, throughput, state } = NP;
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  // lossColour is the median's colour at a loss ratio, as SmokePing colours
  // its median: none, a little, much, most.
  function lossColour(r) {
    if (!(r > 0)) return css("--rtt");
    if (r < 0.05) return css("--loss1");
    if (r < 0.2) return css("--loss2");
    return css("--down");
  }
  function niceMax(v) {
    if (!(v > 0)) return 1e-3;
    const e = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * e) return m * e;
    return 10 * e;
  }
  // The percentile values of a type's runs (rtt_p10_seconds, …): the
  // smoke's bands. Types without them get the min–max band alone.
  function percentiles(p) {
    const pc = {};
    for (const v of p.values || []) { const m = /_(p10|p25|median|p75|p90)_seconds$/.exec(v.name); if (m) pc[m[1]] = v.name; }
    return pc.p10 && pc.p25 && pc.median && pc.p75 && pc.p90 ? pc : null;
  }
  function chartValues(p) {
    const pc = percentiles(p) || {};
    return [roleName(p, "latency_min"), roleName(p, "latency"), roleName(p, "latency_max"), roleName(p, "loss"),
      pc.p10, pc.p25, pc.median, pc.p75, pc.p90].filter(Boolean);
  }
  const stepFor = (p, range) => Math.max(Math.ceil(range / 300), Math.round(p.interval_seconds));

  // loadSeries fetches what a card (or a target page) draws over range.
  NP.loadSeries = async function (s, range) {
    if (throughput(s.probe)) {
      const r = await getJSON(api(s.probe.name, s.target.name, "results") + `?since=${Math.max(range, 30 * 86400)}s&order=desc&limit=500`);
      s.results = r.results.reverse();
      return drawSpeed(s);
    }
    s.step = stepFor(s.probe, range);
    s.range = range;
    const r = await getJSON(api(s.probe.name, s.target.name, "aggregate") + `?since=${range}s&step=${s.step}s&values=${chartValues(s.probe).join(",")}`);
    s.buckets = r.buckets;
    drawSmoke(s);
    if (range >= 86400) {
      s.uptime24 = uptimeOf(s.buckets.filter((b) => Date.parse(b.start) >= Date.now() - 86400e3));
    } else {
      const d = await getJSON(api(s.probe.name, s.target.name, "aggregate") + "?since=24h&step=86400s&values=_");
      s.uptime24 = uptimeOf(d.buckets);
    }
    const u = s.card.querySelector(".v-uptime");
    if (u) u.textContent = NP.uptime(s.uptime24);
    drawBeats(s);
  };
  // uptimeOf is the share of runs that succeeded (degraded runs count as up).
  function uptimeOf(buckets) {
    let runs = 0, failures = 0;
    for (const b of buckets) { runs += b.runs; failures += b.failures; }
    return runs ? 1 - failures / runs : null;
  }
  NP.uptimeOf = uptimeOf;

  // addResult folds a live result into the series' chart data.
  NP.addResult = function (s, rec) {
    if (throughput(s.probe)) { s.results.push(rec); drawSpeed(s); return; }
    if (!s.step) return;
    const t = Date.parse(rec.start), stepMs = s.step * 1000;
    const start = new Date(Math.floor(t / stepMs) * stepMs).toISOString();
    let b = s.buckets.find((x) => Date.parse(x.start) === Date.parse(start));
    if (!b) { b = { start, runs: 0, failures: 0, values: {} }; s.buckets.push(b); }
    b.runs++;
    if (rec.outcome !== "success") b.failures++;
    for (const [k, v] of Object.entries(rec.values || {})) {
      if (v == null || !(k in b.values || chartValues(s.probe).includes(k))) continue;
      const st = b.values[k];
      b.values[k] = st ? { min: Math.min(st.min, v), max: Math.max(st.max, v), avg: st.avg + (v - st.avg) / b.runs } : { min: v, max: v, avg: v };
    }
    drawSmoke(s);
    drawBeats(s);
  };

  // bucketState: down when every run failed, degraded when some did or the
  // mean exceeded a threshold, else up.
  function bucketState(s, b) {
    if (b.failures >= b.runs) return "down";
    if (b.failures > 0) return "degraded";
    const avg = (role) => { const n = roleName(s.probe, role); return n && b.values && b.values[n] ? b.values[n].avg : null; };
    const th = s.target.thresholds || {};
    const over = (role, lim) => lim != null && avg(role) != null && avg(role) > lim;
    return over("latency", th.latency_seconds) || over("jitter", th.jitter_seconds) || over("loss", th.loss_ratio) ? "degraded" : "up";
  }
  // drawBeats: a heartbeat bar of the last 30 chart buckets.
  function drawBeats(s) {
    const box = s.card.querySelector(".beats:not(.runs)");
    if (!box) return;
    const last = s.buckets.slice(-30), n = { up: 0, degraded: 0, down: 0 };
    box.replaceChildren(...last.map((b) => {
      const st = bucketState(s, b);
      n[st]++;
      return el("i", { class: st, title: `${when(b.start)}: ${b.runs} runs, ${b.failures} failed` });
    }));
    box.setAttribute("aria-label", `last ${last.length} intervals of ${NP.every(s.step)}: ${n.up} up, ${n.degraded} degraded, ${n.down} down`);
  }

  // chart creates (or replaces) the uPlot chart in box, sized to it, and
  // redraws it when the box resizes or the theme changes.
  function chart(box, make) {
    const draw = () => {
      if (box._u) box._u.destroy();
      box.replaceChildren();
      const w = Math.max(200, box.clientWidth || 300);
      box._u = new uPlot(make(w), box._data, box);
    };
    box._redraw = draw;
    if (!box._ro) {
      box._ro = new ResizeObserver(() => { if (box._u && Math.abs(box._u.width - box.clientWidth) > 4) box._u.setSize({ width: box.clientWidth, height: box._u.height }); });
      box._ro.observe(box);
    }
    draw();
  }
  const redrawAll = () => { for (const b of document.querySelectorAll(".chart-box")) if (b._redraw) b._redraw(); };
  window.addEventListener("netpulse-theme", redrawAll);
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redrawAll);

  function axis(extra) {
    const c = css("--muted"), l = css("--line");
    return Object.assign({ stroke: c, grid: { stroke: l, width: 1 }, ticks: { stroke: l, width: 1 }, font: "11px system-ui, sans-serif" }, extra);
  }
  // timeAxis labels times in 24-hour clock, with the date under the first
  // tick and under each midnight (so "12:13" cannot mean yesterday); over
  // more than two days, dates alone.
  function timeAxis(range) {
    const date = (d) => d.toLocaleDateString([], { month: "short", day: "numeric" });
    return axis({ values: (u, vals) => vals.map((v, i) => {
      const d = new Date(v * 1000);
      if (range > 2 * 86400) return date(d);
      const t = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
      const prev = i > 0 ? new Date(vals[i - 1] * 1000) : null;
      return !prev || prev.getDate() !== d.getDate() ? t + "\n" + date(d) : t;
    }) });
  }
  // dashed draws a horizontal dashed line at v on scale sc (thresholds,
  // expected rates).
  function dashed(u, v, sc, colour) {
    if (v == null) return;
    const y = u.valToPos(v, sc, true);
    if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) return;
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
    ctx.beginPath();
    ctx.moveTo(u.bbox.left, y);
    ctx.lineTo(u.bbox.left + u.bbox.width, y);
    ctx.stroke();
    ctx.restore();
  }
  // tooltip shows, under the cursor, what fmt says of the point at idx.
  function tooltip(fmt, onPick) {
    let tip;
    return {
      hooks: {
        init: (u) => {
          tip = el("div", { class: "tip", hidden: true });
          u.over.append(tip);
          if (onPick) u.over.addEventListener("click", () => { if (u.cursor.idx != null) onPick(u.cursor.idx); });
        },
        setCursor: (u) => {
          const i = u.cursor.idx;
          if (i == null || u.data[0][i] == null) { tip.hidden = true; return; }
          tip.replaceChildren(...fmt(i));
          tip.hidden = false;
          const x = u.cursor.left, w = tip.offsetWidth;
          tip.style.left = Math.max(0, Math.min(x + 12, u.over.clientWidth - w)) + "px"; // CSSOM, allowed by the CSP
          tip.style.top = "4px";
        },
      },
    };
  }
  const line = (k, v) => el("div", {}, el("span", { class: "muted", text: k + " " }), v);

  // drawSmoke: the latency distribution of the target's runs over time.
  function drawSmoke(s) {
    const box = s.card.querySelector(".chart-box");
    const p = s.probe, pc = percentiles(p), names = {
      lo: roleName(p, "latency_min"), hi: roleName(p, "latency_max"), loss: roleName(p, "loss") };
    const cols = { x: [], lo: [], p10: [], p25: [], mid: [], p75: [], p90: [], hi: [], loss: [] };
    const stat = (b, n, f) => (n && b.values && b.values[n] && b.values[n][f] != null ? b.values[n][f] : null);
    // Per-run quantiles where the bucket holds runs; the distribution of
    // the headline latency where it holds roll-ups (older history).
    const lat = roleName(p, "latency");
    const q = (b, k) => (pc ? stat(b, pc[k], "avg") : null) ?? stat(b, lat, k);
    let prev = null;
    const t0 = Date.now() / 1000 - s.range;
    for (const b of s.buckets) {
      const x = Date.parse(b.start) / 1000 + s.step / 2;
      if (x < t0 - s.step) continue;
      if (prev !== null && x - prev > s.step * 2.5) for (const k in cols) cols[k].push(k === "x" ? prev + s.step : null); // a gap breaks the lines
      cols.x.push(x);
      cols.lo.push(stat(b, names.lo, "min"));
      cols.hi.push(stat(b, names.hi, "max"));
      cols.mid.push(q(b, "median") ?? stat(b, lat, "avg"));
      for (const k of ["p10", "p25", "p75", "p90"]) cols[k].push(q(b, k));
      cols.loss.push(names.loss ? stat(b, names.loss, "avg") : b.failures / b.runs);
      prev = x;
    }
    box._data = [cols.x, cols.lo, cols.hi, cols.p10, cols.p90, cols.p25, cols.p75, cols.mid, cols.loss];
    box.dataset.points = cols.mid.filter((v) => v != null).length;
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", `latency distribution and ${names.loss ? "loss" : "failed runs"} of ${s.target.name}, last ${NP.every(s.range)}`);
    // The threshold shows when it is near the data (it is in the card's
    // text anyway): a 100 ms line must not flatten 0.2 ms of smoke.
    const dmax = Math.max(0, ...cols.hi.filter((v) => v != null), ...cols.mid.filter((v) => v != null));
    let th = (s.target.thresholds || {}).latency_seconds;
    if (th != null && dmax > 0 && th > dmax * 3) th = null;
    const ymax = niceMax(Math.max(th || 0, dmax) * 1.1);
    const few = Number(box.dataset.points) < 3; // a line needs two points: show dots until then
    const hidden = { stroke: "transparent", points: { show: false }, scale: "s" };
    chart(box, (w) => ({
      width: w, height: box.classList.contains("big") ? (w < 500 ? 200 : 260) : w < 500 ? 150 : 170, legend: { show: false }, cursor: { y: false, points: { show: false } },
      scales: { x: { time: true, range: [t0, Date.now() / 1000] }, s: { range: [0, ymax] }, loss: { range: [0, 1] } },
      axes: [timeAxis(s.range), axis({ scale: "s", size: 60, values: (u, vs) => vs.map((v) => (v === 0 ? "0" : num(v * 1000) + " ms")) }),
        axis({ scale: "loss", side: 1, size: 46, grid: { show: false }, values: (u, vs) => vs.map((v) => Math.round(v * 100) + "%") })],
      series: [{}, { ...hidden, label: "min" }, { ...hidden, label: "max" }, { ...hidden, label: "p10" }, { ...hidden, label: "p90" },
        { ...hidden, label: "p25" }, { ...hidden, label: "p75" },
        { label: "median", scale: "s", width: 2, points: { show: few, size: 6, fill: css("--rtt") }, stroke: (u) => {
          const left = u.bbox.left, width = u.bbox.width, xs = u.data[0], loss = u.data[8];
          if (!width) return css("--rtt");
          const g = u.ctx.createLinearGradient(left, 0, left + width, 0);
          for (let i = 0; i < xs.length; i++) {
            const pos = (u.valToPos(xs[i], "x", true) - left) / width;
            if (pos >= 0 && pos <= 1) g.addColorStop(pos, lossColour(loss[i]));
          }
          return g;
        } },
        { label: "loss", scale: "loss", fill: css("--loss-fill"), stroke: "transparent", points: { show: false },
          paths: uPlot.paths.bars({ size: [1, Infinity], align: 0 }) }],
      bands: [{ series: [2, 1], fill: css("--band0") }, { series: [4, 3], fill: css("--band1") }, { series: [6, 5], fill: css("--band2") }],
      hooks: { draw: [(u) => dashed(u, th, "s", css("--down"))] },
      plugins: [tooltip((i) => {
        const d = box._data, spread = pc ? [d[3][i], d[4][i]] : [d[1][i], d[2][i]];
        return [el("b", { text: when(new Date(d[0][i] * 1000 - s.step * 500).toISOString()) }),
          line(pc ? "median" : "mean", ms(d[7][i])), line(pc ? "p10–p90" : "min–max", ms(spread[0]) + " – " + ms(spread[1])),
          line(names.loss ? "loss" : "failed", NP.pct(d[8][i])), el("div", { class: "muted", text: "click: the run" })];
      }, (i) => openRun(s, box._data[0][i] - s.step / 2))],
    }));
  }
  // openRun shows the debug view of the first run of the bucket at t.
  async function openRun(s, t) {
    const since = new Date(t * 1000).toISOString(), until = new Date((t + s.step) * 1000).toISOString();
    try {
      const r = await getJSON(api(s.probe.name, s.target.name, "results") + `?since=${since}&until=${until}&limit=1`);
      if (r.results.length) location.hash = "#/runs/" + r.results[0].run_id;
    } catch (e) { /* the tooltip stays */ }
  }

  // drawSpeed: download and upload of each speed test, with the expected
  // rates (the target's thresholds) as dashed lines, and a table of the
  // last tests that fits a phone.
  function drawSpeed(s) {
    const box = s.card.querySelector(".chart-box"), p = s.probe;
    const rs = s.results.filter((r) => r.outcome === "success");
    const th = s.target.thresholds || {}, plan = [th.download_bytes_per_second, th.upload_bytes_per_second].map((v) => (v == null ? null : v * 8));
    const down = rs.map((r) => bits(p, r.values, "download")), up = rs.map((r) => bits(p, r.values, "upload"));
    box._data = [rs.map((r) => Date.parse(r.start) / 1000), down, up];
    box.dataset.points = rs.length;
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", `speed-test history of ${s.target.name}`);
    const ymax = niceMax(Math.max(0, ...down.filter(Boolean), ...up.filter(Boolean), ...plan.filter(Boolean)) * 1.1);
    const unit = ymax >= 2e9 ? 1e9 : 1e6, uname = unit === 1e9 ? "Gbit/s" : "Mbit/s";
    const now = Date.now() / 1000, t0 = Math.min(now - 86400, ...box._data[0]);
    chart(box, (w) => ({
      width: w, height: w < 500 ? 170 : 190, legend: { show: false }, cursor: { y: false },
      scales: { x: { time: true, range: [t0, now] }, r: { range: [0, ymax] } },
      axes: [timeAxis(now - t0), axis({ scale: "r", size: 52, values: (u, vs) => vs.map((v) => (v === 0 ? "0" : num(v / unit))) })],
      series: [{}, { label: "download", scale: "r", stroke: css("--down-rate"), width: 2, points: { show: true, size: 6, fill: css("--down-rate") } },
        { label: "upload", scale: "r", stroke: css("--up-rate"), width: 2, points: { show: true, size: 6, fill: css("--up-rate") } }],
      hooks: { draw: [(u) => { dashed(u, plan[0], "r", css("--down-rate")); dashed(u, plan[1], "r", css("--up-rate")); }] },
      plugins: [tooltip((i) => [el("b", { text: when(rs[i].start) }), line("down", mbps(down[i])), line("up", mbps(up[i])),
        line("idle", ms(rv(p, rs[i].values, "idle_latency"))), el("div", { class: "muted", text: "click: the run" })],
      (i) => { location.hash = "#/runs/" + rs[i].run_id; })],
    }));
    const leg = s.card.querySelector(".legend");
    if (leg) leg.querySelector(".rate-unit").textContent = uname;
    const wrap = s.card.querySelector(".table-wrap");
    if (!wrap) return;
    const rows = s.results.slice(-(s.rows || 8)).reverse().map((r) => el("tr", {},
      el("td", {}, el("a", { href: "#/runs/" + r.run_id, text: when(r.start).replace(/:\d\d$/, "") })),
      el("td", { text: r.outcome === "success" ? mbps(bits(p, r.values, "download")) : r.error_type || r.outcome }),
      el("td", { text: mbps(bits(p, r.values, "upload")) }), el("td", { class: "wide", text: ms(rv(p, r.values, "idle_latency")) }),
      el("td", { class: "wide", text: ms(rv(p, r.values, "loaded_download")) + " / " + ms(rv(p, r.values, "loaded_upload")) })));
    wrap.replaceChildren(el("table", {}, el("caption", { class: "sr", text: "last speed tests" }),
      el("thead", {}, el("tr", {}, ...["time", "down", "up", "idle", "loaded ↓ / ↑"].map((h, i) => el("th", { scope: "col", class: i > 2 ? "wide" : null, text: h })))),
      el("tbody", {}, ...rows)));
  }
})();
