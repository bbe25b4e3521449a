/**
 * The outbox does not grow for ever, and its pruning never costs a record: users stream from the
 * offline API through ingest, two relays and the processor into Cassandra, with a retention of
 * RETENTION_S seconds and a pruning pass every second in both relays (one prunes at a time). The
 * relays start after ingest has staged a backlog, so unpublished rows older than the retention are
 * there at their first pass: pruning by age alone would delete them, and they would never reach
 * Cassandra.
 *
 * Afterwards: every staged user is in Cassandra (lost 0), each outbox row of the run is on the
 * topic once (duplicates 0, by the outbox_id header), each key's messages are in outbox order,
 * no worker exited, and the outbox kept only rows younger than the retention.
 * The relays and ingest work in a PostgreSQL schema of their own (search_path); the topic and
 * Cassandra are the shared ones, so the checks select this run's keys.
 */
import assert from "node:assert/strict";
import type { Admin, Kafka } from "kafkajs";
import type { Client as CassandraClient } from "cassandra-driver";
import { startApiServer, type ApiServer } from "../../runtime/api/server";
import { USERS_TOPIC } from "../../runtime/contracts/names";
import {
  cassandra,
  cassandraUsers,
  compileRuntime,
  groupCaughtUp,
  kafka,
  readRange,
  scratchSchema,
  spawnWorker,
  topicEnds,
  uniq,
  waitFor,
  type Worker,
} from "../integration/workers/harness";

const RETENTION_S = 2;
/** How long ingest stages before the relays start, and how long the stream runs after. */
const BACKLOG_MS = 5000;
const STREAM_MS = 20_000;

describe("fault: the outbox pruned while records flow loses, duplicates and reorders nothing", function () {
  this.timeout(600_000);
  let api: ApiServer;
  let scratch: Awaited<ReturnType<typeof scratchSchema>>;
  let k: Kafka;
  let admin: Admin;
  let cass: CassandraClient;
  const workers: Worker[] = [];
  const stopped = new Set<Worker>();

  before(async () => {
    api = await startApiServer({ port: 0 });
    scratch = await scratchSchema("faults_retention", 2);
    k = kafka();
    admin = k.admin();
    await admin.connect();
    cass = cassandra();
  });

  after(async () => {
    for (const w of workers) {
      stopped.add(w);
      w.proc.kill("SIGTERM");
    }
    await Promise.all(workers.map((w) => w.exited));
    await admin?.disconnect();
    await cass?.shutdown();
    await scratch?.drop();
    await api?.close();
  });

  it(`retention ${RETENTION_S} s, pruned every second by two relays: lost 0, duplicates 0, out of order 0, exits 0`, async () => {
    const run = uniq("retention");
    const group = `${run}-processor`;
    const entry = await compileRuntime();
    const topicStart = await topicEnds(admin);
    await admin.setOffsets({
      groupId: group,
      topic: USERS_TOPIC,
      partitions: [...topicStart].map(([partition, offset]) => ({ partition, offset })),
    });
    const base = { API_BASE_URL: api.url, PGOPTIONS: `-c search_path=${scratch.schema}` };
    const spawn = async (args: string[], env: Record<string, string>) => {
      const w = await spawnWorker(args, { ...base, ...env }, entry);
      workers.push(w);
      return w;
    };
    const stop = async (w: Worker) => {
      stopped.add(w);
      w.proc.kill("SIGTERM");
      return w.exited;
    };

    const ingest = await spawn(["ingest"], { INGEST_SEED: run, INGEST_BATCH_SIZE: "200", INGEST_INTERVAL_MS: "100" });
    await new Promise((r) => setTimeout(r, BACKLOG_MS));
    const relayEnv = {
      RELAY_OUTBOX_RETENTION_S: String(RETENTION_S),
      RELAY_PRUNE_EVERY_MS: "1000",
      RELAY_PRUNE_BATCH: "100",
      // no pause between deletes (500 ms by default): the whole run is pruned within the test
      RELAY_PRUNE_PAUSE_MS: "0",
      RELAY_BATCH_SIZE: "200",
      RELAY_POLL_MS: "100",
      RELAY_MAX_BUCKETS: "8",
    };
    const relays = [await spawn(["relay"], relayEnv), await spawn(["relay"], relayEnv)];
    const processor = await spawn(["processor"], { PROCESSOR_GROUP_ID: group });
    await new Promise((r) => setTimeout(r, STREAM_MS));
    assert.equal((await stop(ingest)).code, 0, `ingest: ${ingest.output().slice(-2000)}`);

    await waitFor(
      "the run's outbox published",
      async () => {
        const r = await scratch.pg.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL AND parked_at IS NULL",
        );
        return r.rows[0].n === 0;
      },
      180_000,
      500,
    );
    const pruned = (await Promise.all(relays.map((w) => w.metric("pipeline_outbox_pruned_total")))).reduce(
      (a, b) => a + b,
      0,
    );
    // the last rows leave once they are older than the retention, at a pass of either relay
    await waitFor(
      "the outbox pruned to the retention",
      async () => {
        const r = await scratch.pg.query<{ n: number }>("SELECT count(*)::int AS n FROM outbox");
        return r.rows[0].n === 0;
      },
      30_000,
      500,
    );
    await groupCaughtUp(admin, group);

    const staged = (await scratch.pg.query<{ id: string }>("SELECT id::text FROM users")).rows.map((r) => r.id);
    const keys = new Set(staged);
    const got = await cassandraUsers(cass, staged);
    const lost = staged.filter((id) => !got.has(id));
    const msgs = (await readRange(k, USERS_TOPIC, topicStart, await topicEnds(admin))).filter(
      (m) => m.key !== null && keys.has(m.key),
    );
    const seen = new Map<string, number>();
    const lastOfKey = new Map<string, bigint>();
    let outOfOrder = 0;
    for (const m of msgs.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)))) {
      const id = BigInt(m.headers.outbox_id);
      seen.set(m.headers.outbox_id, (seen.get(m.headers.outbox_id) ?? 0) + 1);
      if ((lastOfKey.get(m.key!) ?? -1n) > id) outOfOrder++;
      lastOfKey.set(m.key!, id);
    }
    const duplicates = [...seen.values()].reduce((a, n) => a + n - 1, 0);
    const exits = workers.filter((w) => !stopped.has(w) && w.proc.exitCode !== null).length;
    console.log(
      `\n| fault | staged | pruned | records lost | duplicates | out of order | worker exits |\n|---|---|---|---|---|---|---|\n` +
        `| outbox pruned while records flow (retention ${RETENTION_S} s) | ${staged.length} | ${pruned} | ${lost.length} | ${duplicates} | ${outOfOrder} | ${exits} |\n`,
    );
    assert.ok(staged.length >= 1000, `only ${staged.length} users staged`);
    assert.ok(pruned > 0, "no relay pruned a row while records flowed");
    assert.equal(lost.length, 0, `staged users not in Cassandra, e.g. ${lost.slice(0, 3).join(", ")}`);
    assert.equal(seen.size, staged.length, "every staged user's outbox row on the topic");
    assert.equal(duplicates, 0, "outbox rows on the topic more than once");
    assert.equal(outOfOrder, 0, "a key's messages out of outbox order");
    assert.equal(exits, 0, "workers exited by themselves");
    for (const w of [...relays, processor])
      assert.equal((await stop(w)).code, 0, `${w.name}: ${w.output().slice(-2000)}`);
  });
});
