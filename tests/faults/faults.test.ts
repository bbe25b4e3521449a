/**
 * The fault suite (npm run test:faults): while a stream of users flows through the real local
 * services (offline API → ingest → PostgreSQL → relay → Kafka → processor → Cassandra), each
 * fault is applied in turn: Kafka, PostgreSQL, Cassandra and the Schema Registry stopped and
 * started again (through scripts/services, as an operator would), each worker SIGKILLed (the
 * relay also right after Kafka acked a send, before its commit), the schema evolved,
 * malformed records of each kind injected, and the DLQ refusing letters for a while (its
 * max.message.bytes lowered, then restored: offsets held meanwhile, each letter once after). The workers are child
 * processes launched the one way
 * runtime/main.ts is (tests/integration/workers/harness.ts), supervised like a kubelet would:
 * one that exits by itself is counted, then started again.
 *
 * After each fault: the exact set of staged ids is the set in Cassandra (lost = the difference),
 * bad records are each accounted for with their reason, no good record is dead-lettered, no worker
 * exited, and the resume time (dependency back → the affected workers make progress again).
 * At the end, every outbox row of the run is on the topic exactly once (counted on the topic).
 * It prints one table: fault | times | records lost | wrongly dead-lettered | worker exits | resume s.
 *
 * It restarts SHARED services: other test runs on this machine may see them go away meanwhile.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ConfigResourceTypes, ConfigSource, Kafka as KafkaClient, logLevel, type Admin, type Kafka } from "kafkajs";
import type { Pool } from "pg";
import type { Client as CassandraClient } from "cassandra-driver";
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import { startApiServer, type ApiServer } from "../../runtime/api/server";
import { generateUser } from "../../runtime/api/generate";
import { DLQ_TOPIC, USERS_TOPIC, USERS_VALUE_SUBJECT } from "../../runtime/contracts/names";
import { userCreatedAvsc } from "../../runtime/contracts/user-created";
import { normalizeUser } from "../../runtime/ingest/normalize";
import { keyBucket } from "../../runtime/lib/key-bucket";
import type { DlqEnvelope } from "../../runtime/processor/dlq";
import { limitApplied } from "../support/topic-limit";
import {
  cassandra,
  compileRuntime,
  kafka,
  pgPool,
  readRange,
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

type Name = "ingest" | "relay" | "processor";

interface Row {
  fault: string;
  times: number;
  lost: number;
  wronglyDeadLettered: number;
  exits: number;
  resume: number[];
  notes: string[];
}

/** users per page, and the pause between pages: a steady ~200 users/s on 2 shared cores */
const BATCH = 100;
const INTERVAL_MS = 500;
/**
 * The issue's bound: every worker makes progress again within 5 s of its dependency being back or
 * of being started again (FAULTS_RESUME_MAX_S to try another bound).
 */
const RESUME_MAX_S = Number(process.env.FAULTS_RESUME_MAX_S ?? 5);
/** the faults that take a worker or a dependency away (the others are bad input: no resume to take) */
const isOutage = (fault: string) => fault.startsWith("SIGKILL") || fault.endsWith("stop/start");
/** how long each stopped service stays down: long enough that every worker meets the failure */
const OUTAGE_MS = 3000;

