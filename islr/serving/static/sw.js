const SITE = { build: "dev", files: [] }; // this line is replaced by `islr web build`
// The static site's service worker (islr/serving/site.py writes it with the build's files): on
// install it fetches every file of the build once into a cache named after the build, unpacking
// the gzipped ones (X.gz is cached as X); then the site starts and runs with the network off. A new
// build is a new worker with a new cache name: it takes over and deletes the old caches.
const CACHE = `islr-${SITE.build}`;
const GZIP_MAGIC = [0x1f, 0x8b];
const TYPES = { ".wasm": "application/wasm", ".json": "application/json", ".js": "text/javascript" };

function typeOf(path) {
  const dot = path.lastIndexOf(".");
  return TYPES[path.slice(dot)] ?? "application/octet-stream";
}

async function tell(message) {
  for (const client of await self.clients.matchAll({ includeUncontrolled: true })) client.postMessage(message);
}

/** One file of the build: fetched (bypassing the HTTP cache), unpacked, cached as its path. */
async function fetchFile(cache, [path, stored]) {
  const response = await fetch(new Request(stored, { cache: "no-cache" }));
  if (!response.ok) throw new Error(`${stored}: HTTP ${response.status}`);
  let body = await response.arrayBuffer();
  const head = new Uint8Array(body.slice(0, 2));
  // a host may already have unpacked it (Content-Encoding: gzip for .gz files)
  if (stored !== path && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]) {
    const unpacked = new Response(new Blob([body]).stream().pipeThrough(new DecompressionStream("gzip")));
    body = await unpacked.arrayBuffer();
  }
  const type = path.endsWith(".html") ? "text/html" : (response.headers.get("content-type") ?? typeOf(path));
  const headers = { "content-type": stored !== path ? typeOf(path) : type };
  await cache.put(new URL(path, self.registration.scope).href, new Response(body, { headers }));
  return body.byteLength;
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      let done = 0;
      let bytes = 0;
      const queue = SITE.files.slice();
      const worker = async () => {
        while (queue.length) {
          bytes += await fetchFile(cache, queue.shift());
          done += 1;
          await tell({ type: "islr-install", build: SITE.build, done, total: SITE.files.length, bytes });
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith("islr-") && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      const page = url.pathname.endsWith("/") ? new URL("index.html", url).href : url.href.split("#")[0];
      const cached = await cache.match(page, { ignoreSearch: true });
      if (cached) return cached;
      // no islr server behind a static site: the page's probe of the API gets a quick 404
      if (url.pathname.includes("/v1/")) return new Response("no server API on a static site", { status: 404 });
      return fetch(request);
    })(),
  );
});
