/**
 * The dev stack's shape brought up for real on the local Docker engine (stack `ci`,
 * Pulumi.ci.yaml: Karapace, no Control Center, small limits, ports beside the local services'),
 * then used the way a user would, through the published ports only: trigger the DAG with
 * Airflow's REST API, read both Cassandra tables and the DLQ. Then a second `up` changes nothing,
 * a worker source change rolls only the containers that run the worker build, a failing job
 * fails `up` (and runs again on the next), and `destroy` leaves nothing of the stack behind
 * (checked with the Docker Engine API, not with Pulumi's own state).
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { Stack } from "@pulumi/pulumi/automation";
import { Client, auth } from "cassandra-driver";
import { Kafka, logLevel } from "kafkajs";
import { generatePage } from "../../runtime/api/generate";
import { AGGREGATES_TABLE, DLQ_TOPIC, KEYSPACE, USERS_TABLE, USERS_TOPIC } from "../../runtime/contracts/names";
import { USER_CREATED_FIELDS, type UserCreated } from "../../runtime/contracts/user-created";
import { normalizeUser } from "../../runtime/ingest/normalize";
import { captureScreenshots } from "./screenshots";
import {
  Operation,
  Project,
  REPO,
  buildCa,
  buildLeftovers,
  describeStep,
  dockerApi,
  dockerFilter as filter,
  removeBuildLeftovers,
  report,
  tools,
} from "./harness";

const STACK = "ci";
const PREFIX = `realtime-pipeline-${STACK}`;

interface ContainerInfo {
  Id: string;
  Name: string;
  Created: string;
  Image: string;
  State: {
    Running: boolean;
    Pid: number;
    ExitCode: number;
    StartedAt: string;
    FinishedAt: string;
    Health?: { Status: string };
  };
  HostConfig: { Memory: number; RestartPolicy: { Name: string } };
  Mounts: { Type: string; Name?: string; Destination: string }[];
  Config: { Labels: Record<string, string>; Healthcheck?: { Test: string[] } };
}

// ---- what the stack must run -------------------------------------------------------------------

const SERVICES = [
  "postgres",
  "zookeeper",
  "kafka",
  "schema-registry",
  "cassandra",
  "spark-master",
  "spark-worker-1",
  "spark-worker-2",
  "spark-driver",
  "airflow-webserver",
  "airflow-scheduler",
  "api",
  "relay",
  "processor",
  "prometheus",
  "lag-exporter",
  "postgres-exporter",
  "pushgateway",
  "statsd-exporter",
  "node-exporter",
];
const JOBS = [
  "postgres-roles",
  "kafka-topics",
  "cassandra-auth",
  "airflow-init",
  "copy-zookeeper-jmx-agent",
  "copy-kafka-jmx-agent",
  "copy-cassandra-jmx-agent",
];
/** Start order by health: [container, what it waits for]. */
const ORDER: [string, string[]][] = [
  ["zookeeper", ["copy-zookeeper-jmx-agent"]],
  ["kafka", ["zookeeper", "copy-kafka-jmx-agent"]],
  ["cassandra", ["copy-cassandra-jmx-agent"]],
  ["postgres-exporter", ["postgres-roles"]],
  ["kafka-topics", ["kafka"]],
  ["schema-registry", ["kafka"]],
  ["cassandra-auth", ["cassandra"]],
  ["spark-worker-1", ["spark-master"]],
  ["spark-driver", ["spark-worker-1", "spark-worker-2", "kafka-topics", "schema-registry", "cassandra-auth"]],
  ["postgres-roles", ["postgres"]],
  ["airflow-init", ["postgres-roles"]],
  ["airflow-webserver", ["airflow-init", "api"]],
  ["airflow-scheduler", ["airflow-init", "api"]],
  ["relay", ["postgres-roles", "kafka-topics", "schema-registry"]],
  ["processor", ["kafka-topics", "schema-registry", "cassandra-auth"]],
  ["lag-exporter", ["kafka-topics"]],
];
/** Memory limits of Pulumi.ci.yaml (and the defaults it keeps), MiB. */
const MEMORY: Record<string, number> = {
  cassandra: 1024,
  kafka: 768,
  postgres: 512,
  "spark-worker-1": 1024,
  relay: 256,
  api: 256,
};
const VOLUMES: Record<string, string[]> = {
  postgres: ["postgres-data"],
  kafka: ["kafka-data"],
  zookeeper: ["zookeeper-data", "zookeeper-log"],
  cassandra: ["cassandra-data"],
  "spark-driver": ["spark-checkpoints"],
  "airflow-scheduler": ["airflow-logs"],
  prometheus: ["prometheus-data"],
};
/** The containers that run the worker build: the worker image, and Airflow's (its DAG runs that bundle). */
const WORKER_BUILD = [
  "api",
  "relay",
  "processor",
  "lag-exporter",
  "airflow-init",
  "airflow-webserver",
  "airflow-scheduler",
];

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/** Engine operations that replace a resource (delete-before-replace reports three steps per resource). */
const REPLACING = new Set(["replace", "create-replacement", "delete-replaced"]);

