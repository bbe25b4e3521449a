/**
 * The kill suite (npm run test:ha): the replicated local set (`scripts/services up --nodes 3`:
 * 3 ZooKeeper, 3 Kafka brokers, 3 Cassandra nodes on 127.0.0.2-4, its own PostgreSQL and
 * registry) under a steady stream of users (offline API → ingest → PostgreSQL → relay → Kafka →
 * processor → Cassandra, the workers launched the one way runtime/main.ts is). While records
 * stream, one member is kill -9'd (a broker, then a Cassandra node, then a ZooKeeper member, each
 * twice, a different member each time), left down for DOWN_MS, and started again through
 * scripts/services (as a supervisor would). Asserted, per fault: 0 records lost (every staged id in
 * Cassandra once the group has read everything), no worker exited, and the stream (the processor's
 * records written) never stalled for more than MAX_STALL_S. It prints one table:
 * fault | times | records lost | worker exits | longest stall s | member back after s.
 *
 * It touches only the replicated set (its own run dir, addresses and pids), never the shared
 * single-node services on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Admin } from "kafkajs";
import type { Pool } from "pg";
import type { Client as CassandraClient } from "cassandra-driver";
import { pipelineHome } from "../support/services";
import { startApiServer, type ApiServer } from "../../runtime/api/server";
import { generateUser } from "../../runtime/api/generate";
import { USERS_TOPIC } from "../../runtime/contracts/names";
import { cassandra, kafka, pgPool, ROOT, servicesEnv, spawnWorker, StoredIds, Supervisor, topicEnds, uniq, waitFor } from "../integration/workers/harness";

const NODES = 3;
const RUN = path.join(pipelineHome(), `run-nodes${NODES}`);
// The harness reads services.env when called: this suite's set, not the shared one.
process.env.PIPELINE_SERVICES_ENV = path.join(RUN, "services.env");

type Name = "ingest" | "relay" | "processor";
type Service = "kafka" | "cassandra" | "zookeeper";

const SERVICES: Service[] = ["kafka", "cassandra", "zookeeper"];
/** HA_FAULTS=kafka,zookeeper: only these clusters' kills (a quicker check after a change); default all three. */
const FAULTS = (process.env.HA_FAULTS ?? SERVICES.join(",")).split(",").map((x) => x.trim()) as Service[];
for (const f of FAULTS) if (!SERVICES.includes(f)) throw new Error(`HA_FAULTS: '${f}' is not one of ${SERVICES.join(", ")}`);

/** users per page and the pause between pages: ~200 users/s on 2 shared cores */
const BATCH = 100;
const INTERVAL_MS = 500;
/** How long a killed member stays down before it is started again. */
const DOWN_MS = 15_000;
/** The longest the stream may stand still during a fault. */
const MAX_STALL_S = 10;

interface Row {
  fault: string;
  times: number;
  lost: number;
  exits: number;
  stalls: number[];
  back: number[];
  notes: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function services(...args: string[]): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    execFile(`${ROOT}/scripts/services`, [...args, "--nodes", String(NODES)], { cwd: ROOT, timeout: 900_000 }, (err, _out, stderr) => {
      if (err) reject(new Error(`scripts/services ${args.join(" ")} --nodes ${NODES}: ${err.message}\n${stderr.slice(-3000)}`));
      else resolve(Date.now() - t0);
    });
  });
}

function memberPid(service: Service, i: number): number {
  return Number(fs.readFileSync(path.join(RUN, `${service}-${i}`, "pid"), "utf8").trim());
}

/** The __consumer_offsets partition of a group: Utils.abs(Java's String.hashCode) mod 50, as Kafka's GroupMetadataManager. */
function offsetsPartition(groupId: string, partitions = 50): number {
  let h = 0;
  for (let k = 0; k < groupId.length; k++) h = (Math.imul(31, h) + groupId.charCodeAt(k)) | 0;
  return (h === -2147483648 ? 0 : Math.abs(h)) % partitions;
}

