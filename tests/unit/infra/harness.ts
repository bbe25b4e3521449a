/**
 * Runs the Pulumi program under mocks, once per call, and records every resource it declares.
 * Mock state is global to the process, so each run sets mocks and the whole config afresh.
 * Random resources answer with recognisable values, so the tests can hunt for them unwrapped.
 */
import * as pulumi from "@pulumi/pulumi";
import { runStack } from "../../../infra/program";
import { PipelineOutputs } from "../../../infra/outputs";

// Pulumi's wire markers (sdk/nodejs/runtime/rpc.ts): how a secret travels in resource inputs.
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export interface Declared {
  type: string;
  name: string;
  /** As the provider would receive them: secrets still wrapped. */
  inputs: Record<string, unknown>;
  /** Read (`Resource.get`) rather than created: the stack does not own it. */
  read: boolean;
}

export interface Run {
  resources: Declared[];
  /** Resource name → type of its parent ("" at the stack root), seen by a stack transformation. */
  parents: Map<string, string>;
  /** Resource name → names of the resources it depends on (start order). */
  dependsOn: Map<string, string[]>;
  /** Resource name → name of the provider resource it was given explicitly. */
  providers: Map<string, string>;
  /** Resource name → the options that change how the engine treats it. */
  options: Map<string, Pick<pulumi.CustomResourceOptions, "protect" | "customTimeouts" | "retainOnDelete">>;
  outputs?: PipelineOutputs;
  error?: Error;
  /** Every value the random provider generated in this run. */
  generated: string[];
  /** Each resource's identity and engine options, as the engine would see them (snapshot.ts). */
  identities: Identity[];
}

/** What makes the engine see "the same resource": its URN (type, name, parent chain) and options. */
export interface Identity {
  type: string;
  name: string;
  urn: string;
  parent: string;
  provider?: string;
  dependsOn: string[];
  aliases: unknown[];
  options: Record<string, unknown>;
}

type Node = { __pulumiType: string; __name?: string; __parentResource?: Node };

/** The URN as the engine builds it: the parents' types (the stack's left out), then type and name. */
export function urnOf(type: string, name: string, parent: Node | undefined): string {
  const types: string[] = [];
  for (let p = parent; p && p.__pulumiType !== "pulumi:pulumi:Stack"; p = p.__parentResource) {
    types.unshift(p.__pulumiType);
  }
  return `urn:pulumi:${pulumi.getStack()}::${pulumi.getProject()}::${[...types, type].join("$")}::${name}`;
}

const nodeUrn = (n: Node | undefined) =>
  n?.__name === undefined ? "" : urnOf(n.__pulumiType, n.__name, n.__parentResource);

/** An alias as the program wrote it, with resources named by their URN. */
function aliasOf(a: unknown): unknown {
  if (typeof a === "string" || typeof a !== "object" || a === null) return a;
  const entries = Object.entries(a as Record<string, unknown>);
  return Object.fromEntries(entries.map(([k, v]) => [k, k === "parent" ? nodeUrn(v as Node) : v]));
}

function identityOf(t: pulumi.ResourceTransformationArgs): Identity {
  const o = t.opts as pulumi.CustomResourceOptions;
  const listed = Array.isArray(o.dependsOn) ? o.dependsOn : o.dependsOn ? [o.dependsOn] : [];
  const deps = (listed as unknown as Node[]).map(nodeUrn).sort();
  const keys = [
    "protect",
    "retainOnDelete",
    "deleteBeforeReplace",
    "ignoreChanges",
    "replaceOnChanges",
    "customTimeouts",
    "import",
  ] as const;
  const options = Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
  return {
    type: t.type,
    name: t.name,
    urn: urnOf(t.type, t.name, o.parent as Node | undefined),
    parent: nodeUrn(o.parent as Node | undefined),
    ...(o.provider ? { provider: nodeUrn(o.provider as unknown as Node) } : {}),
    dependsOn: deps,
    aliases: (o.aliases ?? []).map(aliasOf),
    options,
  };
}

/** The dev stack's config, as Pulumi.dev.yaml sets it. */
export const DEV_CONFIG: Record<string, string> = {
  target: "docker",
  bindAddress: "127.0.0.1",
  confluentVersion: "7.9.2",
  postgresVersion: "15.13",
  cassandraVersion: "5.0.6",
  sparkVersion: "3.5.1",
  airflowVersion: "2.10.5",
  sparkWorkers: "2",
  sparkWorkerCores: "1",
  sparkWorkerMemory: "1g",
  schedule: "*/5 * * * *",
};

export function isSecretWrapper(v: unknown): v is { value: unknown } {
  return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SIG_KEY] === SECRET_SIG;
}

/** Paths of plain (not secret-wrapped) strings in `v` that contain one of `needles`. */
export function plainLeaks(v: unknown, needles: string[], path = ""): string[] {
  if (isSecretWrapper(v)) return [];
  if (typeof v === "string") return needles.some((n) => v.includes(n)) ? [path] : [];
  if (Array.isArray(v)) return v.flatMap((x, i) => plainLeaks(x, needles, `${path}[${i}]`));
  if (typeof v === "object" && v !== null)
    return Object.entries(v).flatMap(([k, x]) => plainLeaks(x, needles, `${path}.${k}`));
  return [];
}

