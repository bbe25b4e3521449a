/**
 * `npm run bench:scrape`: what Prometheus's scrapes cost a worker. The relay drains the same size
 * of outbox backlog to Kafka (relay --once) in rotating rounds of three modes: left alone, scraped
 * every BENCH_SCRAPE_MS (1000: fifteen times the stacks' default of 15 s), and hammered every
 * BENCH_STRESS_MS (back to back) so that the scrapes' own cost stands far above the noise. Not a timed test.
 *
 * Two figures per round: records/s (wall clock: moves with PostgreSQL's checkpoints and Kafka's
 * log, ±30 % between rounds of the same mode) and the relay's CPU microseconds per record (its
 * summary's cpuSeconds: what a scrape takes away from a worker that is CPU bound, and steady).
 * From the hammered rounds it derives the CPU of one scrape, and from that the share of the
 * relay's CPU that scraping takes at the stacks' default interval: the cost to throughput when
 * the worker is CPU bound, an upper bound otherwise.
 *
 * Needs scripts/services up postgres zookeeper kafka schema-registry. The relay works in a
 * PostgreSQL schema of its own (search_path), emptied before each round and dropped at the end.
 *
 * Env: BENCH_RECORDS (50000 a round), BENCH_ROUNDS (4: rotations of the three modes),
 * BENCH_SCRAPE_MS (1000), BENCH_STRESS_MS (0: back to back).
 */
import { relayBench, type RelayRun } from "./relay-backlog";

const N = Number(process.env.BENCH_RECORDS ?? 50_000);
const ROTATIONS = Number(process.env.BENCH_ROUNDS ?? 4);
const SCRAPE_MS = Number(process.env.BENCH_SCRAPE_MS ?? 1000);
const STRESS_MS = Number(process.env.BENCH_STRESS_MS ?? 0);
/** The stacks' default scrapeIntervalSeconds (infra/config.ts). */
const DEFAULT_INTERVAL_S = 15;
const MODES = ["alone", "scraped", "hammered"] as const;
type Mode = (typeof MODES)[number];
const EVERY_MS: Record<Mode, number | undefined> = { alone: undefined, scraped: SCRAPE_MS, hammered: STRESS_MS };

interface Round extends RelayRun {
  mode: Mode;
  scrapes: number;
}

const say = (s: string) => process.stdout.write(`${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rate = (r: Round) => r.published / r.seconds;
const cpuPerRecordUs = (r: Round) => (r.cpuSeconds / r.published) * 1e6;

/** Scrapes `url` every `everyMs` (one at a time: a slow answer delays the next) until stopped. */
function scrapeEvery(url: string, everyMs: number): { stop: () => Promise<number> } {
  let answered = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const began = Date.now();
      try {
        await (await fetch(url)).text();
        answered++;
      } catch {
        /* the worker's server is not up yet, or has gone: not a scrape */
      }
      await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (Date.now() - began))));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return answered;
    },
  };
}

async function main(): Promise<void> {
  const bench = await relayBench("scrape");
  const rounds: Round[] = [];
  try {
    say(
      `scrape cost ${bench.run}: ${N} outbox rows a round, ${ROTATIONS * MODES.length} rounds (${MODES.join(", ")}); scraped every ${SCRAPE_MS} ms, hammered every ${STRESS_MS} ms; worker logs ${bench.logDir}/`,
    );
    for (let rotation = 0; rotation < ROTATIONS; rotation++) {
      const order = MODES.map((_, i) => MODES[(i + rotation) % MODES.length]);
      for (const mode of order) {
        // every round starts from the same state: published rows left behind would slow the later rounds
        await bench.pool.query("TRUNCATE users, outbox, relay_inflight");
        await bench.pool.query("VACUUM ANALYZE outbox");
        await bench.stage(`scrape-${bench.run}-${rotation}-${mode}`, N);
        const every = EVERY_MS[mode];
        let scrapes = 0;
        const s = await bench.drain(`relay-${rotation}-${mode}`, {}, (w) => {
          if (every === undefined) return async () => undefined;
          const scraper = scrapeEvery(`http://127.0.0.1:${w.metricsPort}/metrics`, every);
          return async () => void (scrapes = await scraper.stop());
        });
        const r: Round = { mode, ...s, scrapes };
        rounds.push(r);
        say(
          `  round ${rounds.length} ${mode.padEnd(8)} ${r.published} rows in ${r.seconds.toFixed(1)} s: ${rate(r).toFixed(0)} records/s, ${cpuPerRecordUs(r).toFixed(1)} µs CPU/record, ${scrapes} scrapes`,
        );
      }
    }
  } finally {
    await bench.close();
  }
  const of = (mode: Mode) => rounds.filter((r) => r.mode === mode);
  const alone = of("alone");
  const cpuAlone = median(alone.map(cpuPerRecordUs));
  const cpuScraped = median(of("scraped").map(cpuPerRecordUs));
  // one scrape's CPU: what a hammered round spent beyond the alone rounds' CPU per record
  const perScrapeMs = median(
    of("hammered").map((r) => ((r.cpuSeconds - (cpuAlone / 1e6) * r.published) / r.scrapes) * 1000),
  );
  // the relay's CPU use while it works (CPU seconds per wall second), alone
  const busy = median(alone.map((r) => r.cpuSeconds / r.seconds));
  const shareAtDefault = perScrapeMs / 1000 / DEFAULT_INTERVAL_S / busy;
  const shareAtScrape = perScrapeMs / SCRAPE_MS / busy;
  say(
    `records/s (medians): alone ${median(alone.map(rate)).toFixed(0)}, scraped ${median(of("scraped").map(rate)).toFixed(0)}, hammered ${median(of("hammered").map(rate)).toFixed(0)} (wall clock: noisy)`,
  );
  say(
    `CPU per record (medians): alone ${cpuAlone.toFixed(1)} µs, scraped every ${SCRAPE_MS} ms ${cpuScraped.toFixed(1)} µs (ratio ${(cpuScraped / cpuAlone).toFixed(3)}), hammered ${median(of("hammered").map(cpuPerRecordUs)).toFixed(1)} µs`,
  );
  say(
    `one scrape costs ${perScrapeMs.toFixed(2)} ms of CPU; the relay uses ${busy.toFixed(2)} CPU s per s while it works`,
  );
  say(
    `scraping takes ${(shareAtDefault * 100).toFixed(3)} % of the relay's CPU at the default ${DEFAULT_INTERVAL_S} s interval, ${(shareAtScrape * 100).toFixed(3)} % at ${SCRAPE_MS} ms`,
  );
  say(
    `BENCH ${JSON.stringify({ cpuPerRecordUs: { alone: +cpuAlone.toFixed(2), scraped: +cpuScraped.toFixed(2) }, perScrapeMs: +perScrapeMs.toFixed(3), busy: +busy.toFixed(3), shareAtDefault: +shareAtDefault.toFixed(5), shareAtScrape: +shareAtScrape.toFixed(5), records: N, rounds: rounds.length })}`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
