/**
 * The offline API for the benchmark, in a process of its own, with every page rendered before the
 * bench starts measuring: serving a page is then a write of bytes already in memory, so the API
 * takes almost no CPU from the 2 cores while ingest runs (rendering costs ~85 µs a record, as much
 * as ingest's own parse; in the bench's process it skewed ingest against its reference).
 *
 *   tsx bench/api-server.ts <seed>:<pages>:<results> ...
 *
 * Prints `READY <url>` on stdout once every page of every seed is rendered and it listens on an
 * ephemeral port of 127.0.0.1. Serves GET /api/?results=R&seed=S&page=P for the rendered pages
 * (the same bytes runtime/api/server.ts would send), 404 for any other page; GET /healthz.
 * Ends on SIGTERM or when stdin closes (the bench died).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { generatePage } from "../runtime/api/generate";

export interface PageSpec {
  seed: string;
  pages: number;
  results: number;
}

export function parseSpec(arg: string): PageSpec {
  const m = /^([A-Za-z0-9_.-]+):(\d+):(\d+)$/.exec(arg);
  if (!m) throw new Error(`bad page spec "${arg}": expected <seed>:<pages>:<results>`);
  return { seed: m[1], pages: Number(m[2]), results: Number(m[3]) };
}

const key = (seed: string, page: number, results: number) => `${seed}\u0000${page}\u0000${results}`;

function main(): void {
  const specs = process.argv.slice(2).map(parseSpec);
  if (specs.length === 0) throw new Error("usage: api-server.ts <seed>:<pages>:<results> ...");
  const bodies = new Map<string, Buffer>();
  for (const s of specs) {
    for (let p = 1; p <= s.pages; p++)
      bodies.set(key(s.seed, p, s.results), Buffer.from(JSON.stringify(generatePage(s.seed, p, s.results))));
  }
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://localhost");
    const path = u.pathname.replace(/\/+$/, "");
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
      return;
    }
    const body =
      path === "/api"
        ? bodies.get(
            key(
              u.searchParams.get("seed") ?? "",
              Number(u.searchParams.get("page")),
              Number(u.searchParams.get("results")),
            ),
          )
        : undefined;
    if (!body) {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":"page not pre-rendered"}');
      return;
    }
    res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": body.length }).end(body);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () => {
    process.stdout.write(`READY http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
  });
  const stop = () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.stdin.on("end", stop);
  process.stdin.resume();
}

if (require.main === module) main();
