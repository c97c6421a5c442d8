/* 网格通 service worker: keeps the app shell (page, scripts, styles, Leaflet) on the device so
   the app opens without a network. Data requests (/api/) are never cached here: the app queues
   its writes in IndexedDB and keeps copies of what it last read. */
"use strict";

const CACHE = "gridgov-field-v1";
const SHELL = [
  "/m/",
  "/m/manifest.webmanifest",
  "/static/app/field/app.js",
  "/static/app/field/store.js",
  "/static/app/field/field.css",
  "/static/app/field/icon.svg",
  "/static/vendor/bootstrap/css/bootstrap.min.css",
  "/static/vendor/leaflet/leaflet.css",
  "/static/vendor/leaflet/leaflet.js",
  "/static/vendor/leaflet/images/marker-icon.png",
  "/static/vendor/leaflet/images/marker-icon-2x.png",
  "/static/vendor/leaflet/images/marker-shadow.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
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
  if (url.pathname.startsWith("/api/")) return; // straight to the network
  const shell = url.pathname === "/m/" ? "/m/" : url.pathname;
  if (!SHELL.includes(shell)) return;
  // Network first (so updates arrive), the cached copy when offline.
  event.respondWith(
    fetch(event.request)
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
