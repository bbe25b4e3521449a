/** The audit command's arguments and report. */
import { strict as assert } from "node:assert";
import { formatReport, parseAuditArgs, type AuditReport } from "../../../runtime/audit/audit";
import { parseArgs } from "../../../runtime/main";

describe("audit command", () => {
  it("is a command of main, with its own options", () => {
    const rest = ["--seed", "s1", "--redrive"];
    assert.deepEqual(parseArgs(["audit", ...rest]), { command: "audit", once: false, rest });
  });

  it("takes a seed, or a time range (until defaults to now)", () => {
    assert.deepEqual(parseAuditArgs(["--seed", "s1"], 500), { scope: { seed: "s1", pageSize: 500 }, redrive: false });
    const [a, b] = ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"];
    const r = parseAuditArgs(["--since", a, "--until", b, "--redrive"], 1000);
    assert.deepEqual(r, { scope: { since: new Date(a), until: new Date(b) }, redrive: true });
    const open = parseAuditArgs(["--since", "2026-01-01T00:00:00Z"], 1000);
    assert.ok("scope" in open && "until" in open.scope && open.scope.until.getTime() <= Date.now());
  });

  it("refuses what it cannot audit, saying why", () => {
    const error = (...argv: string[]) => (parseAuditArgs(argv, 1000) as { error: string }).error;
    assert.match(error(), /give --seed S, or --since T/);
    assert.match(error("--seed"), /--seed needs a value/);
    assert.match(error("--seed", "a", "--since", "2026-01-01"), /not both/);
    assert.match(error("--since", "yesterday"), /is not a time/);
    assert.match(error("--since", "2026-01-02", "--until", "2026-01-01"), /after/);
    assert.match(error("--fix"), /unknown option --fix/);
  });

  it("reports counts and the ids it lists out of all the missing ones", () => {
    const r: AuditReport = {
      scope: "seed s",
      staged: 10,
      stored: 7,
      missing: 2,
      stale: 1,
      pending: 0,
      parked: 0,
      ids: ["a", "b"],
      redrive: { written: 3, busy: 0 },
    };
    const text = formatReport(r);
    assert.match(text, /10 staged, 7 stored, 2 missing, 1 stale/);
    assert.match(text, /missing or stale ids \(2 of 3\): a b/);
    assert.match(text, /re-driven: 3 users/);
  });
});
