/**
 * A one-shot run's pages (INGEST_RUN_ID), real PostgreSQL in a scratch schema: a try that dies
 * after storing some of its pages is retried, and the retry stores only the pages the run still
 * lacks, so a run adds INGEST_BATCHES pages however often it is tried. (Before ingest_runs, a
 * retried DAG run fetched INGEST_BATCHES pages more from the cursor: 100 users more than the run
 * asked for when a roll killed the scheduler under a running task.)
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Pool } from "pg";
import { generatePage } from "../../../runtime/api/generate";
import { runIngestOnce } from "../../../runtime/ingest/ingest";
import { ingestSchema, loadConfig } from "../../../runtime/lib/config";
import { createLogger } from "../../../runtime/lib/logger";
import { scratchSchema, servicesEnv, uniq } from "./harness";

describe("ingest: a retried run stores only the pages it lacks (real PostgreSQL)", function () {
  this.timeout(120_000);
  let scratch: Awaited<ReturnType<typeof scratchSchema>> | undefined;
  let pg: Pool;
  let server: http.Server;
  const asked: number[] = [];
  /** page 2 is held until the test lets it go (the first try dies while waiting for it) */
  let holdPage2 = true;
  let onHeld: () => void = () => undefined;

  before(async () => {
    scratch = await scratchSchema("it_run");
    pg = scratch.pg;
    server = http.createServer((req, res) => {
      const q = new URL(req.url ?? "/", "http://x").searchParams;
      const page = Number(q.get("page"));
      asked.push(page);
      const send = () =>
        res
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify(generatePage(String(q.get("seed")), page, Number(q.get("results")))));
      if (page === 2 && holdPage2) {
        onHeld();
        res.on("close", () => undefined);
        return;
      }
      send();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  });

  after(async () => {
    server?.closeAllConnections();
    server?.close();
    await scratch?.drop();
  });

  it("try 1 dies after page 1 of 3; try 2 stores pages 2 and 3; try 3 fetches nothing; the cursor moved 3 pages", async () => {
    const e = servicesEnv();
    const seed = uniq("run-seed");
    const run = `manual__${uniq("run")}`;
    const config = loadConfig(ingestSchema, {
      PG_HOST: e.PG_HOST,
      PG_PORT: e.PG_PORT,
      PG_DATABASE: e.PG_DATABASE,
      PG_USER: e.PG_USER,
      PG_PASSWORD: e.PG_PASSWORD,
      API_BASE_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      INGEST_SEED: seed,
      INGEST_BATCH_SIZE: "20",
      INGEST_BATCHES: "3",
      INGEST_RUN_ID: run,
    });
    const log = createLogger("ingest", "silent");
    const users = async () =>
      Number((await pg.query<{ n: string }>("SELECT count(*)::text AS n FROM users")).rows[0].n);

    // try 1: killed while page 2 is on its way (page 1 stored)
    const stop = new AbortController();
    onHeld = () => stop.abort();
    const first = await runIngestOnce({ config, pool: pg, log, signal: stop.signal });
    assert.equal(first.interrupted, true);
    assert.equal(first.batches, 1);
    assert.equal(await users(), 20);

    holdPage2 = false;
    asked.length = 0;
    const second = await runIngestOnce({ config, pool: pg, log });
    assert.deepEqual(
      { run: second.run, earlierPages: second.earlierPages, batches: second.batches, interrupted: second.interrupted },
      { run, earlierPages: 1, batches: 2, interrupted: false },
    );
    assert.deepEqual(asked, [2, 3], "pages asked by the retry");
    assert.equal(await users(), 60, "three pages of 20");

    asked.length = 0;
    const third = await runIngestOnce({ config, pool: pg, log });
    assert.deepEqual([third.earlierPages, third.batches, third.nextPage], [3, 0, 4]);
    assert.deepEqual(asked, [], "a complete run fetches nothing");
    assert.equal(await users(), 60);

    // without a run id, INGEST_BATCHES more pages from the cursor: the loop and a hand-run one-shot
    const plain = await runIngestOnce({ config: { ...config, INGEST_RUN_ID: undefined }, pool: pg, log, batches: 1 });
    assert.deepEqual([plain.run, plain.batches, plain.nextPage], [undefined, 1, 5]);
    assert.equal(await users(), 80);
  });
});
