/**
 * The engine ring's harness: the real Pulumi CLI (scripts/services up pulumi) driven through the
 * Automation API, against the real local targets (a Kubernetes control plane, a Docker engine, an
 * image registry), in a throwaway project folder:
 *
 *   <tmp>/project/  Pulumi.yaml and Pulumi.<stack>.yaml copied from the repository (the test's
 *                   settings go into these copies, never into the repository's files), and links
 *                   to infra/, runtime/, images/, node_modules/ ... (the program runs from the
 *                   repository itself: infra/spec.ts resolves paths from its real location)
 *   <tmp>/state/    the file backend (`pulumi login file://...`), passphrase secrets
 *
 * Each operation records what the engine did, step by step, from its event stream: counts per
 * operation, failed steps, warnings and errors, and how long it took.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import * as http from "node:http";
import { EngineEvent, LocalWorkspace, OpType, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { loadServicesEnv } from "../support/services";

export const REPO = path.resolve(__dirname, "../..");
/** What the project folder links to: everything the program and its image builds read. */
const LINKED = [
  "infra",
  "runtime",
  "images",
  "requirements",
  "node_modules",
  "package.json",
  "package-lock.json",
  "tsconfig.json",
  ".dockerignore",
];
/** A test passphrase for a throwaway backend: it protects nothing real. */
const PASSPHRASE = "realtime-pipeline-test-stacks";

export interface Tools {
  /** Folder with bin/pulumi and the providers (PulumiCommand's root). */
  pulumiRoot: string;
  pulumiHome: string;
  kubeconfig?: string;
  kubectl?: string;
  registry?: string;
  dockerHost?: string;
}

/** Where scripts/services put the tools (services.env), with the Docker engine from the env when not there. */
export function tools(): Tools {
  const env = loadServicesEnv(["PULUMI_BIN_DIR", "PULUMI_HOME"]);
  return {
    pulumiRoot: path.dirname(env.PULUMI_BIN_DIR),
    pulumiHome: env.PULUMI_HOME,
    kubeconfig: env.K8S_KUBECONFIG,
    kubectl: env.K8S_KUBECTL,
    registry: env.IMAGE_REGISTRY,
    dockerHost: env.DOCKER_HOST ?? process.env.DOCKER_HOST,
  };
}

export interface Step {
  type: string;
  name: string;
  op: OpType;
  /** The top-level properties whose change makes this step (the engine's `diffs`); empty for same/create. */
  diffs: string[];
}

/** A step as one line: `update docker:index/container:Container realtime-pipeline-ci-api [envs]`. */
export function describeStep(s: Step): string {
  return `${s.op} ${s.type} ${s.name}${s.diffs.length ? ` [${s.diffs.join(", ")}]` : ""}`;
}

export interface Operation {
  kind: "preview" | "up" | "destroy";
  seconds: number;
  /** Steps by operation (create, same, update, replace, delete, ...), from the engine's summary. */
  changes: Partial<Record<OpType, number>>;
  /** Every step the engine reported: resource type, name, operation, and the properties it changes. */
  steps: Step[];
  failed: string[];
  warnings: string[];
  errors: string[];
  stdout: string;
}

function record(kind: Operation["kind"]) {
  const op: Operation = { kind, seconds: 0, changes: {}, steps: [], failed: [], warnings: [], errors: [], stdout: "" };
  const onEvent = (e: EngineEvent) => {
    // A preview reports each planned step once before it; up and destroy once it is done.
    const step = kind === "preview" ? e.resourcePreEvent?.metadata : e.resOutputsEvent?.metadata;
    if (step)
      op.steps.push({
        type: step.type,
        name: step.urn.split("::").pop() ?? step.urn,
        op: step.op,
        diffs: step.diffs ?? [],
      });
    if (e.resOpFailedEvent) op.failed.push(e.resOpFailedEvent.metadata.urn);
    const d = e.diagnosticEvent;
    if (d && d.severity === "warning") op.warnings.push(`${d.urn ?? ""} ${d.message}`.trim());
    if (d && d.severity === "error") op.errors.push(`${d.urn ?? ""} ${d.message}`.trim());
    if (e.summaryEvent) op.changes = e.summaryEvent.resourceChanges;
  };
  return { op, onEvent };
}

