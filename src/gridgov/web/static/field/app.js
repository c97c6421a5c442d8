/* 网格通: the grid worker's field app. Every write goes into the device's queue first (with an
   idempotency key) and is sent by sync(), so work done offline is kept and sent exactly once. */
"use strict";

const $ = (sel) => document.querySelector(sel);
const $$ = (sel) => Array.from(document.querySelectorAll(sel));
const IDLE_MINUTES = parseFloat(document.body.dataset.idleMinutes) || 30;
const MAX_EDGE = 1600; // photos are resized on the device to at most this many pixels
const SAMPLE_SECONDS = parseFloat(localStorage.getItem("field.sampleSeconds") || "10");
const FLUSH_POINTS = parseInt(localStorage.getItem("field.flushPoints") || "6", 10);
const KIND_LABELS = {
  report: "上报事件", act: "事件处置", visit: "走访", check: "核查任务",
  patrol_start: "开始巡查", track: "巡查轨迹", patrol_stop: "结束巡查",
};
const ACTION_LABELS = { receive: "签收", feedback: "反馈", return: "退回" };
const STATUS_LABELS = { accepted: "待分派", dispatched: "待签收", handling: "处置中", feedback: "待核查" };

const state = {
  token: localStorage.getItem("field.token"),
  username: localStorage.getItem("field.username") || "",
  home: null,
  categories: [],
  category: null,
  pos: null,
  reportPos: null,
  reportPhotos: [],
  afterPhoto: null,
  visitKind: "house",
  visitTarget: null,
  visitPhotos: [],
  task: null,
  taskPhotos: [],
  event: null,
  handlePhotos: [],
  patrol: null,
  maps: {},
};

// ------------------------------------------------------------------------------ helpers

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function fmtTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
}

function fmtMeters(m) { return m >= 1000 ? (m / 1000).toFixed(2) + " 公里" : Math.round(m) + " 米"; }

function fmtDuration(s) {
  const m = Math.floor(s / 60), sec = Math.round(s % 60);
  return m >= 60 ? `${Math.floor(m / 60)} 小时 ${m % 60} 分` : `${m} 分 ${sec} 秒`;
}

function fmtPct(x) { return (x * 100).toFixed(0) + "%"; }

function touch() { localStorage.setItem("field.active", String(Date.now())); }

function idleExpired() {
  const last = parseFloat(localStorage.getItem("field.active") || "0");
  return !last || Date.now() - last > IDLE_MINUTES * 60000;
}

function dropToken() {
  state.token = null;
  localStorage.removeItem("field.token");
}

// Logout or idle expiry: personal data read from the server (home with key persons, check-task
// candidates, categories) and sent items leave the device. Only unsent items stay (waiting or
// refused): they are the user's own pending work, and the login screen says so.
async function clearPersonalData() {
  const user = state.username;
  for (const k of await FieldStore.kvKeys()) {
    if (["home:", "tasks:", "categories:"].some((p) => k === p + user)) await FieldStore.kvDelete(k);
  }
  for (const it of await FieldStore.all()) {
    if (it.status === "done") await FieldStore.remove(it.key);
  }
  Object.assign(state, { home: null, categories: [], tasks: [], targets: null, events: [], task: null, event: null, visitTarget: null });
  for (const sel of ["#home-todo", "#home-due", "#task-list", "#visit-targets", "#visit-due", "#handle-list", "#queue-done"]) $(sel).innerHTML = "";
  await showPending();
}

async function showPending() {
  const pending = (await FieldStore.all()).filter((i) => i.status !== "done");
  const el = $("#login-pending");
  el.hidden = !pending.length;
  el.textContent = pending.length ? `本机保存着 ${pending.length} 项尚未发送的内容 (您的待发送工作), 登录后自动发送。其他数据已从本机清除。` : "";
}

async function expire() {
  dropToken();
  await clearPersonalData();
  show("login");
}

class AuthError extends Error {}

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {}, { Authorization: `Bearer ${state.token}` });
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (r.status === 401) {
    dropToken();
    show("login");
    throw new AuthError("登录已过期");
  }
  return r;
}

function errorText(body) {
  const d = body && body.detail;
  if (Array.isArray(d)) return d.map((x) => x.msg).join("; ");
  return typeof d === "string" ? d : "提交失败";
}

// ------------------------------------------------------------------------------ photos

async function resizePhoto(file) {
  const bmp = await createImageBitmap(file, { imageOrientation: "from-image" });
  const scale = Math.min(1, MAX_EDGE / Math.max(bmp.width, bmp.height));
  const w = Math.round(bmp.width * scale), h = Math.round(bmp.height * scale);
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  canvas.getContext("2d").drawImage(bmp, 0, 0, w, h);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
  const t = document.createElement("canvas");
  const ts = 128 / Math.max(w, h);
  t.width = Math.max(1, Math.round(w * ts));
  t.height = Math.max(1, Math.round(h * ts));
  t.getContext("2d").drawImage(canvas, 0, 0, t.width, t.height);
  return { blob, preview: t.toDataURL("image/jpeg", 0.7), width: w, height: h };
}

async function takePhotos(input, list, max, previews) {
  for (const file of Array.from(input.files || [])) {
    if (list.length >= max) break;
    list.push(await resizePhoto(file));
  }
  input.value = "";
  $(previews).innerHTML = list.map((p) => `<img alt="照片" src="${p.preview}">`).join("");
}

// ------------------------------------------------------------------------------ position

// Always a new fix (maximumAge 0): a cached one may be from somewhere else.
function locate() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(null);
    navigator.geolocation.getCurrentPosition(
      (p) => {
        state.pos = { lon: p.coords.longitude, lat: p.coords.latitude, accuracy: p.coords.accuracy, at: new Date(p.timestamp || Date.now()).toISOString() };
        showPosition();
        resolve(state.pos);
      },
      () => resolve(null),
      { enableHighAccuracy: true, timeout: 10000, maximumAge: 0 },
    );
  });
}

