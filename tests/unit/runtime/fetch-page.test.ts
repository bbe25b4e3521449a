import assert from "node:assert/strict";
import { startApiServer, type ApiServer } from "../../../runtime/api/server";
import { fetchPage, isRetryableStatus, pageUrl, retryAfterMs } from "../../../runtime/ingest/fetch-page";

describe("ingest: fetching a page", () => {
  let api: ApiServer;
  before(async () => {
    api = await startApiServer({ port: 0 });
  });
  after(() => api.close());
  afterEach(() => api.setFaults({ errorRate: 0, failNext: 0, latencyMs: 0, malformedRate: 0 }));

  const policy = { retries: 6, baseMs: 5, maxMs: 20 };

  it("builds the randomuser URL", () => {
    assert.equal(pageUrl("http://h:1/", "s d", 3, 10), "http://h:1/api/?results=10&seed=s+d&page=3");
  });

  it("classifies 429, 408 and 5xx as retryable, other 4xx not", () => {
    assert.deepEqual([429, 408, 500, 503, 400, 404].map(isRetryableStatus), [true, true, true, true, false, false]);
  });

  it("backs off over 429 and 500 and returns the page", async () => {
    api.setFaults({ failNext: 4 });
    const reasons: string[] = [];
    const p = await fetchPage({ baseUrl: api.url, seed: "f", page: 1, results: 10, timeoutMs: 2000, policy, onRetry: (r) => reasons.push(r) });
    assert.equal(p.results.length, 10);
    assert.equal(p.retries, 4);
    assert.match(reasons[0], /HTTP 429/);
    assert.match(reasons[1], /HTTP 500/);
  });

  it("retries time-outs", async () => {
    api.setFaults({ latencyMs: 300 });
    setTimeout(() => api.setFaults({ latencyMs: 0 }), 250);
    const p = await fetchPage({ baseUrl: api.url, seed: "t", page: 1, results: 5, timeoutMs: 100, policy: { retries: 10, baseMs: 20, maxMs: 100 } });
    assert.equal(p.results.length, 5);
    assert.ok(p.retries >= 1);
  });

  it("gives up after the retries", async () => {
    api.setFaults({ errorRate: 1 });
    await assert.rejects(fetchPage({ baseUrl: api.url, seed: "g", page: 1, results: 1, timeoutMs: 1000, policy: { retries: 2, baseMs: 1, maxMs: 2 } }), /HTTP (429|500)/);
  });

  it("does not retry a 400", async () => {
    let retries = 0;
    await assert.rejects(
      fetchPage({ baseUrl: api.url, seed: "g", page: 1, results: 6000, timeoutMs: 1000, policy, onRetry: () => retries++ }),
      /HTTP 400/,
    );
    assert.equal(retries, 0);
  });
});

describe("ingest: Retry-After in both forms", () => {
  it("reads delay-seconds and HTTP-dates", async () => {
    const now = Date.UTC(2026, 0, 1, 0, 0, 0);
    assert.equal(retryAfterMs("30", now), 30_000);
    assert.equal(retryAfterMs("Thu, 01 Jan 2026 00:00:45 GMT", now), 45_000);
    assert.equal(retryAfterMs("Wed, 31 Dec 2025 23:00:00 GMT", now), 0);
    assert.equal(retryAfterMs("soon", now), undefined);
    assert.equal(retryAfterMs(null, now), undefined);
  });
});
