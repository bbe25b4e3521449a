/** TopicLimit: the topic's size limit as the relay and the DLQ sender keep it. */
import assert from "node:assert/strict";
import { InfrastructureError } from "../../../runtime/lib/errors";
import type { MessageLimit } from "../../../runtime/lib/kafka";
import { createLogger } from "../../../runtime/lib/logger";
import { TopicLimit } from "../../../runtime/lib/topic-limit";

const limitOf = (bytes: number): MessageLimit => ({ bytes, source: `max.message.bytes=${bytes}` });

/** A reader whose answers the test sets; counts its reads. */
function reader(first: MessageLimit | Error) {
  const r = {
    next: first as MessageLimit | Error,
    reads: 0,
    read: async (): Promise<MessageLimit> => {
      r.reads++;
      if (r.next instanceof Error) throw r.next;
      return r.next;
    },
  };
  return r;
}

describe("TopicLimit", () => {
  const log = createLogger("topic-limit-test", "silent");

  it("reads once, then trusts the limit until the TTL passes", async () => {
    const r = reader(limitOf(1000));
    const limit = new TopicLimit(r.read, "t", log, 50);
    assert.equal((await limit.get()).bytes, 1000);
    r.next = limitOf(2000);
    assert.equal((await limit.get()).bytes, 1000, "read again inside the TTL");
    assert.equal(r.reads, 1);
    await new Promise((done) => setTimeout(done, 60));
    assert.equal((await limit.get()).bytes, 2000);
    assert.equal(limit.current.bytes, 2000);
  });

  it("stale(): the next get() reads again at once", async () => {
    const r = reader(limitOf(1000));
    const limit = new TopicLimit(r.read, "t", log, 60_000);
    await limit.get();
    r.next = limitOf(500);
    limit.stale();
    assert.equal((await limit.get()).bytes, 500);
    assert.equal(r.reads, 2);
  });

  it("a failed read keeps the last limit, and is not tried again before the TTL", async () => {
    const r = reader(limitOf(1000));
    const limit = new TopicLimit(r.read, "t", log, 60_000);
    await limit.get();
    r.next = new InfrastructureError("broker down");
    limit.stale();
    assert.equal((await limit.get()).bytes, 1000);
    assert.equal((await limit.get()).bytes, 1000);
    assert.equal(r.reads, 2, "a failing read retried before every send");
  });

  it("the first read's failure, and a programming error, are the caller's", async () => {
    const first = new TopicLimit(reader(new InfrastructureError("broker down")).read, "t", log);
    await assert.rejects(first.get(), /broker down/);
    assert.throws(() => first.current, /before the first read/);
    const r = reader(limitOf(1000));
    const limit = new TopicLimit(r.read, "t", log);
    await limit.get();
    r.next = new TypeError("x is not a function");
    limit.stale();
    await assert.rejects(limit.get(), TypeError);
  });
});
