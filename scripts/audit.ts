/**
 * `npm run audit -- [--seed S | --since T [--until T]] [--redrive]`: the worker's audit command
 * (runtime/audit) with the local services' environment when none is given (PG_HOST unset).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadServicesEnv, servicesEnvPath } from "../tests/support/services";

const env = { ...process.env };
if (!env.PG_HOST && existsSync(servicesEnvPath())) Object.assign(env, loadServicesEnv(), process.env);
const main = join(__dirname, "..", "runtime", "main.ts");
const argv = ["--require", "tsx/cjs", main, "audit", ...process.argv.slice(2)];
const r = spawnSync(process.execPath, argv, { stdio: "inherit", env });
process.exit(r.status ?? 1);
