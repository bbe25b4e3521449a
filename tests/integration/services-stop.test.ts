/**
 * The real Airflow of scripts/services: when its webserver's leader dies, gunicorn outlives it and
 * keeps 127.0.0.1:8088 (what made a later `pulumi up -s dev` fail to bind). `status` must not say
 * "stopped" then, and `down airflow` must leave no process of Airflow and the port free. Starts
 * Airflow again afterwards for the tests that follow. Needs `scripts/services up` (postgres, airflow).
 */
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { loadServicesEnv, pipelineHome } from "../support/services";

const SCRIPT = resolve(__dirname, "../../scripts/services");
const PORT = 8088;

const services = (...args: string[]): string =>
  execFileSync(SCRIPT, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 600_000 });
const state = (): string => services("status", "airflow").trim().split(/\s+/)[1];

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Every process in the session of a pidfile (spawn makes each service part a session leader). */
function session(part: string): number[] {
  const sid = Number(readFileSync(join(pipelineHome(), "run", part, "pid"), "utf8"));
  return execFileSync("ps", ["-e", "-o", "pid=,sid="], { encoding: "utf8" })
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter(([, s]) => s === sid)
    .map(([p]) => p)
    .filter(alive);
}

const listening = (port: number): Promise<boolean> =>
  new Promise((res) => {
    const s = connect({ host: "127.0.0.1", port }, () => (s.destroy(), res(true)));
    s.on("error", () => res(false));
  });

async function until(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
}

describe("scripts/services down airflow: nothing left, status honest", function () {
  this.timeout(600_000);

  before(() => {
    loadServicesEnv(["AIRFLOW_WEB_URL"]);
    assert.equal(state(), "healthy", "Airflow is up (scripts/services up postgres airflow)");
  });

  // The following tests may need Airflow: start it again (this also proves up works after down).
  after(() => {
    services("up", "airflow");
  });

  it("a dead webserver leader's gunicorn: status says not stopped, down frees 8088", async () => {
    const web = session("airflow-web");
    const all = [...web, ...session("airflow")];
    const leader = Number(readFileSync(join(pipelineHome(), "run", "airflow-web", "pid"), "utf8"));
    assert.ok(web.length >= 3, `webserver, gunicorn master and a worker in one session: ${web.join(" ")}`);
    process.kill(leader, "SIGKILL");
    await until(() => !alive(leader), 10_000);
    assert.ok(await listening(PORT), "gunicorn outlives its leader and still holds 8088");
    assert.notEqual(state(), "stopped", "status says stopped while gunicorn holds 8088");

    services("down", "airflow");
    const left = all.filter(alive);
    assert.deepEqual(left, [], `processes of Airflow left after down: ${left.join(" ")}`);
    assert.equal(await listening(PORT), false, `127.0.0.1:${PORT} still bound after down`);
    assert.equal(state(), "stopped");
  });
});
