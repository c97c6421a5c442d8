// Dashboard charts (plotly.js, served by gridgov) and the child-unit map (Leaflet), drawn from
// the JSON the page embeds; the same numbers are in the tables below the charts.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("dashboard-data").textContent);
  const cfg = data.config;
  const L_FIG = data.labels.figures;
  const L_BASE = data.labels.base;
  const RATES = new Set(["closure_rate", "on_time_closure_rate", "on_time_dispatch_rate",
    "self_closure_rate", "satisfaction_rate"]);
  const q = "start=" + data.period.start + "&end=" + data.period.end;
  const FONT = { family: "system-ui, 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif", size: 12 };
  const CONFIG = { displaylogo: false, responsive: true, locale: "zh-CN",
    modeBarButtonsToRemove: ["sendDataToCloud", "lasso2d", "select2d"] };
  const layout = (extra) => Object.assign({ font: FONT, margin: { l: 50, r: 10, t: 10, b: 40 },
    legend: { orientation: "h", y: -0.2 } }, extra || {});
  const hasPlotly = typeof window.Plotly !== "undefined";

  function fmt(v, key) {
    if (v === null || v === undefined) return "—";
    if (RATES.has(key)) return (v * 100).toFixed(1) + "%";
    return typeof v === "number" && !Number.isInteger(v) ? v.toFixed(2) : Number(v).toLocaleString("zh-CN");
  }
  function drill(code) {
    location.href = "/analytics/dashboard?code=" + encodeURIComponent(code) + "&" + q;
  }

  function series() {
    const el = document.getElementById("chart-series");
    if (!el || !hasPlotly) return;
    const days = data.series.map((r) => r.day);
    const prev = data.previous_series.map((r) => r.reported);
    Plotly.newPlot(el, [
      { x: days, y: data.series.map((r) => r.reported), type: "bar", name: "上报", marker: { color: "#4e79a7" } },
      { x: days, y: data.series.map((r) => r.closed), type: "bar", name: "结案 (按上报日)", marker: { color: "#59a14f" } },
      { x: days, y: prev, type: "scatter", mode: "lines", name: "上期同位日上报", line: { color: "#bab0ac", dash: "dot" } },
    ], layout({ barmode: "group", xaxis: { type: "date", tickformat: "%m-%d" } }), CONFIG);
  }

  function dimension(dim) {
    const el = document.getElementById("chart-" + dim);
    const rows = data["by_" + dim] || [];
    if (!el || !hasPlotly) return;
    if (!rows.length) { el.textContent = "本期无事件"; el.classList.add("p-3", "text-muted", "small"); return; }
    const top = rows.slice(0, 15).reverse();
    Plotly.newPlot(el, [
      { y: top.map((r) => r.name), x: top.map((r) => r.current.reported), type: "bar", orientation: "h", name: "本期", marker: { color: "#4e79a7" } },
      { y: top.map((r) => r.name), x: top.map((r) => r.previous.reported), type: "bar", orientation: "h", name: "上期", marker: { color: "#bab0ac" } },
    ], layout({ barmode: "group", margin: { l: 120, r: 10, t: 10, b: 40 } }), CONFIG);
  }

  function valueOf(row, key) {
    return key.startsWith("base:") ? row.base[key.slice(5)] : row.current[key];
  }
  function labelOf(key) {
    return key.startsWith("base:") ? L_BASE[key.slice(5)] : L_FIG[key];
  }

  function childrenChart(key) {
    const el = document.getElementById("chart-children");
    if (!el || !hasPlotly) return;
    const rows = data.children.slice().sort((a, b) => (valueOf(b, key) ?? -1) - (valueOf(a, key) ?? -1));
    Plotly.react(el, [{
      x: rows.map((r) => r.name), y: rows.map((r) => valueOf(r, key)), type: "bar",
      customdata: rows.map((r) => r.key), marker: { color: "#f28e2b" },
      hovertemplate: "%{x}: %{y}<extra></extra>",
    }], layout({ yaxis: { title: { text: labelOf(key) }, tickformat: RATES.has(key) ? ".0%" : "" },
      margin: { l: 60, r: 10, t: 10, b: 90 } }), CONFIG);
    if (!el.dataset.bound) {
      el.on("plotly_click", (ev) => { if (ev.points && ev.points[0]) drill(ev.points[0].customdata); });
      el.dataset.bound = "1";
    }
  }

  // Sequential blues; grey for units without a value.
  const RAMP = ["#eff3ff", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#084594"];
  let mapLayer = null;
  let map = null;
  let outlines = null;
  function colourScale(values) {
    const known = values.filter((v) => v !== null && v !== undefined);
    const lo = Math.min(...known), hi = Math.max(...known);
    return {
      lo, hi,
      colour: (v) => {
        if (v === null || v === undefined || !known.length) return "#dddddd";
        const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
        return RAMP[Math.min(RAMP.length - 1, Math.floor(t * RAMP.length))];
      },
    };
  }
  function paintMap(key) {
    if (!map || !outlines) return;
    const byCode = new Map(data.children.map((r) => [r.key, r]));
    const scale = colourScale(data.children.map((r) => valueOf(r, key)));
    if (mapLayer) mapLayer.remove();
    mapLayer = L.geoJSON(outlines, {
      style: (f) => {
        const row = byCode.get(f.properties.code);
        return { color: "#555", weight: 1, fillOpacity: 0.75, fillColor: scale.colour(row ? valueOf(row, key) : null) };
      },
      onEachFeature: (f, layer) => {
        const row = byCode.get(f.properties.code);
        const v = row ? valueOf(row, key) : null;
        layer.bindTooltip(f.properties.name + ": " + fmt(v, key.replace("base:", "")), { sticky: true });
        layer.on("click", () => drill(f.properties.code));
      },
    }).addTo(map);
    const legend = document.getElementById("map-legend");
    if (legend) legend.textContent = isFinite(scale.lo) ? labelOf(key) + ": " + fmt(scale.lo, key) + " (浅) — " + fmt(scale.hi, key) + " (深); 点击单位下钻" : "无数据";
    const b = mapLayer.getBounds();
    if (b.isValid()) map.fitBounds(b, { padding: [8, 8] });
  }
  async function setupMap() {
    const el = document.getElementById("dash-map");
    if (!el || typeof L === "undefined") return;
    map = L.map(el, { preferCanvas: true, zoomSnap: 0.25 });
    if (cfg.tileUrl) L.tileLayer(cfg.tileUrl, { attribution: cfg.tileAttribution, maxZoom: 19 }).addTo(map);
    map.setView([29.87, 121.55], 9);
    const r = await fetch("/api/v1/regions/" + encodeURIComponent(data.region.code) + "/children?format=geojson",
      { credentials: "same-origin" });
    if (!r.ok) return;
    outlines = await r.json();
    paintMap(document.getElementById("map-figure").value);
  }

  series();
  ["category", "status", "channel"].forEach(dimension);
  const select = document.getElementById("map-figure");
  if (select) {
    childrenChart(select.value);
    select.addEventListener("change", () => { childrenChart(select.value); paintMap(select.value); });
    setupMap();
  }
  document.body.dataset.dashboardReady = "1";
})();
