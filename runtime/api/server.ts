/**
 * A randomuser-compatible HTTP API for offline use: GET /api/?results=N&seed=S&page=P.
 * Admin: GET /admin/faults, PUT|POST /admin/faults (JSON, merged), GET /healthz.
 */
import crypto from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { FaultState, faultsFromQuery, type Faults, type FaultsInput } from "./faults";
import { generatePage } from "./generate";
import { sleep } from "../lib/sleep";
import type { Logger } from "../lib/logger";

export const MAX_RESULTS = 5000;

export interface ApiServerOptions {
  port?: number;
  host?: string;
  faults?: FaultsInput;
  log?: Logger;
}

export interface ApiServer {
  url: string;
  port: number;
  close(): Promise<void>;
  setFaults(f: FaultsInput): Faults;
  getFaults(): Faults;
  /** Requests answered so far, by status. */
  stats(): Record<number, number>;
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export function startApiServer(opts: ApiServerOptions = {}): Promise<ApiServer> {
  const state = new FaultState(opts.faults ?? {});
  const counts: Record<number, number> = {};
  const count = (s: number) => (counts[s] = (counts[s] ?? 0) + 1);

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      opts.log?.error({ err: e }, "api request failed");
      if (!res.headersSent) send(res, 500, { error: "internal error" });
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const u = new URL(req.url ?? "/", "http://localhost");
    const path = u.pathname.replace(/\/+$/, "") || "/";
    if (path === "/healthz") return send(res, 200, { status: "ok" });
    if (path === "/admin/faults") {
      if (req.method === "GET") return send(res, 200, state.get());
      if (req.method === "PUT" || req.method === "POST") {
        try {
          return send(res, 200, state.set(JSON.parse((await readBody(req)) || "{}") as FaultsInput));
        } catch (e) {
          return send(res, 400, { error: (e as Error).message });
        }
      }
      return send(res, 405, { error: "use GET or PUT" });
    }
    if (path !== "/api") return send(res, 404, { error: "not found: use /api/?results=N&seed=S&page=P" });

    let faults: Faults;
    try {
      faults = faultsFromQuery(u.searchParams, state.get());
    } catch (e) {
      count(400);
      return send(res, 400, { error: `bad fault parameter: ${(e as Error).message}` });
    }
    // Decided on arrival: "the next N requests" are those that arrive next, not those whose
    // latency ends next (a request its client gave up on must not take a later request's fault).
    const status = state.errorFor(faults);
    if (faults.latencyMs > 0) await sleep(faults.latencyMs);
    if (status !== undefined) {
      count(status);
      return send(
        res,
        status,
        { error: status === 429 ? "Too many requests" : "Uh oh, something has gone wrong." },
        status === 429 ? { "retry-after": "0" } : {},
      );
    }
    const results = Number(u.searchParams.get("results") ?? "1");
    const page = Number(u.searchParams.get("page") ?? "1");
    if (!Number.isInteger(results) || results < 1 || results > MAX_RESULTS) {
      count(400);
      return send(res, 400, { error: `results must be an integer from 1 to ${MAX_RESULTS}` });
    }
    if (!Number.isInteger(page) || page < 1) {
      count(400);
      return send(res, 400, { error: "page must be a positive integer" });
    }
    const seed = u.searchParams.get("seed") || crypto.randomBytes(8).toString("hex");
    count(200);
    send(res, 200, generatePage(seed, page, results, faults.malformedRate));
  }

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      const port = (server.address() as AddressInfo).port;
      resolve({
        url: `http://${opts.host ?? "127.0.0.1"}:${port}`,
        port,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
        setFaults: (f) => state.set(f),
        getFaults: () => state.get(),
        stats: () => ({ ...counts }),
      });
    });
  });
}
