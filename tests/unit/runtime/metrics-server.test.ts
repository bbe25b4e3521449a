import assert from "node:assert/strict";
import { startMetricsServer } from "../../../runtime/lib/http-server";
import { metrics } from "../../../runtime/lib/metrics";
import { markFailing, markHealthy } from "../../../runtime/lib/health";

describe("worker /metrics and /healthz", () => {
  it("serves Prometheus text with the worker metrics, and health", async () => {
    let healthy = true;
    const s = await startMetricsServer(0, () => healthy);
    try {
      metrics().recordsIn.inc({ worker: "unit" }, 3);
      metrics().consumerLag.set({ topic: "t", partition: "0", group: "g" }, 7);
      const body = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
      assert.match(body, /pipeline_records_in_total\{worker="unit"\} 3/);
      assert.match(body, /pipeline_consumer_lag\{topic="t",partition="0",group="g"\} 7/);
      assert.match(body, /# TYPE pipeline_batch_duration_seconds histogram/);
      assert.equal((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status, 200);
      healthy = false;
      assert.equal((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status, 503);
      assert.equal((await fetch(`http://127.0.0.1:${s.port}/nope`)).status, 404);
    } finally {
      await s.close();
    }
  });
});

describe("worker health", () => {
  it("/healthz says 503 and why while a worker marks itself failing", async () => {
    const s = await startMetricsServer(0);
    try {
      markFailing("relay", "kafka down");
      const r = await fetch(`http://127.0.0.1:${s.port}/healthz`);
      assert.equal(r.status, 503);
      assert.deepEqual(await r.json(), { status: "unhealthy", problems: { relay: "kafka down" } });
      markHealthy("relay");
      assert.equal((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status, 200);
    } finally {
      await s.close();
    }
  });
});