/** Drops the secret wrappers (for reading wiring, not for judging secrecy). */
export function unwrap(v: unknown): unknown {
  if (isSecretWrapper(v)) return unwrap(v.value);
  if (Array.isArray(v)) return v.map(unwrap);
  if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]));
  return v;
}

async function settle(resources: Declared[]): Promise<void> {
  // Registrations are asynchronous; wait until no new one arrives for a few ticks.
  let last = -1;
  let quiet = 0;
  while (quiet < 3) {
    await new Promise((r) => setTimeout(r, 5));
    quiet = resources.length === last ? quiet + 1 : 0;
    last = resources.length;
  }
}

const runs = new Map<string, Promise<Run>>();
/**
 * The program's declarations for a config and stack. A run is read only and the same input declares
 * the same resources, so one run serves every test file that asks for it (a run takes 100-300 ms).
 */
export function runProgram(config: Record<string, string>, stack = "dev"): Promise<Run> {
  const key = JSON.stringify([stack, Object.entries(config).sort(([a], [b]) => a.localeCompare(b))]);
  let run = runs.get(key);
  if (!run) runs.set(key, (run = declare(config, stack)));
  return run;
}

async function declare(config: Record<string, string>, stack: string): Promise<Run> {
  const resources: Declared[] = [];
  const generated: string[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        resources.push({
          type: args.type,
          name: args.name,
          inputs: args.inputs,
          read: args.id !== undefined && args.id !== "",
        });
        const state: Record<string, unknown> = { ...args.inputs };
        if (args.type === "random:index/randomPassword:RandomPassword") {
          state.result = `GEN${args.name.replace(/[^A-Za-z0-9]/g, "")}Q7x`;
          generated.push(state.result as string);
        }
        if (args.type === "random:index/randomId:RandomId") {
          state.b64Url = "R2VuZXJhdGVkRmVybmV0S2V5Rm9yVGVzdHMtXzAxMjM"; // 43 chars, no padding
          state.hex = "47656e";
          generated.push(state.b64Url as string);
        }
        if (args.type === "docker:index/image:Image") {
          // What a push answers: the repository by digest.
          state.repoDigest = `${String(args.inputs.imageName).replace(/:[^:/]+$/, "")}@sha256:${"0".repeat(64)}`;
        }
        return { id: `${args.name}-id`, state };
      },
      call: (args) => args.inputs,
    },
    "realtime-pipeline",
    stack,
    false,
  );
  pulumi.runtime.setAllConfig(
    Object.fromEntries(Object.entries(config).map(([k, v]) => [`realtime-pipeline:${k}`, v])),
  );
  const run: Run = {
    resources,
    generated,
    identities: [],
    parents: new Map(),
    dependsOn: new Map(),
    providers: new Map(),
    options: new Map(),
  };
  // Pulumi records a stack trace for every promise it makes; under tsx's source maps that is most
  // of a run's time. Traces are of no use here, so skip them while the program runs.
  const traceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    // Inside a stack, as `pulumi up` runs it, so a stack transformation sees every resource's parent.
    await pulumi.runtime.runInPulumiStack(async () => {
      pulumi.runtime.registerStackTransformation((t) => {
        const parent = t.opts.parent as { __pulumiType?: string } | undefined;
        run.parents.set(t.name, parent?.__pulumiType ?? "");
        const deps = (t.opts.dependsOn ?? []) as { __name?: string }[];
        run.dependsOn.set(
          t.name,
          (Array.isArray(deps) ? deps : [deps]).map((d) => d.__name ?? "?"),
        );
        const provider = t.opts.provider as { __name?: string } | undefined;
        if (provider) run.providers.set(t.name, provider.__name ?? "?");
        const o = t.opts as pulumi.CustomResourceOptions;
        run.options.set(t.name, {
          protect: o.protect,
          customTimeouts: o.customTimeouts,
          retainOnDelete: o.retainOnDelete,
        });
        run.identities.push(identityOf(t));
        return undefined;
      });
      try {
        run.outputs = runStack();
      } catch (e) {
        run.error = e as Error;
      }
      return {};
    });
    await settle(resources);
  } finally {
    Error.stackTraceLimit = traceLimit;
  }
  return run;
}

/** The dev stack, as Pulumi.dev.yaml sets it. */
export function devRun(): Promise<Run> {
  return runProgram(DEV_CONFIG);
}

export const containers = (r: Run) => r.resources.filter((x) => x.type === "docker:index/container:Container");

/** A container's env as a map (secrets unwrapped). */
export function envOf(c: Declared): Record<string, string> {
  const list = unwrap(c.inputs.envs) as string[] | undefined;
  return Object.fromEntries((list ?? []).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

export function hostnameOf(c: Declared): string {
  return c.inputs.hostname as string;
}

/** Resolves an Output (or a plain value) to its value and whether it is secret. */
export async function resolve(v: unknown): Promise<{ value: unknown; secret: boolean }> {
  if (pulumi.Output.isInstance(v)) {
    const o = v as pulumi.Output<unknown>;
    const value = await new Promise((res) => o.apply((x) => res(x)));
    return { value, secret: await pulumi.isSecret(o) };
  }
  return { value: v, secret: false };
}
