// Runs sw.js (given as `script`) in Node with stand-ins for the service worker's world:
// a cache that counts every read of a stored body, and events that record waitUntil.
let bodyReads = 0;
class FakeResponse {
  constructor(size, headers) {
    this.size = size;
    this.headers = new Map(Object.entries(headers || {}));
    this.ok = true;
    this.type = "basic";
    this.status = 200;
    this.statusText = "OK";
  }
  clone() { return new FakeResponse(this.size, Object.fromEntries(this.headers)); }
  get body() { bodyReads++; return null; }
  arrayBuffer() { bodyReads++; return Promise.resolve(new ArrayBuffer(this.size)); }
  blob() { bodyReads++; return Promise.resolve({ size: this.size }); }
  text() { bodyReads++; return Promise.resolve("x".repeat(this.size)); }
}
const origin = "http://app.test";
const store = new Map();
const key = (r) => (typeof r === "string" ? new URL(r, origin + "/").href : r.url);
const cache = {
  keys: async () => [...store.keys()].map((url) => ({ url })),
  match: async (r) => store.get(key(r)),
  put: (r, response) => new Promise((done) => setTimeout(() => { store.set(key(r), response); done(); }, 20)),
  addAll: async () => {},
};
const listeners = {};
const self = {
  addEventListener: (type, f) => { listeners[type] = f; },
  location: { origin },
  clients: { claim: async () => {}, matchAll: async () => [] },
};
const caches = { open: async () => cache, keys: async () => [], delete: async () => true };
const network = async () => new FakeResponse(300, { "content-length": "300" });
vm.runInNewContext(script, { self, caches, fetch: network, URL, Response, console, setTimeout });

(async () => {
  store.set(origin + "/", new FakeResponse(100));
  store.set(origin + "/index.html", new FakeResponse(100));
  store.set(origin + "/reference/index.json", new FakeResponse(1234, { "content-length": "1234" }));
  // "status": the page asks how much is stored.
  let status;
  const waited = [];
  listeners.message({ data: "status", source: { postMessage: (m) => { status = m; } }, waitUntil: (p) => waited.push(p) });
  await Promise.all(waited);
  if (!status) throw new Error("no status answered");
  console.log(`status bytes ${status.bytes}, ${bodyReads} bodies read`);
  if (bodyReads !== 0) throw new Error("the status read stored bodies");
  if (status.bytes !== 100 + 100 + 1234) throw new Error("wrong byte count " + status.bytes);
  // A same-origin GET that is not stored: fetched, answered, and stored within the event.
  let answer;
  const kept = [];
  listeners.fetch({
    request: { url: origin + "/samples/a.jpg", method: "GET", mode: "cors" },
    respondWith: (p) => { answer = p; },
    waitUntil: (p) => kept.push(p),
  });
  await answer;
  if (kept.length !== 1) throw new Error("cache.put ran outside waitUntil");
  await Promise.all(kept);
  if (!store.has(origin + "/samples/a.jpg")) throw new Error("the fetched file was not stored");
  console.log("stored within the event");
})().catch((e) => { console.error("FAILED: " + e.message); process.exit(1); });
