/* 网格通 service worker: keeps the app shell (page, scripts, styles, Leaflet) on the device so
   the app opens without a network. Data requests (/api/) are never cached here: the app queues
   its writes in IndexedDB and keeps copies of what it last read. */
"use strict";

// Replaced by the server (/m/sw.js) with the package version and a digest of the shell.
const VERSION = "__VERSION__";
const CACHE = "gridgov-field-" + VERSION;
const V = "?v=" + VERSION;
const SHELL = [
  "/m/",
  "/m/manifest.webmanifest",
  "/static/app/field/app.js" + V,
  "/static/app/field/store.js" + V,
  "/static/app/field/field.css" + V,
  "/static/app/field/icon.svg" + V,
  "/static/vendor/bootstrap/css/bootstrap.min.css" + V,
  "/static/vendor/leaflet/leaflet.css" + V,
  "/static/vendor/leaflet/leaflet.js" + V,
  "/static/vendor/leaflet/images/marker-icon.png",
  "/static/vendor/leaflet/images/marker-icon-2x.png",
  "/static/vendor/leaflet/images/marker-shadow.png",
];

self.addEventListener("install", (event) => {
  // "no-cache": revalidated with the server, never a stale copy from the HTTP cache.
  const requests = SHELL.map((u) => new Request(u, { cache: "no-cache" }));
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(requests)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  // Data (/api/: personal data) is never cached here.
  if (url.pathname.startsWith("/api/")) return;
  const shell = url.pathname === "/m/" ? "/m/" : url.pathname + url.search;
  if (!SHELL.includes(shell)) return;
  // Network first (so updates arrive), revalidated past the HTTP cache ("no-cache"), the
  // cached copy when offline. A URL string, since a navigation Request cannot take options.
  event.respondWith(
    fetch(shell, { cache: "no-cache", credentials: "same-origin" })
      .then((resp) => {
        if (resp.ok) {
          const copy = resp.clone();
          caches.open(CACHE).then((c) => c.put(shell, copy));
        }
        return resp;
      })
      .catch(() => caches.match(shell)),
  );
});