export class Project {
  private constructor(
    readonly root: string,
    readonly dir: string,
    readonly backend: string,
    readonly tools: Tools,
    private readonly cmd: PulumiCommand,
  ) {}

  /** A fresh project folder and backend under the system temp dir. */
  static async create(t: Tools = tools()): Promise<Project> {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "rp-stacks-"));
    const dir = path.join(root, "project");
    const state = path.join(root, "state");
    fs.mkdirSync(dir);
    fs.mkdirSync(state);
    for (const f of LINKED)
      if (fs.existsSync(path.join(REPO, f))) fs.symlinkSync(path.join(REPO, f), path.join(dir, f));
    fs.copyFileSync(path.join(REPO, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    const cmd = await PulumiCommand.get({ root: t.pulumiRoot, skipVersionCheck: true });
    return new Project(root, dir, `file://${state}`, t, cmd);
  }

  /** The env every engine run gets: the tools, the backend, no plugin download, no ambient kube context. */
  env(): Record<string, string> {
    const e: Record<string, string> = {
      PULUMI_HOME: this.tools.pulumiHome,
      PULUMI_BACKEND_URL: this.backend,
      PULUMI_CONFIG_PASSPHRASE: PASSPHRASE,
      PULUMI_SKIP_UPDATE_CHECK: "1",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      // The installed plugins at the pinned versions, not the unversioned copies install.sh puts on PATH.
      PULUMI_IGNORE_AMBIENT_PLUGINS: "true",
      PATH: `${path.join(this.tools.pulumiRoot, "bin")}:${process.env.PATH}`,
      // The stacks name their cluster in their own config; an ambient KUBECONFIG must not matter.
      KUBECONFIG: path.join(this.root, "no-ambient-kubeconfig"),
    };
    if (this.tools.dockerHost) e.DOCKER_HOST = this.tools.dockerHost;
    return e;
  }

  /**
   * Stack `name` of this project (or of the program in `workDir`), its config file a copy of
   * the repository's Pulumi.<name>.yaml with `config` set on top (realtime-pipeline: keys unless
   * a key has its own namespace).
   */
  async stack(name: string, config: Record<string, string>, workDir = this.dir): Promise<Stack> {
    const repoFile = path.join(REPO, `Pulumi.${name}.yaml`);
    if (workDir === this.dir && fs.existsSync(repoFile))
      fs.copyFileSync(repoFile, path.join(workDir, `Pulumi.${name}.yaml`));
    const ws = await LocalWorkspace.create({
      workDir,
      pulumiCommand: this.cmd,
      pulumiHome: this.tools.pulumiHome,
      envVars: this.env(),
      secretsProvider: "passphrase",
    });
    const stack = await Stack.createOrSelect(name, ws);
    for (const [k, value] of Object.entries(config)) {
      await stack.setConfig(k.includes(":") ? k : `realtime-pipeline:${k}`, { value, secret: false });
    }
    return stack;
  }

  async preview(stack: Stack, opts: { expectNoChanges?: boolean } = {}): Promise<Operation> {
    const { op, onEvent } = record("preview");
    const t0 = Date.now();
    const r = await stack.preview({ onEvent, expectNoChanges: opts.expectNoChanges, diff: opts.expectNoChanges });
    op.seconds = (Date.now() - t0) / 1000;
    op.changes = r.changeSummary;
    op.stdout = r.stdout;
    return op;
  }

  async up(stack: Stack): Promise<Operation> {
    const { op, onEvent } = record("up");
    const t0 = Date.now();
    const r = await stack.up({ onEvent });
    op.seconds = (Date.now() - t0) / 1000;
    op.changes = r.summary.resourceChanges ?? op.changes;
    op.stdout = r.stdout;
    return op;
  }

  async destroy(stack: Stack): Promise<Operation> {
    const { op, onEvent } = record("destroy");
    const t0 = Date.now();
    const r = await stack.destroy({ onEvent });
    op.seconds = (Date.now() - t0) / 1000;
    op.changes = r.summary.resourceChanges ?? op.changes;
    op.stdout = r.stdout;
    return op;
  }

  remove(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** kubectl against the test cluster, JSON out. */
export function kubectl<T = unknown>(t: Tools, ...args: string[]): T {
  if (!t.kubectl || !t.kubeconfig)
    throw new Error("no Kubernetes control plane in services.env: scripts/services up k8s");
  const out = execFileSync(t.kubectl, ["--kubeconfig", t.kubeconfig, ...args, "-o", "json"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  return JSON.parse(out) as T;
}

/** Whether kubectl finds the object (false on NotFound, throws on anything else). */
export function exists(t: Tools, ...args: string[]): boolean {
  try {
    kubectl(t, "get", ...args);
    return true;
  } catch (e) {
    if (/NotFound|not found/.test(String((e as { stderr?: string }).stderr ?? e))) return false;
    throw e;
  }
}

/** Every measured operation of this run, printed again at the end (tests/stacks/services.ts). */
export const measured: string[] = [];

/** One line per measured operation, printed under the test that ran it. */
export function report(stack: string, op: Operation): string {
  const counts = Object.entries(op.changes)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  const line = `${stack} ${op.kind}: ${op.seconds.toFixed(1)} s; ${counts}`;
  console.log(`      ${line}`);
  measured.push(line);
  return line;
}

/**
 * The CA certificates this host trusts beyond the distribution's bundle (a TLS-intercepting
 * proxy's), as one PEM file for the opt-in `buildCaCertificates` setting, so the image builds'
 * downloads pass it. PIPELINE_BUILD_CA names a file instead; none: undefined (the setting stays unset).
 */
export function buildCa(dir: string): string | undefined {
  if (process.env.PIPELINE_BUILD_CA) return process.env.PIPELINE_BUILD_CA;
  const local = "/usr/local/share/ca-certificates";
  const certs = fs.existsSync(local) ? fs.readdirSync(local).filter((f) => f.endsWith(".crt")) : [];
  if (certs.length === 0) return undefined;
  const file = path.join(dir, "build-ca.pem");
  fs.writeFileSync(file, certs.map((f) => fs.readFileSync(path.join(local, f), "utf8")).join("\n"));
  return file;
}

// ---- the Docker Engine API, as `docker` would talk to it ------------------------------------

/** A call to the engine at `dockerHost` (unix://…): JSON in the answer, an error on HTTP ≥ 400. */
export function dockerApi(dockerHost: string) {
  const socketPath = dockerHost.replace(/^unix:\/\//, "");
  return <T>(method: string, p: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const req = http.request({ socketPath, method, path: `/v1.41${p}` }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => {
          if ((res.statusCode ?? 500) >= 400) reject(new Error(`${method} ${p}: HTTP ${res.statusCode} ${body}`));
          else resolve((body ? JSON.parse(body) : undefined) as T);
        });
      });
      req.on("error", reject);
      req.end();
    });
}

/** A filters= query value of the Engine API. */
export const dockerFilter = (f: Record<string, string[]>) => encodeURIComponent(JSON.stringify(f));

interface ListedContainer {
  Id: string;
  Names: string[];
  Image: string;
  Command: string;
  Created: number;
  State: string;
  Labels: Record<string, string> | null;
}

/**
 * The classic builder's intermediate containers left by image builds since `sinceMs`: the docker
 * provider (4.11.2) builds with rm=0, so every build step's container stays behind, stopped
 * (seen: 27 after a few dev ups). They run an image by ID (sha256:…), a `/bin/sh -c` step, carry
 * no name of ours and no realtime-pipeline.kind label (a stack's job containers are stopped too,
 * and must stay). Returns the ids.
 */
export async function buildLeftovers(dockerHost: string, sinceMs: number): Promise<string[]> {
  const api = dockerApi(dockerHost);
  const all = await api<ListedContainer[]>("GET", "/containers/json?all=1");
  return all
    .filter((c) => c.State !== "running" && c.Created * 1000 >= sinceMs - 1000)
    .filter((c) => c.Image.startsWith("sha256:") && c.Command.includes("/bin/sh -c"))
    .filter(
      (c) => !(c.Labels ?? {})["realtime-pipeline.kind"] && !c.Names.some((n) => n.startsWith("/realtime-pipeline-")),
    )
    .map((c) => c.Id);
}

/** Removes the build leftovers since `sinceMs` (see buildLeftovers); returns how many. */
export async function removeBuildLeftovers(dockerHost: string, sinceMs: number): Promise<number> {
  const api = dockerApi(dockerHost);
  const ids = await buildLeftovers(dockerHost, sinceMs);
  for (const id of ids) await api("DELETE", `/containers/${id}`).catch(() => undefined);
  return ids.length;
}
