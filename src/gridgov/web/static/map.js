// Drill-down map: city → district → town → village → grid, over the gridgov JSON API.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("map-config").textContent);
  const LEVEL_CHILD = { 1: "区县", 2: "乡镇街道", 3: "村社区", 4: "网格" };
  const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
    "#ff9da7", "#9c755f", "#bab0ac"];
  const $ = (id) => document.getElementById(id);
  const map = L.map("map", { preferCanvas: true, zoomSnap: 0.25 });
  if (cfg.tileUrl) {
    L.tileLayer(cfg.tileUrl, { attribution: cfg.tileAttribution, maxZoom: 19 }).addTo(map);
  }
  map.setView([29.87, 121.55], 9);
  let layer = null;
  const labelLayer = L.layerGroup().addTo(map);
  let current = null;
  let selectedCode = null;
  let marker = null;
  const featureLayers = new Map();

  function esc(s) {
    return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function showError(msg) {
    const el = $("status");
    el.textContent = msg;
    el.classList.toggle("d-none", !msg);
  }
  async function api(path) {
    const r = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (r.status === 401) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      throw new Error("未登录");
    }
    if (!r.ok) {
      let msg = r.status + " " + r.statusText;
      try { const j = await r.json(); msg = (j.detail && j.detail[0] && j.detail[0].msg) || msg; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    return r.json();
  }
  function colour(code, i) {
    return PALETTE[i % PALETTE.length];
  }
  function renderBreadcrumb(path) {
    const ol = $("breadcrumb");
    ol.innerHTML = "";
    const rootIdx = path.findIndex((p) => p.code === cfg.rootCode);
    path.forEach((p, i) => {
      const li = document.createElement("li");
      li.className = "breadcrumb-item" + (i === path.length - 1 ? " active" : "");
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = p.name;
      b.title = p.level_name + " " + p.code;
      b.disabled = i < rootIdx || i === path.length - 1;
      b.addEventListener("click", () => go(p.code));
      li.appendChild(b);
      ol.appendChild(li);
    });
  }
  function renderInfo(info) {
    const leader = info.level === 5
      ? `<tr><th>网格长</th><td id="info-leader">${info.leader ? esc(info.leader.display_name) + "（" + esc(info.leader.username) + "）" : '<span class="text-danger">未指定</span>'}</td></tr>`
      : "";
    const drill = info.level < 4 && info.code !== (current && current.code)
      ? `<button class="btn btn-sm btn-primary mt-2" id="drill">进入${esc(info.name)}</button>` : "";
    $("info").innerHTML = `
      <div class="d-flex justify-content-between align-items-start">
        <h1 class="h5 mb-1" id="info-name">${esc(info.name)}</h1>
        <span class="badge bg-info text-dark">${esc(info.level_name)}</span>
      </div>
      <table class="table table-sm info-table mb-0 small">
        <tr><th>代码</th><td id="info-code"><code>${esc(info.code)}</code></td></tr>
        ${info.level < 5 ? `<tr><th>下级${esc(LEVEL_CHILD[info.level])}</th><td id="info-children">${info.children_count.toLocaleString("zh-CN")}</td></tr>` : ""}
        ${info.level < 5 ? `<tr><th>网格数</th><td id="info-grids">${info.grid_count.toLocaleString("zh-CN")}</td></tr>` : ""}
        <tr><th>面积</th><td>${info.area_km2 == null ? "—" : info.area_km2.toLocaleString("zh-CN", { maximumFractionDigits: 2 }) + " km²"}</td></tr>
        <tr><th>账号数</th><td>${info.user_count}</td></tr>
        ${leader}
      </table>${drill}`;
    const d = $("drill");
    if (d) d.addEventListener("click", () => go(info.code));
  }
  function renderChildren(features) {
    const box = $("children");
    box.innerHTML = "";
    box.dataset.parent = current ? current.code : "";
    $("children-title").textContent = current && current.level < 5 ? "下级" + LEVEL_CHILD[current.level] : "本网格";
    $("children-count").textContent = features.length ? String(features.length) : "";
    features.forEach((f) => {
      const a = document.createElement("button");
      a.type = "button";
      a.className = "list-group-item list-group-item-action py-1 d-flex justify-content-between";
      a.dataset.code = f.properties.code;
      a.innerHTML = `<span>${esc(f.properties.name)}</span><small class="text-muted">${esc(f.properties.code)}</small>`;
      a.addEventListener("click", () => select(f.properties.code, true));
      a.addEventListener("dblclick", () => { if (f.properties.level < 5) go(f.properties.code); });
      box.appendChild(a);
    });
  }
  function styleFor(code, i) {
    const sel = code === selectedCode;
    return { color: sel ? "#d62828" : "#1d3557", weight: sel ? 3 : 1, fillColor: colour(code, i), fillOpacity: sel ? 0.55 : 0.3 };
  }
  function draw(fc) {
    if (layer) map.removeLayer(layer);
    labelLayer.clearLayers();
    featureLayers.clear();
    let i = 0;
    const labels = fc.features.length <= 60;
    layer = L.geoJSON(fc, {
      style: (f) => styleFor(f.properties.code, f.properties._i),
      onEachFeature: (f, l) => {
        f.properties._i = i++;
        l.setStyle(styleFor(f.properties.code, f.properties._i));
        featureLayers.set(f.properties.code, l);
        const lp = f.properties.label_point;
        if (labels && lp) {
          // A point inside the unit: the bounds centre of an island county can fall in the sea.
          L.tooltip({ permanent: true, direction: "center", className: "region-label" })
            .setLatLng([lp[1], lp[0]]).setContent(esc(f.properties.name)).addTo(labelLayer);
        } else {
          l.bindTooltip(esc(f.properties.name), { sticky: true });
        }
        l.on("click", () => select(f.properties.code, false));
        l.on("dblclick", (e) => { L.DomEvent.stop(e); if (f.properties.level < 5) go(f.properties.code); });
      },
    }).addTo(map);
    if (fc.features.length) map.fitBounds(layer.getBounds(), { padding: [10, 10] });
  }
  async function select(code, zoom) {
    selectedCode = code;
    featureLayers.forEach((l, c) => l.setStyle(styleFor(c, l.feature.properties._i)));
    document.querySelectorAll("#children [data-code]").forEach((el) => el.classList.toggle("active", el.dataset.code === code));
    const l = featureLayers.get(code);
    if (l) { l.bringToFront(); if (zoom) map.fitBounds(l.getBounds(), { maxZoom: 15 }); }
    try {
      renderInfo(await api(`/api/v1/regions/${encodeURIComponent(code)}`));
      showError("");
    } catch (e) { showError(e.message); }
  }
  async function go(code, then) {
    try {
      let info = await api(`/api/v1/regions/${encodeURIComponent(code)}`);
      let target = null;
      if (info.level === 5) {
        target = info.code;
        // A grid worker's jurisdiction is the grid itself: show it alone, not its village.
        if (info.code !== cfg.rootCode) info = await api(`/api/v1/regions/${encodeURIComponent(info.parent_code)}`);
      }
      current = info;
      selectedCode = null;
      renderBreadcrumb(info.path);
      renderInfo(info);
      const fc = info.level === 5
        ? await api(`/api/v1/regions/${encodeURIComponent(info.code)}/grids`)
        : await api(`/api/v1/regions/${encodeURIComponent(info.code)}/children?format=geojson`);
      draw(fc);
      renderChildren(fc.features);
      history.replaceState(null, "", "/map?code=" + encodeURIComponent(target || info.code));
      showError("");
      if (target) await select(target, true);
      if (then) then();
    } catch (e) { showError(e.message); }
  }
  // Search box with a small debounce.
  let timer = null;
  $("search").addEventListener("input", (ev) => {
    clearTimeout(timer);
    const q = ev.target.value.trim();
    const box = $("search-results");
    if (!q) { box.innerHTML = ""; return; }
    timer = setTimeout(async () => {
      try {
        const found = await api(`/api/v1/regions?q=${encodeURIComponent(q)}&limit=15`);
        box.innerHTML = found.length ? "" : '<div class="list-group-item small text-muted">没有匹配的区域</div>';
        found.forEach((r) => {
          const b = document.createElement("button");
          b.type = "button";
          b.className = "list-group-item list-group-item-action py-1 small";
          b.dataset.code = r.code;
          b.innerHTML = `${esc(r.name)} <span class="badge bg-light text-dark">${esc(r.level_name)}</span> <small class="text-muted">${esc(r.code)}</small>`;
          b.addEventListener("click", () => { box.innerHTML = ""; $("search").value = r.name; go(r.code); });
          box.appendChild(b);
        });
      } catch (e) { showError(e.message); }
    }, 200);
  });
  $("locate-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const fd = new FormData(ev.target);
    const out = $("locate-result");
    try {
      const q = new URLSearchParams({ lon: fd.get("lon"), lat: fd.get("lat"), crs: fd.get("crs") });
      const r = await api("/api/v1/locate?" + q.toString());
      out.innerHTML = `<div class="alert alert-success py-1 px-2 mb-0">${r.path.map((p) => esc(p.name)).join(" › ")}</div>`;
      await go(r.grid.code, () => {
        if (marker) map.removeLayer(marker);
        marker = L.marker([r.lat, r.lon]).addTo(map);
      });
    } catch (e) {
      out.innerHTML = `<div class="alert alert-warning py-1 px-2 mb-0">${esc(e.message)}</div>`;
    }
  });
  go(cfg.startCode);
})();
