/**
 * Mocha global fixture of the engine ring: starts the tools it needs through scripts/services
 * (the Pulumi CLI, the Kubernetes control plane, the image registry, the Docker engine, Chromium
 * for the README's screenshots), and at
 * the end stops the ones this run started: a service someone else had up stays up.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { measured, removeBuildLeftovers, tools } from "./harness";

const REPO = path.resolve(__dirname, "../..");
const services = path.join(REPO, "scripts/services");

/**
 * The tools the ring needs; STACKS_TOOLS (comma-separated) narrows them for a run of one file
 * (`npm run test:dev-up` needs only pulumi and docker). The Docker engine is a service of its own
 * once scripts/services.d/docker.sh exists; DOCKER_HOST otherwise.
 */
function wanted(): string[] {
  const names = process.env.STACKS_TOOLS
    ? process.env.STACKS_TOOLS.split(",")
        .map((n) => n.trim())
        .filter(Boolean)
    : ["pulumi", "k8s", "k8s-node", "image-registry", "docker", "chromium"];
  if (!fs.existsSync(path.join(REPO, "scripts/services.d/docker.sh"))) return names.filter((n) => n !== "docker");
  return names;
}

function running(name: string): boolean {
  const out = execFileSync(services, ["status", name], { encoding: "utf8" });
  return /\bhealthy\b/.test(out);
}

let started: string[] = [];
const since = Date.now();

export function mochaGlobalSetup(): void {
  const names = wanted();
  started = names.filter((n) => !running(n));
  execFileSync(services, ["up", ...names], { stdio: "inherit" });
}

export async function mochaGlobalTeardown(): Promise<void> {
  if (measured.length > 0) console.log(`\n  engine operations:\n${measured.map((m) => `    ${m}`).join("\n")}\n`);
  // Every image build of the ring (dev, staging, prod) leaves its classic-builder step containers.
  const dockerHost = wanted().includes("docker") ? tools().dockerHost : undefined;
  if (dockerHost) {
    const n = await removeBuildLeftovers(dockerHost, since).catch((e: unknown) => `none (${String(e)})`);
    console.log(`  intermediate build containers removed: ${n}`);
  }
  if (started.length === 0 || process.env.KEEP_SERVICES === "1") return;
  execFileSync(services, ["down", ...started], { stdio: "inherit" });
}
