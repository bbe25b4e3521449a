import { strict as assert } from "node:assert";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Registry } from "prom-client";
import { createLogger } from "../../../runtime/lib/logger";
import { pushRunMetrics } from "../../../runtime/lib/push-metrics";

const log = createLogger("push-metrics-test", "silent");

describe("a one-shot run's metrics go to the Pushgateway as it ends", () => {
  let server: http.Server;
  let url: string;
  const seen: { method: string; path: string; body: string }[] = [];
  let status = 200;

  before(async () => {
    server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        seen.push({ method: req.method ?? "", path: req.url ?? "", body });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => {
    seen.length = 0;
    status = 200;
  });

  it("replaces the seed's group (PUT /metrics/job/ingest/seed/<seed>) with the run's counters and its end time", async () => {
    const registry = new Registry();
    new Counter({ name: "pipeline_records_out_total", help: "x", labelNames: ["worker"], registers: [registry] }).inc(
      { worker: "ingest" },
      7,
    );
    const t0 = Date.now() / 1000;
    assert.equal(await pushRunMetrics(registry, { url, job: "ingest", grouping: { seed: "lag-1" } }, log), true);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].method, "PUT");
    assert.equal(seen[0].path, "/metrics/job/ingest/seed/lag-1");
    assert.match(seen[0].body, /pipeline_records_out_total\{worker="ingest"\} 7/);
    const ended = Number(/^pipeline_run_last_success_timestamp_seconds (\S+)$/m.exec(seen[0].body)?.[1]);
    assert.ok(ended >= t0 - 1 && ended <= Date.now() / 1000 + 1, String(ended));
  });

  it("a gateway that refuses or is gone costs the run nothing: false, logged, no throw", async () => {
    status = 503;
    assert.equal(await pushRunMetrics(new Registry(), { url, job: "ingest", grouping: { seed: "s" } }, log), false);
    assert.equal(
      await pushRunMetrics(
        new Registry(),
        { url: "http://127.0.0.1:1", job: "ingest", grouping: { seed: "s" }, timeoutMs: 2000 },
        log,
      ),
      false,
    );
  });
});