function showPosition() {
  const p = state.pos;
  if (!p) return;
  $("#home-position").textContent = `我的位置: ${p.lon.toFixed(6)}, ${p.lat.toFixed(6)} (精度 ±${Math.round(p.accuracy)} 米)`;
  const m = state.maps.home;
  if (m) {
    if (!m._me) m._me = L.marker([p.lat, p.lon], { icon: L.divIcon({ className: "", html: '<div class="pos-dot"></div>', iconSize: [20, 20] }) }).addTo(m);
    m._me.setLatLng([p.lat, p.lon]);
  }
}

function makeMap(id) {
  if (state.maps[id]) {
    setTimeout(() => state.maps[id].invalidateSize(), 0);
    return state.maps[id];
  }
  const tiles = document.body.dataset.tileUrl;
  const m = L.map(`${id}-map`, { zoomControl: true, attributionControl: !!tiles });
  // A base map only when one is configured (GRIDGOV_TILE_URL): without it the grid outline
  // and the pins still work.
  if (tiles) L.tileLayer(tiles, { attribution: document.body.dataset.tileAttribution || "", maxZoom: 19 }).addTo(m);
  const grid = state.home && state.home.grid && state.home.grid.geometry;
  if (grid) {
    const layer = L.geoJSON(grid, { style: { color: "#0d6efd", weight: 2, fillOpacity: 0.05 } }).addTo(m);
    m._grid = layer;
    m.fitBounds(layer.getBounds());
  } else if (state.pos) {
    m.setView([state.pos.lat, state.pos.lon], 17);
  } else {
    m.setView([29.87, 121.55], 12);
  }
  state.maps[id] = m;
  setTimeout(() => m.invalidateSize(), 0);
  return m;
}

// ------------------------------------------------------------------------------ queue and sync

// `after` photos (self-closure) are uploaded with the others but sent as after_photos.
async function enqueue(kind, payload, photos, label, after = []) {
  const item = {
    key: FieldStore.newKey(kind),
    seq: Date.now() + Math.random(),
    user: state.username,
    kind,
    payload,
    blobs: [...(photos || []), ...after].map((p) => p.blob),
    afterCount: after.length,
    shas: [],
    label,
    status: "waiting",
    created: new Date().toISOString(),
    result: null,
  };
  await FieldStore.put(item);
  await renderQueue();
  return item.key;
}

let syncing = null;
const fullResults = new Map(); // what the server answered, for the screen that submitted it
// After server errors the automatic retries slow down (30 s, 1 min, 2 min … 10 min); the
// "立即同步" button and a new submission still try at once.
const MAX_SERVER_ERRORS = 3;
let backoffMs = 0;
let backoffUntil = 0;

let again = null; // the round that follows the one under way
function sync(auto = false) {
  if (auto && Date.now() < backoffUntil) return Promise.resolve();
  if (!syncing) {
    syncing = doSync().finally(() => { syncing = null; });
    return syncing;
  }
  // A round is under way and may have read the queue before this call (an item just queued,
  // "立即同步" pressed while a failed round is still ending): one more full round after it,
  // shared by every call made meanwhile, so a call always ends with a round that began after it.
  if (!again) {
    const next = () => { again = null; return sync(); };
    again = syncing.then(next, next);
  }
  return again;
}

// The server could not handle this item: keep the reason and the count on the item; after
// MAX_SERVER_ERRORS it is set aside as "需处理" so that it no longer holds up the queue.
async function failItem(item, msg) {
  item.attempts = (item.attempts || 0) + 1;
  item.lastError = msg;
  if (item.attempts >= MAX_SERVER_ERRORS) {
    item.status = "refused";
    item.result = { code: "server_error", msg: `服务器连续 ${item.attempts} 次无法处理 (${msg}), 已停止重试; 请删除后重新填写, 或联系管理员` };
  }
  await FieldStore.put(item);
}

async function uploadPhotos(item) {
  while (item.shas.length < item.blobs.length) {
    const fd = new FormData();
    fd.append("file", item.blobs[item.shas.length], "photo.jpg");
    const r = await api("/api/v1/photos", { method: "POST", body: fd });
    if (r.status === 201) {
      item.shas.push((await r.json()).sha256);
      await FieldStore.put(item);
    } else if (r.status >= 400 && r.status < 500) {
      item.status = "refused";
      item.result = { msg: "照片被拒绝: " + errorText(await r.json().catch(() => null)) };
      await FieldStore.put(item);
      return false;
    } else {
      await failItem(item, `照片上传失败 (${r.status})`);
      return false;
    }
  }
  return true;
}

function withPhotos(it) {
  const n = it.shas.length - (it.afterCount || 0);
  const out = Object.assign({}, it.payload, { photos: it.shas.slice(0, n) });
  if (it.afterCount) out.after_photos = it.shas.slice(n);
  return out;
}