function services(verb: "up" | "down", ...names: string[]): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    execFile(`${ROOT}/scripts/services`, [verb, ...names], { cwd: ROOT, timeout: 900_000 }, (err, _out, stderr) => {
      if (err) reject(new Error(`scripts/services ${verb} ${names.join(" ")}: ${err.message}\n${stderr.slice(-3000)}`));
      else resolve(Date.now() - t0);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where a case's time goes: seconds since the case started, printed as it runs. */
let caseT0 = Date.now();
function phase(what: string): void {
  console.log(`      [${((Date.now() - caseT0) / 1000).toFixed(1)} s] ${what}`);
}

/** Polls `probe` every 100 ms from now; resolves with the time it first succeeded. */
async function answersAgain(probe: () => Promise<unknown>, deadlineMs = 900_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    try {
      await probe();
      return Date.now();
    } catch {
      if (Date.now() - t0 > deadlineMs) throw new Error("the service never answered again");
      await sleep(100);
    }
  }
}

describe("fault suite: the data path loses nothing and never stops", function () {
  this.timeout(1_800_000);
  const run = uniq("faults");
  const seed = run;
  const group = `${run}-processor`;
  let api: ApiServer;
  let pg: Pool;
  let cass: CassandraClient;
  let k: Kafka;
  let admin: Admin;
  let env: Record<string, string>;
  /** the runtime compiled once (compileRuntime): a worker's start is not a compile */
  let entry: string;
  let topicStart = new Map<number, string>();
  let dlqStart = new Map<number, string>();
  const rows: Row[] = [];
  let current: Row | undefined;
  let printedExits = 0;
  /** ids known to be in Cassandra */
  let stored: StoredIds; // staged ids seen in Cassandra
  /** message timestamps (ms) → the fault that was under way, to attribute duplicates */
  const windows: { fault: string; from: number; to: number }[] = [];

  const workerEnv: Record<Name, Record<string, string>> = {
    ingest: {},
    relay: {},
    processor: {},
  };

  /** Each worker as a kubelet would run it; an exit nobody asked for counts against the fault under way. */
  const sup = new Supervisor<Name>(
    (name) => spawnWorker([name], { ...env, ...workerEnv[name] }, entry),
    () => current,
  );
  const w = sup.workers;
  const start = (name: Name) => sup.start(name);
  const kill = (name: Name, sig?: NodeJS.Signals) => sup.kill(name, sig);

  async function progress(name: Name): Promise<number> {
    const label = `worker="${name}"`;
    return w[name].metric("pipeline_records_out_total", label);
  }

  /** Seconds from `since` until each named worker made progress (its counter moved past `base`). */
  async function resumeAfter(
    since: number,
    names: Name[],
    base: Partial<Record<Name, { wk: Worker; n: number }>> = {},
  ): Promise<number> {
    let last = since;
    await Promise.all(
      names.map(async (name) => {
        const b = base[name];
        await waitFor(
          `${name} making progress again`,
          async () => {
            const wk = w[name];
            const n = await progress(name);
            const before = b && b.wk === wk ? b.n : 0;
            return n > before && n > 0;
          },
          240_000,
          100,
        );
        last = Math.max(last, Date.now());
      }),
    );
    return (last - since) / 1000;
  }

  async function snapshot(names: Name[]): Promise<Partial<Record<Name, { wk: Worker; n: number }>>> {
    const out: Partial<Record<Name, { wk: Worker; n: number }>> = {};
    for (const n of names) out[n] = { wk: w[n], n: await progress(n) };
    return out;
  }

  async function cursor(): Promise<number> {
    const r = await pg.query<{ next_page: number }>("SELECT next_page FROM ingest_cursor WHERE seed = $1", [seed]);
    return r.rows[0]?.next_page ?? 1;
  }

  /** Pages already accounted for (every record staged or rejected), and the staged ids so far. */
  let pagesChecked = 0;
  const stagedSoFar: string[] = [];
  let rejectedSoFar = 0;

  /** Every record of every stored page: staged (in users) or rejected with a reason. Incremental. */
  async function stagedIds(): Promise<{ staged: string[]; unaccounted: number; rejected: number }> {
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
      const rej = await pg.query<{ page: number; idx: number }>(
        "SELECT page, idx FROM rejected_records WHERE seed = $1 AND page > $2 AND page <= $3 AND reason <> ''",
        [seed, pagesChecked, pages],
      );
      const rejected = new Set(rej.rows.map((r) => `${r.page}/${r.idx}`));
      ids.forEach((id, j) => {
        const p = pagesChecked + 1 + Math.floor(j / BATCH);
        if (inUsers.has(id)) stagedSoFar.push(id);
        else if (!rejected.has(`${p}/${j % BATCH}`)) unaccounted++;
      });
      rejectedSoFar += rejected.size;
      pagesChecked = pages;
    }
    return { staged: stagedSoFar, unaccounted, rejected: rejectedSoFar };
  }

  async function dlqGoodKeys(good: Set<string>): Promise<number> {
    const msgs = await readRange(k, DLQ_TOPIC, dlqStart, await topicEnds(admin, DLQ_TOPIC));
    const bad = new Set<string>();
    for (const m of msgs)
      if (m.key && good.has(m.key)) bad.add(`${m.headers.source_partition}/${m.headers.source_offset}`);
    return bad.size;
  }

  /** Runs one fault: `body` returns the resume time in seconds. Then the accounting. */
  async function fault(name: string, body: (r: Row) => Promise<number>): Promise<void> {
    let r = rows.find((x) => x.fault === name);
    if (!r) {
      r = { fault: name, times: 0, lost: 0, wronglyDeadLettered: 0, exits: 0, resume: [], notes: [] };
      rows.push(r);
    }
    current = r;
    const from = Date.now();
    r.times++;
    const resume = await body(r);
    r.resume.push(resume);
    phase(`${name}: done, resume ${resume.toFixed(1)} s`);
    windows.push({ fault: name, from, to: Date.now() });
    // accounting: everything staged so far is in Cassandra
    const s = await stagedIds();
    r.lost += s.unaccounted;
    const missing = await stored.missing(s.staged);
    phase(`${name}: accounted (${s.staged.length} staged ids so far)`);
    r.lost += missing.length;
    if (missing.length > 0)
      r.notes.push(`${missing.length} staged ids not in Cassandra, e.g. ${missing.slice(0, 3).join(", ")}`);
    current = undefined;
    if (isOutage(name))
      assert.ok(
        resume < RESUME_MAX_S,
        `${name}: the workers resumed ${resume.toFixed(1)} s after it, not within ${RESUME_MAX_S} s`,
      );
  }

  beforeEach(() => {
    caseT0 = Date.now();
  });

  before(async () => {
    caseT0 = Date.now();
    entry = await compileRuntime();
    phase("runtime compiled");
    env = servicesEnv();
    api = await startApiServer({ port: 0 });
    pg = pgPool();
    pg.on("error", () => undefined);
    cass = cassandra();
    k = kafka();
    admin = k.admin();
    stored = new StoredIds(cass, admin, group);
    await admin.connect();
    // a broker started from older settings refuses the processor's short session (Kafka's own floor
    // is 6 s; ours is 2 s, infra/catalog/settings.ts): restart it with the current ones
    const { brokers } = await admin.describeCluster();
    const cfg = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [
        {
          type: ConfigResourceTypes.BROKER,
          name: String(brokers[0].nodeId),
          configNames: ["group.min.session.timeout.ms"],
        },
      ],
    });
    const minSession = Number(
      cfg.resources[0].configEntries.find((e) => e.configName === "group.min.session.timeout.ms")?.configValue ?? 0,
    );
    if (minSession > 3000) {
      phase(`kafka's group.min.session.timeout.ms is ${minSession}: restarting it with the current settings`);
      await services("down", "kafka");
      await services("up", "kafka");
      await answersAgain(() => topicEnds(admin));
    }
    topicStart = await topicEnds(admin);
    dlqStart = await topicEnds(admin, DLQ_TOPIC);
    // the group starts at the topic's end: the topic's history is other runs' work
    await admin.setOffsets({
      groupId: group,
      topic: USERS_TOPIC,
      partitions: [...topicStart].map(([partition, offset]) => ({ partition, offset })),
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
    // small sends: a round is many acknowledged sends, so the relay can be killed between an ack and its
    // commit. Rounds of at most 500 rows: with 16 kB sends a 2,000-row round after an outage's backlog
    // is ~50 sends one after another (5.4 s on a just-restarted broker) before records_out moves
    workerEnv.relay = { ...base, RELAY_BATCH_SIZE: "500", RELAY_POLL_MS: "100", RELAY_MAX_SEND_BYTES: "16384" };
    workerEnv.processor = { ...base, PROCESSOR_GROUP_ID: group, PROCESSOR_CHUNK_SIZE: "200" };
    await start("relay");
    await start("processor");
    await start("ingest");
    await resumeAfter(Date.now(), ["ingest", "relay", "processor"]);
    phase("workers started and making progress");
  });

  afterEach(function () {
    const t = this.currentTest;
    if (t?.state === "failed") console.log(`      ${t.title}: ${t.err?.message ?? ""}`.slice(0, 3000));
    printTable();
    while (sup.exitLog.length > printedExits) console.log(sup.exitLog[printedExits++]);
  });

  after(async () => {
    await sup.stop();
    // FAULTS_LOG_DIR: every worker's output, for finding where a resume's seconds went
    const dir = process.env.FAULTS_LOG_DIR;
    if (dir) {
      fs.mkdirSync(dir, { recursive: true });
      sup.started.forEach((wk, i) =>
        fs.writeFileSync(path.join(dir, `${String(i).padStart(2, "0")}-${wk.name}.log`), wk.output()),
      );
    }
    await admin?.disconnect();
    await cass?.shutdown();
    await pg?.end();
    await api?.close();
    printTable();
  });

  function printTable(): void {
    const lines = [
      "| fault | times | records lost | wrongly dead-lettered | worker exits | resume s |",
      "|---|---|---|---|---|---|",
      ...rows.map((r) => {
        const res = r.resume.filter((x) => Number.isFinite(x));
        const resume =
          res.length === 0
            ? "-"
            : res.length === 1
              ? res[0].toFixed(1)
              : `${Math.min(...res).toFixed(1)}–${Math.max(...res).toFixed(1)}`;
        return `| ${r.fault} | ${r.times} | ${r.lost} | ${r.wronglyDeadLettered} | ${r.exits} | ${resume} |`;
      }),
    ];
    console.log(`\n${lines.join("\n")}\n`);
    for (const r of rows) for (const n of r.notes) console.log(`  ${r.fault}: ${n}`);
  }

  /**
   * One stop/start of a service as an operator does it (`scripts/services down`, an outage of
   * OUTAGE_MS, `scripts/services up`). The resume clock starts when the service answers `probe`
   * again (while `up` may still run its ready steps) and stops when every affected worker's
   * records_out has moved.
   */
  async function stopStart(
    svc: string,
    upNames: string[],
    probe: () => Promise<unknown>,
    affected: Name[],
    meanwhile?: () => Promise<void>,
  ): Promise<number> {
    phase(`${svc}: down took ${((await services("down", svc)) / 1000).toFixed(1)} s`);
    await meanwhile?.();
    await sleep(OUTAGE_MS);
    // a worker restarted meanwhile (meanwhile) starts its counter again from 0
    const base = meanwhile ? {} : await snapshot(affected);
    const back = answersAgain(probe).then((t) => {
      phase(`${svc}: answers again`);
      return t;
    });
    const resumed = back.then((t) => resumeAfter(t, affected, base));
    phase(`${svc}: up took ${((await services("up", ...upNames)) / 1000).toFixed(1)} s`);
    return resumed;
  }

  /**
   * Kafka answers: one try of a fresh client, no retries, short time-outs. (The suite's own admin
   * retries for ~6 s inside one call: the clock would start seconds after the broker was back.)
   */
  async function kafkaAnswers(): Promise<void> {
    const probe = new KafkaClient({
      clientId: "faults-probe",
      brokers: env.KAFKA_BROKERS.split(","),
      logLevel: logLevel.NOTHING,
      connectionTimeout: 500,
      requestTimeout: 1000,
      retry: { retries: 0 },
    }).admin();
    try {
      await probe.connect();
      await probe.fetchTopicOffsets(USERS_TOPIC);
    } finally {
      await probe.disconnect().catch(() => undefined);
    }
  }

  /**
   * Kafka is back for the workers when its partitions answer AND the processor group's coordinator
   * has loaded the group (a restarted broker loads every __consumer_offsets partition one after
   * another first: seconds on a loaded host, Kafka's own start, before any group can join). Both
   * moments are noted; the clock starts at the second.
   */
  async function kafkaBack(r: Row): Promise<void> {
    await answersAgain(kafkaAnswers);
    const t = Date.now();
    await answersAgain(async () => {
      const probe = new KafkaClient({
        clientId: "faults-probe",
        brokers: env.KAFKA_BROKERS.split(","),
        logLevel: logLevel.NOTHING,
        connectionTimeout: 500,
        requestTimeout: 1000,
        retry: { retries: 0 },
      }).admin();
      try {
        await probe.connect();
        await probe.fetchTopicOffsets(USERS_TOPIC); // loads the metadata describeGroups needs (no retries here)
        await probe.describeGroups([group]); // throws while the coordinator is loading
      } finally {
        await probe.disconnect().catch(() => undefined);
      }
    });
    r.notes.push(
      `partitions answered ${((Date.now() - t) / 1000).toFixed(1)} s before the group coordinator had loaded`,
    );
  }

  it("Kafka stop/start", async () => {
    await fault("Kafka stop/start", (r) => stopStart("kafka", ["kafka"], () => kafkaBack(r), ["relay", "processor"]));
  });

  it("PostgreSQL stop/start", async () => {
    await fault("PostgreSQL stop/start", () =>
      stopStart("postgres", ["postgres", "schema-registry"], () => pg.query("SELECT 1"), ["ingest", "relay"]),
    );
  });

  /** Cassandra answers CQL: a fresh client each try (the suite's own waits out its reconnection delay). */
  async function cassandraAnswers(): Promise<void> {
    const c = cassandra();
    try {
      await c.execute("SELECT now() FROM system.local");
    } finally {
      await c.shutdown().catch(() => undefined);
    }
  }

  it("Cassandra stop/start", async () => {
    await fault("Cassandra stop/start", () => stopStart("cassandra", ["cassandra"], cassandraAnswers, ["processor"]));
  });

  it("Schema Registry stop/start (the processor restarted while it is down: a cold cache)", async () => {
    await fault("Schema Registry stop/start", () =>
      stopStart(
        "schema-registry",
        ["schema-registry"],
        async () => {
          const r = await fetch(`${env.SCHEMA_REGISTRY_URL}/subjects`);
          if (!r.ok) throw new Error(String(r.status));
        },
        ["processor"],
        async () => {
          await kill("processor");
          await start("processor");
        },
      ),
    );
  });

  for (const name of ["ingest", "relay", "processor"] as Name[]) {
    it(`SIGKILL ${name}`, async () => {
      await fault(`SIGKILL ${name}`, async () => {
        await waitFor(`${name} busy`, async () => (await progress(name)) > 0, 60_000);
        phase(`${name} busy`);
        await kill(name);
        const t = Date.now();
        await start(name);
        return resumeAfter(t, [name]);
      });
    });
  }

  it("SIGKILL relay right after Kafka acked a send, before its commit", async () => {
    await fault("SIGKILL relay after Kafka ack", async (r) => {
      let orphaned = false;
      for (let attempt = 0; attempt < 20 && !orphaned; attempt++) {
        // a round under way: its in-flight record exists and the topic's end moved since it was taken
        phase(`relay after ack: attempt ${attempt + 1}`);
        const hit = await waitFor(
          "a relay round with an acknowledged send",
          async () => {
            const f = await pg.query<{ offsets: Record<string, string> }>("SELECT offsets FROM relay_inflight");
            if (f.rows.length === 0) return false;
            const ends = await topicEnds(admin);
            return f.rows.some((row) =>
              Object.entries(row.offsets).some(([p, off]) => BigInt(ends.get(Number(p)) ?? "0") > BigInt(off)),
            );
          },
          60_000,
          5,
        );
        if (!hit) continue;
        await kill("relay");
        orphaned = ((await pg.query("SELECT 1 FROM relay_inflight")).rowCount ?? 0) > 0;
        await start("relay");
      }
      r.notes.push(
        orphaned
          ? "killed with an acknowledged, uncommitted send (relay_inflight left behind, reconciled)"
          : "never caught between ack and commit",
      );
      assert.ok(orphaned, "the relay was killed between an ack and its commit");
      return resumeAfter(Date.now(), ["relay"]);
    });
  });

  it("schema evolved (BACKWARD: a new field with a default), 1,000 messages written with it", async () => {
    await fault("schema evolution (1,000 new-schema msgs)", async (r) => {
      const registry = new SchemaRegistry({ host: env.SCHEMA_REGISTRY_URL });
      const v1 = JSON.parse(userCreatedAvsc()) as { fields: object[] };
      const v2 = { ...v1, fields: [...v1.fields, { name: "nickname", type: ["null", "string"], default: null }] };
      const { id } = await registry.register(
        { type: SchemaType.AVRO, schema: JSON.stringify(v2) },
        { subject: USERS_VALUE_SUBJECT },
      );
      const users = Array.from({ length: 1000 }, (_x, i) => {
        const n = normalizeUser(generateUser(`${run}-v2`, 1, i), Date.now());
        assert.ok(n.ok);
        return n.user;
      });
      const t0 = Date.now();
      const p = k.producer();
      await p.connect();
      await p.send({
        topic: USERS_TOPIC,
        acks: -1,
        messages: await Promise.all(
          users.map(async (u) => ({ key: u.id, value: await registry.encode(id, { ...u, nickname: "n" }) })),
        ),
      });
      await p.disconnect();
      const ids = users.map((u) => u.id);
      const missing = await stored.missing(ids, 120_000);
      r.lost += missing.length;
      r.wronglyDeadLettered += await dlqGoodKeys(new Set(ids));
      r.notes.push(`schema id ${id}; ${ids.length - missing.length} of ${ids.length} stored`);
      return (Date.now() - t0) / 1000;
    });
  });

  it("malformed records: 1,000 of each kind, each accounted for with its reason", async () => {
    // 1. from the API: ingest puts them in rejected_records (checked by stagedIds: staged or rejected)
    await fault("malformed API records (≥1,000)", async (r) => {
      const before = (await stagedIds()).rejected;
      api.setFaults({ malformedRate: 0.5 });
      await waitFor("1,000 rejected records", async () => (await stagedIds()).rejected - before >= 1000, 180_000, 500);
      api.setFaults({ malformedRate: 0 });
      const s = await stagedIds();
      r.notes.push(`${s.rejected - before} rejected with reasons, ${s.unaccounted} unaccounted`);
      return 0;
    });
    // 2. poison messages on the topic: not the wire format, an unknown schema id, too large for the DLQ as-is
    await fault("poison Kafka messages (1,000)", async (r) => {
      const keys = Array.from({ length: 1000 }, () => crypto.randomUUID());
      const value = (i: number) =>
        i < 600
          ? Buffer.from(`not avro ${i}`)
          : i < 997
            ? Buffer.concat([Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0]), Buffer.from("x")])
            : Buffer.alloc(700_000, i);
      const t0 = Date.now();
      const p = k.producer();
      await p.connect();
      for (let i = 0; i < 997; i += 100) {
        await p.send({
          topic: USERS_TOPIC,
          acks: -1,
          messages: keys.slice(i, Math.min(i + 100, 997)).map((key, j) => ({ key, value: value(i + j) })),
        });
      }
      // the large ones one per request (the broker takes at most 1 MiB per request batch)
      for (let i = 997; i < keys.length; i++)
        await p.send({ topic: USERS_TOPIC, acks: -1, messages: [{ key: keys[i], value: value(i) }] });
      await p.disconnect();
      const want = new Set<string>(keys);
      const found = new Map<string, string>();
      await waitFor(
        "1,000 poison messages dead-lettered",
        async () => {
          for (const m of await readRange(k, DLQ_TOPIC, dlqStart, await topicEnds(admin, DLQ_TOPIC))) {
            if (m.key && want.has(m.key))
              found.set(m.key, (JSON.parse((m.value as Buffer).toString()) as DlqEnvelope).reason);
          }
          return found.size >= keys.length;
        },
        180_000,
        2000,
      ).catch(() => undefined);
      r.lost += keys.length - found.size;
      const reasons = new Set(
        [...found.values()].map((x) => x.split(":")[0] + ":" + (x.split(":")[1] ?? "").slice(0, 30)),
      );
      r.notes.push(`${found.size} of ${keys.length} in the DLQ with reasons (${[...reasons].join(" | ")})`);
      assert.ok([...found.values()].every((x) => x.startsWith("decode: ")));
      return (Date.now() - t0) / 1000;
    });
    // 3. outbox rows the relay cannot publish: not the schema's shape, or larger than a Kafka message
    await fault("unpublishable outbox rows (1,000)", async (r) => {
      const base = normalizeUser(generateUser(`${run}-ob`, 1, 0), Date.now());
      assert.ok(base.ok);
      const ids = Array.from({ length: 1000 }, () => crypto.randomUUID());
      const payload = (id: string, i: number) =>
        JSON.stringify(
          i < 997
            ? { ...base.user, id, email: undefined, dob: "not a number" }
            : { ...base.user, id, picture: "p".repeat(1_100_000) },
        );
      const ins = await pg.query<{ id: string }>(
        `INSERT INTO outbox (user_id, bucket, payload)
         SELECT u, b, p FROM unnest($1::uuid[], $2::smallint[], $3::jsonb[]) AS t(u, b, p) RETURNING id::text`,
        [ids, ids.map((id) => keyBucket(id)), ids.map((id, i) => payload(id, i))],
      );
      const t0 = Date.now();
      const outIds = ins.rows.map((x) => x.id);
      await waitFor(
        "1,000 rows parked",
        async () => {
          const n = await pg.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM outbox WHERE id = ANY($1::bigint[]) AND parked_at IS NOT NULL AND park_reason <> ''",
            [outIds],
          );
          return n.rows[0].n >= outIds.length;
        },
        120_000,
        500,
      ).catch(() => undefined);
      const st = await pg.query<{ reason: string; n: number }>(
        "SELECT coalesce(split_part(park_reason, ':', 1), '(not parked)') AS reason, count(*)::int AS n FROM outbox WHERE id = ANY($1::bigint[]) GROUP BY 1",
        [outIds],
      );
      const parked = st.rows.filter((x) => x.reason !== "(not parked)").reduce((a, b) => a + b.n, 0);
      r.lost += outIds.length - parked;
      r.notes.push(`parked: ${st.rows.map((x) => `${x.reason} ${x.n}`).join(", ")}`);
      return (Date.now() - t0) / 1000;
    });
  });

  /** The DLQ topic's own settings (overrides): restored as they were after the row below. */
  async function dlqOverrides(): Promise<{ name: string; value: string }[]> {
    const resources = [{ type: ConfigResourceTypes.TOPIC, name: DLQ_TOPIC }];
    const d = await admin.describeConfigs({ includeSynonyms: false, resources });
    return d.resources[0].configEntries
      .filter((e) => e.configSource === ConfigSource.TOPIC_CONFIG)
      .map((e) => ({ name: e.configName, value: e.configValue }));
  }

  async function setDlqOverrides(entries: { name: string; value: string }[]): Promise<void> {
    // AlterConfigs replaces the topic's overrides as a whole: the others are passed again
    const resources = [{ type: ConfigResourceTypes.TOPIC, name: DLQ_TOPIC, configEntries: entries }];
    await admin.alterConfigs({ validateOnly: false, resources });
  }

  it("the DLQ refusing dead letters for a while (its max.message.bytes lowered, then restored)", async () => {
    await fault("DLQ refusing letters (10 s)", async (r) => {
      const overrides = await dlqOverrides();
      const keys: string[] = Array.from({ length: 50 }, () => crypto.randomUUID());
      const others = overrides.filter((e) => e.name !== "max.message.bytes");
      // under one letter (~700 bytes): a single letter in a batch of its own would still be taken
      await setDlqOverrides([...others, { name: "max.message.bytes", value: "200" }]);
      let restored = false;
      try {
        await limitApplied(k, DLQ_TOPIC, 200);
        const p = k.producer();
        await p.connect();
        const messages = keys.map((key, i) => ({ key, value: Buffer.from(`not avro ${i}`) }));
        const sent = await p.send({ topic: USERS_TOPIC, acks: -1, messages });
        await p.disconnect();
        await sleep(10_000);
        // nothing committed past a poison message whose letter the DLQ did not take
        const [committed] = await admin.fetchOffsets({ groupId: group, topics: [USERS_TOPIC] });
        for (const at of sent) {
          const c = BigInt(committed.partitions.find((x) => x.partition === at.partition)?.offset ?? "-1");
          const where = `partition ${at.partition} committed ${c}, past the poison at ${at.baseOffset}`;
          assert.ok(c <= BigInt(at.baseOffset ?? "0"), where);
        }
        const onDlq = async () => readRange(k, DLQ_TOPIC, dlqStart, await topicEnds(admin, DLQ_TOPIC));
        const early = (await onDlq()).filter((m) => m.key && keys.includes(m.key));
        assert.equal(early.length, 0, "no letter while the DLQ refuses them");
        const t = Date.now();
        await setDlqOverrides(overrides);
        restored = true;
        phase("DLQ limit restored");
        const letters = new Map<string, number>();
        await waitFor(
          "50 letters",
          async () => {
            letters.clear();
            for (const m of await onDlq()) {
              if (m.key && keys.includes(m.key)) letters.set(m.key, (letters.get(m.key) ?? 0) + 1);
            }
            return letters.size >= keys.length;
          },
          120_000,
          1000,
        ).catch(() => undefined);
        const resume = (Date.now() - t) / 1000;
        r.lost += keys.length - letters.size;
        const twice = [...letters.values()].filter((n) => n > 1).length;
        r.notes.push(`${letters.size} of ${keys.length} letters once the limit was back, ${twice} twice`);
        assert.equal(twice, 0, "a letter on the DLQ more than once");
        return resume;
      } finally {
        if (!restored) await setDlqOverrides(overrides).catch(() => undefined);
      }
    });
  });

  it("at the end: every outbox row of the run on the topic exactly once, no good record dead-lettered, no worker exited", async () => {
    const s = await stagedIds();
    phase(`${s.staged.length} staged ids`);
    const staged = new Set(s.staged);
    // let the relay finish what is staged
    await waitFor(
      "outbox of the run published",
      async () => {
        const r = await pg.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM outbox WHERE user_id = ANY($1::uuid[]) AND published_at IS NULL AND parked_at IS NULL",
          [s.staged],
        );
        return r.rows[0].n === 0;
      },
      180_000,
      500,
    );
    phase("outbox of the run published");
    const outbox = await pg.query<{ id: string }>("SELECT id::text FROM outbox WHERE user_id = ANY($1::uuid[])", [
      s.staged,
    ]);
    const msgs = (await readRange(k, USERS_TOPIC, topicStart, await topicEnds(admin))).filter(
      (m) => m.key && staged.has(m.key),
    );
    const count = new Map<string, number>();
    for (const m of msgs) count.set(m.headers.outbox_id, (count.get(m.headers.outbox_id) ?? 0) + 1);
    const missing = outbox.rows.filter((x) => !count.has(x.id)).length;
    const dups = [...count.values()].filter((n) => n > 1).reduce((a, n) => a + n - 1, 0);
    const wrong = await dlqGoodKeys(staged);
    phase("topic and DLQ read");
    console.log(
      `      ${outbox.rows.length} outbox rows of the run, ${msgs.length} messages of them on the topic: ${missing} missing, ${dups} duplicates; ${wrong} good records dead-lettered`,
    );
    // attribute each dead-lettered good record to the fault under way when it was published
    if (wrong > 0) (rows.find((r) => r.fault.startsWith("Schema Registry")) ?? rows[0]).wronglyDeadLettered += wrong;
    if (dups > 0) {
      for (const m of msgs) {
        if ((count.get(m.headers.outbox_id) ?? 0) > 1) {
          const t = Number(m.timestamp);
          const win = windows.find((x) => t >= x.from && t <= x.to);
          const r = rows.find((x) => x.fault === win?.fault);
          if (r) r.notes.push(`outbox row ${m.headers.outbox_id} on the topic more than once`);
        }
      }
    }
    const exits = rows.reduce((a, r) => a + r.exits, 0);
    const lost = rows.reduce((a, r) => a + r.lost, 0);
    assert.equal(missing, 0, "outbox rows not on the topic");
    assert.equal(dups, 0, "outbox rows on the topic more than once");
    assert.equal(wrong, 0, "good records dead-lettered");
    assert.equal(exits, 0, `workers exited:\n${sup.exitLog.join("\n")}`);
    assert.equal(lost, 0, "records lost");
    for (const r of rows)
      assert.ok(
        r.resume.every((x) => x < 60),
        `${r.fault}: resume ${r.resume.join(", ")} s`,
      );
  });
});
