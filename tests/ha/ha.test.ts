/**
 * The kill suite (npm run test:ha): the replicated local set (`scripts/services up --nodes 3`:
 * 3 ZooKeeper, 3 Kafka brokers, 3 Cassandra nodes on 127.0.0.2-4, its own PostgreSQL and
 * registry) under a steady stream of users (offline API → ingest → PostgreSQL → relay → Kafka →
 * processor → Cassandra, the workers launched the one way runtime/main.ts is). While records
 * stream, one member is kill -9'd (a broker, then a Cassandra node, then a ZooKeeper member, each
 * twice, a different member each time), left down for DOWN_MS, and started again through
 * scripts/services (as a supervisor would). Asserted, per fault: 0 records lost (every staged id in
 * Cassandra once the group has read everything), no worker exited, and the stream (the processor's
 * records written) never stalled for more than MAX_STALL_S, nor did the relay's records published
 * (the outbox backs up behind a relay that stands still, while the processor may still drain what
 * Kafka holds). It prints one table:
 * fault | times | records lost | worker exits | longest stall s | relay stood still s | member back after s.
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
import { assertCoordinatorKilled } from "./coordinator-check";
import {
  cassandra,
  kafka,
  pgPool,
  ROOT,
  servicesEnv,
  spawnWorker,
  StoredIds,
  Supervisor,
  topicEnds,
  uniq,
  waitFor,
  type Worker,
} from "../integration/workers/harness";

const NODES = 3;
const RUN = path.join(pipelineHome(), `run-nodes${NODES}`);
// The harness reads services.env when called: this suite's set, not the shared one.
process.env.PIPELINE_SERVICES_ENV = path.join(RUN, "services.env");

type Name = "ingest" | "relay" | "processor";
type Service = "kafka" | "cassandra" | "zookeeper";

const SERVICES: Service[] = ["kafka", "cassandra", "zookeeper"];
/** HA_FAULTS=kafka,zookeeper: only these clusters' kills (a quicker check after a change); default all three. */
const FAULTS = (process.env.HA_FAULTS ?? SERVICES.join(",")).split(",").map((x) => x.trim()) as Service[];
for (const f of FAULTS)
  if (!SERVICES.includes(f)) throw new Error(`HA_FAULTS: '${f}' is not one of ${SERVICES.join(", ")}`);

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
  /** the relay's longest standstill in each kill's window */
  relayStalls: number[];
  back: number[];
  notes: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function services(...args: string[]): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    execFile(
      `${ROOT}/scripts/services`,
      [...args, "--nodes", String(NODES)],
      { cwd: ROOT, timeout: 900_000 },
      (err, _out, stderr) => {
        if (err)
          reject(
            new Error(`scripts/services ${args.join(" ")} --nodes ${NODES}: ${err.message}\n${stderr.slice(-3000)}`),
          );
        else resolve(Date.now() - t0);
      },
    );
  });
}

function memberPid(service: Service, i: number): number {
  return Number(fs.readFileSync(path.join(RUN, `${service}-${i}`, "pid"), "utf8").trim());
}

/**
 * The __consumer_offsets partition of a group: Utils.abs(Java's String.hashCode) mod 50, as Kafka's
 * GroupMetadataManager.
 */
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
 * A processor group name whose coordinator is broker `broker` NOW: the current leader of its
 * __consumer_offsets partition (what a broker answers to FindCoordinator), looked up right before
 * the processor starts. One that broker also prefers (replicas[0]) is taken first: the controller's
 * automatic preferred-leader election (every 5 min) then has no reason to move it elsewhere. Of
 * those, one whose next replica is `next` is taken first: when `broker` is killed the group moves
 * to `next`, so a suite that kills `broker` then `next` takes the coordinator both times (the
 * second time to a new coordinator that must load the group while the first broker's partitions
 * come back: the worst case, which a run met only by chance before). The suite looks the
 * coordinator up again before each broker kill.
 */
