// Side by side with the seed's listener: one Node client for both servers.
//
//   node webhook_node.mjs listen
//       A listener as the seed's `listen --port 19900` describes it (POST /message with
//       {"from","message"}, kept in memory, answered {"ok":true}), rebuilt from that
//       description: the seed's own script is not published with it. Binds 127.0.0.1:0 and
//       prints `PORT=<port>` on stdout; runs until killed.
//   node webhook_node.mjs post URL MESSAGES CONCURRENCY SIZE
//       POSTs MESSAGES bodies of SIZE bytes with CONCURRENCY requests in flight over
//       keep-alive connections, and prints one JSON line: {"count","secs","p50_ms","p99_ms",
//       "max_ms","failed"}. A non-2xx answer counts as failed.
import http from "node:http";

const [mode, ...args] = process.argv.slice(2);

if (mode === "listen") {
  const inbox = [];
  const server = http.createServer((req, res) => {
    if (req.method !== "POST" || req.url !== "/message") {
      res.writeHead(404).end();
      return;
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        inbox.push({ from: body.from, message: body.message, at: new Date().toISOString() });
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ ok: true }));
      } catch {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(JSON.stringify({ ok: false, error: "bad json" }));
      }
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, "127.0.0.1", () => {
    process.stdout.write(`PORT=${server.address().port}\n`);
  });
} else if (mode === "post") {
  const [url, messages, concurrency, size] = args;
  const total = Number(messages);
  const inflight = Number(concurrency);
  const text = "x".repeat(Number(size));
  const agent = new http.Agent({ keepAlive: true, maxSockets: inflight });
  const target = new URL(url);
  const lat = [];
  let next = 0;
  let failed = 0;
  const one = (i) =>
    new Promise((resolve) => {
      const body = JSON.stringify({ from: `load${i % inflight}`, message: text, id: String(i) });
      const t = process.hrtime.bigint();
      const req = http.request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: "POST",
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on("end", () => {
            if (res.statusCode < 200 || res.statusCode > 299) failed++;
            lat.push(Number(process.hrtime.bigint() - t) / 1e6);
            resolve();
          });
        },
      );
      req.on("error", () => {
        failed++;
        resolve();
      });
      req.end(body);
    });
  const worker = async () => {
    while (next < total) {
      await one(next++);
    }
  };
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inflight }, worker));
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  lat.sort((a, b) => a - b);
  const at = (q) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] ?? 0;
  process.stdout.write(
    JSON.stringify({ count: lat.length, secs, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: lat[lat.length - 1] ?? 0, failed }) + "\n",
  );
  agent.destroy();
} else {
  process.stderr.write("usage: webhook_node.mjs listen | post URL MESSAGES CONCURRENCY SIZE\n");
  process.exit(2);
}
