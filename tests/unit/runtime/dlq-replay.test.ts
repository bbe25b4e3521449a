import assert from "node:assert/strict";
import { dlqMessage, type DlqEnvelope } from "../../../runtime/processor/dlq";
import { matches, parseReplayArgs, recordOf, replayGroup } from "../../../runtime/processor/dlq-replay";
import { parseArgs } from "../../../runtime/main";

describe("dlq replay: options, filter, the record a letter was", () => {
  const env = (reason: string, at: string): DlqEnvelope => {
    const src = { topic: "t", partition: 0, offset: "5", key: Buffer.from("k"), value: Buffer.from("v") };
    const m = dlqMessage({ ...src, headers: { outbox_id: "42" } }, reason, new Date(at));
    return JSON.parse(m.value.toString()) as DlqEnvelope;
  };

  it("parses --reason, --since, --until, --dry-run, --group; refuses the rest", () => {
    const o = parseReplayArgs([
      "--reason",
      "^decode",
      "--since",
      "2026-01-01T00:00:00Z",
      "--until",
      "2026-02-01",
      "--dry-run",
    ]);
    assert.ok(!("error" in o));
    assert.equal(o.reason?.source, "^decode");
    assert.equal(o.since?.toISOString(), "2026-01-01T00:00:00.000Z");
    assert.equal(o.dryRun, true);
    assert.match((parseReplayArgs(["--since", "yesterday"]) as { error: string }).error, /not an ISO time/);
    assert.match((parseReplayArgs(["--nope"]) as { error: string }).error, /unknown option/);
    assert.match((parseReplayArgs(["--reason"]) as { error: string }).error, /needs a value/);
    const cli = parseArgs(["dlq-replay", "--dry-run"]);
    assert.deepEqual(cli, { command: "dlq-replay", once: false, rest: ["--dry-run"] });
  });

  it("one group per filter: the same filter twice is the same group", () => {
    assert.equal(replayGroup({ reason: /a/ }), replayGroup({ reason: /a/ }));
    assert.notEqual(replayGroup({ reason: /a/ }), replayGroup({ reason: /b/ }));
  });

  it("matches by reason and failed_at in [since, until)", () => {
    const e = env("decode: schema id 3 is not in the registry", "2026-03-01T00:00:00Z");
    assert.ok(matches(e, { reason: /schema id/ }));
    assert.ok(!matches(e, { reason: /^invalid/ }));
    assert.ok(matches(e, { since: new Date("2026-03-01T00:00:00Z"), until: new Date("2026-03-02") }));
    assert.ok(!matches(e, { until: new Date("2026-03-01T00:00:00Z") }));
  });

  it("gives back the key, value and original headers, marked with where it came from", () => {
    const r = recordOf(env("x", "2026-03-01T00:00:00Z"), "2/7");
    assert.ok(!("error" in r));
    assert.equal(r.key?.toString(), "k");
    assert.equal(r.value.toString(), "v");
    assert.equal(String(r.headers.outbox_id), "42");
    assert.equal(r.headers.dlq_replayed_from, "2/7");
  });
});