async function offsetsLeader(admin: Admin, partition: number): Promise<number> {
  const md = await admin.fetchTopicMetadata({ topics: ["__consumer_offsets"] });
  return md.topics[0].partitions.find((p) => p.partitionId === partition)!.leader;
}

/**
 * A processor group name whose coordinator is, once leaders are balanced, broker `broker` (the
 * preferred leader of its __consumer_offsets partition): a kill of that broker then also takes the
 * group's coordinator, the worst case for the consumer (it must find the new one and rejoin). Each
 * kill's note says who coordinated the group at the time.
 */
async function groupCoordinatedBy(admin: Admin, run: string, broker: number): Promise<string> {
  const md = await admin.fetchTopicMetadata({ topics: ["__consumer_offsets"] });
  const byPartition = new Map(md.topics[0].partitions.map((p) => [p.partitionId, p]));
  for (let k = 0; k < 1000; k++) {
    const name = `${run}-${k}-processor`;
    const p = byPartition.get(offsetsPartition(name, byPartition.size));
    // its preferred leader: a set just started has every leader on the brokers that came up first,
    // until the controller's automatic preferred-leader election (every 5 min) moves them back
    if (p && p.replicas[0] === broker) return name;
  }
  throw new Error(`no group name coordinated by broker ${broker} in 1000 tries: __consumer_offsets has no partition it prefers to lead`);
}

