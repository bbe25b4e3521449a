import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { runProgram } from "./harness";
import { SNAPSHOT_STACKS, fixturePath, snapshotOf, stackFileConfig } from "./snapshot";

type Entry = { urn: string };

/** Which URNs went, came or changed (and, for a change, which top-level fields), one a line. */
function changes(expected: string, actual: string): string {
  const byUrn = (text: string) => {
    const all = (JSON.parse(text) as { resources: Entry[] }).resources;
    return new Map(all.map((r) => [r.urn, r as Entry & Record<string, unknown>]));
  };
  const [was, now] = [byUrn(expected), byUrn(actual)];
  const lines: string[] = [];
  for (const urn of was.keys()) if (!now.has(urn)) lines.push(`  - ${urn}`);
  for (const [urn, r] of now) {
    const old = was.get(urn);
    if (!old) lines.push(`  + ${urn}`);
    else {
      const fields = Object.keys(r).filter((k) => JSON.stringify(r[k]) !== JSON.stringify(old[k]));
      if (fields.length > 0) lines.push(`  ~ ${urn}: ${fields.join(", ")}`);
    }
  }
  return lines.length > 0 ? lines.join("\n") : "  (the stack outputs or the formatting)";
}

/**
 * Live stacks must not notice a refactor: every resource's URN, aliases, options and inputs stay
 * as the committed fixture says. `UPDATE_SNAPSHOTS=1 npm run test:unit` rewrites the fixtures; a
 * change to one is a change to users' stacks and is explained in its commit.
 */
describe("infra: every stack declares exactly the resources of its fixture", () => {
  for (const [stack, extra] of Object.entries(SNAPSHOT_STACKS)) {
    it(`${stack}: URNs, aliases, options and inputs as in __snapshots__/resources-${stack}.json`, async () => {
      const run = await runProgram({ ...stackFileConfig(stack), ...extra }, stack);
      const actual = await snapshotOf(run);
      const file = fixturePath(stack);
      if (process.env.UPDATE_SNAPSHOTS === "1") {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, actual);
      }
      const expected = fs.readFileSync(file, "utf8");
      if (actual !== expected)
        assert.fail(`${stack}: differs from ${path.basename(file)}:\n${changes(expected, actual)}`);
    });
  }
});