// Sends items; a batch the server fails on (5xx) is sent again one item at a time, so one bad
// item costs only itself. Returns the number of server errors.
async function sendBatch(ready) {
  const body = {
    items: ready.map((it) => ({
      key: it.key,
      kind: it.kind,
      payload: it.blobs.length || (it.shas && it.shas.length) ? withPhotos(it) : it.payload,
    })),
  };
  const r = await api("/api/field/sync", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (r.status === 422 && ready.length === 1) {
    const it = ready[0];
    Object.assign(it, { status: "refused", result: { msg: errorText(await r.json()) } });
    await FieldStore.put(it);
    return 0;
  }
  if (!r.ok) {
    if (ready.length > 1) {
      let errors = 0;
      for (const it of ready) errors += await sendBatch([it]);
      return errors;
    }
    await failItem(ready[0], `同步失败 (${r.status})`);
    return 1;
  }
  const results = (await r.json()).results;
  for (const res of results) {
    const it = ready.find((x) => x.key === res.key);
    if (!it) continue;
    it.status = res.status === "done" ? "done" : "refused";
    it.replayed = res.replayed;
    it.sent = new Date().toISOString();
    it.blobs = [];
    if (it.status === "done") {
      // A sent item keeps a summary only: no payload (phones, addresses, notes), no facts.
      fullResults.set(it.key, res.result);
      it.payload = it.kind === "check" ? { task_id: it.payload.task_id } : null;
      const { facts, value, ...rest } = res.result || {};
      it.result = rest;
    } else {
      it.result = res.result;
    }
    await FieldStore.put(it);
  }
  return 0;
}

async function doSync() {
  if (!state.token || !navigator.onLine) { await renderQueue(); return; }
  let errors = 0;
  try {
    const all = await FieldStore.all();
    const waiting = all.filter((i) => i.status === "waiting" && i.user === state.username);
    for (let i = 0; i < waiting.length; i += 20) {
      const batch = waiting.slice(i, i + 20);
      const ready = [];
      for (const item of batch) {
        if (await uploadPhotos(item)) ready.push(item);
        else if (item.status === "waiting") errors += 1;
      }
      if (ready.length) errors += await sendBatch(ready);
    }
    await prune();
  } catch (e) {
    // The network dropped: everything stays queued for the next try.
  }
  if (errors) {
    backoffMs = Math.min(backoffMs ? backoffMs * 2 : 30000, 600000);
    backoffUntil = Date.now() + backoffMs;
  } else {
    backoffMs = 0;
    backoffUntil = 0;
  }
  await renderQueue();
}

async function prune() {
  const done = (await FieldStore.all()).filter((i) => i.status === "done");
  for (const it of done.slice(0, Math.max(0, done.length - 50))) await FieldStore.remove(it.key);
}

function summary(item) {
  const r = item.result || {};
  if (item.status === "refused") return r.msg || "被拒绝";
  if (item.status === "waiting") {
    if (item.lastError) return `等待重试 · 已失败 ${item.attempts} 次: ${item.lastError}`;
    return navigator.onLine ? "等待发送…" : "等待网络…";
  }
  if (item.kind === "report") return r.self_closed ? `编号 ${r.tracking_no} · 已当场处置结案` : `编号 ${r.tracking_no} · 已送 ${r.holder}`;
  if (item.kind === "act") return `事件 ${r.tracking_no} · ${r.holder}`;
  if (item.kind === "visit") return `已记录走访: ${r.target}`;
  if (item.kind === "check") return r.status === "referred" ? "已退回主管部门核实" : "核查结果已提交";
  if (item.kind === "patrol_stop") return `里程 ${fmtMeters(r.distance_m)} · 覆盖率 ${fmtPct(r.coverage)}`;
  return "已发送";
}

// What a refused item lets the user correct before sending it again, by kind.
const EDITABLE = {
  report: { description: "情况描述", result: "处置结果" },
  visit: { notes: "走访记录", "facts.phone": "联系电话", "facts.actual_address": "实际居住地址" },
  check: { value: "现场核实的值", note: "备注" },
  act: { comment: "意见" },
};

function editableFields(item) {
  const p = item.payload || {};
  return Object.entries(EDITABLE[item.kind] || {})
    .filter(([name]) => !(item.kind === "check" && name === "value" && p.value == null))
    .map(([name, label]) => {
      const [a, b] = name.split(".");
      return { name, label, value: b ? ((p[a] || {})[b] ?? "") : (p[a] ?? "") };
    });
}

function editorHtml(item) {
  const fields = editableFields(item);
  const photos = (item.shas || []).length;
  const dropped = (item.blobs || []).length - photos;
  return `<form class="resend-form mt-2">${fields.map((f) => `<label class="form-label mb-1 mt-1">${esc(f.label)}<input class="form-control form-control-sm" data-field="${esc(f.name)}" value="${esc(f.value)}"></label>`).join("")}`
    + `${photos || dropped > 0 ? `<div class="text-secondary">照片: 已上传 ${photos} 张${dropped > 0 ? `; 未上传的 ${dropped} 张 (被拒) 不再发送` : ""}</div>` : ""}`
    + '<button class="btn btn-sm btn-primary mt-1 resend-send" type="submit">重新发送</button></form>';
}

// A refused item, corrected or not, goes back into the queue under a new key (the old key's
// refusal stays the server's answer to it); the refused copy is replaced, never dropped unseen.
async function resend(key, form) {
  const old = await FieldStore.get(key);
  if (!old || old.status !== "refused") return;
  const payload = JSON.parse(JSON.stringify(old.payload || {}));
  for (const el of form.querySelectorAll("[data-field]")) {
    const [a, b] = el.dataset.field.split(".");
    const v = el.value.trim();
    if (b) {
      payload[a] = payload[a] || {};
      if (v) payload[a][b] = v; else delete payload[a][b];
    } else {
      payload[a] = v;
    }
  }
  // Photos the server has stay; a photo it refused (and any after it) is not sent again. The
  // after photos come last, so those missing are taken from them first.
  const shas = [...(old.shas || [])];
  const missing = Math.max(0, (old.blobs || []).length - shas.length);
  const item = Object.assign({}, old, {
    key: FieldStore.newKey(old.kind), seq: Date.now() + Math.random(), payload,
    blobs: [], shas, afterCount: Math.max(0, (old.afterCount || 0) - missing),
    status: "waiting", created: new Date().toISOString(), result: null, attempts: 0, lastError: null,
    resentFrom: old.key,
  });
  await FieldStore.put(item);
  await FieldStore.remove(old.key);
  await renderQueue();
  await sync();
}

async function renderQueue() {
  const all = await FieldStore.all();
  // Another account's unsent work stays on the device until that user logs in again; this user
  // sees only how many such items there are, not what they are.
  const mine = all.filter((i) => i.user === state.username);
  const others = all.filter((i) => i.user !== state.username && i.status !== "done").length;
  $("#queue-others").hidden = !others;
  $("#queue-others").textContent = others ? `本机另有 ${others} 项其他账号的待发送内容, 该账号登录后发送。` : "";
  const waiting = mine.filter((i) => i.status === "waiting");
  const refused = mine.filter((i) => i.status === "refused");
  const done = mine.filter((i) => i.status === "done").reverse();
  $("#queue-count").textContent = String(waiting.length);
  const badge = $("#sync-badge");
  badge.classList.toggle("offline", !navigator.onLine);
  badge.classList.toggle("refused", refused.length > 0);
  $("#net-state").textContent = navigator.onLine ? (refused.length ? `${refused.length} 项被退回` : "在线") : "离线";
  const li = (i, extra = "") => `<li class="list-group-item" data-key="${esc(i.key)}"><div class="fw-bold">${esc(KIND_LABELS[i.kind] || i.kind)} · ${esc(i.label || "")}</div>`
    + `<div class="${i.status === "refused" ? "text-danger" : "text-secondary"} item-summary">${esc(summary(i))}</div>`
    + `<div class="text-secondary">${esc(fmtTime(i.created))}${i.user !== state.username ? " · 账号 " + esc(i.user) : ""}</div>${extra}</li>`;
  $("#queue-waiting").innerHTML = waiting.map((i) => li(i)).join("") || '<li class="list-group-item text-secondary">没有待发送的内容</li>';
  // A correction being typed survives the list being drawn again (a sync in the background).
  const open = $("#queue-refused .resend-form");
  const editing = open ? open.closest("[data-key]").dataset.key : null;
  const typed = open ? Array.from(open.querySelectorAll("[data-field]"), (el) => [el.dataset.field, el.value]) : [];
  $("#queue-refused").innerHTML = refused.map((i) => li(i, '<button class="btn btn-sm btn-outline-primary mt-1 me-1 edit" type="button">修改后重发</button>'
    + '<button class="btn btn-sm btn-outline-secondary mt-1 ack" type="button">知道了, 删除</button>'
    + (i.key === editing ? editorHtml(i) : ""))).join("") || '<li class="list-group-item text-secondary">无</li>';
  for (const [name, value] of typed) {
    const el = $(`#queue-refused [data-key="${CSS.escape(editing)}"] [data-field="${CSS.escape(name)}"]`);
    if (el) el.value = value;
  }
  $("#queue-done").innerHTML = done.slice(0, 20).map((i) => li(i)).join("") || '<li class="list-group-item text-secondary">无</li>';
}

async function outcome(key, box, okText) {
  await sync(); // a round that began after the item was queued
  const item = await FieldStore.get(key);
  const el = $(box);
  el.hidden = false;
  el.className = "alert mt-2 " + (item.status === "done" ? "alert-success" : item.status === "refused" ? "alert-danger" : "alert-warning");
  if (item.status === "done") el.textContent = okText(fullResults.get(key) || item.result);
  else if (item.status === "refused") el.textContent = "提交被退回: " + (item.result && item.result.msg);
  else if (item.lastError) el.textContent = `暂未发送 (${item.lastError}), 已存入本机待发送队列, 稍后自动重试。`;
  else el.textContent = "网络不可用, 已存入本机待发送队列, 恢复网络后自动发送。";
  el.scrollIntoView({ block: "nearest" });
  return item;
}

// ------------------------------------------------------------------------------ screens

const SCREENS = ["login", "home", "report", "visit", "patrol", "tasks", "handle", "queue"];

function show(name) {
  if (!state.token && name !== "login") name = "login";
  for (const s of SCREENS) $(`#screen-${s}`).hidden = s !== name;
  $$("#tabbar button").forEach((b) => b.classList.toggle("active", b.dataset.go === name));
  $("#tabbar").hidden = name === "login";
  if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
  const enter = { home: enterHome, report: enterReport, visit: enterVisit, patrol: enterPatrol, tasks: enterTasks, handle: enterHandle, queue: renderQueue };
  return enter[name] ? enter[name]() : Promise.resolve();
}

// ---- login

async function login(ev) {
  ev.preventDefault();
  $("#login-error").textContent = "";
  const fd = new URLSearchParams({ username: $("#login-username").value.trim(), password: $("#login-password").value });
  let r;
  try {
    r = await fetch("/api/field/session", { method: "POST", body: fd });
  } catch (e) {
    $("#login-error").textContent = "无法连接服务器, 请检查网络";
    return;
  }
  const body = await r.json();
  if (!r.ok) {
    $("#login-error").textContent = errorText(body);
    return;
  }
  state.token = body.access_token;
  state.username = body.username;
  localStorage.setItem("field.token", state.token);
  localStorage.setItem("field.username", state.username);
  localStorage.setItem("field.name", body.display_name || body.username);
  $("#login-password").value = "";
  touch();
  $("#who").textContent = body.display_name || body.username;
  show("home");
  sync();
}

async function logout() {
  try { await api("/api/v1/auth/token", { method: "DELETE" }); } catch (e) { /* offline */ }
  await expire();
}

// ---- home

async function loadHome() {
  try {
    const r = await api("/api/field/home");
    if (r.ok) {
      state.home = await r.json();
      await FieldStore.kvSet("home:" + state.username, state.home);
    }
  } catch (e) {
    if (e instanceof AuthError) return;
    state.home = (await FieldStore.kvGet("home:" + state.username)) || state.home;
  }
}

async function enterHome() {
  await loadHome();
  const h = state.home;
  if (!h) return;
  $("#who").textContent = h.display_name || h.username;
  $("#home-grid").textContent = `我的网格: ${h.grid.name} (${h.grid.code})`;
  $("#count-todo").textContent = h.counts.todo;
  $("#count-due-soon").textContent = h.counts.due_soon;
  $("#count-overdue").textContent = h.counts.overdue;
  $("#count-tasks").textContent = h.counts.check_tasks;
  $("#count-visits").textContent = h.counts.due_visits;
  $("#today-coverage").textContent = h.today ? fmtPct(h.today.coverage) : "—";
  $("#home-todo").innerHTML = h.todo.map((e) => `<li class="list-group-item list-group-item-action" data-event="${esc(e.tracking_no)}">${esc(e.title)}<br><span class="text-secondary">${esc(e.tracking_no)} · ${esc(e.status_name)}${e.deadline_at ? " · 时限 " + esc(fmtTime(e.deadline_at)) : ""}</span></li>`).join("") || '<li class="list-group-item text-secondary">暂无待办事件</li>';
  $("#home-due").innerHTML = h.due_visits.map((d) => `<li class="list-group-item list-group-item-action" data-person="${d.person_id}">${esc(d.name)} · ${esc(d.tags.join("、"))}<br><span class="text-secondary">${d.last_visit ? "上次走访 " + esc(fmtTime(d.last_visit)) : "尚未走访"}</span></li>`).join("") || '<li class="list-group-item text-secondary">暂无</li>';
  makeMap("home");
  await locate();
}

// ---- report

async function loadCategories() {
  try {
    const r = await api("/api/field/categories");
    if (r.ok) {
      state.categories = await r.json();
      await FieldStore.kvSet("categories:" + state.username, state.categories);
      return;
    }
  } catch (e) {
    if (e instanceof AuthError) return;
  }
  state.categories = (await FieldStore.kvGet("categories:" + state.username)) || [];
}

function renderCategories() {
  const q = $("#cat-search").value.trim();
  const list = state.categories.filter((c) => !q || c.name.includes(q) || c.code.includes(q.toUpperCase()));
  $("#cat-list").innerHTML = list.map((c) => `<button type="button" class="list-group-item list-group-item-action${state.category && state.category.code === c.code ? " active" : ""}" data-cat="${esc(c.code)}">${esc(c.name)}${c.used ? ` <span class="badge text-bg-light">常用 ${c.used}</span>` : ""}</button>`).join("") || '<div class="list-group-item text-secondary">没有匹配的类别</div>';
}

function pickCategory(code) {
  state.category = state.categories.find((c) => c.code === code) || null;
  $("#cat-chosen").textContent = state.category ? `已选: ${state.category.name}` : "";
  $("#self-close-box").hidden = !(state.category && state.category.self_close);
  if ($("#self-close-box").hidden) {
    $("#report-self-close").checked = false;
    $("#self-close-fields").hidden = true;
  }
  renderCategories();
}

// The report's pin: draggable, and a tap on the map moves it; either sets the point by hand.
function reportPin(m, latlng) {
  if (!m._pick) {
    m._pick = L.marker(latlng, { draggable: true }).addTo(m);
    const setByHand = (ll) => {
      // Set by hand: the GPS accuracy no longer describes this point.
      state.reportPos = { lon: ll.lng, lat: ll.lat, accuracy: null, moved: true, at: new Date().toISOString() };
      showReportPos();
    };
    m._pick.on("dragend", () => setByHand(m._pick.getLatLng()));
    m.on("click", (e) => { m._pick.setLatLng(e.latlng); setByHand(e.latlng); });
  }
  m._pick.setLatLng(latlng);
  return m._pick;
}

async function enterReport() {
  $("#report-done").hidden = true;
  if (!state.categories.length) await loadCategories();
  renderCategories();
  const m = makeMap("report");
  const pos = await locate();
  if (!pos && state.reportPos && !state.reportPos.moved) state.reportPos = null; // no stale fix
  if (pos && !(state.reportPos && state.reportPos.moved)) {
    state.reportPos = Object.assign({}, pos);
    reportPin(m, [pos.lat, pos.lon]);
    m.setView([pos.lat, pos.lon], Math.max(m.getZoom() || 0, 16));
  } else if (!state.reportPos) {
    // No fix (indoors, location denied): a pin at the grid's centre, to be placed by tapping.
    reportPin(m, m._grid ? m._grid.getBounds().getCenter() : m.getCenter());
  }
  showReportPos();
}

function showReportPos() {
  const p = state.reportPos;
  $("#report-position").textContent = p
    ? `位置 ${p.lon.toFixed(6)}, ${p.lat.toFixed(6)}${p.moved ? " (已在地图上选择)" : ` · 精度 ±${Math.round(p.accuracy)} 米`}`
    : "无法取得位置: 请开启定位, 或点击地图选择事发位置";
}

async function submitReport(ev) {
  ev.preventDefault();
  const err = (m) => { $("#report-error").textContent = m; };
  err("");
  const description = $("#report-description").value.trim();
  const selfClose = $("#report-self-close").checked;
  if (!state.category) return err("请选择事件类别");
  if (!description) return err("请填写情况描述");
  if (state.reportPhotos.length < 1) return err("请拍摄或选择 1–6 张现场照片");
  if (selfClose && !$("#report-result").value.trim()) return err("自行结案须填写处置结果");
  if (selfClose && !state.afterPhoto) return err("自行结案须附处置后照片");
  // Where the worker is now (a fresh fix), unless the point was set by hand on the map.
  let where = state.reportPos;
  if (!where || !where.moved) {
    const fresh = await locate();
    if (!fresh) {
      state.reportPos = null;
      showReportPos();
      return err("没有当前位置: 请开启定位, 或在地图上点选位置");
    }
    where = Object.assign({}, fresh);
  }
  const after = selfClose ? [state.afterPhoto] : [];
  const payload = {
    category: state.category.code,
    description,
    lon: where.lon,
    lat: where.lat,
    accuracy: where.moved ? null : where.accuracy,
    position: where.moved ? "manual" : "gps",
    fix_at: where.at,
    discovered_at: new Date().toISOString(),
    self_close: selfClose,
    result: selfClose ? $("#report-result").value.trim() : "",
  };
  const label = `${state.category.name} · ${description.slice(0, 20)}`;
  const key = await enqueue("report", payload, state.reportPhotos, label, after);
  // The form is cleared at once: the report now lives in the queue.
  $("#report-form").reset();
  state.reportPhotos = [];
  state.afterPhoto = null;
  state.reportPos = null; // the next report locates afresh
  $("#report-previews").innerHTML = "";
  $("#report-after-preview").innerHTML = "";
  $("#self-close-fields").hidden = true;
  state.category = null;
  pickCategory(null);
  await outcome(key, "#report-done", (r) => r.self_closed
    ? `已当场处置结案。事件编号 ${r.tracking_no}`
    : `已上报。事件编号 ${r.tracking_no}, 已送「${r.holder}」处理`);
}

// ---- visits

// Searches overlap (opening the screen, picking a kind, typing): only the answer to the latest
// one is shown, whatever order the answers arrive in. `state.searching` counts those under way.
let searchSeq = 0;
state.searching = 0;

async function searchTargets(near) {
  const seq = ++searchSeq;
  state.searching += 1;
  try {
    const params = new URLSearchParams({ kind: state.visitKind, q: $("#visit-search").value.trim() });
    if (near) {
      const p = await locate();
      if (p) { params.set("lon", p.lon); params.set("lat", p.lat); }
    }
    await showTargets(seq, params);
  } finally {
    state.searching -= 1;
  }
}

async function showTargets(seq, params) {
  try {
    const r = await api("/api/field/targets?" + params);
    const list = r.ok ? await r.json() : [];
    if (seq !== searchSeq) return; // the answer to an older search: a newer one was asked
    state.targets = list;
    $("#visit-targets").innerHTML = list.map((t, i) => `<li class="list-group-item list-group-item-action" data-target="${i}">${esc(t.label)}<br><span class="text-secondary">${esc(t.detail)}${t.distance_m != null ? " · " + fmtMeters(t.distance_m) : ""}</span></li>`).join("") || '<li class="list-group-item text-secondary">没有找到</li>';
  } catch (e) {
    if (seq === searchSeq && !(e instanceof AuthError)) $("#visit-targets").innerHTML = '<li class="list-group-item text-secondary">离线时无法搜索</li>';
  }
}

function chooseTarget(t) {
  state.visitTarget = t;
  state.visitPhotos = [];
  $("#visit-previews").innerHTML = "";
  $("#visit-form").reset();
  $("#visit-form").hidden = false;
  $("#visit-done").hidden = true;
  $("#visit-target").textContent = `走访对象: ${t.label}`;
  $("#facts-person").hidden = t.kind !== "person";
  $("#facts-house").hidden = t.kind !== "house";
  const f = t.facts || {};
  $("#fact-actual-address").placeholder = f.actual_address ? `现为: ${f.actual_address}` : "";
  $("#fact-phone").placeholder = f.phone ? `现为: ${f.phone}` : "";
  $("#visit-position").textContent = state.pos ? `位置 ±${Math.round(state.pos.accuracy)} 米` : "";
  $("#visit-form").scrollIntoView({ block: "start" });
}

async function enterVisit() {
  $("#visit-done").hidden = true;
  const due = (state.home && state.home.due_visits) || [];
  $("#visit-due").innerHTML = due.map((d) => `<li class="list-group-item list-group-item-action" data-person="${d.person_id}">待走访: ${esc(d.name)} · ${esc(d.tags.join("、"))}</li>`).join("");
  if (!state.targets) searchTargets(false);
}

async function submitVisit(ev) {
  ev.preventDefault();
  const t = state.visitTarget;
  if (!t) return;
  const facts = {};
  const box = t.kind === "person" ? "#facts-person" : t.kind === "house" ? "#facts-house" : null;
  if (box) $$(`${box} [data-fact]`).forEach((el) => { if (el.value.trim()) facts[el.dataset.fact] = el.value.trim(); });
  const pos = await locate(); // never an old fix from when Home was opened
  const payload = {
    target_kind: t.kind,
    target_id: t.id,
    visit_type: $("#visit-type").value,
    notes: $("#visit-notes").value.trim(),
    lon: pos ? pos.lon : null,
    lat: pos ? pos.lat : null,
    accuracy: pos ? pos.accuracy : null,
    fix_at: pos ? pos.at : null,
    visited_at: new Date().toISOString(),
    facts,
  };
  const key = await enqueue("visit", payload, state.visitPhotos, t.label);
  $("#visit-form").hidden = true;
  state.visitPhotos = [];
  await outcome(key, "#visit-done", (r) => `已保存走访: ${r.target}${Object.keys(r.facts || {}).length ? " · 现场信息已更新 (网格员核查)" : ""}`);
  loadHome();
}

// ---- patrols

let sampler = null;

async function enterPatrol() {
  const m = makeMap("patrol");
  state.patrol = (await FieldStore.kvGet("patrol:" + state.username)) || null;
  $("#patrol-start").hidden = !!state.patrol;
  $("#patrol-stop").hidden = !state.patrol;
  if (state.patrol) {
    $("#patrol-state").textContent = `巡查中, 开始于 ${fmtTime(state.patrol.started)} · 已记录 ${state.patrol.count || 0} 个位置`;
    startSampler();
  }
  if (!m._track) m._track = L.polyline([], { color: "#198754", weight: 4 }).addTo(m);
  await showLastPatrol();
}

async function showLastPatrol() {
  const all = await FieldStore.all();
  const mine = all.filter((i) => i.user === state.username && ["track", "patrol_stop"].includes(i.kind) && i.status === "done");
  const last = mine[mine.length - 1];
  if (!last) return;
  const r = last.result;
  $("#patrol-distance").textContent = fmtMeters(r.distance_m);
  $("#patrol-duration").textContent = fmtDuration(r.duration_s);
  $("#patrol-coverage").textContent = `${fmtPct(r.coverage)} (${r.buildings_covered}/${r.buildings} 栋)`;
}

async function startPatrol() {
  const key = FieldStore.newKey("patrol");
  state.patrol = { key, started: new Date().toISOString(), buffer: [], count: 0 };
  await FieldStore.kvSet("patrol:" + state.username, state.patrol);
  await enqueue("patrol_start", { patrol: key, at: state.patrol.started }, [], "巡查开始");
  $("#patrol-start").hidden = true;
  $("#patrol-stop").hidden = false;
  $("#patrol-state").textContent = "巡查中…";
  state.maps.patrol._track.setLatLngs([]);
  startSampler();
  await samplePoint();
  sync();
}

function startSampler() {
  if (sampler) return;
  sampler = setInterval(samplePoint, SAMPLE_SECONDS * 1000);
}

async function samplePoint() {
  if (!state.patrol) return;
  const p = await locate();
  if (!p || !state.patrol) return;
  state.patrol.buffer.push({ at: new Date().toISOString(), lon: p.lon, lat: p.lat, accuracy: p.accuracy });
  state.patrol.count = (state.patrol.count || 0) + 1;
  await FieldStore.kvSet("patrol:" + state.username, state.patrol);
  const m = state.maps.patrol;
  if (m && m._track) m._track.addLatLng([p.lat, p.lon]);
  $("#patrol-state").textContent = `巡查中, 开始于 ${fmtTime(state.patrol.started)} · 已记录 ${state.patrol.count} 个位置`;
  if (state.patrol.buffer.length >= FLUSH_POINTS) await flushTrack();
}

async function flushTrack() {
  if (!state.patrol || !state.patrol.buffer.length) return;
  const points = state.patrol.buffer;
  state.patrol.buffer = [];
  await FieldStore.kvSet("patrol:" + state.username, state.patrol);
  await enqueue("track", { patrol: state.patrol.key, points }, [], `${points.length} 个位置`);
  await sync();
  await showLastPatrol();
}

async function stopPatrol() {
  if (!state.patrol) return;
  clearInterval(sampler);
  sampler = null;
  await samplePoint();
  await flushTrack();
  const key = await enqueue("patrol_stop", { patrol: state.patrol.key, at: new Date().toISOString() }, [], "巡查结束");
  state.patrol = null;
  await FieldStore.kvSet("patrol:" + state.username, null);
  $("#patrol-start").hidden = false;
  $("#patrol-stop").hidden = true;
  const item = await outcome(key, "#patrol-state", (r) => `巡查已结束: 里程 ${fmtMeters(r.distance_m)}, 时长 ${fmtDuration(r.duration_s)}, 覆盖率 ${fmtPct(r.coverage)}`);
  if (item.status === "done") await showLastPatrol();
}

// ---- check tasks

async function enterTasks() {
  $("#task-done").hidden = true;
  let tasks = [];
  try {
    const r = await api("/api/field/check-tasks");
    if (r.ok) {
      tasks = await r.json();
      await FieldStore.kvSet("tasks:" + state.username, tasks);
    }
  } catch (e) {
    if (e instanceof AuthError) return;
    tasks = (await FieldStore.kvGet("tasks:" + state.username)) || [];
  }
  const sent = new Set((await FieldStore.all()).filter((i) => i.kind === "check" && i.status !== "refused" && i.payload).map((i) => i.payload.task_id));
  tasks = tasks.filter((t) => !sent.has(t.id));
  state.tasks = tasks;
  $("#task-list").innerHTML = tasks.map((t, i) => `<li class="list-group-item list-group-item-action" data-task="${i}">${esc(t.subject)} · ${esc(t.field_name)}<br><span class="text-secondary">${t.candidates.length} 个候选值 · ${esc(fmtTime(t.created_at))}</span></li>`).join("") || '<li class="list-group-item text-secondary">没有待处理的核查任务</li>';
  $("#task-form").hidden = true;
}

function chooseTask(t) {
  state.task = t;
  state.taskPhotos = [];
  $("#task-form").reset();
  $("#task-previews").innerHTML = "";
  $("#task-title").textContent = `${t.subject} 的「${t.field_name}」有不同来源的值, 请现场核实:`;
  $("#task-candidates").innerHTML = t.candidates.map((c) => `<div class="form-check"><input class="form-check-input" type="radio" name="task-choice" id="cand-${c.index}" value="${c.index}"><label class="form-check-label" for="cand-${c.index}"><b>${esc(c.value)}</b> · 来源 ${esc(c.source_name || c.source)}${c.as_of ? " · " + esc(c.as_of.slice(0, 10)) : ""}</label></div>`).join("");
  $("#task-site-box").hidden = !!t.legal;
  $("#task-none-box").hidden = !t.legal;
  $("#task-error").textContent = "";
  $("#task-form").hidden = false;
  $("#task-form").scrollIntoView({ block: "start" });
}

async function submitTask(ev) {
  ev.preventDefault();
  const t = state.task;
  const picked = $('input[name="task-choice"]:checked');
  const payload = { task_id: t.id, note: $("#task-note").value.trim() };
  const err = (m) => { $("#task-error").textContent = m; };
  err("");
  if (picked && picked.value === "none") {
    if (payload.note.length < 2) return err("请在备注中说明现场看到的情况, 再退回主管部门");
    payload.none_right = true;
  } else if (picked && picked.value !== "site") {
    payload.choice = parseInt(picked.value, 10);
  } else if (t.legal) {
    return err("请确认一个候选值, 或选择「以上都不对」");
  } else {
    payload.value = $("#task-value").value.trim();
    if (!payload.value) return err("请选择一个候选值, 或填写现场核实的值");
  }
  const key = await enqueue("check", payload, state.taskPhotos, `${t.subject} · ${t.field_name}`);
  $("#task-form").hidden = true;
  await outcome(key, "#task-done", (r) => r.status === "referred"
    ? "已退回主管部门核实 (附您的备注)"
    : `核查结果已提交: ${r.value}`);
  enterTasks().then(() => { $("#task-done").hidden = false; });
}

// ---- handling

async function enterHandle() {
  $("#handle-done").hidden = true;
  await loadHome();
  const h = state.home;
  const seen = new Set();
  const list = h ? [...h.overdue, ...h.due_soon, ...h.todo].filter((e) => !seen.has(e.tracking_no) && seen.add(e.tracking_no)) : [];
  state.events = list;
  $("#handle-list").innerHTML = list.map((e) => `<li class="list-group-item list-group-item-action" data-event="${esc(e.tracking_no)}">${esc(e.title)}<br><span class="text-secondary">${esc(e.tracking_no)} · ${esc(e.status_name)}${e.warning_level >= 2 ? " · <b class='text-danger'>超期</b>" : e.warning_level === 1 ? " · <b class='text-warning'>临期</b>" : ""}</span></li>`).join("") || '<li class="list-group-item text-secondary">没有派给我的事件</li>';
  $("#handle-detail").hidden = true;
}

async function openEvent(no) {
  if ($("#screen-handle").hidden) await show("handle");
  let e = (state.events || []).find((x) => x.tracking_no === no) || null;
  try {
    const r = await api(`/api/v1/events/${encodeURIComponent(no)}`);
    if (r.ok) e = await r.json();
  } catch (err) { /* offline: the brief from home */ }
  if (!e) return;
  state.event = e;
  state.handlePhotos = [];
  $("#handle-previews").innerHTML = "";
  $("#handle-form").reset();
  $("#handle-title").textContent = e.title;
  $("#handle-meta").textContent = `${e.tracking_no} · ${e.category_name} · ${e.status_name}${e.deadline_at ? " · 时限 " + fmtTime(e.deadline_at) : ""}`;
  $("#handle-description").textContent = e.description;
  $("#handle-receive").hidden = e.status !== "dispatched";
  $("#handle-feedback").disabled = e.status !== "handling";
  $("#handle-detail").hidden = false;
  $("#handle-done").hidden = true;
}

async function handleAction(action) {
  const e = state.event;
  const comment = $("#handle-comment").value.trim();
  if ((action === "feedback" || action === "return") && !comment) {
    $("#handle-done").hidden = false;
    $("#handle-done").className = "alert alert-danger mt-2";
    $("#handle-done").textContent = action === "return" ? "退回须填写理由" : "反馈须填写处置情况";
    return;
  }
  // The version guards against acting on a state someone else changed; an action queued after
  // another one that has not been sent yet carries none (the workflow rules still apply).
  const payload = { event: e.tracking_no, action, version: e.version, comment };
  const key = await enqueue("act", payload, action === "feedback" ? state.handlePhotos : [], `${ACTION_LABELS[action]} ${e.tracking_no}`);
  const item = await outcome(key, "#handle-done", (r) => `已${ACTION_LABELS[action]}: 事件 ${r.tracking_no} 现由「${r.holder}」办理`);
  if (item.status === "done") {
    e.status = item.result.status;
    e.version = item.result.version;
  } else if (item.status === "waiting") {
    e.status = { receive: "handling", feedback: "feedback", return: "accepted" }[action];
    e.version = null;
  }
  e.status_name = STATUS_LABELS[e.status] || e.status_name;
  $("#handle-meta").textContent = `${e.tracking_no} · ${e.category_name} · ${e.status_name}${item.status === "waiting" ? " (待发送)" : ""}`;
  $("#handle-receive").hidden = e.status !== "dispatched";
  $("#handle-feedback").disabled = e.status !== "handling";
}

// ------------------------------------------------------------------------------ wiring

function wire() {
  document.addEventListener("click", (ev) => {
    const go = ev.target.closest("[data-go]");
    if (go) return show(go.dataset.go);
    const cat = ev.target.closest("[data-cat]");
    if (cat) return pickCategory(cat.dataset.cat);
    const evn = ev.target.closest("[data-event]");
    if (evn) return openEvent(evn.dataset.event);
    const person = ev.target.closest("[data-person]");
    if (person) {
      state.visitKind = "person";
      show("visit");
      const d = (state.home.due_visits || []).find((x) => String(x.person_id) === person.dataset.person);
      return chooseTarget({ kind: "person", id: d.person_id, label: d.name, facts: {} });
    }
    const target = ev.target.closest("[data-target]");
    if (target) return chooseTarget(state.targets[parseInt(target.dataset.target, 10)]);
    const task = ev.target.closest("[data-task]");
    if (task) return chooseTask(state.tasks[parseInt(task.dataset.task, 10)]);
    const kind = ev.target.closest("[data-kind]");
    if (kind) {
      state.visitKind = kind.dataset.kind;
      $$("[data-kind]").forEach((b) => b.classList.toggle("active", b === kind));
      $("#visit-form").hidden = true;
      return searchTargets(false);
    }
    const ack = ev.target.closest(".ack");
    if (ack) return FieldStore.remove(ack.closest("[data-key]").dataset.key).then(renderQueue);
    const edit = ev.target.closest(".edit");
    if (edit) {
      const li = edit.closest("[data-key]");
      if (li.querySelector(".resend-form")) return;
      return FieldStore.get(li.dataset.key).then((item) => { if (item) li.insertAdjacentHTML("beforeend", editorHtml(item)); });
    }
  });
  document.addEventListener("submit", (ev) => {
    const form = ev.target.closest(".resend-form");
    if (!form) return;
    ev.preventDefault();
    resend(form.closest("[data-key]").dataset.key, form);
  });
  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);
  $("#cat-search").addEventListener("input", renderCategories);
  $("#report-photos").addEventListener("change", (e) => takePhotos(e.target, state.reportPhotos, 6, "#report-previews"));
  $("#report-after").addEventListener("change", async (e) => {
    const list = [];
    await takePhotos(e.target, list, 1, "#report-after-preview");
    state.afterPhoto = list[0] || null;
  });
  $("#report-self-close").addEventListener("change", (e) => { $("#self-close-fields").hidden = !e.target.checked; });
  $("#report-locate").addEventListener("click", () => { state.reportPos = null; enterReport(); });
  $("#report-form").addEventListener("submit", submitReport);
  let timer = null;
  $("#visit-search").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => searchTargets(false), 300); });
  $("#visit-near").addEventListener("click", () => searchTargets(true));
  $("#visit-photo").addEventListener("change", (e) => takePhotos(e.target, state.visitPhotos, 3, "#visit-previews"));
  $("#visit-form").addEventListener("submit", submitVisit);
  $("#patrol-start").addEventListener("click", startPatrol);
  $("#patrol-stop").addEventListener("click", stopPatrol);
  $("#task-photo").addEventListener("change", (e) => takePhotos(e.target, state.taskPhotos, 3, "#task-previews"));
  $("#task-value").addEventListener("focus", () => { $("#task-onsite").checked = true; });
  $("#task-form").addEventListener("submit", submitTask);
  $("#handle-receive").addEventListener("click", () => handleAction("receive"));
  $("#handle-feedback").addEventListener("click", () => handleAction("feedback"));
  $("#handle-return").addEventListener("click", () => handleAction("return"));
  $("#handle-photos").addEventListener("change", (e) => takePhotos(e.target, state.handlePhotos, 6, "#handle-previews"));
  $("#sync-now").addEventListener("click", () => sync());
  window.addEventListener("online", () => sync());
  window.addEventListener("offline", renderQueue);
  for (const t of ["pointerdown", "keydown"]) document.addEventListener(t, () => { if (state.token) touch(); }, { passive: true });
  setInterval(() => {
    if (state.token && idleExpired()) expire();
  }, 30000);
  setInterval(() => sync(true), 30000);
}

function start() {
  $("#idle-minutes").textContent = String(IDLE_MINUTES);
  $("#login-username").value = state.username;
  const expired = state.token && idleExpired();
  if (expired) dropToken();
  wire();
  if (expired || !state.token) clearPersonalData();
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/m/sw.js", { scope: "/m/" }).catch(() => {});
  const first = (location.hash || "#home").slice(1);
  show(SCREENS.includes(first) ? first : "home");
  if (state.token) { touch(); sync(); }
  renderQueue();
}

start();
