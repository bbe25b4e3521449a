/**
 * Every resource a stack declares, as the engine tells one from another: its URN (type, name,
 * parent chain), aliases, provider, options, start order and inputs. A refactor that changes any
 * of them makes `pulumi up` update or replace live resources, so the fixtures must not move.
 * Values that differ by checkout are normalized (the repository path); secrets are marked.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "../../../infra/spec";
import { isSecretWrapper, resolve, Run } from "./harness";

/** The stacks users run, and what each user sets beside its file (required, machine-specific). */
export const SNAPSHOT_STACKS: Record<string, Record<string, string>> = {
  dev: {},
  ci: {},
  staging: { registry: "ghcr.io/acme", kubeContext: "staging-cluster" },
  prod: { registry: "ghcr.io/acme", kubeContext: "prod-cluster" },
  "ci-k8s": {
    registry: "127.0.0.1:5000",
    kubeContext: "ci",
    kubeconfig: "/tmp/ci-k8s/kubeconfig",
    nodeSelector: JSON.stringify({ "kubernetes.io/hostname": "ci-node" }),
  },
};

/**
 * The `realtime-pipeline:*` keys of Pulumi.<stack>.yaml as `pulumi config` hands them to the
 * program: scalars as text, a nested map as JSON text. Our stack files use only these two forms.
 */
export function stackFileConfig(stack: string): Record<string, string> {
  const lines = fs.readFileSync(path.join(REPO_ROOT, `Pulumi.${stack}.yaml`), "utf8").split("\n");
  const out: Record<string, string> = {};
  let map: { key: string; entries: Record<string, string> } | undefined;
  const scalar = (v: string) => v.trim().replace(/^(["'])(.*)\1$/, "$2");
  for (const line of lines) {
    const top = /^ {2}realtime-pipeline:([A-Za-z]+):\s*(.*)$/.exec(line);
    const sub = /^ {4}([A-Za-z0-9.-]+):\s*(.+)$/.exec(line);
    if (top) {
      map = top[2] === "" ? { key: top[1], entries: {} } : undefined;
      if (!map) out[top[1]] = scalar(top[2]);
    } else if (sub && map) {
      map.entries[sub[1]] = scalar(sub[2]);
      out[map.key] = JSON.stringify(map.entries);
    }
  }
  return out;
}

/** A dynamic provider's code, serialized by the SDK: its digest, not 10 kB of text per resource. */
const serialized = (code: unknown) =>
  `<serialized provider sha256:${crypto.createHash("sha256").update(String(code)).digest("hex").slice(0, 16)}>`;

/** Inputs with the checkout's path and Pulumi's secret markers made readable and stable. */
function normalize(v: unknown): unknown {
  if (isSecretWrapper(v)) return { "<secret>": normalize(v.value) };
  if (typeof v === "string") return v.split(REPO_ROOT).join("<repo>");
  if (Array.isArray(v)) return v.map(normalize);
  if (typeof v === "object" && v !== null) {
    const entries = Object.entries(v).sort(([a], [b]) => a.localeCompare(b));
    return Object.fromEntries(entries.map(([k, x]) => [k, k === "__provider" ? serialized(x) : normalize(x)]));
  }
  return v;
}

/** Resolves every Output inside the stack outputs (secrets marked). */
async function resolveDeep(v: unknown): Promise<unknown> {
  const r = await resolve(v);
  if (r.secret) return { "<secret>": await resolveDeep(r.value) };
  const x = r.value;
  if (Array.isArray(x)) return Promise.all(x.map(resolveDeep));
  if (typeof x === "object" && x !== null) {
    const entries = await Promise.all(Object.entries(x).map(async ([k, y]) => [k, await resolveDeep(y)] as const));
    return Object.fromEntries(entries.filter(([, y]) => y !== undefined));
  }
  return x;
}

/** The snapshot of a run, as JSON text: resources sorted by URN, then the stack outputs. */
export async function snapshotOf(run: Run): Promise<string> {
  if (run.error) throw run.error;
  const inputs = new Map<string, Record<string, unknown>>();
  for (const r of run.resources) {
    const key = `${r.type}::${r.name}`;
    if (inputs.has(key)) throw new Error(`${key} is declared twice: the snapshot cannot tell them apart`);
    inputs.set(key, r.inputs);
  }
  const resources = run.identities
    .map((i) => ({ ...i, inputs: inputs.get(`${i.type}::${i.name}`) }))
    .sort((a, b) => a.urn.localeCompare(b.urn))
    .map(({ type: _t, name: _n, ...r }) => normalize(r));
  const outputs = normalize(await resolveDeep(run.outputs));
  return `${JSON.stringify({ resources, outputs }, null, 1)}\n`;
}

export const fixturePath = (stack: string) => path.join(__dirname, "__snapshots__", `resources-${stack}.json`);
