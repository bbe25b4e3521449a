/**
 * promtool for the unit ring: $PROMTOOL, else where `scripts/services up promtool` puts it, else
 * PATH. Missing, it fails the tests with how to install it: never a silent skip.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

const INSTALL_HINT =
  "promtool not found: run `scripts/services up promtool` (as root; `npm run test:unit` does it first), " +
  "or set PROMTOOL";

export function promtoolPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PROMTOOL) {
    if (!existsSync(env.PROMTOOL)) throw new Error(`PROMTOOL=${env.PROMTOOL} does not exist. ${INSTALL_HINT}`);
    return env.PROMTOOL;
  }
  const home = env.PIPELINE_HOME ?? join(homedir(), ".cache/realtime-pipeline");
  const installed = join(home, "tools/promtool/bin/promtool");
  if (existsSync(installed)) return installed;
  const onPath = spawnSync("sh", ["-c", "command -v promtool"], { encoding: "utf8" });
  if (onPath.status === 0 && onPath.stdout.trim()) return onPath.stdout.trim();
  throw new Error(INSTALL_HINT);
}

export interface PromtoolResult {
  ok: boolean;
  output: string;
}

export function promtool(args: string[], cwd: string): PromtoolResult {
  const r = spawnSync(promtoolPath(), args, { cwd, encoding: "utf8", timeout: 30_000 });
  if (r.error) throw r.error;
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}
