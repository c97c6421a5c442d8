// Report forms: pick a point on a small map (or from the phone's position) and keep a stable
// Idempotency-Key per form, so a double-submitted report never makes two events.
(function () {
  "use strict";
  document.querySelectorAll("input.idem-key").forEach(function (el) {
    if (!el.value && window.crypto && crypto.randomUUID) { el.value = crypto.randomUUID(); }
  });
  var pick = document.getElementById("pick-map");
  if (pick && window.L) {
    var lonEl = document.getElementById(pick.dataset.lonField);
    var latEl = document.getElementById(pick.dataset.latField);
    var crsEl = document.getElementById("crs");
    var start = [parseFloat(latEl.value) || 29.87, parseFloat(lonEl.value) || 121.55];
    var map = L.map(pick).setView(start, 11);
    var marker = null;
    function put(lat, lon) {
      latEl.value = lat.toFixed(6); lonEl.value = lon.toFixed(6);
      if (crsEl) { crsEl.value = "wgs84"; }
      if (marker) { marker.setLatLng([lat, lon]); } else { marker = L.marker([lat, lon]).addTo(map); }
    }
    if (latEl.value && lonEl.value) { put(start[0], start[1]); }
    map.on("click", function (e) { put(e.latlng.lat, e.latlng.lng); });
    if (!lonEl.value && navigator.geolocation) {
      navigator.geolocation.getCurrentPosition(function (p) {
        put(p.coords.latitude, p.coords.longitude); map.setView([p.coords.latitude, p.coords.longitude], 15);
      }, function () {}, { timeout: 5000 });
    }
  }
  var em = document.getElementById("event-map");
  if (em && window.L) {
    var at = [parseFloat(em.dataset.lat), parseFloat(em.dataset.lon)];
    var m = L.map(em).setView(at, 15);
    L.marker(at).addTo(m);
  }
})();
