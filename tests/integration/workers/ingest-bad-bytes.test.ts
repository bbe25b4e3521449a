/**
 * Bad bytes never stop ingest (real PostgreSQL, scratch schema): NUL characters and lone
 * surrogates in a record's values or keys, in a reason, in an API body quoted by an error. The
 * record or page is rejected with a storable reason, the original kept, the rest of the page
 * stored, the worker goes on; a 4xx is classified (410: the page skipped; 404: a configuration
 * error, exit 2, after the page's failure is recorded).
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Pool } from "pg";
import { generatePage } from "../../../runtime/api/generate";
import { splitRecords, runIngestOnce } from "../../../runtime/ingest/ingest";
import { ApiRequestRefused } from "../../../runtime/ingest/fetch-page";
import { recordPageFailure, storeBatch } from "../../../runtime/ingest/store-batch";
import { ConfigError, ingestSchema, loadConfig } from "../../../runtime/lib/config";
import { createLogger } from "../../../runtime/lib/logger";
import { scratchSchema, servicesEnv, uniq } from "./harness";

type Raw = Record<string, unknown>;

/** Page `page` of `seed` with bad bytes in records 3, 5, 7 and 9 (values and keys). */
function badPage(seed: string, page: number, n: number): unknown[] {
  const results = generatePage(seed, page, n).results as unknown as Raw[];
  (results[3].location as Raw).city = "Ber\u0000lin";
  results[5]["note\u0000"] = "a NUL in a key";
  (results[7].name as Raw).first = "Ann\ud800";
  (results[9].location as Raw)["\udc00"] = "a lone surrogate in a key";
  return results;
}

