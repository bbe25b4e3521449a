/**
 * The processor's answer to its group coordinator dying or moving (a broker kill -9, a leader of
 * __consumer_offsets moved): rejoin the group under the SAME member id, at the coordinator the
 * cluster names now.
 *
 * Why here and not in kafkajs (2.2.4, read in node_modules/kafkajs/src):
 *  - a consumer asks for its coordinator only when it joins (consumer/consumerGroup.js `[JOIN]`:
 *    `this.coordinator = await this.cluster.findGroupCoordinator(...)`); heartbeats go to that
 *    broker, commits to the offset manager's copy of it, which on a lost connection looks up the
 *    same node id again (consumer/offsetManager/index.js `getCoordinator`) and on
 *    NOT_COORDINATOR_FOR_GROUP only refreshes metadata (`commitOffsets`). Nothing in the running
 *    consumer follows a coordinator that moved;
 *  - so every heartbeat and commit fails until a retrier gives up, and the consumer crashes
 *    (consumer/runner.js `scheduleFetchManager` → `onCrash`); the restart builds a new
 *    ConsumerGroup with no member id (consumer/index.js `start`), and the new coordinator, which
 *    loaded the group WITH our old member, waits that member's session out before the new one
 *    may join. Measured: crash +6-8 s after the kill, join +7-9 s, records +10-18 s; once, the
 *    commit's retries ran 11 s into "Broker 2 not found in the cached metadata";
 *  - but the runner rejoins keeping the member id (`joinAndSync`, which looks the coordinator up
 *    afresh) when the error that ends a fetch round is a rebalancing one (errors.js
 *    `isRebalancing`: type REBALANCE_IN_PROGRESS, NOT_COORDINATOR_FOR_GROUP or ILLEGAL_GENERATION).
 *    eachBatch is ours: it turns a lost coordinator into that error. The new coordinator knows the
 *    member, so the rejoin is one round trip, not a session's wait.
 */
import { KafkaJSError, type Consumer } from "kafkajs";

/** kafkajs errors that mean the coordinator cannot be reached or is not (or not yet) the coordinator. */
const LOST_NAMES = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSRequestTimeoutError",
  "KafkaJSBrokerNotFound",
  "KafkaJSLockTimeout",
  "KafkaJSGroupCoordinatorNotFound",
]);
const LOST_TYPES = new Set(["NOT_COORDINATOR_FOR_GROUP", "GROUP_COORDINATOR_NOT_AVAILABLE", "GROUP_LOAD_IN_PROGRESS"]);
const LOST_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT"]);

/** Whether `err` (or what caused it: kafkajs wraps a retrier's last error) says the coordinator is gone or moved. */
export function coordinatorLost(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 8; depth++) {
    const x = e as { name?: string; type?: string; code?: unknown; cause?: unknown };
    if (
      (x.name && LOST_NAMES.has(x.name)) ||
      (x.type && LOST_TYPES.has(x.type)) ||
      (typeof x.code === "string" && LOST_CODES.has(x.code))
    )
      return true;
    if (x.cause === e) break;
    e = x.cause;
  }
  return false;
}

/**
 * Thrown from eachBatch when the coordinator is lost: its `type` makes kafkajs's runner rejoin the
 * group with the member id it has (a new coordinator lookup), instead of retrying the dead one
 * until the consumer crashes. Nothing of the batch is committed: the rows written to Cassandra
 * are fetched again after the rejoin and written again (idempotent upserts).
 */
export class CoordinatorLost extends KafkaJSError {
  readonly type = "NOT_COORDINATOR_FOR_GROUP";
  constructor(cause: unknown) {
    const c = cause instanceof Error ? cause : new Error(String(cause));
    // kafkajs's constructor takes a cause (src/errors.js); its typings do not say so
    super(`group coordinator lost (${c.message}): rejoining under the same member id`, {
      retriable: true,
      cause: c,
    } as ConstructorParameters<typeof KafkaJSError>[1]);
    Object.defineProperty(this, "name", { value: "KafkaJSCoordinatorLost" });
  }
}

/** `err` as CoordinatorLost when it says the coordinator is lost, else unchanged. */
export function asRejoin(err: unknown): unknown {
  return err instanceof CoordinatorLost || !coordinatorLost(err) ? err : new CoordinatorLost(err);
}

