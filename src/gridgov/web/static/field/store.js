/* The device's queue of unsent work (IndexedDB): each item keeps its idempotency key, its
   photos as Blobs until uploaded, and what the server answered. Nothing is removed unseen. */
"use strict";

const FieldStore = (() => {
  const DB = "gridgov-field";
  let dbp = null;

  function open() {
    if (dbp) return dbp;
    dbp = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => {
        const db = req.result;
        const q = db.createObjectStore("queue", { keyPath: "key" });
        q.createIndex("seq", "seq");
        db.createObjectStore("kv");
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    return dbp;
  }

  function tx(store, mode, fn) {
    return open().then((db) => new Promise((resolve, reject) => {
      const t = db.transaction(store, mode);
      const s = t.objectStore(store);
      let out;
      Promise.resolve(fn(s)).then((v) => { out = v; });
      t.oncomplete = () => resolve(out);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    }));
  }

  function req(r) {
    return new Promise((resolve, reject) => {
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }

  function newKey(prefix) {
    const rnd = crypto.getRandomValues(new Uint8Array(12));
    return prefix + "-" + Array.from(rnd, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  return {
    newKey,
    put(item) { return tx("queue", "readwrite", (s) => req(s.put(item))); },
    get(key) { return tx("queue", "readonly", (s) => req(s.get(key))); },
    all() {
      return tx("queue", "readonly", (s) => req(s.index("seq").getAll()));
    },
    remove(key) { return tx("queue", "readwrite", (s) => req(s.delete(key))); },
    kvGet(k) { return tx("kv", "readonly", (s) => req(s.get(k))); },
    kvSet(k, v) { return tx("kv", "readwrite", (s) => req(s.put(v, k))); },
    kvDelete(k) { return tx("kv", "readwrite", (s) => req(s.delete(k))); },
    kvKeys() { return tx("kv", "readonly", (s) => req(s.getAllKeys())); },
  };
})();
