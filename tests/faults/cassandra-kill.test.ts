/**
 * "Stored" means durable: a backlog of users streams through the real processor into the local
 * single-node Cassandra, whose process is SIGKILLed mid-stream (no drain, no commitlog sync) and
 * started again (`scripts/services up cassandra`, which restarts a dead one); the processor goes on
 * by itself. Afterwards every user on the topic must be in created_users: the processor committed
 * offsets only after Cassandra's acks, so a user missing here was acknowledged and then lost.
 *
 * With Cassandra's periodic commitlog (run it with CASSANDRA_COMMITLOG_SYNC=periodic in the env,
 * after `scripts/services down cassandra`: every start renders that mode) acknowledged writes newer
 * than the sync thread's last marker are not replayed; with cassandraSettings' group mode a write
 * is acked after its fsync, and none is lost.
 * Env: KILL_RECORDS (30000 users), KILL_TIMES (2 kills, one per backlog).
 *
 * It kills the SHARED local Cassandra: other test runs on this machine see it go away meanwhile.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Kafka, logLevel, type Admin } from "kafkajs";
import type { Client as CassandraClient } from "cassandra-driver";
import { generateUser } from "../../runtime/api/generate";
import { USERS_TOPIC } from "../../runtime/contracts/names";
import { userCreatedAvsc } from "../../runtime/contracts/user-created";
import { normalizeUser } from "../../runtime/ingest/normalize";
import { avroType, encodeFrame } from "../../runtime/lib/avro";
import { createCassandraClient } from "../../runtime/lib/cassandra";
import { createRegistry, registerUserCreated } from "../../runtime/lib/schema-registry";
import { loadServicesEnv, pipelineHome } from "../support/services";
import {
  cassandraUsers,
  compileRuntime,
  groupCaughtUp,
  ROOT,
  spawnWorker,
  topicEnds,
  uniq,
  waitFor,
  type Worker,
} from "../integration/workers/harness";

const RECORDS = Number(process.env.KILL_RECORDS ?? 30_000);
const TIMES = Number(process.env.KILL_TIMES ?? 2);

function services(...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(`${ROOT}/scripts/services`, args, { cwd: ROOT, timeout: 900_000 }, (err, _out, stderr) => {
      if (err) reject(new Error(`scripts/services ${args.join(" ")}: ${err.message}\n${stderr.slice(-3000)}`));
      else resolve();
    });
  });
}

/** The pid of the single local node, as scripts/services recorded it. */
function cassandraPid(): number {
  const pid = Number(fs.readFileSync(path.join(pipelineHome(), "run", "cassandra", "pid"), "utf8").trim());
  assert.ok(pid > 0, "no pid of the local Cassandra");
  return pid;
}

interface Row {
  kill: number;
  commitlogSync: string;
  users: number;
  storedAtKill: number;
  lost: number;
}