async function groupCoordinatedBy(admin: Admin, run: string, broker: number, next?: number): Promise<string> {
  const md = await admin.fetchTopicMetadata({ topics: ["__consumer_offsets"] });
  const byPartition = new Map(md.topics[0].partitions.map((p) => [p.partitionId, p]));
  let preferred: string | undefined;
  let fallback: string | undefined;
  for (let k = 0; k < 1000; k++) {
    const name = `${run}-${k}-processor`;
    const p = byPartition.get(offsetsPartition(name, byPartition.size));
    if (p?.leader !== broker) continue;
    if (p.replicas[0] === broker && (next === undefined || p.replicas[1] === next)) return name;
    if (p.replicas[0] === broker) preferred ??= name;
    fallback ??= name;
  }
  const found = preferred ?? fallback;
  if (found) return found;
  throw new Error(
    `no group name coordinated by broker ${broker} in 1000 tries: it leads no __consumer_offsets partition (leaders: ${[...byPartition.values()].map((p) => p.leader).join(",")})`,
  );
}

/**
 * Kafka's preferred-replica election on every partition (Admin.electLeaders, tests/ha/ElectPreferredLeaders.java
 * run as a single-file program on the downloaded Kafka's lib): a set just started has every leader
 * on the brokers that came up first (broker 2 often leads nothing) until the controller's own
 * check, every 5 min, moves them back mid-suite. Run once before the stream: each broker leads its
 * share, as in a cluster that has run for a while, and no automatic election moves leaders during
 * the first faults.
 */
function preferredLeaderElection(bootstrap: string): Promise<string> {
  const base = path.join(pipelineHome(), "downloads", "kafka");
  const version = fs.readdirSync(base).find((v) => fs.existsSync(path.join(base, v, "lib", ".complete")));
  if (!version)
    return Promise.reject(new Error(`no downloaded Kafka under ${base} (scripts/services up --nodes 3 installs it)`));
  const args = [
    "-cp",
    `${path.join(base, version, "lib")}/*`,
    path.join(__dirname, "ElectPreferredLeaders.java"),
    bootstrap,
  ];
  return new Promise((resolve, reject) => {
    execFile(process.env.JAVA ?? "java", args, { timeout: 180_000 }, (err, out, stderr) => {
      if (err) reject(new Error(`ElectPreferredLeaders: ${err.message}\n${stderr.slice(-1500)}`));
      else resolve(`${out}`.trim());
    });
  });
}

/** A log4j line's time ("[2026-11-26 06:27:55,788] ..."), in the brokers' (this machine's) time zone. */
function log4jTime(line: string): number | undefined {
  const m = /^\[(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d),(\d{3})\]/.exec(line);
  return m ? new Date(`${m[1]}T${m[2]}.${m[3]}`).getTime() : undefined;
}

/** Every broker's log lines from `since` on (the set's kafka-<i>/kafka-<i>.log), in time order. */
function brokerLines(since: number): { t: number; line: string }[] {
  const out: { t: number; line: string }[] = [];
  for (let i = 0; i < NODES; i++) {
    const file = path.join(RUN, `kafka-${i}`, `kafka-${i}.log`);
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
      const t = log4jTime(line);
      if (t !== undefined && t >= since) out.push({ t, line });
    }
  }
  return out.sort((a, b) => a.t - b.t);
}

/**
 * A broker kill second by second, from the brokers' logs: when the controller saw broker `i` gone
 * (its ZooKeeper session expired), when the survivors took its partitions (a fetcher removed: a
 * LeaderAndIsr applied), and for the processor's group: its reload by a new coordinator, the
 * member's eviction, the group stable again. Seconds after the kill; "-" when it did not happen.
 */
function brokerKillTimeline(i: number, killedAt: number, group: string, until: number): string {
  const lines = brokerLines(killedAt - 1000).filter((x) => x.t <= until);
  const at = (re: RegExp, from = killedAt) => lines.find((x) => x.t >= from && re.test(x.line))?.t;
  const s = (t?: number) => (t === undefined ? "-" : `+${((t - killedAt) / 1000).toFixed(1)}`);
  const gone = at(new RegExp(`deleted brokers: ([0-9,]*,)?${i}(,|\\s|$)`));
  const leaders = gone === undefined ? undefined : at(/Removed fetcher for partitions .*users_created-/, gone);
  const g = group.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return [
    `seen gone ${s(gone)}`,
    `new leaders ${s(leaders)}`,
    `group reloaded ${s(at(new RegExp(`Loading group metadata for ${g} `)))}`,
    `member evicted ${s(at(new RegExp(`Member \\S+ in group ${g} has failed`)))}`,
    `group stable ${s(at(new RegExp(`Stabilized group ${g} `)))}`,
  ].join(", ");
}

