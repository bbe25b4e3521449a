import assert from "node:assert/strict";
import { startApiServer, type ApiServer } from "../../../runtime/api/server";
import { generatePage } from "../../../runtime/api/generate";
import { FaultState } from "../../../runtime/api/faults";

describe("offline API: HTTP server and faults", () => {
  let api: ApiServer;
  beforeEach(async () => {
    api = await startApiServer({ port: 0 });
  });
  afterEach(() => api.close());

  const get = (q: string) => fetch(`${api.url}/api/?${q}`);

  it("serves GET /api/?results&seed&page with the generated page", async () => {
    const res = await get("results=25&seed=abc&page=2");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    assert.deepEqual(await res.json(), generatePage("abc", 2, 25));
  });

  it("serves up to 5000 results and refuses more", async () => {
    const ok = (await (await get("results=5000&seed=big")).json()) as { results: unknown[] };
    assert.equal(ok.results.length, 5000);
    assert.equal((await get("results=5001&seed=big")).status, 400);
    assert.equal((await get("results=0")).status, 400);
    assert.equal((await get("results=2&page=0")).status, 400);
  });

  it("without a seed, makes one up and says which", async () => {
    const body = (await (await get("results=1")).json()) as { info: { seed: string } };
    assert.match(body.info.seed, /^[0-9a-f]{16}$/);
  });

  it("failNext answers 429 then 500 then recovers", async () => {
    api.setFaults({ failNext: 3 });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await get("results=1&seed=x")).status);
    assert.deepEqual(statuses, [429, 500, 429, 200]);
    assert.equal(api.getFaults().failNext, 0);
  });

  it("failNext counts the requests that arrive next: a slow request its client gave up on takes none", async () => {
    api.setFaults({ latencyMs: 200 });
    const abandoned = fetch(`${api.url}/api/?results=1&seed=a`, { signal: AbortSignal.timeout(20) }).catch(
      () => "aborted",
    );
    assert.equal(await abandoned, "aborted");
    api.setFaults({ latencyMs: 0, failNext: 1, errorStatuses: [451] });
    await new Promise((r) => setTimeout(r, 300)); // the abandoned request's latency is over
    assert.equal((await get("results=1&seed=b")).status, 451);
  });

  it("errorRate 1 fails every request until switched off through the admin endpoint", async () => {
    const put = await fetch(`${api.url}/admin/faults`, {
      method: "PUT",
      body: JSON.stringify({ errorRate: 1, errorStatuses: [503] }),
    });
    assert.equal(put.status, 200);
    assert.equal((await get("results=1")).status, 503);
    assert.equal((await get("results=1")).status, 503);
    await fetch(`${api.url}/admin/faults`, { method: "PUT", body: JSON.stringify({ errorRate: 0 }) });
    assert.equal((await get("results=1")).status, 200);
    assert.deepEqual(api.stats(), { 503: 2, 200: 1 });
  });

  it("rejects a bad admin body", async () => {
    const r = await fetch(`${api.url}/admin/faults`, { method: "PUT", body: JSON.stringify({ errorRate: 2 }) });
    assert.equal(r.status, 400);
  });

  it("adds latency and malformed records through query parameters", async () => {
    const t0 = Date.now();
    const body = (await (await get("results=200&seed=q&fault_latency_ms=150&fault_malformed_rate=0.5")).json()) as {
      results: unknown[];
    };
    assert.ok(Date.now() - t0 >= 140);
    assert.deepEqual(body.results, generatePage("q", 1, 200, 0.5).results);
    assert.notDeepEqual(body.results, generatePage("q", 1, 200).results);
  });

  it("faults can be set at start", async () => {
    const a2 = await startApiServer({ port: 0, faults: { errorRate: 1, errorStatuses: [500] } });
    try {
      assert.equal((await fetch(`${a2.url}/api/?results=1`)).status, 500);
    } finally {
      await a2.close();
    }
  });

  it("FaultState: errorRate uses the random source, statuses in turn", () => {
    const vals = [0.1, 0.9, 0.2, 0.05];
    const f = new FaultState({ errorRate: 0.3 }, () => vals.shift() ?? 1);
    assert.deepEqual([f.errorFor(), f.errorFor(), f.errorFor(), f.errorFor()], [429, undefined, 500, 429]);
  });
});
