import assert from "node:assert/strict";
import { backoffDelay, retry, RetryableError } from "../../../runtime/lib/retry";

describe("retry with backoff and jitter", () => {
  it("backoff grows exponentially, is capped, and is jittered in [0, cap)", () => {
    const p = { baseMs: 100, maxMs: 1000 };
    assert.equal(
      backoffDelay(0, p, () => 0.999999),
      99,
    );
    assert.equal(
      backoffDelay(2, p, () => 0.5),
      200,
    );
    assert.equal(
      backoffDelay(10, p, () => 0.5),
      500,
    );
    assert.equal(
      backoffDelay(3, p, () => 0),
      0,
    );
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(i % 12, p);
      assert.ok(d >= 0 && d < 1000);
    }
  });

  it("retries retryable errors until success and reports each retry", async () => {
    const seen: number[] = [];
    let calls = 0;
    const r = await retry(
      async () => {
        if (++calls < 4) throw new RetryableError("busy");
        return "ok";
      },
      { retries: 5, baseMs: 1, maxMs: 5, onRetry: (_e, attempt) => seen.push(attempt) },
    );
    assert.equal(r, "ok");
    assert.equal(calls, 4);
    assert.deepEqual(seen, [1, 2, 3]);
  });

  it("gives up after `retries` retries with the last error", async () => {
    let calls = 0;
    await assert.rejects(
      retry(
        async () => {
          calls++;
          throw new RetryableError(`fail ${calls}`);
        },
        { retries: 2, baseMs: 1, maxMs: 2 },
      ),
      /fail 3/,
    );
    assert.equal(calls, 3);
  });

  it("does not retry other errors", async () => {
    let calls = 0;
    await assert.rejects(
      retry(
        async () => {
          calls++;
          throw new Error("400");
        },
        { retries: 5, baseMs: 1, maxMs: 2 },
      ),
      /400/,
    );
    assert.equal(calls, 1);
  });

  it("waits at least Retry-After, even beyond maxMs (the server knows best), up to retryAfterMaxMs", async () => {
    const delays: number[] = [];
    let calls = 0;
    await retry(
      async () => {
        if (calls++ === 0) throw new RetryableError("slow down", 60);
      },
      { retries: 1, baseMs: 1, maxMs: 50, random: () => 0, onRetry: (_e, _a, d) => delays.push(d) },
    );
    calls = 0;
    await retry(
      async () => {
        if (calls++ === 0) throw new RetryableError("slow down", 60);
      },
      {
        retries: 1,
        baseMs: 1,
        maxMs: 50,
        retryAfterMaxMs: 55,
        random: () => 0,
        onRetry: (_e, _a, d) => delays.push(d),
      },
    );
    assert.deepEqual(delays, [60, 55]);
  });

  it("stops waiting when aborted", async () => {
    const ctl = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ctl.abort(), 30);
    await assert.rejects(
      retry(
        async () => {
          throw new RetryableError("x");
        },
        { retries: 3, baseMs: 10_000, maxMs: 10_000, random: () => 0.99, signal: ctl.signal },
      ),
      /x/,
    );
    assert.ok(Date.now() - t0 < 2000);
  });
});
