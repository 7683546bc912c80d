// Service worker: the app shell is cached at install, then served from the cache, so the app
// opens with no network (at a locker, the phone often has none). CACHE and SHELL are filled
// in by build.mjs (the cache name carries a hash of the files: a new build replaces it).
const CACHE = "__CACHE__";
const SHELL = __SHELL__;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname.endsWith("/relay.json")) return; // the simulator relay: network only
  event.respondWith(
    caches.match(req.mode === "navigate" ? "./" : req, { ignoreSearch: true })
      .then((hit) => hit || fetch(req)));
});
