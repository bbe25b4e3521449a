/**
 * The StackReference reader of tests/fixtures/consumer, run under Pulumi mocks against the outputs
 * the program declares: it accepts the contract as it is, and refuses a major it does not know.
 * (The engine ring runs the same program against a real stack.)
 */
import { strict as assert } from "node:assert";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { CONTRACT_VERSION, SECRET_OUTPUTS } from "../../../infra/outputs";
import { devRun, resolve } from "./harness";

const CONSUMER = path.resolve(__dirname, "../../fixtures/consumer/index.ts");

/** The consumer's `seen` export, with the pipeline's stack answering `outputs`. */
async function consume(outputs: Record<string, unknown>): Promise<Record<string, { secret: boolean; shape: string }>> {
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        if (args.type !== "pulumi:pulumi:StackReference") return { id: `${args.name}-id`, state: args.inputs };
        return { id: args.name, state: { name: args.name, outputs, secretOutputNames: [...SECRET_OUTPUTS] } };
      },
      call: (args) => args.inputs,
    },
    "pipeline-consumer",
    "dev",
    false,
  );
  pulumi.runtime.setAllConfig({ "pipeline-consumer:pipeline": "organization/realtime-pipeline/dev" });
  delete require.cache[CONSUMER];
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { seen } = require(CONSUMER) as { seen: pulumi.Output<Record<string, { secret: boolean; shape: string }>> };
  return new Promise((ok, fail) => {
    // An apply that throws never resolves its Output; the failure reaches the promise it came from.
    process.once("unhandledRejection", fail);
    seen.apply((s) => {
      process.removeListener("unhandledRejection", fail);
      ok(s);
    });
  });
}

describe("infra: the output contract's reader (tests/fixtures/consumer)", () => {
  let outputs: Record<string, unknown>;
  before(async () => {
    const run = await devRun();
    outputs = {};
    for (const [k, v] of Object.entries(run.outputs!)) {
      const fields = typeof v === "object" && !pulumi.Output.isInstance(v) ? Object.entries(v as object) : undefined;
      outputs[k] = fields
        ? Object.fromEntries(await Promise.all(fields.map(async ([f, x]) => [f, (await resolve(x)).value])))
        : (await resolve(v)).value;
    }
  });

  it("reads the contract as the program declares it: version 1.x, every shape, the five secrets", async () => {
    assert.equal(outputs.contractVersion, CONTRACT_VERSION);
    const seen = await consume(outputs);
    assert.ok(
      Object.values(seen).every((s) => s.shape === "ok"),
      JSON.stringify(seen),
    );
    const secret = Object.entries(seen)
      .filter(([, s]) => s.secret)
      .map(([n]) => n);
    assert.deepEqual(secret.sort(), [...SECRET_OUTPUTS].sort());
  });

  it("takes a later minor version, refuses another major and a stack without a version", async () => {
    await consume({ ...outputs, contractVersion: "1.4" });
    const v2 = { ...outputs, contractVersion: "2" };
    await assert.rejects(consume(v2), /output contract is 2; this program reads 1\.x/);
    const unversioned = { ...outputs };
    delete unversioned.contractVersion;
    await assert.rejects(consume(unversioned), /publishes no contractVersion/);
  });
});
