/**
 * kafkajs held to what runtime/processor/coordinator.ts watchCoordinator() relies on: a
 * CoordinatorLost thrown from a FETCH_START listener ends the fetch round with a rejoin under the
 * SAME member id (no crash, no new member), also when no batch runs (an idle topic). A kafkajs
 * that caught the listener's throw would turn this red. Real broker (scripts/services up).
 */
import { strict as assert } from "node:assert";
import type { Consumer } from "kafkajs";
import { watchCoordinator } from "../../../runtime/processor/coordinator";
import { kafka, uniq, waitFor } from "../workers/harness";

describe("processor: the coordinator watch on a real broker", function () {
  this.timeout(120_000);
  const topic = uniq("coordinator-watch");
  let consumer: Consumer | undefined;

  after(async () => {
    await consumer?.disconnect().catch(() => undefined);
    const admin = kafka().admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it("a lost coordinator found outside eachBatch makes kafkajs rejoin under the same member id", async () => {
    const admin = kafka().admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();

    const c = kafka().consumer({
      groupId: uniq("coordinator-watch"),
      sessionTimeout: 6_000,
      heartbeatInterval: 500,
      maxWaitTimeInMs: 200,
    });
    consumer = c;
    const joins: string[] = [];
    const crashes: string[] = [];
    c.on(c.events.GROUP_JOIN, (e) => joins.push(e.payload.memberId));
    c.on(c.events.CRASH, (e) => crashes.push(e.payload.error.message));
    const watch = watchCoordinator(c, 6_000);
    await c.connect();
    await c.subscribe({ topic, fromBeginning: true });
    await c.run({ eachBatch: async () => undefined });
    await waitFor("first join", async () => joins.length >= 1, 60_000);
    assert.doesNotThrow(() => watch.check(), "a coordinator that answers is not lost");

    watch.lost(); // what eachBatch does when a commit or heartbeat finds the coordinator gone
    await waitFor("a rejoin", async () => joins.length >= 2, 30_000);
    assert.equal(joins[1], joins[0], "the same member id: the coordinator knows it, no session to wait out");
    assert.deepEqual(crashes, []);
    assert.doesNotThrow(() => watch.check(), "the join clears it");
  });
});
