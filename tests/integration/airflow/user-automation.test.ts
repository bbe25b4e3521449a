/**
 * Airflow 2.10 of the local services (PyPI, against the script's PostgreSQL): the DAG
 * user_automation loads with its schedule, retries and timeout, and a DAG run (`airflow dags
 * test`) runs the TypeScript ingest worker, whose users land in PostgreSQL, counts in the log.
 */
import assert from "node:assert/strict";
import { Client as PgClient } from "pg";
import { loadServicesEnv, type ServicesEnv } from "../../support/services";
import { AIRFLOW_KEYS, airflow, airflowPython, ingestSummary } from "./airflow-env";
import { startApi, type ApiChild } from "./api-server";

describe("Airflow DAG user_automation (real Airflow, PostgreSQL, TypeScript ingest)", function () {
  this.timeout(600_000);
  let env: ServicesEnv;
  let api: ApiChild;
  let pg: PgClient;

  before(async () => {
    env = loadServicesEnv(AIRFLOW_KEYS);
    api = await startApi();
    pg = new PgClient({
      host: env.PG_HOST,
      port: Number(env.PG_PORT),
      database: env.PG_DATABASE,
      user: env.PG_USER,
      password: env.PG_PASSWORD,
    });
    await pg.connect();
  });
  after(async () => {
    await pg?.end();
    await api?.stop();
  });

  it("is loaded by Airflow with its schedule, 2 retries, a retry delay and an execution timeout", async () => {
    const r = await airflowPython(
      env,
      `
import json
from airflow.models import DagBag
bag = DagBag(include_examples=False)
dag = bag.get_dag("user_automation")
t = dag.get_task("ingest_users")
print("RESULT " + json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
  "schedule": dag.schedule_interval, "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
  "tasks": dag.task_ids, "operator": type(t).__name__, "retries": t.retries,
  "retry_delay": t.retry_delay.total_seconds(), "timeout": t.execution_timeout.total_seconds()}))
`,
      { USER_AUTOMATION_SCHEDULE: "" },
    ); // the DAG's default (the local scheduler runs it manual-only)
    assert.equal(r.code, 0, r.output);
    const line = r.output.split("\n").find((l) => l.startsWith("RESULT "));
    assert.ok(line, r.output);
    assert.deepEqual(JSON.parse(line.slice(7)), {
      errors: {},
      schedule: "@hourly",
      catchup: false,
      max_active_runs: 1,
      tasks: ["ingest_users"],
      operator: "BashOperator",
      retries: 2,
      retry_delay: 60,
      timeout: 600,
    });
  });

  it("a DAG run executes the TS ingest: the fetched users are in PostgreSQL and the counts in the task log", async () => {
    const seed = `airflow-it-${Date.now().toString(36)}`;
    const batchSize = 25;
    const run = await airflow(env, ["dags", "test", "user_automation"], {
      API_BASE_URL: api.url,
      INGEST_SEED: seed,
      INGEST_BATCH_SIZE: String(batchSize),
      INGEST_BATCHES: "2",
    });
    assert.equal(run.code, 0, run.output.slice(-6000));
    assert.match(run.output, /DagRun Finished: dag_id=user_automation.*state=success/);
    const summary = ingestSummary(run.output);
    assert.ok(summary, `no ingest summary in the task log:\n${run.output.slice(-4000)}`);
    assert.equal(summary.seed, seed);
    assert.equal(summary.batches, 2);
    // the DAG names the run, so a retried try stores only the pages the run lacks
    assert.match(String(summary.run), /^manual__\d{4}-/);
    assert.equal(summary.earlierPages, 0);
    assert.equal(summary.fetched, 2 * batchSize);
    assert.equal(summary.staged, 2 * batchSize);

    // The very users the API served for that seed (pages 1 and 2) are rows of users + outbox.
    const ids: string[] = [];
    for (const page of [1, 2]) {
      const res = await fetch(`${api.url}/api/?results=${batchSize}&seed=${seed}&page=${page}`);
      const body = (await res.json()) as { results: Array<{ login: { uuid: string } }> };
      ids.push(...body.results.map((u) => u.login.uuid));
    }
    const users = await pg.query<{ n: string }>("SELECT count(*) AS n FROM users WHERE id = ANY($1::uuid[])", [ids]);
    assert.equal(Number(users.rows[0].n), 2 * batchSize);
    const outbox = await pg.query<{ n: string }>(
      "SELECT count(DISTINCT user_id) AS n FROM outbox WHERE user_id = ANY($1::uuid[])",
      [ids],
    );
    assert.equal(Number(outbox.rows[0].n), 2 * batchSize);
    const cursor = await pg.query<{ next_page: number }>("SELECT next_page FROM ingest_cursor WHERE seed = $1", [seed]);
    assert.equal(cursor.rows[0]?.next_page, 3);
  });

  it("a failing ingest fails the task after 2 retries (the worker's exit code is not swallowed)", async () => {
    const run = await airflow(env, ["dags", "test", "user_automation"], {
      API_BASE_URL: api.url,
      PG_DATABASE: "no_such_database",
      INGEST_SEED: "airflow-it-fail",
      USER_AUTOMATION_RETRY_DELAY_SECONDS: "1",
    });
    assert.match(run.output, /ingest: failed with exit code [1-9]/);
    for (const n of [1, 2, 3]) assert.match(run.output, new RegExp(`ingest --once \\(run [^,]+, try ${n}\\)`));
    assert.doesNotMatch(run.output, /try 4\)/);
    assert.match(run.output, /DagRun Finished: dag_id=user_automation.*state=failed/);
  });
});
