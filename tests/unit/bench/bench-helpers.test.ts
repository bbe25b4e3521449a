import assert from "node:assert/strict";
import { percentile, runFigures, slope, spanRate, table, type Point } from "../../../bench/stats";
import { parseSpec } from "../../../bench/api-server";
import { parseOptions, sample } from "../../../scripts/pipeline";

describe("bench/stats", () => {
  it("percentile takes the nearest rank", () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    assert.equal(percentile(xs, 50), 50);
    assert.equal(percentile(xs, 99), 99);
    assert.equal(percentile(xs, 100), 100);
    assert.equal(percentile([7], 99), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
  });

  it("spanRate leaves out the records of the last stamp (their round ended after it)", () => {
    // 3 rounds of 1000 stamped at their start, 0.5 s apart: 2000 records in 1 s
    const t = [...Array(1000).fill(0), ...Array(1000).fill(500), ...Array(1000).fill(1000)];
    assert.equal(spanRate(t), 2000);
    // one by one, 1 ms apart: 1000 records/s
    assert.equal(spanRate(Array.from({ length: 101 }, (_, i) => i)), 1000);
    assert.ok(Number.isNaN(spanRate([5, 5])));
  });

  it("slope fits a line through the points (records per second)", () => {
    assert.equal(
      slope([
        { t: 0, v: 0 },
        { t: 1000, v: 500 },
        { t: 2000, v: 1000 },
      ]),
      500,
    );
    // noise around 2000/s
    assert.ok(
      Math.abs(
        slope([
          { t: 0, v: 10 },
          { t: 500, v: 990 },
          { t: 1000, v: 2010 },
          { t: 1500, v: 2990 },
        ]) - 2000,
      ) < 50,
    );
    assert.ok(Number.isNaN(slope([{ t: 5, v: 1 }])));
  });

  it("runFigures leaves the start-up, fill and drain out of the steady rate and the CPU per record", () => {
    // 2 s of start-up (CPU, no records), 10,000 records at 1000/s using 100 µs each, then a slow drain
    const pts: Point[] = [
      { t: 0, v: 0, cpuUs: 0 },
      { t: 2000, v: 0, cpuUs: 500_000 },
    ];
    for (let i = 1; i <= 10; i++) pts.push({ t: 2000 + i * 1000, v: i * 1000, cpuUs: 500_000 + i * 100_000 });
    pts.push({ t: 20_000, v: 10_500, cpuUs: 1_550_000 });
    const f = runFigures(pts);
    assert.equal(f.records, 10_500);
    assert.equal(Math.round(f.steady), 1000);
    assert.equal(Math.round(f.cpuUsPerRecord), 100);
    // the mean counts the drain: 9,500 records from the first point with records to the end, 17 s
    assert.equal(Math.round(f.mean), Math.round(9500 / 17));
    assert.ok(Number.isNaN(runFigures([{ t: 0, v: 0, cpuUs: 0 }]).steady));
  });

  it("the bench API takes <seed>:<pages>:<results> and says what it expected", () => {
    assert.deepEqual(parseSpec("bench-x_1.a:200:1000"), { seed: "bench-x_1.a", pages: 200, results: 1000 });
    assert.throws(() => parseSpec("seed:2"), /bad page spec "seed:2": expected <seed>:<pages>:<results>/);
  });

  it("table flags a worker below 80% of its limit", () => {
    const out = table([
      { worker: "relay", rate: 700, limit: 1000, limitWhat: "kafkajs" },
      { worker: "processor", rate: 900, limit: 1000, limitWhat: "cassandra" },
    ]);
    const [head, , relay, processor] = out.split("\n");
    assert.match(head, /worker\s+records\/s\s+limit records\/s\s+ratio/);
    assert.match(relay, /^relay\s+700\s+1,000\s+70% \(<80%\)\s+kafkajs$/);
    assert.match(processor, /^processor\s+900\s+1,000\s+90%\s+cassandra$/);
  });
});

describe("scripts/pipeline", () => {
  it("parses its options, flags over env", () => {
    const o = parseOptions(["--users", "5000", "--batch", "500", "--no-services"], {
      PIPELINE_USERS: "9",
      INGEST_SEED: "s1",
    });
    assert.equal(o.users, 5000);
    assert.equal(o.batch, 500);
    assert.equal(o.seed, "s1");
    assert.equal(o.services, false);
    assert.equal(o.forever, false);
    assert.equal(parseOptions([], { PIPELINE_FOREVER: "1" }).forever, true);
    assert.equal(parseOptions([], {}).users, 20000);
  });

  it("rejects bad options with the usage", () => {
    assert.throws(() => parseOptions(["--users", "0"], {}), /--users must be a positive integer\nusage:/);
    assert.throws(() => parseOptions(["--batch", "6000"], {}), /--batch must be an integer from 1 to 5000/);
    assert.throws(() => parseOptions(["--frobnicate"], {}), /unknown option --frobnicate/);
    assert.throws(() => parseOptions(["--seed"], {}), /--seed needs a value/);
  });

  it("sums Prometheus samples by name and labels", () => {
    const m = new Map([
      ['pipeline_records_out_total{worker="relay"}', 5],
      ['pipeline_consumer_lag{topic="users_created",partition="0",group="g"}', 3],
      ['pipeline_consumer_lag{topic="users_created",partition="1",group="g"}', 4],
      ['pipeline_consumer_lag{topic="users_created",partition="1",group="h"}', 100],
      ["pipeline_records_out_total_other", 1000],
    ]);
    assert.equal(sample(m, "pipeline_records_out_total"), 5);
    assert.equal(sample(m, "pipeline_consumer_lag", { group: "g" }), 7);
    assert.equal(sample(m, "pipeline_records_failed_total"), undefined);
    assert.equal(sample(undefined, "x"), undefined);
  });
});