/**
 * Commit, but do not wait on a dead coordinator. While the commit is under way the member's
 * heartbeat is tried every `probeMs` (kafkajs sends one only when its interval has passed since the
 * last answered one, so a live coordinator sees no extra traffic): a heartbeat that fails ends the
 * wait (CoordinatorLost when the coordinator is lost, else its own error, e.g. a rebalance), and so
 * does a commit not done in `deadlineMs` (its own timer: a heartbeat that hangs does not delay
 * it). The abandoned commit may still land later: harmless, it names records already in Cassandra.
 */
export async function commitOrRejoin(
  commit: () => Promise<void>,
  heartbeat: () => Promise<void>,
  probeMs: number,
  deadlineMs: number,
): Promise<void> {
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  let deadline: NodeJS.Timeout | undefined;
  const committed = commit().finally(() => (done = true));
  const watch = new Promise<never>((_resolve, reject) => {
    deadline = setTimeout(
      () => reject(new CoordinatorLost(new Error(`offset commit not answered in ${deadlineMs} ms`))),
      deadlineMs,
    );
    const tick = async (): Promise<void> => {
      if (done) return;
      try {
        await heartbeat();
      } catch (e) {
        return reject(asRejoin(e));
      }
      if (!done) timer = setTimeout(() => void tick(), probeMs);
    };
    timer = setTimeout(() => void tick(), 0);
  });
  try {
    await Promise.race([committed, watch]);
  } catch (e) {
    throw asRejoin(e);
  } finally {
    done = true;
    clearTimeout(timer);
    clearTimeout(deadline);
    committed.catch(() => undefined);
    watch.catch(() => undefined);
  }
}

/**
 * The rejoin when no batch runs. kafkajs's runner rejoins under its member id only when a fetch
 * round ends in a rebalancing error (runner.js scheduleFetchManager). With nothing to hand to
 * eachBatch (a caught-up stream while the relay stands still) every round ends in the dead
 * broker's ECONNREFUSED instead (a fetch, or the heartbeat after an empty fetch), and it is retried
 * until the new coordinator has loaded the group and expired the member: a kill run measured 9 s
 * without a heartbeat to the new coordinator, then a join under a new member id (stall 11.4 s).
 *
 * A FETCH_START listener runs synchronously in runner.fetch before any request (kafkajs 2.2.4:
 * consumer/index.js `on` calls it inside Promise.resolve(listener(event)), so a synchronous throw
 * escapes), so CoordinatorLost thrown there ends the round with a rejoin under the same member id.
 * tests/integration/processor/coordinator-watch.test.ts holds kafkajs to that. Thrown when:
 *  - no heartbeat was answered for a whole session: the coordinator is gone or has already
 *    expired us, so the rejoin costs nothing more;
 *  - a rejoin began (REBALANCING) and no GROUP_JOIN followed: joinAndSync gives up on "the
 *    coordinator is loading" (consumerGroup.js retries only rebalancing errors and
 *    UNKNOWN_MEMBER_ID) and the runner fetches on, heartbeating the new coordinator but committing
 *    to the old one (a kill run: a commit unanswered 3 s, then a second rejoin; stall 18.5 s);
 *  - a batch already found the coordinator lost (`lost()`): the other partitions' batches stop
 *    at their next chunk (`check()`) instead of writing and waiting on a commit of their own.
 */
export function watchCoordinator(consumer: Consumer, sessionMs: number): { check(): void; lost(): void } {
  let answeredAt = Date.now();
  let rejoining = false;
  let lostByBatch = false;
  const check = (): void => {
    const silent = Date.now() - answeredAt;
    if (!lostByBatch && !rejoining && silent < sessionMs) return;
    const why = lostByBatch
      ? "a batch found it lost"
      : rejoining
        ? "the last rejoin did not complete"
        : `no heartbeat answered in ${silent} ms`;
    throw new CoordinatorLost(new Error(why));
  };
  consumer.on(consumer.events.GROUP_JOIN, () => {
    answeredAt = Date.now();
    rejoining = false;
    lostByBatch = false;
  });
  consumer.on(consumer.events.HEARTBEAT, () => (answeredAt = Date.now()));
  consumer.on(consumer.events.REBALANCING, () => (rejoining = true));
  consumer.on(consumer.events.FETCH_START, check);
  return { check, lost: () => (lostByBatch = true) };
}