describe("ingest: bad bytes and 4xx answers never stop it (real PostgreSQL)", function () {
  this.timeout(120_000);
  let scratch: Awaited<ReturnType<typeof scratchSchema>> | undefined;
  let pg: Pool;

  before(async () => {
    scratch = await scratchSchema("it_badbytes");
    pg = scratch.pg;
  });

  after(async () => {
    await scratch?.drop();
  });

  it("a page whose records hold NUL characters and lone surrogates: those rejected with their reason, the original kept, the rest stored", async () => {
    const seed = uniq("nul-seed");
    const results = badPage(seed, 1, 20);
    const { users, rejected } = splitRecords(results, Date.now());
    assert.deepEqual(
      rejected.map((r) => r.idx),
      [3, 5, 7, 9],
    );
    // a reason that itself carries bad bytes (a zod path through an odd key, an error quoting the record)
    rejected[0].reason += " (\u0000\udfff)";
    const r = await storeBatch(pg, { seed, page: 1, users, rejected });
    assert.deepEqual(r, { stored: true, upserted: 16, outboxed: 16, rejected: 4 });
    const rows = (
      await pg.query<{ idx: number; raw: unknown; raw_json: string | null; reason: string }>(
        "SELECT idx, raw, raw_json, reason FROM rejected_records WHERE seed = $1 ORDER BY idx",
        [seed],
      )
    ).rows;
    assert.deepEqual(
      rows.map((x) => x.reason),
      [
        "location.city: contains a NUL character (\\u0000\\udfff)",
        "note\\u0000: contains a NUL character in a key",
        "name.first: contains a lone surrogate (U+D800)",
        "location.\\udc00: contains a lone surrogate (U+DC00) in a key",
      ],
    );
    for (const row of rows) {
      assert.ok(row.raw_json !== null, `record ${row.idx}: its exact JSON text`);
      assert.deepEqual(JSON.parse(row.raw_json), results[row.idx], `record ${row.idx} comes back whole`);
    }
    assert.equal(
      (rows[0].raw as { location: { city: string } }).location.city,
      "Ber\\u0000lin",
      "raw: escaped, still queryable",
    );
    assert.equal(Number((await pg.query("SELECT count(*) AS n FROM users")).rows[0].n), 16);
    assert.equal((await pg.query("SELECT next_page FROM ingest_cursor WHERE seed = $1", [seed])).rows[0].next_page, 2);
  });

  it("a page failure whose reason quotes a NUL and half a surrogate pair is recorded", async () => {
    const seed = uniq("nul-reason");
    await recordPageFailure(
      pg,
      seed,
      4,
      "GET x: body is not JSON: Unexpected token '\u0000', \"[\u0000\ud83d",
      3,
      true,
    );
    const row = (await pg.query<{ reason: string }>("SELECT reason FROM ingest_page_failures WHERE seed = $1", [seed]))
      .rows[0];
    assert.equal(row.reason, "GET x: body is not JSON: Unexpected token '\\u0000', \"[\\u0000\\ud83d");
  });

  it("the worker: bad records, a non-JSON body with a NUL, a 410 are recorded and passed; a 404 stops it with a configuration error", async () => {
    const seed = uniq("bad-api");
    const perPage = 20;
    // page 1: bad records; 2: not JSON (a NUL); 3: 410 Gone; 4: fine; 5: 404 (a wrong base URL, say)
    const server = http.createServer((req, res) => {
      const page = Number(new URL(req.url ?? "/", "http://x").searchParams.get("page"));
      const send = (status: number, body: string) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(body);
      };
      if (page === 1)
        send(200, JSON.stringify({ results: badPage(seed, 1, perPage), info: { seed, results: perPage, page } }));
      else if (page === 2) send(200, '{"results": [\u0000]}');
      else if (page === 3) send(410, "gone\u0000");
      else if (page === 4) send(200, JSON.stringify(generatePage(seed, page, perPage)));
      else send(404, "no such route\u0000");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const e = servicesEnv();
      const config = loadConfig(ingestSchema, {
        PG_HOST: e.PG_HOST,
        PG_PORT: e.PG_PORT,
        PG_DATABASE: e.PG_DATABASE,
        PG_USER: e.PG_USER,
        PG_PASSWORD: e.PG_PASSWORD,
        API_BASE_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        INGEST_SEED: seed,
        INGEST_BATCH_SIZE: String(perPage),
        INGEST_RETRIES: "1",
        INGEST_RETRY_BASE_MS: "1",
        INGEST_RETRY_MAX_MS: "2",
      });
      const err = await runIngestOnce({ config, pool: pg, batches: 10, log: createLogger("ingest", "silent") }).then(
        (s) => assert.fail(`a summary: ${JSON.stringify(s)}`),
        (x: unknown) => x,
      );
      assert.equal((err as Error).name, "ApiRequestRefused", String(err));
      assert.ok(err instanceof ApiRequestRefused && err instanceof ConfigError, String(err));
      assert.match(err.message, /HTTP 404 no such route\\u0000.*API_BASE_URL/s);
      const failures = (
        await pg.query<{ page: number; reason: string; attempts: number; skipped: boolean }>(
          "SELECT page, reason, attempts, skipped FROM ingest_page_failures WHERE seed = $1 ORDER BY page",
          [seed],
        )
      ).rows;
      assert.deepEqual(
        failures.map((f) => [f.page, f.attempts, f.skipped]),
        [
          [2, 2, true],
          [3, 1, true],
          [5, 1, false],
        ],
      );
      assert.match(failures[0].reason, /not JSON: .*\\u0000/);
      assert.match(failures[1].reason, /HTTP 410 gone\\u0000$/);
      assert.match(failures[2].reason, /HTTP 404 no such route\\u0000$/);
      assert.equal(
        (await pg.query("SELECT next_page FROM ingest_cursor WHERE seed = $1", [seed])).rows[0].next_page,
        5,
        "page 5 not skipped",
      );
      const rejected = await pg.query("SELECT idx FROM rejected_records WHERE seed = $1 ORDER BY idx", [seed]);
      assert.deepEqual(
        rejected.rows.map((x) => x.idx),
        [3, 5, 7, 9],
      );
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
