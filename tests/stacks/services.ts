/**
 * Mocha global fixture of the engine ring: starts the tools it needs through scripts/services
 * (the Pulumi CLI, the Kubernetes control plane, the image registry, the Docker engine), and at
 * the end stops the ones this run started: a service someone else had up stays up.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { measured } from "./harness";

const REPO = path.resolve(__dirname, "../..");
const services = path.join(REPO, "scripts/services");

/** The Docker engine is a service of its own once scripts/services.d/docker.sh exists; DOCKER_HOST otherwise. */
function wanted(): string[] {
  const names = ["pulumi", "k8s", "image-registry"];
  if (fs.existsSync(path.join(REPO, "scripts/services.d/docker.sh"))) names.push("docker");
  return names;
}

function running(name: string): boolean {
  const out = execFileSync(services, ["status", name], { encoding: "utf8" });
  return /\bhealthy\b/.test(out);
}

let started: string[] = [];

export function mochaGlobalSetup(): void {
  const names = wanted();
  started = names.filter((n) => !running(n));
  execFileSync(services, ["up", ...names], { stdio: "inherit" });
}

export function mochaGlobalTeardown(): void {
  if (measured.length > 0) console.log(`\n  engine operations:\n${measured.map((m) => `    ${m}`).join("\n")}\n`);
  if (started.length === 0 || process.env.KEEP_SERVICES === "1") return;
  execFileSync(services, ["down", ...started], { stdio: "inherit" });
}
