import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import { StageConfigError, parseStageConfig } from "../../../infra/config";
import { DEV_CONFIG } from "./harness";

/** The flat `realtime-pipeline:key: value` lines of a stack file (all ours are flat). */
function stackConfig(stack: string): Record<string, string> {
  const text = fs.readFileSync(`Pulumi.${stack}.yaml`, "utf8");
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/^\s+realtime-pipeline:([A-Za-z]+):\s*(.+?)\s*$/gm)) {
    out[m[1]] = m[2].replace(/^(["'])(.*)\1$/, "$2");
  }
  return out;
}

describe("infra: the stack files", () => {
  it("Pulumi.dev.yaml is the config the tests run the program with", () => {
    assert.deepEqual(stackConfig("dev"), DEV_CONFIG);
    assert.equal(parseStageConfig(stackConfig("dev")).target, "docker");
  });

  for (const stack of ["staging", "prod"]) {
    it(`Pulumi.${stack}.yaml targets kubernetes and asks for its registry and cluster context until they are set`, () => {
      assert.equal(stackConfig(stack).target, "kubernetes");
      assert.throws(
        () => parseStageConfig(stackConfig(stack)),
        (e: unknown) =>
          e instanceof StageConfigError &&
          /realtime-pipeline:registry: is required for the kubernetes target/.test(e.message) &&
          /realtime-pipeline:kubeContext: is required/.test(e.message),
      );
      assert.equal(
        parseStageConfig({ ...stackConfig(stack), registry: "ghcr.io/acme", kubeContext: "c" }).namespace,
        `realtime-pipeline-${stack}`,
      );
    });
  }

  it("Pulumi.yaml names the project, the nodejs runtime and infra/ as main", () => {
    const text = fs.readFileSync("Pulumi.yaml", "utf8");
    assert.match(text, /^name: realtime-pipeline$/m);
    assert.match(text, /^\s+name: nodejs$/m);
    assert.match(text, /^main: infra\/$/m);
    assert.ok(fs.existsSync("infra/index.ts"));
  });
});
