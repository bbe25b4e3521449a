import assert from "node:assert/strict";
import {
  KafkaJSConnectionError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  KafkaJSBrokerNotFound,
} from "kafkajs";
import { EventEmitter } from "node:events";
import type { Consumer } from "kafkajs";
import {
  asRejoin,
  commitOrRejoin,
  coordinatorLost,
  CoordinatorLost,
  watchCoordinator,
} from "../../../runtime/processor/coordinator";

// kafkajs's own test of "rejoin, keeping the member id" (consumer/runner.js scheduleFetchManager)
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { isRebalancing } = require("kafkajs/src/errors") as { isRebalancing: (e: unknown) => boolean };

const refused = () =>
  new KafkaJSConnectionError("Connection error: connect ECONNREFUSED 127.0.0.4:9092", {
    code: "ECONNREFUSED",
  } as never);
const protocol = (type: string, retriable = true) =>
  new KafkaJSProtocolError({ message: type, type, code: 0, retriable } as never);
const never = () => new Promise<void>(() => undefined);

describe("the processor's rejoin on a lost group coordinator (runtime/processor/coordinator.ts)", () => {
  it("knows a lost coordinator, also inside kafkajs's retries-exceeded wrapper; not a rebalance, an eviction or a Cassandra error", () => {
    assert.ok(coordinatorLost(refused()));
    assert.ok(
      coordinatorLost(new KafkaJSNumberOfRetriesExceeded(refused(), { retryCount: 5, retryTime: 600 } as never)),
    );
    assert.ok(
      coordinatorLost(
        new KafkaJSNumberOfRetriesExceeded(
          new (KafkaJSBrokerNotFound as unknown as new (m: string) => Error)(
            "Broker 2 not found in the cached metadata",
          ),
          { retryCount: 5, retryTime: 600 } as never,
        ),
      ),
    );
    assert.ok(coordinatorLost(protocol("NOT_COORDINATOR_FOR_GROUP")));
    assert.ok(coordinatorLost(protocol("GROUP_LOAD_IN_PROGRESS")));
    assert.ok(!coordinatorLost(protocol("REBALANCE_IN_PROGRESS", false)));
    assert.ok(!coordinatorLost(protocol("UNKNOWN_MEMBER_ID", false)));
    assert.ok(
      !coordinatorLost(
        Object.assign(new Error("Cannot achieve consistency level LOCAL_QUORUM"), {
          name: "ResponseError",
          code: 0x1000,
        }),
      ),
    );
  });

  it("CoordinatorLost is what kafkajs's runner takes for a rebalance (rejoin with the member id it has), and is retriable", () => {
    const e = asRejoin(refused());
    assert.ok(e instanceof CoordinatorLost);
    assert.ok(isRebalancing(e));
    assert.equal((e as CoordinatorLost).retriable, true);
    assert.ok(!isRebalancing(refused()), "kafkajs would only retry the dead coordinator");
  });

  it("a commit resolves as the commit does while the coordinator answers", async () => {
    let beats = 0;
    await commitOrRejoin(
      async () => void (await new Promise((r) => setTimeout(r, 120))),
      async () => void beats++,
      25,
      3000,
    );
    assert.ok(beats >= 1);
  });

  it("a commit hanging on a dead coordinator ends at the first failed heartbeat with CoordinatorLost", async () => {
    const t0 = Date.now();
    let n = 0;
    await assert.rejects(
      commitOrRejoin(
        never,
        async () => {
          if (++n >= 3) throw refused();
        },
        20,
        3000,
      ),
      (e: unknown) => e instanceof CoordinatorLost && isRebalancing(e),
    );
    assert.ok(Date.now() - t0 < 500, `took ${Date.now() - t0} ms`);
  });

  it("a commit that fails after kafkajs's retries on a dead coordinator becomes CoordinatorLost; other errors stay as they are", async () => {
    await assert.rejects(
      commitOrRejoin(
        async () => {
          throw new KafkaJSNumberOfRetriesExceeded(refused(), { retryCount: 16, retryTime: 600 } as never);
        },
        async () => undefined,
        1000,
        3000,
      ),
      CoordinatorLost,
    );
    const rebalance = protocol("REBALANCE_IN_PROGRESS", false);
    await assert.rejects(
      commitOrRejoin(
        never,
        async () => {
          throw rebalance;
        },
        10,
        3000,
      ),
      (e: unknown) => e === rebalance,
    );
  });

  it("a commit not answered within the deadline, heartbeats answered (a coordinator moved, the commit still aimed at the old one): CoordinatorLost", async () => {
    await assert.rejects(
      commitOrRejoin(never, async () => undefined, 20, 150),
      /offset commit not answered in 150 ms/,
    );
  });

  it("a commit whose heartbeat hangs still ends at the deadline", async () => {
    await assert.rejects(commitOrRejoin(never, never, 20, 150), /offset commit not answered in 150 ms/);
  });

  describe("the watch outside eachBatch (watchCoordinator)", () => {
    /** The consumer's events, as kafkajs names them, on a plain emitter. */
    function fakeConsumer(): { consumer: Consumer; emit: (e: string) => void } {
      const em = new EventEmitter();
      const events = {
        GROUP_JOIN: "consumer.group_join",
        HEARTBEAT: "consumer.heartbeat",
        REBALANCING: "consumer.rebalancing",
        FETCH_START: "consumer.fetch_start",
      };
      const consumer = { events, on: (e: string, l: () => void) => em.on(e, l) } as unknown as Consumer;
      return { consumer, emit: (e) => em.emit(events[e as keyof typeof events], {}) };
    }

    it("a fetch round starts as usual while heartbeats are answered", async () => {
      const { consumer, emit } = fakeConsumer();
      watchCoordinator(consumer, 100);
      emit("GROUP_JOIN");
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 40));
        emit("HEARTBEAT");
        assert.doesNotThrow(() => emit("FETCH_START"));
      }
    });

    it("a session without an answered heartbeat ends the next fetch round with CoordinatorLost", async () => {
      const { consumer, emit } = fakeConsumer();
      watchCoordinator(consumer, 100);
      emit("GROUP_JOIN");
      await new Promise((r) => setTimeout(r, 120));
      assert.throws(
        () => emit("FETCH_START"),
        (e: unknown) =>
          e instanceof CoordinatorLost && isRebalancing(e) && /no heartbeat answered/.test((e as Error).message),
      );
      emit("GROUP_JOIN");
      assert.doesNotThrow(() => emit("FETCH_START"), "a join clears it");
    });

    it("a rejoin that did not complete, or a batch that found the coordinator lost, ends the next fetch round too", () => {
      const { consumer, emit } = fakeConsumer();
      const w = watchCoordinator(consumer, 60_000);
      emit("GROUP_JOIN");
      emit("REBALANCING");
      emit("HEARTBEAT"); // the new coordinator answers heartbeats, but commits still go to the old one
      assert.throws(() => emit("FETCH_START"), /the last rejoin did not complete/);
      emit("GROUP_JOIN");
      w.lost();
      assert.throws(() => w.check(), /a batch found it lost/);
      emit("GROUP_JOIN");
      assert.doesNotThrow(() => w.check());
    });
  });
});