/**
 * A worker's records-out counter, sampled: when it last moved, and the longest standstill since
 * watch() (one still under way included): its length in s and when it began, in s after watch()
 * (negative: it began before, the counter had not moved since). The processor's is the stream's
 * stall: end to end, since nothing reaches it that ingest, PostgreSQL, the relay and Kafka did not
 * pass on.
 */
class Standstill {
  value = -1;
  lastMove = Date.now();
  private since?: { from: number; gap: number; gapFrom: number };

  observe(n: number): void {
    const now = Date.now();
    if (n <= this.value) return;
    if (this.since && now - this.lastMove > this.since.gap)
      Object.assign(this.since, { gap: now - this.lastMove, gapFrom: this.lastMove });
    this.value = n;
    this.lastMove = now;
  }

  watch(): void {
    const now = Date.now();
    this.since = { from: now, gap: 0, gapFrom: now };
  }

  longest(): { s: number; at: number } {
    const l = this.since!;
    const open = Date.now() - this.lastMove;
    const [gap, from] = open > l.gap ? [open, this.lastMove] : [l.gap, l.gapFrom];
    return { s: gap / 1000, at: (from - l.from) / 1000 };
  }
}

describe(`kill suite: ${NODES} ZooKeeper, ${NODES} brokers, ${NODES} Cassandra nodes; a member kill -9'd while records stream`, function () {
  this.timeout(3_600_000);
  const run = uniq("ha");
  const seed = run;
  /** The processor's group, named so that its coordinator is broker 2 when it starts: see groupCoordinatedBy. */
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

  /** The processor's records written (end to end) and the relay's records published, sampled every 200 ms. */
  const written = new Standstill();
  const published = new Standstill();
  let sampler: NodeJS.Timeout | undefined;

  const workerEnv: Record<Name, Record<string, string>> = { ingest: {}, relay: {}, processor: {} };

  /** Each worker's output, kept for the breakdown of a stall (the harness keeps it in memory only). */
  const logDir = path.join(pipelineHome(), "ha-logs", run);
  async function launch(name: Name): Promise<Worker> {
    const wk = await spawnWorker([name], { ...env, ...workerEnv[name] });
    fs.mkdirSync(logDir, { recursive: true });
    const file = fs.createWriteStream(path.join(logDir, `${name}.log`), { flags: "a" });
    wk.proc.stdout?.pipe(file);
    wk.proc.stderr?.on("data", (d: Buffer) => file.write(d));
    return wk;
  }

  /** Each worker as a kubelet would run it; an exit nobody asked for counts against the fault under way. */
  const sup = new Supervisor<Name>(launch, () => current);
  const w = sup.workers;
  const start = (name: Name) => sup.start(name);

  function sample(): void {
    void w.relay?.metric("pipeline_records_out_total", 'worker="relay"').then(
      (n) => published.observe(n),
      () => undefined,
    );
    // a sample the loaded processor did not answer in time: the next one counts
    void w.processor?.metric("pipeline_records_out_total", 'worker="processor"').then(
      (n) => written.observe(n),
      () => undefined,
    );
  }

  function watchStalls(): void {
    written.watch();
    published.watch();
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
      for (let p = pagesChecked + 1; p <= pages; p++)
        for (let i = 0; i < BATCH; i++) ids.push(generateUser(seed, p, i).login.uuid.toLowerCase());
      const inUsers = new Set(
        (await pg.query<{ id: string }>("SELECT id::text FROM users WHERE id = ANY($1::uuid[])", [ids])).rows.map(
          (r) => r.id,
        ),
      );
      for (const id of ids) {
        if (inUsers.has(id)) staged.push(id);
        else unaccounted++;
      }
      pagesChecked = pages;
    }
    return { ids: staged, unaccounted };
  }

  /**
   * The broker coordinating the processor's group now: the leader of its __consumer_offsets partition, from a fresh
   * metadata request.
   */
  async function coordinatorNow(): Promise<number> {
    return offsetsLeader(admin, offsetsPartition(group));
  }
  /** Every broker kill (which broker, when): a session that expired at any other time was spurious. */
  const brokerKills: { i: number; at: number }[] = [];
  /** Each broker kill: the broker killed and the group's coordinator looked up right before it. */
  const coordinatorAtKill: { killed: number; coordinator: number }[] = [];
  const suiteStart = Date.now();

  /** kill -9 member i of `service`, DOWN_MS later start it again; then the accounting. */
  async function kill(service: Service, i: number): Promise<void> {
    const name = `${service} member kill -9`;
    let r = rows.find((x) => x.fault === name);
    if (!r)
      rows.push((r = { fault: name, times: 0, lost: 0, exits: 0, stalls: [], relayStalls: [], back: [], notes: [] }));
    current = r;
    r.times++;
    await waitFor(
      "the stream flowing",
      async () => Date.now() - written.lastMove < 2000 && written.value > 0,
      120_000,
      200,
    );
    watchStalls();
    const coordinator = service === "kafka" ? await coordinatorNow() : undefined;
    if (coordinator !== undefined) coordinatorAtKill.push({ killed: i, coordinator });
    const pid = memberPid(service, i);
    process.kill(pid, "SIGKILL");
    const killedAt = Date.now();
    if (service === "kafka") brokerKills.push({ i, at: killedAt });
    await sleep(DOWN_MS);
    await services("up", service);
    r.back.push((Date.now() - killedAt) / 1000);
    // a while with every member back: a rejoin (leader moves back, hints replayed) may stall too
    await sleep(10_000);
    const st = written.longest();
    r.stalls.push(st.s);
    const relayStall = published.longest().s;
    r.relayStalls.push(relayStall);
    const role =
      coordinator === undefined
        ? ""
        : coordinator === i
          ? ", the group's coordinator"
          : `, not the group's coordinator (broker ${coordinator} was)`;
    const detail =
      service === "kafka"
        ? `; relay stood still ${relayStall.toFixed(1)} s; ${brokerKillTimeline(i, killedAt, group, killedAt + DOWN_MS)}; ${processorTimeline(killedAt, killedAt + DOWN_MS)}`
        : "";
    r.notes.push(
      `${service}-${i} (pid ${pid}${role}, killed ${new Date(killedAt).toISOString().slice(11, 23)}): longest stall ${st.s.toFixed(1)} s from +${st.at.toFixed(1)} s after the kill${detail}, back after ${r.back[r.back.length - 1].toFixed(1)} s, load ${fs.readFileSync("/proc/loadavg", "utf8").split(" ")[0]}`,
    );
    // ingest's pages stored meanwhile: their ids are this fault's, in the accounting at the end
    windows.push({ row: r, toPage: (await cursor()) - 1 });
    current = undefined;
  }

  /**
   * The processor's consumer after a broker kill, from its log: when it first rejoined keeping its
   * member id (kafkajs's "re-joining", runtime/processor/coordinator.ts), crashed (a restart under a
   * new member id), and joined the group; seconds after the kill.
   */
  function processorTimeline(killedAt: number, until: number): string {
    const file = path.join(logDir, "processor.log");
    const lines: { t: number; msg: string; memberId?: string }[] = [];
    for (const l of fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n") : []) {
      try {
        const j = JSON.parse(l) as { time?: string; msg?: string; memberId?: string };
        const t = j.time ? Date.parse(j.time) : NaN;
        if (t <= until) lines.push({ t, msg: j.msg ?? "", memberId: j.memberId });
      } catch {
        // a line that is not JSON (a Node warning)
      }
    }
    const s = (x?: { t: number }) => (x === undefined ? "-" : `+${((x.t - killedAt) / 1000).toFixed(1)}`);
    const isJoin = (x: { msg: string }) => /Consumer has joined the group/.test(x.msg);
    const before = lines.filter((x) => x.t < killedAt && isJoin(x)).pop()?.memberId;
    const after = lines.filter((x) => x.t >= killedAt);
    const rejoin = after.find((x) => /re-joining/.test(x.msg));
    const crash = after.find((x) => /^Crash:/.test(x.msg));
    const joined = after.find(isJoin);
    const same = joined === undefined ? "" : joined.memberId === before ? " (same member id)" : " (NEW member id)";
    return `processor: rejoin ${s(rejoin)}, crash ${s(crash)}, joined ${s(joined)}${same}`;
  }

  /**
   * ZooKeeper sessions of brokers that expired with no kill of that broker in the 15 s before: spurious (a session too
   * short for the host).
   */
  function spuriousExpiries(): string[] {
    return brokerLines(suiteStart)
      .filter((x) => /\[Controller id=\d+\] Newly added brokers: .*deleted brokers: [0-9]/.test(x.line))
      .filter((x) => {
        const ids = /deleted brokers: ([0-9,]+)/.exec(x.line)![1].split(",").filter(Boolean).map(Number);
        return ids.some((d) => !brokerKills.some((k) => k.i === d && x.t >= k.at && x.t - k.at <= 15_000));
      })
      .map((x) => x.line.slice(0, 160));
  }

  function printTable(): void {
    const range = (xs: number[]) =>
      xs.length === 0
        ? "-"
        : xs.length === 1
          ? xs[0].toFixed(1)
          : `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;
    const lines = [
      "| fault | times | records lost | worker exits | longest stall s | relay stood still s | member back after s |",
      "|---|---|---|---|---|---|---|",
      ...rows.map(
        (r) =>
          `| ${r.fault} | ${r.times} | ${r.lost} | ${r.exits} | ${range(r.stalls)} | ${range(r.relayStalls)} | ${range(r.back)} |`,
      ),
    ];
    console.log(`\n${lines.join("\n")}\n`);
    for (const r of rows) console.log(`  ${r.fault}:\n    ${r.notes.join("\n    ")}`);
    if (brokerKills.length > 0) {
      const sp = spuriousExpiries();
      console.log(
        `  brokers' ZooKeeper sessions expired outside a kill: ${sp.length}${sp.map((l) => `\n    ${l}`).join("")}`,
      );
    }
    console.log(`  workers' logs: ${logDir}`);
    while (sup.exitLog.length > 0) console.log(sup.exitLog.shift());
  }

  before(async () => {
    env = servicesEnv();
    assert.equal(
      env.KAFKA_BROKERS.split(",").length,
      NODES,
      `${process.env.PIPELINE_SERVICES_ENV}: not the replicated set (scripts/services up --nodes ${NODES})`,
    );
    api = await startApiServer({ port: 0 });
    pg = pgPool();
    pg.on("error", () => undefined);
    cass = cassandra();
    admin = kafka().admin();
    await admin.connect();
    const elected = await preferredLeaderElection(env.KAFKA_BROKERS).catch(
      (e: Error) => `not done (${e.message.split("\n")[0]})`,
    );
    // a fresh admin: this one's cached metadata still names the leaders from before the election
    const named = kafka().admin();
    await named.connect();
    try {
      group = await groupCoordinatedBy(named, run, 2, 1).catch(() => groupCoordinatedBy(named, run, 1, 2));
      console.log(
        `      preferred leaders: ${elected}; the processor's group ${group}, coordinated by broker ${await offsetsLeader(named, offsetsPartition(group))}`,
      );
    } finally {
      await named.disconnect();
    }
    stored = new StoredIds(cass, admin, group);
    // the election just moved leaders: the admin's cached metadata may name old ones, and kafkajs's
    // fetchTopicOffsets does not refresh it on "not the leader" (the 11:58 run failed here); a fresh
    // admin has fresh metadata: a few tries
    let ends: Map<number, string> | undefined;
    for (let attempt = 1; !ends; attempt++) {
      const fresh = kafka().admin();
      try {
        await fresh.connect();
        ends = await topicEnds(fresh);
      } catch (e) {
        if (attempt >= 10) throw e;
        await sleep(1000);
      } finally {
        await fresh.disconnect().catch(() => undefined);
      }
    }
    // the group starts at the topic's end: the topic's history is other runs' work
    await admin.setOffsets({
      groupId: group,
      topic: USERS_TOPIC,
      partitions: [...ends].map(([partition, offset]) => ({ partition, offset })),
    });
    const base = { API_BASE_URL: api.url, LOG_LEVEL: "info" };
    workerEnv.ingest = {
      ...base,
      INGEST_SEED: seed,
      INGEST_BATCH_SIZE: String(BATCH),
      INGEST_INTERVAL_MS: String(INTERVAL_MS),
      INGEST_RETRY_BASE_MS: "100",
      INGEST_RETRY_MAX_MS: "1000",
      INGEST_RETRIES: "3",
    };
    workerEnv.relay = { ...base, RELAY_BATCH_SIZE: "2000", RELAY_POLL_MS: "100" };
    // the consumer's own steps (join, sync, fetches started) in its log, for a stall's breakdown:
    // kafkajs's INFO (logged at our debug) and nothing per record
    workerEnv.processor = {
      ...base,
      PROCESSOR_GROUP_ID: group,
      PROCESSOR_CHUNK_SIZE: "200",
      LOG_LEVEL: "debug",
      KAFKAJS_LOG_LEVEL: "info",
    };
    await start("relay");
    await start("processor");
    await start("ingest");
    sampler = setInterval(sample, 200);
    await waitFor("records written to Cassandra", async () => written.value > 0, 300_000, 500);
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
      if (service === "kafka") {
        // the group's coordinator first (looked up now; the group was named for broker 2, then 1),
        // then the other, which is the coordinator by then when the group moved as its replicas
        // say: the worst case for the consumer twice, the second time at a broker loading the group
        const c = await coordinatorNow();
        const first = c === 1 || c === 2 ? c : 2;
        await kill(service, first);
        await kill(service, first === 1 ? 2 : 1);
      } else {
        await kill(service, 1);
        await kill(service, 2);
      }
      const r = rows.find((x) => x.fault.startsWith(service))!;
      assert.equal(r.exits, 0, `${service}: workers exited:\n${sup.exitLog.join("\n")}`);
      for (const s of r.stalls)
        assert.ok(s <= MAX_STALL_S, `${service}: the stream stood still ${s.toFixed(1)} s (> ${MAX_STALL_S} s)`);
      for (const s of r.relayStalls)
        assert.ok(
          s <= MAX_STALL_S,
          `${service}: the relay published nothing for ${s.toFixed(1)} s (> ${MAX_STALL_S} s)`,
        );
      if (service === "kafka") assertCoordinatorKilled(coordinatorAtKill);
    });
  }

  // One accounting at the end (each id checked once, at LOCAL_QUORUM, after the group read the
  // whole topic): a per-fault check took minutes on the loaded host. A missing id is charged to
  // the first fault by whose end its page was stored.
  it("at the end: every id ingest stored is in Cassandra (0 lost), charged per fault", async () => {
    const s = await stagedIds();
    const missing = new Set(await stored.missing(s.ids, 600_000));
    const pageOf = new Map<string, number>();
    for (let p = 1; p <= pagesChecked; p++)
      for (let i = 0; i < BATCH; i++) pageOf.set(generateUser(seed, p, i).login.uuid.toLowerCase(), p);
    for (const id of missing) {
      const w = windows.find((x) => (pageOf.get(id) ?? Infinity) <= x.toPage);
      if (w) w.row.lost++;
    }
    console.log(
      `      ${s.ids.length} ids stored by ingest, ${s.ids.length - missing.size} in Cassandra, ${missing.size} missing, ${s.unaccounted} not stored`,
    );
    assert.equal(missing.size, 0, `records lost, e.g. ${[...missing].slice(0, 3).join(", ")}`);
    assert.equal(
      rows.reduce((a, r) => a + r.exits, 0),
      0,
      `workers exited:\n${sup.exitLog.join("\n")}`,
    );
  });
});