describe("fault: SIGKILL of the single Cassandra node mid-stream loses no acknowledged user", function () {
  this.timeout(1_800_000);
  let k: Kafka;
  let admin: Admin;
  let cass: CassandraClient;
  let entry: string;
  let env: Record<string, string>;
  const rows: Row[] = [];

  before(async () => {
    entry = await compileRuntime();
    // Kafka, the registry and Cassandra only: no PostgreSQL in this path
    env = loadServicesEnv(["KAFKA_BROKERS", "SCHEMA_REGISTRY_URL", "CASSANDRA_CONTACT_POINTS"]);
    const brokers = env.KAFKA_BROKERS.split(",");
    k = new Kafka({ clientId: "faults-cassandra-kill", brokers, logLevel: logLevel.NOTHING });
    admin = k.admin();
    await admin.connect();
    cass = createCassandraClient({
      CASSANDRA_CONTACT_POINTS: env.CASSANDRA_CONTACT_POINTS.split(","),
      CASSANDRA_LOCAL_DC: env.CASSANDRA_LOCAL_DC,
      CASSANDRA_USER: env.CASSANDRA_USER,
      CASSANDRA_PASSWORD: env.CASSANDRA_PASSWORD,
    });
  });

  after(async () => {
    const lines = [
      "| kill | commitlog_sync | users | stored at the kill | lost |",
      "|---|---|---|---|---|",
      ...rows.map((r) => `| ${r.kill} | ${r.commitlogSync} | ${r.users} | ${r.storedAtKill} | ${r.lost} |`),
    ];
    console.log(`\n${lines.join("\n")}\n`);
    await admin?.disconnect();
    await cass?.shutdown();
  });

  /** What the running node acknowledges after: its commitlog_sync and window or period. */
  async function commitlogSync(): Promise<string> {
    const names = ["commitlog_sync", "commitlog_sync_group_window", "commitlog_sync_period"];
    const cql = "SELECT name, value FROM system_views.settings WHERE name IN ?";
    const r = await cass.execute(cql, [names], { prepare: true });
    const v = new Map(r.rows.map((x) => [x.name as string, x.value as string]));
    const mode = v.get("commitlog_sync") ?? "?";
    return `${mode} ${mode === "group" ? v.get("commitlog_sync_group_window") : v.get("commitlog_sync_period")}`;
  }

  for (let kill = 1; kill <= TIMES; kill++) {
    it(`kill ${kill}: ${RECORDS} users on the topic, Cassandra SIGKILLed a third of the way, 0 lost`, async () => {
      const run = uniq("cass-kill");
      const group = `${run}-processor`;
      const mode = await commitlogSync();
      // the backlog first, then the processor from where it starts: it writes at full speed when killed
      const start = await topicEnds(admin);
      const partitions = [...start].map(([partition, offset]) => ({ partition, offset }));
      await admin.setOffsets({ groupId: group, topic: USERS_TOPIC, partitions });
      const schemaId = await registerUserCreated(createRegistry(env.SCHEMA_REGISTRY_URL));
      const type = avroType(userCreatedAvsc());
      const ids: string[] = [];
      const producer = k.producer();
      await producer.connect();
      for (let page = 1; ids.length < RECORDS; page++) {
        const messages = [];
        for (let i = 0; i < 1000 && ids.length < RECORDS; i++) {
          const n = normalizeUser(generateUser(run, page, i), Date.now());
          assert.ok(n.ok);
          ids.push(n.user.id);
          messages.push({ key: n.user.id, value: encodeFrame(schemaId, type, n.user) });
        }
        await producer.send({ topic: USERS_TOPIC, acks: -1, messages });
      }
      await producer.disconnect();

      const procEnv = { ...env, PROCESSOR_GROUP_ID: group, PROCESSOR_CHUNK_SIZE: "200" };
      const proc: Worker = await spawnWorker(["processor"], procEnv, entry);
      try {
        const stored = () => proc.metric("pipeline_records_out_total", 'worker="processor"');
        const storedAtKill = await waitFor(
          "a third of the users stored",
          async () => {
            const n = await stored();
            return n >= RECORDS / 3 ? n : false;
          },
          300_000,
          20,
        );
        const pid = cassandraPid();
        process.kill(pid, "SIGKILL");
        // gone before `up` looks: a pid still alive reads as "already running"
        await waitFor(
          "Cassandra's process gone",
          async () => {
            try {
              process.kill(pid, 0);
              return false;
            } catch {
              return true;
            }
          },
          30_000,
          20,
        );
        console.log(`      Cassandra (${mode}) SIGKILLed with ${storedAtKill} users stored and committed`);
        await services("up", "cassandra");
        await groupCaughtUp(admin, group);
        const got = await cassandraUsers(cass, ids);
        const lost = ids.filter((id) => !got.has(id));
        rows.push({ kill, commitlogSync: mode, users: ids.length, storedAtKill, lost: lost.length });
        assert.equal(lost.length, 0, `${lost.length} acknowledged users lost, e.g. ${lost.slice(0, 3).join(", ")}`);
      } finally {
        proc.proc.kill("SIGTERM");
        await proc.exited;
      }
    });
  }
});
