/**
 * The docs say what the code does: docs/reference.md names every stack setting the config schema
 * accepts, with the nested ones' kinds, and every link between the docs reaches a file.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { DEFAULT_CPU, DEFAULT_MEMORY, DEFAULT_PORTS, VOLUMES, stageConfigSchema } from "../../infra/config";
import { monitoringSettingsSchema } from "../../infra/monitoring/settings";

const ROOT = path.resolve(__dirname, "../..");
const read = (f: string) => fs.readFileSync(path.join(ROOT, f), "utf8");
const DOCS = [
  "README.md",
  "CHANGELOG.md",
  ...fs
    .readdirSync(path.join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];

describe("docs", () => {
  it("docs/reference.md names every config key, and every kind, port and volume of the nested ones", () => {
    const ref = read("docs/reference.md");
    const nested: Record<string, readonly string[]> = {
      memory: Object.keys(DEFAULT_MEMORY),
      cpu: Object.keys(DEFAULT_CPU),
      ports: Object.keys(DEFAULT_PORTS),
      claimSizes: VOLUMES,
      alerts: Object.keys(monitoringSettingsSchema.shape),
    };
    for (const key of Object.keys(stageConfigSchema.innerType().shape)) {
      if (key in nested) {
        assert.match(ref, new RegExp("`" + key + "\\.<"), `docs/reference.md does not document ${key}.<...>`);
        for (const k of nested[key])
          assert.match(ref, new RegExp("`" + k + "`"), `docs/reference.md does not name ${key}.${k}`);
      } else {
        assert.match(ref, new RegExp("\\| `" + key + "` \\|"), `docs/reference.md has no row for ${key}`);
      }
    }
  });

  it("every relative link of the README and docs/ reaches a file", () => {
    for (const doc of DOCS) {
      for (const [, target] of read(doc).matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(target)) continue;
        assert.ok(fs.existsSync(path.join(ROOT, path.dirname(doc), target)), `${doc}: ${target} does not exist`);
      }
    }
  });
});
