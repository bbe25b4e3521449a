import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import ts from "typescript";
import { REPO_ROOT } from "../../../infra/spec";

/**
 * The folder picture of docs/architecture.md: each layer imports only the layers below it, so no
 * import runs back up. Type-only imports count too: they couple as much.
 */
const LAYERS: [string, RegExp][] = [
  ["program", /^infra\/(index|program|stage-args|wiring|outputs|secrets)\.ts$/],
  ["config", /^infra\/config\.ts$/],
  ["components", /^infra\/components\//],
  ["targets", /^infra\/targets\//],
  ["spec", /^infra\/spec\.ts$/],
  ["catalog", /^(infra\/catalog|infra\/monitoring|runtime\/contracts)\//],
];
/** What each layer may import (besides its own folder's peers, for targets and catalog). */
const MAY_IMPORT: Record<string, string[]> = {
  program: ["program", "config", "components", "targets", "spec", "catalog"],
  config: ["spec", "catalog"],
  components: ["spec", "catalog"],
  targets: ["targets", "spec"],
  spec: [],
  catalog: ["catalog"],
};

const layerOf = (file: string) => LAYERS.find(([, re]) => re.test(file))?.[0];

function infraFiles(dir = "infra"): string[] {
  return fs
    .readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? infraFiles(`${dir}/${e.name}`) : e.name.endsWith(".ts") ? [`${dir}/${e.name}`] : [],
    );
}

describe("infra: no import runs back up (docs/architecture.md, the folder picture)", () => {
  for (const file of infraFiles()) {
    it(`${file} imports only the layers below it`, () => {
      const from = layerOf(file);
      assert.ok(from, `${file} is in no layer of the picture`);
      const text = fs.readFileSync(path.join(REPO_ROOT, file), "utf8");
      for (const m of text.matchAll(/^import [^;]*? from "(\.[^"]+)";/gms)) {
        const target = path.relative(REPO_ROOT, path.resolve(REPO_ROOT, path.dirname(file), m[1])) + ".ts";
        const to = layerOf(target);
        assert.ok(to && MAY_IMPORT[from].includes(to), `${file} (${from}) imports ${target} (${to ?? "no layer"})`);
      }
    });
  }
});

describe("infra: the program compiles as Pulumi compiles it", () => {
  it("Pulumi's working directory (Pulumi.yaml's main, infra/) has a tsconfig.json with the project's strict settings", () => {
    const main = /^main:\s*(\S+)/m.exec(fs.readFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), "utf8"))?.[1];
    assert.equal(main, "infra/");
    const file = path.join(REPO_ROOT, main, "tsconfig.json");
    assert.ok(fs.existsSync(file), `${file} is missing: Pulumi's ts-node would type-check with its defaults`);
    const parsed = ts.getParsedCommandLineOfConfigFile(
      file,
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(String(d.messageText)) },
    );
    assert.equal(parsed?.options.strict, true);
    assert.equal(parsed?.options.noUnusedLocals, true);
  });
});
