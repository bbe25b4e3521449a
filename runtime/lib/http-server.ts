/** The tiny HTTP server of each worker: GET /metrics (Prometheus text) and GET /healthz. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { healthProblems, isHealthy } from "./health";
import { metrics } from "./metrics";

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export function startMetricsServer(
  port: number,
  healthy: () => boolean = isHealthy,
  host = "127.0.0.1",
): Promise<MetricsServer> {
  const registry = metrics().registry;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/metrics") {
      registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(body);
        })
        .catch((e: Error) => {
          res.writeHead(500);
          res.end(e.message);
        });
    } else if (req.method === "GET" && path === "/healthz") {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: ok ? "ok" : "unhealthy", problems: healthProblems() }));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