/** What an up did, by resource: replaced, updated, created, deleted (names without the stack's URN). */
function changedResources(op: Operation) {
  const by = (pred: (o: string) => boolean) =>
    [...new Set(op.steps.filter((s) => pred(s.op)).map((s) => s.name))].sort();
  return {
    replaced: by((o) => REPLACING.has(o)),
    updated: by((o) => o === "update"),
    other: op.steps.filter((s) => s.op !== "same" && s.op !== "update" && !REPLACING.has(s.op)).map(describeStep),
  };
}

describe("stacks: the dev stack up for real on the local Docker engine (stack ci)", function () {
  this.timeout(60 * 60 * 1000);
  let project: Project;
  let stack: Stack;
  let dockerHost: string;
  let api: ReturnType<typeof dockerApi>;
  let outputs: Record<string, { value: unknown }>;
  let cassandra: Client | undefined;
  const started = Date.now();
  const inspect = (name: string) => api<ContainerInfo>("GET", `/containers/${PREFIX}-${name}/json`);
  const images = async () =>
    Object.fromEntries(
      await Promise.all([...SERVICES, ...JOBS].map(async (n) => [n, (await inspect(n)).Image] as const)),
    );

  /** Airflow's REST API on the published port, with the admin the stack generated. */
  const airflow = async (method: string, p: string, body?: unknown) => {
    const authz = `Basic ${Buffer.from(`${outputs.airflowAdminUser.value}:${outputs.airflowAdminPassword.value}`).toString("base64")}`;
    const r = await fetch(`${String(outputs.airflowUrl.value)}/api/v1${p}`, {
      method,
      headers: { authorization: authz, "content-type": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!r.ok) throw new Error(`${method} ${p}: HTTP ${r.status} ${await r.text()}`);
    return (await r.json()) as Record<string, unknown>;
  };
  /** Triggers user_automation with these worker variables; returns the run's id. */
  const trigger = async (runId: string, env: Record<string, string>) => {
    await waitFor("the DAG user_automation to be parsed", 300_000, async () =>
      (await airflow("GET", "/dags/user_automation")).dag_id ? true : undefined,
    );
    await airflow("POST", "/dags/user_automation/dagRuns", { dag_run_id: runId, conf: { env } });
    return runId;
  };
  const finished = (runId: string) =>
    waitFor(`the DAG run ${runId} to finish`, 600_000, async () => {
      const s = String((await airflow("GET", `/dags/user_automation/dagRuns/${runId}`)).state);
      return s === "success" || s === "failed" ? s : undefined;
    });
  /** Rows in created_users (ids are unique per seed: a run of n users adds exactly n). */
  const usersStored = async () =>
    Number((await (await cql()).execute(`SELECT COUNT(*) AS n FROM ${KEYSPACE}.${USERS_TABLE}`)).rows[0].n);
  /** One CQL session on the published port, with the credentials the stack generated. */
  const cql = async (): Promise<Client> => {
    if (cassandra) return cassandra;
    const c = new Client({
      contactPoints: [String((outputs.cassandraContactPoints.value as { host: string }).host)],
      localDataCenter: "dc1",
      authProvider: new auth.PlainTextAuthProvider(
        String(outputs.cassandraUser.value),
        String(outputs.cassandraPassword.value),
      ),
      // A loaded 2-core CI host: the driver's 12 s default read timeout is too short for the first queries.
      socketOptions: { connectTimeout: 30_000, readTimeout: 60_000 },
    });
    await waitFor("a CQL session on the published port", 300_000, async () => {
      await c.connect();
      return true;
    });
    cassandra = c;
    return c;
  };

  before(async () => {
    const t = tools();
    assert.ok(t.dockerHost, "no Docker engine: scripts/services up docker");
    dockerHost = t.dockerHost;
    api = dockerApi(dockerHost);
    // A run that was killed before its destroy (CI cancelled, host rebooted) left the stack's
    // containers, volumes and network under the same names; this run's fresh backend does not
    // know them, and `up` would fail on every name. Remove them, and say so.
    const stale = await api<{ Id: string; Names: string[] }[]>(
      "GET",
      `/containers/json?all=1&filters=${filter({ name: [`${PREFIX}-`] })}`,
    );
    for (const c of stale) await api("DELETE", `/containers/${c.Id}?force=1`);
    const vols =
      (await api<{ Volumes: { Name: string }[] | null }>("GET", `/volumes?filters=${filter({ name: [`${PREFIX}-`] })}`))
        .Volumes ?? [];
    for (const v of vols) await api("DELETE", `/volumes/${v.Name}`);
    const nets = await api<{ Id: string; Name: string }[]>(
      "GET",
      `/networks?filters=${filter({ name: [`${PREFIX}-`] })}`,
    );
    for (const n of nets) await api("DELETE", `/networks/${n.Id}`);
    if (stale.length + vols.length + nets.length > 0) {
      console.log(
        `      removed what an earlier run left: ${stale.length} containers, ${vols.length} volumes, ${nets.length} networks`,
      );
    }
    project = await Project.create(t);
    const ca = buildCa(project.root);
    stack = await project.stack(STACK, ca ? { buildCaCertificates: ca } : {});
  });

  // Each test builds on the one before (a stack that is up, then changed): after a failure the
  // rest would only fail again slowly (a second full `up`), so they are skipped and after() destroys.
  let broken: string | undefined;
  afterEach(function () {
    if (this.currentTest?.state === "failed" && !broken) broken = this.currentTest.title;
  });
  beforeEach(function () {
    if (broken) {
      console.log(`      skipped: "${broken}" failed`);
      this.skip();
    }
  });

  after(async () => {
    // Whatever happened above, leave nothing behind: the stack, and the builds' leftovers.
    await cassandra?.shutdown().catch(() => undefined);
    if (stack) await stack.destroy().catch((e: unknown) => console.log(`      destroy in after(): ${String(e)}`));
    if (dockerHost)
      await removeBuildLeftovers(dockerHost, started).catch((e: unknown) =>
        console.log(`      build leftovers: ${String(e)}`),
      );
    project?.remove();
  });

  it("up: every container of the pipeline runs, healthy, in health order, with its limits and volumes", async () => {
    const up = await project.up(stack);
    report(STACK, up);
    assert.deepEqual(up.errors, []);
    outputs = (await stack.outputs()) as Record<string, { value: unknown }>;

    const all = await api<{ Names: string[] }[]>(
      "GET",
      `/containers/json?all=1&filters=${filter({ name: [`${PREFIX}-`] })}`,
    );
    const names = all.map((c) => c.Names[0].replace(`/${PREFIX}-`, "")).sort();
    assert.deepEqual(names, [...SERVICES, ...JOBS].sort());
    const info = new Map<string, ContainerInfo>();
    for (const n of names) info.set(n, await inspect(n));
    for (const s of SERVICES) {
      const c = info.get(s)!;
      assert.ok(c.State.Running, `${s} is not running`);
      assert.equal(c.State.Health?.Status, "healthy", `${s}: ${c.State.Health?.Status}`);
      assert.equal(c.HostConfig.RestartPolicy.Name, "unless-stopped", s);
    }
    for (const j of JOBS) {
      const c = info.get(j)!;
      assert.ok(
        !c.State.Running && c.State.ExitCode === 0,
        `job ${j}: running ${c.State.Running}, exit ${c.State.ExitCode}`,
      );
    }
    // A service starts after what it waits for was healthy (it is created then), a job's dependents after it exited.
    for (const [n, deps] of ORDER) {
      const created = Date.parse(info.get(n)!.Created);
      for (const d of deps) {
        const dep = info.get(d)!;
        const ready = JOBS.includes(d) ? Date.parse(dep.State.FinishedAt) : Date.parse(dep.State.StartedAt);
        assert.ok(created >= ready, `${n} was created before ${d} was ${JOBS.includes(d) ? "done" : "started"}`);
      }
    }
    for (const [n, mib] of Object.entries(MEMORY))
      assert.equal(info.get(n)!.HostConfig.Memory, mib * 1024 * 1024, `${n} memory limit`);
    for (const [n, vols] of Object.entries(VOLUMES)) {
      const mounted = info
        .get(n)!
        .Mounts.filter((m) => m.Type === "volume")
        .map((m) => m.Name);
      for (const v of vols)
        assert.ok(mounted.includes(`${PREFIX}-${v}`), `${n} does not mount ${v} (${mounted.join(", ")})`);
    }
  });

  it("a DAG run triggered through Airflow's REST API lands every fetched user in both tables, nothing in the DLQ", async () => {
    const seed = `ci-${Date.now().toString(36)}`;
    const batchSize = 200;
    const pages = 2;
    const t0 = Date.now();
    const runId = await trigger(`stacks_${seed}`, {
      INGEST_SEED: seed,
      INGEST_BATCH_SIZE: String(batchSize),
      INGEST_BATCHES: String(pages),
    });
    assert.equal(await finished(runId), "success", `DAG run ${runId} failed`);

    // What the offline API served for that seed (the same generator, deterministic), normalized as ingest does.
    const expected: UserCreated[] = [];
    for (let page = 1; page <= pages; page++) {
      for (const raw of generatePage(seed, page, batchSize).results) {
        const n = normalizeUser(raw, 0);
        assert.ok(n.ok);
        expected.push(n.user);
      }
    }
    const db = await cql();
    const ids = expected.map((u) => u.id);
    const rows = await waitFor(`every fetched user in ${KEYSPACE}.${USERS_TABLE}`, 300_000, async () => {
      const rs = await db.execute(`SELECT * FROM ${KEYSPACE}.${USERS_TABLE} WHERE id IN ?`, [ids], { prepare: true });
      return rs.rowLength === ids.length ? rs.rows : undefined;
    });
    const seconds = (Date.now() - t0) / 1000;
    console.log(`      ${ids.length} users from DAG trigger to created_users in ${seconds.toFixed(1)} s`);
    const byId = new Map(rows.map((r) => [String(r.id), r]));
    for (const u of expected) {
      const r = byId.get(u.id)!;
      for (const f of USER_CREATED_FIELDS) {
        if (f === "id" || f === "fetched_at") continue;
        const got = r[f] instanceof Date ? (r[f] as Date).getTime() : r[f];
        assert.deepEqual(got, u[f], `${u.id}.${f}`);
      }
      assert.ok(r.fetched_at instanceof Date && (r.fetched_at as Date).getTime() >= t0 - 60_000, `${u.id}.fetched_at`);
    }

    // users_by_country: the Spark job's one-minute windows per country and gender hold (at least) these users.
    const want = new Map<string, number>();
    for (const r of rows) {
      const k = `${r.country}|${r.gender}|${Math.floor((r.fetched_at as Date).getTime() / 60_000) * 60_000}`;
      want.set(k, (want.get(k) ?? 0) + 1);
    }
    const countries = [...new Set(rows.map((r) => String(r.country)))];
    await waitFor(`${KEYSPACE}.${AGGREGATES_TABLE} windows of the fetched users`, 300_000, async () => {
      const rs = await db.execute(
        `SELECT country, window_start, gender, users FROM ${KEYSPACE}.${AGGREGATES_TABLE} WHERE country IN ?`,
        [countries],
        { prepare: true },
      );
      const got = new Map(
        rs.rows.map((r) => [`${r.country}|${r.gender}|${(r.window_start as Date).getTime()}`, Number(r.users)]),
      );
      for (const [k, n] of want) if ((got.get(k) ?? 0) < n) return undefined;
      return true;
    });

    // Nothing dead-lettered: the DLQ topic is empty, read from the published EXTERNAL listener.
    const kafka = new Kafka({
      clientId: "stacks-dev-up",
      brokers: [String((outputs.kafkaBootstrapServers.value as { host: string }).host)],
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const dlq = await admin.fetchTopicOffsets(DLQ_TOPIC);
      assert.equal(
        dlq.reduce((n, p) => n + Number(p.high), 0),
        0,
        "records in the DLQ",
      );
      const users = await admin.fetchTopicOffsets(USERS_TOPIC);
      assert.ok(users.reduce((n, p) => n + Number(p.high), 0) >= expected.length, "users_created holds the users");
    } finally {
      await admin.disconnect();
    }
  });

  it("records per second through the deployed containers: API, ingest, PostgreSQL, relay, Kafka, processor, Cassandra", async () => {
    // A bigger run of the same DAG: 2 pages of 5,000 (the API's largest page). Counted where the
    // pipeline ends, in created_users (ids are unique per seed, so the count grows by exactly
    // that many), every second from the trigger on.
    const seed = `rate-${Date.now().toString(36)}`;
    const pages = 2;
    const batchSize = 5000;
    const n = pages * batchSize;
    const count = usersStored;
    const base = await count();
    const t0 = Date.now();
    const runId = await trigger(`stacks_${seed}`, {
      INGEST_SEED: seed,
      INGEST_BATCH_SIZE: String(batchSize),
      INGEST_BATCHES: String(pages),
    });
    let first = 0;
    const done = await waitFor(`${n} more rows in ${KEYSPACE}.${USERS_TABLE}`, 600_000, async () => {
      const c = await count();
      if (c > base && first === 0) first = Date.now();
      return c >= base + n ? Date.now() : undefined;
    });
    assert.equal(await count(), base + n, "rows beyond the run's users");
    assert.equal(await finished(runId), "success", `DAG run ${runId} failed`);
    const flow = n / ((done - first) / 1000);
    const e2e = n / ((done - t0) / 1000);
    console.log(
      `      ${n} records: first in Cassandra ${((first - t0) / 1000).toFixed(1)} s after the trigger, all after ${((done - t0) / 1000).toFixed(1)} s: ` +
        `${flow.toFixed(0)} records/s from the first to the last row, ${e2e.toFixed(0)} records/s from the DAG trigger (Airflow's scheduling included)`,
    );
    assert.ok(flow > 0 && Number.isFinite(flow));
  });

  it("Cassandra's process SIGKILLed while a DAG run's 20,000 users flow: Docker starts it again, no acknowledged user is lost", async () => {
    // The single node acks a write after its commitlog group's fsync (cassandraSettings, written
    // into the image's cassandra.yaml by its start command); the processor commits offsets after
    // the acks. So every user must be there after the commitlog's replay.
    const seed = `kill-${Date.now().toString(36)}`;
    const pages = 4;
    const batchSize = 5000;
    const ids: string[] = [];
    for (let page = 1; page <= pages; page++) {
      for (const raw of generatePage(seed, page, batchSize).results) {
        const n = normalizeUser(raw, 0);
        assert.ok(n.ok);
        ids.push(n.user.id);
      }
    }
    const stored = async () => {
      let n = 0;
      for (let i = 0; i < ids.length; i += 1000) {
        const rs = await (
          await cql()
        ).execute(`SELECT id FROM ${KEYSPACE}.${USERS_TABLE} WHERE id IN ?`, [ids.slice(i, i + 1000)], {
          prepare: true,
        });
        n += rs.rowLength;
      }
      return n;
    };
    const runId = await trigger(`stacks_${seed}`, {
      INGEST_SEED: seed,
      INGEST_BATCH_SIZE: String(batchSize),
      INGEST_BATCHES: String(pages),
    });
    const atKill = await waitFor("2,000 of the run's users stored", 600_000, async () => {
      const n = await stored().catch(() => 0);
      return n >= 2000 ? n : undefined;
    });
    const before = await inspect("cassandra");
    process.kill(before.State.Pid, "SIGKILL");
    const t0 = Date.now();
    console.log(
      `      Cassandra's process (pid ${before.State.Pid}) SIGKILLed with ${atKill} of ${ids.length} users stored`,
    );
    await waitFor("Cassandra started again by Docker and healthy", 600_000, async () => {
      const c = await inspect("cassandra");
      return c.State.StartedAt !== before.State.StartedAt && c.State.Health?.Status === "healthy" ? true : undefined;
    });
    console.log(`      healthy again after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    assert.equal(await finished(runId), "success", `DAG run ${runId} failed`);
    let last = 0;
    await waitFor(`the run's ${ids.length} users in ${KEYSPACE}.${USERS_TABLE}`, 600_000, async () => {
      last = await stored().catch(() => last);
      return last === ids.length ? true : undefined;
    }).catch(() => undefined);
    console.log(
      `      ${last} of ${ids.length} users stored ${((Date.now() - t0) / 1000).toFixed(0)} s after the kill: ${ids.length - last} lost`,
    );
    assert.equal(ids.length - last, 0, "acknowledged users lost to Cassandra's kill");
  });

  it("Prometheus scrapes every target; the processor stopped while records flow: TargetDown and ConsumerLagGrowing fire within their windows, clear once it is back, nothing lost", async () => {
    // Pulumi.ci.yaml: scrapes and evaluations every 5 s; TargetDown after 30 s; the lag must have
    // stayed above 0 and grown over 1 minute, for 30 s.
    const prometheus = String(outputs.prometheusUrl.value);
    const query = async <T>(p: string): Promise<T> => {
      const r = await fetch(`${prometheus}/api/v1${p}`);
      if (!r.ok) throw new Error(`GET ${p}: HTTP ${r.status} ${await r.text()}`);
      return ((await r.json()) as { data: T }).data;
    };
    type Sample = { metric: Record<string, string>; value: [number, string] };
    const up = async () =>
      Object.fromEntries(
        (await query<{ result: Sample[] }>("/query?query=up")).result.map((s) => [s.metric.job, Number(s.value[1])]),
      );
    const JOBS_UP = {
      relay: 1,
      processor: 1,
      "kafka-exporter": 1,
      prometheus: 1,
      kafka: 1,
      zookeeper: 1,
      cassandra: 1,
      postgres: 1,
      pushgateway: 1,
      "airflow-statsd": 1,
      "spark-master": 1,
      "spark-worker": 1,
      "spark-driver": 1,
      node: 1,
    };
    const targets = await waitFor("every scrape target up", 120_000, async () => {
      const u = await up();
      return Object.keys(JOBS_UP).every((j) => u[j] === 1) ? u : undefined;
    });
    assert.deepEqual(targets, JOBS_UP);
    // the JMX agent's series the member alerts read: present, and healthy on a healthy stack
    const value = async (q: string) =>
      (await query<{ result: Sample[] }>(`/query?query=${encodeURIComponent(q)}`)).result.map((s) =>
        Number(s.value[1]),
      );
    assert.deepEqual(await value("sum(kafka_server_replicamanager_underreplicatedpartitions)"), [0]);
    assert.deepEqual(await value("sum(kafka_controller_kafkacontroller_activecontrollercount)"), [1]);
    assert.deepEqual(await value("max(cassandra_failuredetector_downendpointcount)"), [0]);
    assert.equal((await value("zookeeper_numaliveconnections")).length, 1);
    // postgres_exporter logs in as pipeline_monitor; the DAG runs above reached the Pushgateway
    // (ingest's pushed group, job and seed kept) and statsd_exporter (Airflow's run outcomes)
    assert.deepEqual(await value(`pg_up{job="postgres"}`), [1]);
    assert.ok(
      (await value(`pipeline_run_last_success_timestamp_seconds{job="ingest"}`)).length >= 1,
      "no ingest run pushed its metrics",
    );
    assert.ok(
      (await value(`sum(airflow_dagrun_duration_count{dag_id="user_automation"})`))[0] >= 1,
      "statsd_exporter saw no successful DAG run",
    );
    assert.ok(
      (await value(`count({job="spark-driver",__name__=~".*streaming.*"})`))[0] >= 1,
      "no streaming query metrics from the driver",
    );
    // node_exporter sees the host's root through its read-only bind of / at /host
    assert.ok(
      (await value('node_filesystem_avail_bytes{job="node",mountpoint="/"}')).length >= 1,
      "node_exporter reports no root filesystem",
    );
    // the rules loaded: the pipeline's alert groups, every rule evaluated without error
    const groups = (await query<{ groups: { name: string; rules: { health: string }[] }[] }>("/rules")).groups;
    assert.ok(groups.length >= 4, groups.map((g) => g.name).join(", "));
    for (const g of groups) for (const r of g.rules) assert.equal(r.health, "ok", g.name);

    type Alert = { labels: Record<string, string>; state: string };
    const firing = async () => (await query<{ alerts: Alert[] }>("/alerts")).alerts;
    const isTargetDown = (a: Alert) => a.labels.alertname === "TargetDown" && a.labels.job === "processor";
    const isLag = (a: Alert) => a.labels.alertname === "ConsumerLagGrowing";
    const count = usersStored;
    const before = await count();

    const processor = (await inspect("processor")).Id;
    await api("POST", `/containers/${processor}/stop?t=30`);
    const stopped = Date.now();
    // records keep coming, as on a schedule: a DAG run of 100 users every 10 s
    const runs: string[] = [];
    let feeding = true;
    let feedError: unknown;
    const feeder = (async () => {
      while (feeding) {
        runs.push(
          await trigger(`stacks_lag-${runs.length}-${Date.now().toString(36)}`, {
            INGEST_SEED: `lag-${Date.now().toString(36)}`,
            INGEST_BATCH_SIZE: "100",
            INGEST_BATCHES: "1",
          }),
        );
        await new Promise((r) => setTimeout(r, 10_000));
      }
    })().catch((e: unknown) => {
      feedError = e;
    });
    const seen: Record<string, number> = {};
    try {
      await waitFor("TargetDown and ConsumerLagGrowing firing", 300_000, async () => {
        for (const a of await firing()) {
          const name = isTargetDown(a) ? "TargetDown" : isLag(a) ? "ConsumerLagGrowing" : undefined;
          if (name && a.state === "firing" && seen[name] === undefined) seen[name] = (Date.now() - stopped) / 1000;
        }
        return seen.TargetDown !== undefined && seen.ConsumerLagGrowing !== undefined ? true : undefined;
      });
    } finally {
      // the processor first: whatever failed, the next tests find it running
      await api("POST", `/containers/${processor}/start`);
      feeding = false;
      await feeder;
    }
    assert.equal(feedError, undefined, `a DAG trigger failed: ${String(feedError)}`);
    const started = Date.now();
    await waitFor("both alerts to clear", 300_000, async () =>
      (await firing()).some((a) => isTargetDown(a) || isLag(a)) ? undefined : true,
    );
    const cleared = (Date.now() - started) / 1000;
    for (const r of runs) assert.equal(await finished(r), "success", `DAG run ${r}`);
    const due = before + runs.length * 100;
    await waitFor(`${due} users in ${USERS_TABLE}`, 300_000, async () => ((await count()) >= due ? true : undefined));
    assert.equal(await count(), due, "users stored against users triggered");
    console.log(
      `      processor stopped, ${runs.length} DAG runs meanwhile: TargetDown firing after ${seen.TargetDown.toFixed(0)} s (for 30 s), ` +
        `ConsumerLagGrowing after ${seen.ConsumerLagGrowing.toFixed(0)} s (1 m window, for 30 s); both cleared ${cleared.toFixed(0)} s after the start; lost 0`,
    );
    // not before its for window (less a scrape: one may fail while the stop is under way); within
    // it plus a few scrapes and evaluations
    assert.ok(seen.TargetDown >= 25 && seen.TargetDown <= 30 + 4 * 5 + 10, `TargetDown after ${seen.TargetDown} s`);
    // the lag needs the whole window above 0 (60 s) and then its for (30 s)
    assert.ok(seen.ConsumerLagGrowing >= 80, `ConsumerLagGrowing after ${seen.ConsumerLagGrowing} s`);
    await waitFor("the processor healthy again", 180_000, async () =>
      (await inspect("processor")).State.Health?.Status === "healthy" ? true : undefined,
    );
  });

  it("the README's pictures: the consoles, alerts and targets of this stack, shot in headless Chromium", async () => {
    const prometheus = String(outputs.prometheusUrl.value);
    const dir = path.join(REPO, "docs", "img");
    const t0 = Date.now();
    // the consoles' graphs over the last 15 minutes (the stack's lifetime so far), not their default hour
    const range = `#pctc${encodeURIComponent(JSON.stringify({ duration: 900, endTime: 0 }))}`;
    const pages = [
      `/consoles/pipeline.html${range}`,
      `/consoles/kafka.html${range}`,
      "/classic/alerts",
      "/classic/targets",
    ];
    // the pipeline console's graphs hold the records of the DAG runs above
    const files = await captureScreenshots(prometheus, dir, { pages, minGraphs: 3 });
    assert.equal(files.length, pages.length);
    console.log(
      `      screenshots: ${files.map((f) => `${path.basename(f)} ${fs.statSync(f).size} B`).join(", ")} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
  });

  it("a second up changes nothing", async () => {
    const before = await images();
    const again = await project.up(stack);
    report(`${STACK} (again)`, again);
    assert.deepEqual(again.errors, []);
    // Each drifting resource by name and the properties that differ, e.g. `update ... [build]`.
    assert.deepEqual(again.steps.filter((s) => s.op !== "same").map(describeStep), []);
    assert.deepEqual(
      Object.entries(again.changes).filter(([op, n]) => op !== "same" && Number(n ?? 0) > 0),
      [],
    );
    assert.deepEqual(await images(), before);
  });

  it("a change to a worker source rolls exactly the containers that run the worker build (by image ID)", async () => {
    const before = await images();
    const ids = Object.fromEntries(
      await Promise.all([...SERVICES, ...JOBS].map(async (n) => [n, (await inspect(n)).Id] as const)),
    );
    const file = path.join(REPO, "runtime/lib/http-server.ts");
    const original = fs.readFileSync(file, "utf8");
    let rolled: Operation;
    try {
      fs.writeFileSync(file, `${original}\n// stacks test: a worker source change (${Date.now()})\n`);
      rolled = await project.up(stack);
      report(`${STACK} (worker change)`, rolled);
      assert.deepEqual(rolled.errors, []);
    } finally {
      fs.writeFileSync(file, original);
    }
    // The engine's own account: exactly these containers (and the airflow-init job's run) replaced;
    // updated, only image builds: the worker image and Airflow's (it copies the worker bundle),
    // and Spark's, whose context (the repository root) holds runtime/ too: it rebuilds from cache
    // to the same image ID, so its containers stay.
    const changed = changedResources(rolled);
    assert.deepEqual(
      changed.replaced,
      [...WORKER_BUILD.map((n) => `${PREFIX}-${n}`), `${PREFIX}-airflow-init-run`].sort(),
    );
    assert.deepEqual(changed.other, []);
    for (const u of changed.updated)
      assert.match(u, new RegExp(`^${PREFIX}-(workers|airflow|spark)-image$`), `updated: ${u}`);
    for (const img of ["workers", "airflow"])
      assert.ok(changed.updated.includes(`${PREFIX}-${img}-image`), `${img} image not rebuilt`);
    // And the engine's containers: new image IDs exactly where the worker build runs.
    const after = await images();
    for (const n of [...SERVICES, ...JOBS]) {
      const id = (await inspect(n)).Id;
      if (WORKER_BUILD.includes(n)) {
        assert.notEqual(after[n], before[n], `${n} still runs the old image`);
        assert.notEqual(id, ids[n], `${n} was not replaced`);
      } else {
        assert.equal(after[n], before[n], `${n} changed image`);
        assert.equal(id, ids[n], `${n} was replaced though its image did not change`);
      }
    }
    // The rolled containers came back healthy (up waited for them), and the jobs exited 0.
    for (const n of WORKER_BUILD) {
      const c = await inspect(n);
      if (JOBS.includes(n)) assert.ok(!c.State.Running && c.State.ExitCode === 0, `job ${n}: exit ${c.State.ExitCode}`);
      else assert.equal(c.State.Health?.Status, "healthy", `${n}: ${c.State.Health?.Status}`);
    }
  });

  it("destroy removes every container, volume and network the stack made, and the builds leave no container", async () => {
    await cassandra?.shutdown();
    cassandra = undefined;
    const down = await project.destroy(stack);
    report(STACK, down);
    assert.deepEqual(down.errors, []);
    const containers = await api<unknown[]>(
      "GET",
      `/containers/json?all=1&filters=${filter({ name: [`${PREFIX}-`] })}`,
    );
    const volumes = await api<{ Volumes: { Name: string }[] | null }>(
      "GET",
      `/volumes?filters=${filter({ name: [`${PREFIX}-`] })}`,
    );
    const networks = await api<{ Name: string }[]>("GET", `/networks?filters=${filter({ name: [`${PREFIX}-`] })}`);
    assert.deepEqual(containers, []);
    assert.deepEqual(
      (volumes.Volumes ?? []).map((v) => v.Name),
      [],
    );
    assert.deepEqual(
      networks.map((n) => n.Name),
      [],
    );
    // The provider's classic builds keep each step's container (rm=0): removed here, then checked.
    const removed = await removeBuildLeftovers(dockerHost, started);
    console.log(`      ${removed} intermediate build containers removed`);
    assert.deepEqual(await buildLeftovers(dockerHost, started), []);
  });
});