describe(`kill suite: ${NODES} ZooKeeper, ${NODES} brokers, ${NODES} Cassandra nodes; a member kill -9'd while records stream`, function () {
  this.timeout(3_600_000);
  const run = uniq("ha");
  const seed = run;
  /** The processor's group, named so that its coordinator is broker 2 (killed second): see coordinatedBy. */
  let group = `${run}-processor`;
  let api: ApiServer;
  let pg: Pool;
  let cass: CassandraClient;
  let admin: Admin;
  let env: Record<string, string>;
  const rows: Row[] = [];
  let current: Row | undefined;
  let stored: StoredIds; // staged ids seen in Cassandra
  /** The last ingest page stored by the end of each fault (the ids of pages up to it are that fault's or earlier). */
  const windows: { row: Row; toPage: number }[] = [];
  let pagesChecked = 0;
  const staged: string[] = [];

  /** The processor's records written, sampled every 200 ms: when it last moved. */
  let written = -1;
  let lastMove = Date.now();
  /** Since the fault began: the longest standstill and when it began (ms since the epoch). */
  let longestSince: { from: number; gap: number; gapFrom: number } | undefined;
  let sampler: NodeJS.Timeout | undefined;

  const workerEnv: Record<Name, Record<string, string>> = { ingest: {}, relay: {}, processor: {} };

  /** Each worker as a kubelet would run it; an exit nobody asked for counts against the fault under way. */
  const sup = new Supervisor<Name>(
    (name) => spawnWorker([name], { ...env, ...workerEnv[name] }),
    () => {
      if (current) current.exits++;
      return current?.fault ?? "setup";
    },
  );
  const w = sup.workers;
  const start = (name: Name) => sup.start(name);

  function sample(): void {
    void w.processor?.metric("pipeline_records_out_total", 'worker="processor"').then((n) => {
      const now = Date.now();
      if (n > written) {
        if (longestSince && now - lastMove > longestSince.gap) Object.assign(longestSince, { gap: now - lastMove, gapFrom: lastMove });
        written = n;
        lastMove = now;
      }
    }, () => undefined); // a sample the loaded processor did not answer in time: the next one counts
  }

  /**
   * The longest standstill since `watchStalls()` (one still under way included): its length in s
   * and when it began, in s after the fault (negative: it began before, the stream had not moved
   * since). The stall is the processor's records written standing still: end to end, since
   * nothing reaches it that ingest, PostgreSQL, the relay and Kafka did not pass on.
   */
  function stalled(): { s: number; at: number } {
    const l = longestSince!;
    const open = Date.now() - lastMove;
    const [gap, from] = open > l.gap ? [open, lastMove] : [l.gap, l.gapFrom];
    return { s: gap / 1000, at: (from - l.from) / 1000 };
  }
  function watchStalls(): void {
    longestSince = { from: Date.now(), gap: 0, gapFrom: Date.now() };
  }

  async function cursor(): Promise<number> {
    const r = await pg.query<{ next_page: number }>("SELECT next_page FROM ingest_cursor WHERE seed = $1", [seed]);
    return r.rows[0]?.next_page ?? 1;
  }

  /** Ids of every user ingest stored so far (the API's pages are deterministic per seed). */
  async function stagedIds(): Promise<{ ids: string[]; unaccounted: number }> {
    const pages = (await cursor()) - 1;
    let unaccounted = 0;
    if (pages > pagesChecked) {
      const ids: string[] = [];
      for (let p = pagesChecked + 1; p <= pages; p++) for (let i = 0; i < BATCH; i++) ids.push(generateUser(seed, p, i).login.uuid.toLowerCase());
      const inUsers = new Set((await pg.query<{ id: string }>("SELECT id::text FROM users WHERE id = ANY($1::uuid[])", [ids])).rows.map((r) => r.id));
      for (const id of ids) {
        if (inUsers.has(id)) staged.push(id);
        else unaccounted++;
      }
      pagesChecked = pages;
    }
    return { ids: staged, unaccounted };
  }



  /** kill -9 member i of `service`, DOWN_MS later start it again; then the accounting. */
  async function kill(service: Service, i: number): Promise<void> {
    const name = `${service} member kill -9`;
    let r = rows.find((x) => x.fault === name);
    if (!r) rows.push((r = { fault: name, times: 0, lost: 0, exits: 0, stalls: [], back: [], notes: [] }));
    current = r;
    r.times++;
    await waitFor("the stream flowing", async () => Date.now() - lastMove < 2000 && written > 0, 120_000, 200);
    watchStalls();
    const coordinator = service === "kafka" ? await offsetsLeader(admin, offsetsPartition(group)).catch(() => undefined) : undefined;
    const pid = memberPid(service, i);
    process.kill(pid, "SIGKILL");
    const killedAt = Date.now();
    await sleep(DOWN_MS);
    await services("up", service);
    r.back.push((Date.now() - killedAt) / 1000);
    // a while with every member back: a rejoin (leader moves back, hints replayed) may stall too
    await sleep(10_000);
    const st = stalled();
    r.stalls.push(st.s);
    const role = coordinator === undefined ? "" : coordinator === i ? ", the group's coordinator" : `, not the group's coordinator (broker ${coordinator})`;
    r.notes.push(`${service}-${i} (pid ${pid}${role}): longest stall ${st.s.toFixed(1)} s from +${st.at.toFixed(1)} s after the kill, back after ${r.back[r.back.length - 1].toFixed(1)} s, load ${fs.readFileSync("/proc/loadavg", "utf8").split(" ")[0]}`);
    // ingest's pages stored meanwhile: their ids are this fault's, in the accounting at the end
    windows.push({ row: r, toPage: (await cursor()) - 1 });
    current = undefined;
  }

  function printTable(): void {
    const range = (xs: number[]) => (xs.length === 0 ? "-" : xs.length === 1 ? xs[0].toFixed(1) : `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`);
    const lines = [
      "| fault | times | records lost | worker exits | longest stall s | member back after s |",
      "|---|---|---|---|---|---|",
      ...rows.map((r) => `| ${r.fault} | ${r.times} | ${r.lost} | ${r.exits} | ${range(r.stalls)} | ${range(r.back)} |`),
    ];
    console.log(`\n${lines.join("\n")}\n`);
    for (const r of rows) console.log(`  ${r.fault}: ${r.notes.join("; ")}`);
    while (sup.exitLog.length > 0) console.log(sup.exitLog.shift());
  }

  before(async () => {
    env = servicesEnv();
    assert.equal(env.KAFKA_BROKERS.split(",").length, NODES, `${process.env.PIPELINE_SERVICES_ENV}: not the replicated set (scripts/services up --nodes ${NODES})`);
    api = await startApiServer({ port: 0 });
    pg = pgPool();
    pg.on("error", () => undefined);
    cass = cassandra();
    admin = kafka().admin();
    await admin.connect();
    group = await groupCoordinatedBy(admin, run, 2);
    stored = new StoredIds(cass, admin, group);
    const ends = await topicEnds(admin);
    // the group starts at the topic's end: the topic's history is other runs' work
    await admin.setOffsets({ groupId: group, topic: USERS_TOPIC, partitions: [...ends].map(([partition, offset]) => ({ partition, offset })) });
    const base = { API_BASE_URL: api.url, LOG_LEVEL: "info" };
    workerEnv.ingest = { ...base, INGEST_SEED: seed, INGEST_BATCH_SIZE: String(BATCH), INGEST_INTERVAL_MS: String(INTERVAL_MS), INGEST_RETRY_BASE_MS: "100", INGEST_RETRY_MAX_MS: "1000", INGEST_RETRIES: "3" };
    workerEnv.relay = { ...base, RELAY_BATCH_SIZE: "2000", RELAY_POLL_MS: "100" };
    workerEnv.processor = { ...base, PROCESSOR_GROUP_ID: group, PROCESSOR_CHUNK_SIZE: "200" };
    await start("relay");
    await start("processor");
    await start("ingest");
    sampler = setInterval(sample, 200);
    await waitFor("records written to Cassandra", async () => written > 0, 300_000, 500);
  });

  after(async () => {
    if (sampler) clearInterval(sampler);
    await sup.stop();
    await admin?.disconnect();
    await cass?.shutdown();
    await pg?.end();
    await api?.close();
    printTable();
  });

  afterEach(() => printTable());

  for (const service of FAULTS) {
    it(`${service}: one member kill -9'd and restarted, twice (two different members): no exit, no long stall`, async () => {
      await kill(service, 1);
      await kill(service, 2);
      const r = rows.find((x) => x.fault.startsWith(service))!;
      assert.equal(r.exits, 0, `${service}: workers exited:\n${sup.exitLog.join("\n")}`);
      for (const s of r.stalls) assert.ok(s <= MAX_STALL_S, `${service}: the stream stood still ${s.toFixed(1)} s (> ${MAX_STALL_S} s)`);
    });
  }

  // One accounting at the end (each id checked once, at LOCAL_QUORUM, after the group read the
  // whole topic): a per-fault check took minutes on the loaded host. A missing id is charged to
  // the first fault by whose end its page was stored.
  it("at the end: every id ingest stored is in Cassandra (0 lost), charged per fault", async () => {
    const s = await stagedIds();
    const missing = new Set(await stored.missing(s.ids, 600_000));
    const pageOf = new Map<string, number>();
    for (let p = 1; p <= pagesChecked; p++) for (let i = 0; i < BATCH; i++) pageOf.set(generateUser(seed, p, i).login.uuid.toLowerCase(), p);
    for (const id of missing) {
      const w = windows.find((x) => (pageOf.get(id) ?? Infinity) <= x.toPage);
      if (w) w.row.lost++;
    }
    console.log(`      ${s.ids.length} ids stored by ingest, ${s.ids.length - missing.size} in Cassandra, ${missing.size} missing, ${s.unaccounted} not stored`);
    assert.equal(missing.size, 0, `records lost, e.g. ${[...missing].slice(0, 3).join(", ")}`);
    assert.equal(rows.reduce((a, r) => a + r.exits, 0), 0, `workers exited:\n${sup.exitLog.join("\n")}`);
  });
});
