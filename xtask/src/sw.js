// WBC Explorer's service worker, written by `cargo xtask service-worker` after every build
// (trunk's post_build hook): the build's own files are stored on the first visit, so the app
// opens and analyses cells with the network off. One cache per build, named by a hash of its
// contents: a new build fills its own cache and drops the old ones when it takes over, so an
// old page never meets a new worker (trunk's file names carry hashes too).
const VERSION = "__VERSION__";
const CACHE = "wbc-explorer-" + VERSION;
const ASSETS = __ASSETS__;
// Each build file's size in bytes, by path: the status is answered from these and from the
// headers of what was stored later, never by reading the stored bodies (tens of MB).
const SIZES = __SIZES__;

async function stored() {
  const cache = await caches.open(CACHE);
  let bytes = 0;
  const requests = await cache.keys();
  for (const request of requests) {
    const path = "." + new URL(request.url).pathname;
    if (path in SIZES) {
      bytes += SIZES[path];
    } else {
      const response = await cache.match(request);
      bytes += Number(response && response.headers.get("content-length")) || 0;
    }
  }
  return { type: "offline-ready", version: VERSION, files: requests.length, bytes };
}

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(ASSETS)));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("wbc-explorer-") && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
    const status = await stored();
    for (const client of await self.clients.matchAll({ type: "window" })) client.postMessage(status);
  })());
});

self.addEventListener("message", (event) => {
  if (event.data === "status" && event.source) {
    event.waitUntil(stored().then((status) => event.source.postMessage(status)));
  }
});

// Same-origin GETs: this build's cache first (query strings ignored, so `?cpu` is the page),
// then the network, keeping what it answers (the reference index, sample cells fetched
// later). A page request with neither network nor cache gets the stored page.
self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(request, { ignoreSearch: true });
    // A stored response carries the URL it was stored under, and a worker takes its address
    // from the response: the analysis worker would lose its query (`?cpu`, the tests' fault
    // switches). A copy without a URL leaves the address as requested.
    if (hit) {
      return new Response(hit.body, { status: hit.status, statusText: hit.statusText, headers: hit.headers });
    }
    try {
      const response = await fetch(request);
      // Stored within the event's lifetime: the worker is not stopped halfway through.
      if (response.ok && response.type === "basic") event.waitUntil(cache.put(request, response.clone()));
      return response;
    } catch (error) {
      if (request.mode === "navigate") {
        const page = await cache.match("./index.html");
        if (page) return page;
      }
      throw error;
    }
  })());
});
