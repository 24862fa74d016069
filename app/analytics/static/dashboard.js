// rfqdesk analytics dashboard: reads /v1/analytics with the analyst's key and draws the
// tables and charts (inline SVG). No library, nothing loaded from anywhere else.
//
// The key is asked for once and kept in sessionStorage (this tab only). A link may carry it
// in the fragment, #key=…, which never reaches the server; the page moves it to
// sessionStorage and removes it from the address bar. Filters live in the query string
// (?since=YYYY-MM-DD&until=YYYY-MM-DD&underlying=BTC&group_by=client), so a view can be shared
// without the key. Every figure shown carries its raw value in data-value.
"use strict";

(() => {
  const KEY = "rfqdesk.analystKey";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ state
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("key")) {
    sessionStorage.setItem(KEY, fragment.get("key"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  const query = new URLSearchParams(location.search);
  const day = (d) => d.toISOString().slice(0, 10);
  const tomorrow = new Date(Date.now() + 86400000);
  const filters = {
    until: query.get("until") || day(tomorrow),
    since: query.get("since") || day(new Date(tomorrow.getTime() - 30 * 86400000)),
    underlying: query.get("underlying") || "",
    groupBy: query.get("group_by") || "client",
  };

  // ------------------------------------------------------------------ formatting
  const nf = new Intl.NumberFormat("en-US");
  const fmt = {
    count: (x) => (x == null ? "–" : nf.format(x)),
    pct: (x) => (x == null ? "–" : (100 * x).toFixed(1) + "%"),
    qty: (x) => (x == null ? "–" : nf.format(Math.round(x))),
    ms: (x) => (x == null ? "–" : nf.format(Math.round(x))),
    usd: (x) => {
      if (x == null) return "–";
      const a = Math.abs(x);
      const s = a >= 1e6 ? (a / 1e6).toFixed(2) + "m" : a >= 1e4 ? (a / 1e3).toFixed(1) + "k" : a.toFixed(2);
      return (x < 0 ? "−" : "") + s;
    },
  };

  function setState(state, message) {
    document.body.dataset.state = state;
    $("status").textContent = message;
  }

  // ------------------------------------------------------------------ API
  class NeedsKey extends Error {}

  async function api(path, params = {}, format = "json") {
    const key = sessionStorage.getItem(KEY);
    if (!key) throw new NeedsKey("Enter an analyst key to see the figures.");
    const url = new URL("/v1/analytics/" + path, location.origin);
    url.searchParams.set("since", filters.since + "T00:00:00Z");
    url.searchParams.set("until", filters.until + "T00:00:00Z");
    if (filters.underlying) url.searchParams.set("underlying", filters.underlying);
    for (const [name, value] of Object.entries(params)) {
      for (const v of [].concat(value)) url.searchParams.append(name, v);
    }
    if (format !== "json") url.searchParams.set("format", format);
    const resp = await fetch(url, { headers: { Authorization: "Bearer " + key } });
    if (resp.status === 401 || resp.status === 403) {
      const body = await resp.json().catch(() => ({}));
      throw new NeedsKey(body.detail || "This key may not read analytics.");
    }
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      throw new Error(`${path}: ${body.detail || resp.statusText}` + (body.field ? ` (${body.field})` : ""));
    }
    return format === "json" ? resp.json() : resp.blob();
  }

  // ------------------------------------------------------------------ DOM helpers
  function el(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    return node;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text != null) node.textContent = text;
    return node;
  }

  function cell(row, metric, format) {
    const value = row[metric];
    return el("td", { "data-metric": metric, "data-value": value == null ? "" : String(value) }, format(value));
  }

  function groupLabel(value) {
    return value == null ? "(none)" : String(value);
  }

  function setKpi(name, value, format) {
    const node = document.querySelector(`[data-testid="kpi-${name}"]`);
    node.textContent = format(value);
    node.dataset.value = value == null ? "" : String(value);
  }

  // ------------------------------------------------------------------ renderers
  function renderTotals(hit, markouts, improvement) {
    const t = hit.rows[0] || { requests: 0, quoted: 0, traded: 0, hit_ratio: null };
    setKpi("requests", t.requests, fmt.count);
    setKpi("quoted", t.quoted, fmt.count);
    setKpi("traded", t.traded, fmt.count);
    setKpi("hit_ratio", t.hit_ratio, fmt.pct);
    const m = markouts.rows[0] || {};
    setKpi("markout_1m_usd_per_unit", m.markout_1m_usd_per_unit, fmt.usd);
    setKpi("markout_30m_usd_per_unit", m.markout_30m_usd_per_unit, fmt.usd);
    const p = improvement.rows[0] || {};
    setKpi("vs_theo_usd_per_unit", p.vs_theo_usd_per_unit, fmt.usd);
  }

  function renderHitTable(report) {
    const body = $("hit-body");
    body.replaceChildren();
    $("group-label").textContent = filters.groupBy;
    $("hit-key-head").textContent = filters.groupBy;
    if (!report.rows.length) {
      body.append(el("tr", {}, null));
      body.lastChild.append(el("td", { colspan: "6", class: "empty" }, "No RFQs in this window"));
      return;
    }
    for (const row of report.rows) {
      const key = groupLabel(row.group[filters.groupBy]);
      const tr = el("tr", { "data-testid": "hit-row", "data-key": key });
      tr.append(
        el("td", {}, key),
        cell(row, "requests", fmt.count),
        cell(row, "quoted", fmt.count),
        cell(row, "traded", fmt.count),
        cell(row, "hit_ratio", fmt.pct),
        cell(row, "traded_quantity", fmt.qty),
      );
      body.append(tr);
    }
  }

  function renderDealers(funnel, times) {
    const ttfq = new Map(times.rows.map((r) => [r.group.dealer, r]));
    const body = $("dealer-body");
    body.replaceChildren();
    if (!funnel.rows.length) {
      body.append(el("tr", {}, null));
      body.lastChild.append(el("td", { colspan: "10", class: "empty" }, "No dealer requests in this window"));
    }
    for (const row of funnel.rows) {
      const dealer = groupLabel(row.group.dealer);
      const t = ttfq.get(row.group.dealer) || {};
      const tr = el("tr", { "data-testid": "dealer-row", "data-key": dealer });
      tr.append(
        el("td", {}, dealer),
        cell(row, "asked", fmt.count),
        cell(row, "answered", fmt.count),
        cell(row, "response_rate", fmt.pct),
        cell(row, "best", fmt.count),
        cell(row, "won", fmt.count),
        cell(row, "win_rate", fmt.pct),
        cell(row, "hit_ratio", fmt.pct),
        cell(t, "ttfq_p50_ms", fmt.ms),
        cell(t, "ttfq_p95_ms", fmt.ms),
      );
      body.append(tr);
    }
    drawDealerBars(funnel.rows);
  }

  function drawDaily(report) {
    const box = $("chart-daily");
    box.replaceChildren();
    const rows = report.rows.filter((r) => r.group.day != null);
    const W = 960, H = 230, L = 44, R = 44, T = 12, B = 28;
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "RFQs and hit ratio per day" });
    chart.append(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
    if (!rows.length) {
      chart.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "No RFQs in this window"));
      box.append(chart);
      return;
    }
    const maxRequests = Math.max(...rows.map((r) => r.requests), 1);
    const maxRatio = Math.max(0.05, ...rows.map((r) => r.hit_ratio || 0));
    const step = (W - L - R) / rows.length;
    const barW = Math.min(48, Math.max(2, step * 0.7));
    const y = (v, max) => H - B - ((H - T - B) * v) / max;
    const points = [];
    rows.forEach((r, i) => {
      const x = L + step * i + (step - barW) / 2;
      chart.append(svg("rect", {
        class: "bar", x, y: y(r.requests, maxRequests), width: barW,
        height: H - B - y(r.requests, maxRequests), "data-day": r.group.day, "data-value": r.requests,
      }));
      if (r.hit_ratio != null) points.push([x + barW / 2, y(r.hit_ratio, maxRatio), r]);
      if (rows.length <= 16 || i % Math.ceil(rows.length / 12) === 0) {
        chart.append(svg("text", { x: x + barW / 2, y: H - 10, "text-anchor": "middle" }, r.group.day.slice(5)));
      }
    });
    if (points.length) {
      chart.append(svg("polyline", { class: "line", points: points.map(([px, py]) => `${px},${py}`).join(" ") }));
      for (const [px, py, r] of points) {
        chart.append(svg("circle", {
          class: "dot", cx: px, cy: py, r: 3, "data-testid": "daily-point",
          "data-day": r.group.day, "data-value": r.hit_ratio,
        }, null));
      }
    }
    chart.append(svg("text", { x: 4, y: T + 10 }, fmt.count(maxRequests) + " RFQs"));
    chart.append(svg("text", { x: W - 4, y: T + 10, "text-anchor": "end" }, fmt.pct(maxRatio) + " hit"));
    box.append(chart);
    const legend = el("div", { class: "legend" });
    legend.append(el("i", { class: "asked" }), document.createTextNode("RFQs (bars)"),
      el("i", { class: "answered" }), document.createTextNode("client hit ratio (line)"));
    box.append(legend);
  }

  function drawDealerBars(rows) {
    const box = $("chart-dealers");
    box.replaceChildren();
    if (!rows.length) return;
    const W = 480, rowH = 22, L = 72, T = 6;
    const H = T * 2 + rows.length * rowH;
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Requests per dealer" });
    const max = Math.max(...rows.map((r) => r.asked), 1);
    const len = (v) => ((W - L - 8) * v) / max;
    rows.forEach((r, i) => {
      const y0 = T + i * rowH;
      chart.append(svg("text", { x: L - 6, y: y0 + 14, "text-anchor": "end" }, groupLabel(r.group.dealer)));
      for (const [metric, h, dy] of [["asked", 16, 2], ["answered", 10, 5], ["won", 4, 8]]) {
        chart.append(svg("rect", {
          class: metric, x: L, y: y0 + dy, width: len(r[metric]), height: h,
          "data-dealer": groupLabel(r.group.dealer), "data-metric": metric, "data-value": r[metric],
        }));
      }
    });
    box.append(chart);
    const legend = el("div", { class: "legend" });
    for (const m of ["asked", "answered", "won"]) legend.append(el("i", { class: m }), document.createTextNode(m));
    box.append(legend);
  }

  // ------------------------------------------------------------------ loading
  let generation = 0;

  async function load() {
    const mine = ++generation;
    setState("loading", "Loading…");
    try {
      const [total, grouped, daily, funnel, times, markouts, improvement] = await Promise.all([
        api("hit-ratio"),
        api("hit-ratio", { group_by: filters.groupBy }),
        api("hit-ratio", { group_by: "day" }),
        api("funnel", { group_by: "dealer" }),
        api("response-times", { group_by: "dealer" }),
        api("markouts"),
        api("price-improvement"),
      ]);
      if (mine !== generation) return;
      renderTotals(total, markouts, improvement);
      drawDaily(daily);
      renderHitTable(grouped);
      renderDealers(funnel, times);
      const n = total.rows[0] ? total.rows[0].requests : 0;
      setState("ready", `${fmt.count(n)} RFQs, ${filters.since} to ${filters.until}`);
    } catch (err) {
      if (mine !== generation) return;
      if (err instanceof NeedsKey) {
        setState("needs-key", err.message);
        $("key").focus();
      } else {
        setState("error", err.message);
      }
    }
  }

  function showFilters() {
    $("since").value = filters.since;
    $("until").value = filters.until;
    $("underlying").value = filters.underlying;
    $("group-by").value = filters.groupBy;
  }

  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    filters.since = $("since").value;
    filters.until = $("until").value;
    filters.underlying = $("underlying").value;
    filters.groupBy = $("group-by").value;
    const q = new URLSearchParams({ since: filters.since, until: filters.until, group_by: filters.groupBy });
    if (filters.underlying) q.set("underlying", filters.underlying);
    history.replaceState(null, "", location.pathname + "?" + q);
    load();
  });

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key").value.trim();
    if (key) sessionStorage.setItem(KEY, key);
    $("key").value = "";
    load();
  });

  $("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    setState("needs-key", "Key forgotten. Enter an analyst key to see the figures.");
  });

  $("hit-csv").addEventListener("click", async () => {
    try {
      const blob = await api("hit-ratio", { group_by: filters.groupBy }, "csv");
      const a = el("a", { href: URL.createObjectURL(blob), download: `hit_ratio_${filters.groupBy}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (err) {
      setState(err instanceof NeedsKey ? "needs-key" : "error", err.message);
    }
  });

  showFilters();
  load();
})();
