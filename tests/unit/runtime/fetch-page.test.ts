import assert from "node:assert/strict";
import { startApiServer, type ApiServer } from "../../../runtime/api/server";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ConfigError } from "../../../runtime/lib/config";
import { classify } from "../../../runtime/lib/errors";
import { isPgStorable } from "../../../runtime/lib/pg-text";
import {
  ApiRequestRefused,
  BadPageError,
  classifyStatus,
  fetchPage,
  isRetryableStatus,
  pageUrl,
  retryAfterMs,
} from "../../../runtime/ingest/fetch-page";

describe("ingest: fetching a page", () => {
  let api: ApiServer;
  before(async () => {
    api = await startApiServer({ port: 0 });
  });
  after(() => api.close());
  afterEach(() =>
    api.setFaults({ errorRate: 0, failNext: 0, latencyMs: 0, malformedRate: 0, errorStatuses: [429, 500] }),
  );

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
    const p = await fetchPage({
      baseUrl: api.url,
      seed: "f",
      page: 1,
      results: 10,
      timeoutMs: 2000,
      policy,
      onRetry: (r) => reasons.push(r),
    });
    assert.equal(p.results.length, 10);
    assert.equal(p.retries, 4);
    assert.match(reasons[0], /HTTP 429/);
    assert.match(reasons[1], /HTTP 500/);
  });

  it("retries time-outs", async () => {
    api.setFaults({ latencyMs: 300 });
    setTimeout(() => api.setFaults({ latencyMs: 0 }), 250);
    const p = await fetchPage({
      baseUrl: api.url,
      seed: "t",
      page: 1,
      results: 5,
      timeoutMs: 100,
      policy: { retries: 10, baseMs: 20, maxMs: 100 },
    });
    assert.equal(p.results.length, 5);
    assert.ok(p.retries >= 1);
  });

  it("gives up after the retries", async () => {
    api.setFaults({ errorRate: 1 });
    await assert.rejects(
      fetchPage({
        baseUrl: api.url,
        seed: "g",
        page: 1,
        results: 1,
        timeoutMs: 1000,
        policy: { retries: 2, baseMs: 1, maxMs: 2 },
      }),
      /HTTP (429|500)/,
    );
  });

  it("does not retry a 400: the request itself is refused, a configuration error (exit 2), not a programming one", async () => {
    let retries = 0;
    const e = await fetchPage({
      baseUrl: api.url,
      seed: "g",
      page: 1,
      results: 6000,
      timeoutMs: 15_000,
      policy,
      onRetry: () => retries++,
    }).then(
      () => assert.fail("a page"),
      (x: unknown) => x,
    );
    assert.ok(e instanceof ApiRequestRefused && e instanceof ConfigError, String(e));
    assert.match(e.message, /HTTP 400.*API_BASE_URL/s);
    assert.equal(retries, 0);
  });

  it("classifies every 4xx: 408/425/429 retried, 410/451 the page gone, any other the request refused", () => {
    assert.deepEqual([408, 425, 429, 500, 503].map(classifyStatus), ["retry", "retry", "retry", "retry", "retry"]);
    assert.deepEqual([410, 451].map(classifyStatus), ["gone", "gone"]);
    assert.deepEqual([400, 401, 403, 404, 405, 413, 414, 422, 431, 499].map(classifyStatus), Array(10).fill("refused"));
  });

  for (const [status, expect] of [
    [404, "refused"],
    [422, "refused"],
    [401, "refused"],
    [410, "gone"],
    [451, "gone"],
    [408, "retry"],
    [425, "retry"],
  ] as const) {
    it(`HTTP ${status} from the API: ${expect}`, async () => {
      api.setFaults({ failNext: expect === "retry" ? 2 : 1, errorStatuses: [status] });
      let retries = 0;
      // A timeout far above any answer here: a loaded machine must not turn one answer into a retry.
      const run = fetchPage({
        baseUrl: api.url,
        seed: "s",
        page: 1,
        results: 3,
        timeoutMs: 15_000,
        policy,
        onRetry: () => retries++,
      });
      if (expect === "retry") {
        assert.equal((await run).results.length, 3);
        assert.equal(retries, 2);
        return;
      }
      const e = await run.then(
        () => assert.fail("a page"),
        (x: unknown) => x,
      );
      assert.equal(retries, 0, "not retried");
      if (expect === "gone") {
        assert.ok(e instanceof BadPageError && e.final, String(e));
        assert.equal(classify(e), "content");
      } else assert.ok(e instanceof ApiRequestRefused, String(e));
    });
  }
});

describe("ingest: bad bytes in what the API answers make storable reasons", () => {
  let body = "";
  let status = 200;
  const server = http.createServer((_req, res) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(body);
  });
  let url = "";
  before(async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));
  const policy = { retries: 1, baseMs: 1, maxMs: 2 };

  it("a body that is not JSON because of a NUL: a BadPageError whose reason (V8 quotes the body) PostgreSQL can store", async () => {
    status = 200;
    body = '{"results": [\u0000], "x": "\ud800"}';
    const e = await fetchPage({ baseUrl: url, seed: "n", page: 1, results: 1, timeoutMs: 15_000, policy }).then(
      () => assert.fail("a page"),
      (x: unknown) => x,
    );
    assert.ok(e instanceof BadPageError, String(e));
    assert.match(e.reason, /not JSON/);
    assert.ok(isPgStorable(e.reason), JSON.stringify(e.reason));
  });

  it("an error status whose body holds a NUL and half a surrogate pair at the cut: a storable reason", async () => {
    status = 410;
    body = "gone\u0000" + "x".repeat(194) + "😀";
    const e = await fetchPage({ baseUrl: url, seed: "n", page: 1, results: 1, timeoutMs: 15_000, policy }).then(
      () => assert.fail("a page"),
      (x: unknown) => x,
    );
    assert.ok(e instanceof BadPageError, String(e));
    assert.ok(isPgStorable(e.reason), JSON.stringify(e.reason));
    assert.match(e.reason, /gone\\u0000x+\\ud83d$/);
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
