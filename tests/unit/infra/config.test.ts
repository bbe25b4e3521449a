import { strict as assert } from "node:assert";
import { DEFAULT_MEMORY, StageConfigError, parseStageConfig } from "../../../infra/config";
import { memoryMiB } from "../../../infra/spec";
import { DEV_CONFIG, runProgram } from "./harness";

/** Each bad stack config, the key its message must name, and words of the message. */
const BAD: { case: string; set: Record<string, string | undefined>; key: string; says: RegExp }[] = [
  {
    case: "zero Spark workers",
    set: { sparkWorkers: "0" },
    key: "realtime-pipeline:sparkWorkers",
    says: /integer >= 1.*Fix: pulumi config set realtime-pipeline:sparkWorkers 2/,
  },
  {
    case: "a negative memory size",
    set: { memory: JSON.stringify({ kafka: "-1g" }) },
    key: "realtime-pipeline:memory.kafka",
    says: /positive size such as 512m or 2g.*Fix: pulumi config set --path 'realtime-pipeline:memory.kafka' 1g/,
  },
  {
    case: "a malformed memory size",
    set: { sparkWorkerMemory: "2 gigs" },
    key: "realtime-pipeline:sparkWorkerMemory",
    says: /512m or 2g/,
  },
  {
    case: "an unknown target",
    set: { target: "nomad" },
    key: "realtime-pipeline:target",
    says: /must be docker or kubernetes.*Fix: pulumi config set realtime-pipeline:target docker/,
  },
  { case: "a missing target", set: { target: undefined }, key: "realtime-pipeline:target", says: /is required/ },
  {
    case: "the kubernetes target without a registry",
    set: { target: "kubernetes" },
    key: "realtime-pipeline:registry",
    says: /is required for the kubernetes target.*Fix: pulumi config set realtime-pipeline:registry ghcr.io\/<org>/,
  },
  {
    case: "a namespace that is not a DNS label",
    set: { target: "kubernetes", registry: "ghcr.io/acme", namespace: "Realtime_Pipeline" },
    key: "realtime-pipeline:namespace",
    says: /DNS label/,
  },
  {
    case: "a Confluent version off the 7.9 line",
    set: { confluentVersion: "7.8.0" },
    key: "realtime-pipeline:confluentVersion",
    says: /7\.9\.x/,
  },
  {
    case: "an image tag of latest",
    set: { imageTag: "latest" },
    key: "realtime-pipeline:imageTag",
    says: /must not be latest/,
  },
  {
    case: "a bad cron schedule",
    set: { schedule: "every five minutes" },
    key: "realtime-pipeline:schedule",
    says: /cron/,
  },
  {
    case: "a bind address that is not an IP",
    set: { bindAddress: "my-laptop" },
    key: "realtime-pipeline:bindAddress",
    says: /IPv4/,
  },
  { case: "a misspelt key", set: { sparkWorker: "2" }, key: "realtime-pipeline:sparkWorker", says: /unknown key/ },
  {
    case: "Spark memory above its container limit",
    set: { sparkWorkerMemory: "4g" },
    key: "realtime-pipeline:sparkWorkerMemory",
    says: /512m below the container limit/,
  },
  {
    case: "the kubernetes target without a cluster context",
    set: { target: "kubernetes", registry: "ghcr.io/acme" },
    key: "realtime-pipeline:kubeContext",
    says: /is required for the kubernetes target.*get-contexts.*Fix: pulumi config set realtime-pipeline:kubeContext <context>/,
  },
  {
    case: "createNamespace that is not a boolean",
    set: { createNamespace: "no" },
    key: "realtime-pipeline:createNamespace",
    says: /true or false/,
  },
  {
    case: "an image platform that is not os/arch",
    set: { imagePlatform: "amd64" },
    key: "realtime-pipeline:imagePlatform",
    says: /linux\/amd64 or linux\/arm64/,
  },
  {
    case: "a pull secret that is not a Secret name",
    set: { imagePullSecrets: JSON.stringify(["Reg Cred"]) },
    key: "realtime-pipeline:imagePullSecrets.0",
    says: /Secret names.*Fix: pulumi config set --path 'realtime-pipeline:imagePullSecrets\[0\]'/,
  },
  {
    case: "a fractional outbox retention",
    set: { outboxRetentionHours: "1.5" },
    key: "realtime-pipeline:outboxRetentionHours",
    says: /whole number of hours.*Fix: pulumi config set realtime-pipeline:outboxRetentionHours 168/,
  },
  {
    case: "a bad data-source URL",
    set: { dataSourceUrl: "randomuser" },
    key: "realtime-pipeline:dataSourceUrl",
    says: /http\(s\) URL/,
  },
];

function withChange(set: Record<string, string | undefined>): Record<string, string> {
  const c: Record<string, string | undefined> = { ...DEV_CONFIG, ...set };
  return Object.fromEntries(Object.entries(c).filter((e): e is [string, string] => e[1] !== undefined));
}

const raw = (c: Record<string, string>) =>
  Object.fromEntries(
    Object.entries(c).map(([k, v]) => [k, v.startsWith("{") || v.startsWith("[") ? JSON.parse(v) : v]),
  );

describe("infra: stage config validation", () => {
  it("accepts the dev stack and fills the defaults", () => {
    const c = parseStageConfig(raw(DEV_CONFIG));
    assert.equal(c.target, "docker");
    assert.equal(c.sparkWorkers, 2);
    assert.equal(c.bindAddress, "127.0.0.1");
    assert.equal(c.dataSourceUrl, undefined);
    assert.deepEqual(c.memory, DEFAULT_MEMORY);
  });

  it("accepts cron, presets and none as schedule", () => {
    for (const s of ["0 * * * *", "*/5 * * * 1-5", "@daily", "none"])
      assert.equal(parseStageConfig({ ...raw(DEV_CONFIG), schedule: s }).schedule, s);
  });

  it("parses memory sizes to MiB", () => {
    assert.equal(memoryMiB("512m"), 512);
    assert.equal(memoryMiB("2g"), 2048);
    assert.throws(() => memoryMiB("-1g"));
  });

  for (const b of BAD) {
    it(`rejects ${b.case}, naming ${b.key}`, () => {
      assert.throws(
        () => parseStageConfig(raw(withChange(b.set))),
        (e: unknown) => {
          assert.ok(e instanceof StageConfigError);
          const line = e.problems.find((p) => p.startsWith(`${b.key}:`));
          assert.ok(line, `no problem names ${b.key}: ${e.message}`);
          assert.match(line, b.says);
          return true;
        },
      );
    });
  }

  it("every bad config stops the program before it declares a resource", async () => {
    for (const b of BAD) {
      const run = await runProgram(withChange(b.set));
      assert.ok(run.error instanceof StageConfigError, `${b.case}: ${run.error}`);
      assert.ok(run.error.message.includes(b.key), b.case);
      // The stack itself is the engine's, not ours.
      assert.deepEqual(
        run.resources.filter((r) => r.type !== "pulumi:pulumi:Stack").map((r) => r.type),
        [],
        b.case,
      );
    }
  });
});
