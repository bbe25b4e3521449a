/**
 * `scripts/services down` leaves nothing of a service running, and `status` never says "stopped"
 * while a process of it lives. The real script runs with a temporary PIPELINE_HOME and a
 * services.d of one fake service (PIPELINE_SERVICES_D) whose leader forks children that outlive
 * it, as Airflow's webserver forks gunicorn and its scheduler the task runners.
 */
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const SCRIPT = resolve(__dirname, "../../scripts/services");

// The leader forks a child in its own process group (as Airflow's task runner does with setpgid),
// then one in its group, records both, and becomes a plain `sleep` that SIGTERM ends at once.
const FAKE = String.raw`
fake_install() { :; }
fake_start() {
  local d; d="$(svc_dir fake)"; rm -f "$d/children"
  spawn fake bash -c 'set -m; sleep 600 & echo $! >>"$1"; set +m; sleep 600 & echo $! >>"$1"; exec sleep 600' \
    fake "$d/children"
}
fake_healthy() { [ "$(wc -l <"$RUN/fake/children" 2>/dev/null)" = 2 ]; }
fake_timeout() { echo 20; }
fake_where() { printf 'nowhere'; }
`;

/** Alive and not a zombie (a zombie has exited; only its parent has not reaped it yet). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("scripts/services down and status (a fake service whose children outlive its leader)", function () {
  this.timeout(120_000);
  let home = "";
  let env: NodeJS.ProcessEnv = {};
  const started: number[] = [];

  const services = (...args: string[]): string =>
    execFileSync(SCRIPT, args, { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 90_000 });
  const state = (): string => services("status", "fake").trim().split(/\s+/)[1];
  const leader = (): number => Number(readFileSync(join(home, "run/fake/pid"), "utf8"));
  const children = (): number[] => readFileSync(join(home, "run/fake/children"), "utf8").trim().split("\n").map(Number);
  const up = (): number[] => {
    services("up", "fake");
    const all = [leader(), ...children()];
    started.push(...all);
    assert.ok(all.every(alive), `every process of fake is alive after up: ${all.join(" ")}`);
    assert.equal(state(), "healthy");
    return all;
  };

  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), "pipeline-home-"));
    const dir = join(home, "services.d");
    mkdirSync(dir);
    writeFileSync(join(dir, "fake.sh"), FAKE);
    env = { ...process.env, PIPELINE_HOME: home, PIPELINE_SERVICES_D: dir };
  });

  afterEach(() => {
    // Whatever the outcome, no sleep of this test outlives it.
    for (const pid of started.splice(0)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone already */
      }
    }
    rmSync(home, { recursive: true, force: true });
  });

  it("down stops the leader and every process it forked; status then says stopped", () => {
    const all = up();
    services("down", "fake");
    const left = all.filter(alive);
    assert.deepEqual(left, [], `processes of fake left after down: ${left.join(" ")}`);
    assert.equal(state(), "stopped");
  });

  it("status does not say stopped while children of a dead leader live, and down stops them", () => {
    const [lead, ...kids] = up();
    process.kill(lead, "SIGKILL");
    const deadline = Date.now() + 5_000;
    while (alive(lead) && Date.now() < deadline) execFileSync("sleep", ["0.1"]);
    assert.ok(kids.every(alive), "the children outlive their leader");
    assert.notEqual(state(), "stopped", "status says stopped while children of fake live");
    services("down", "fake");
    const left = kids.filter(alive);
    assert.deepEqual(left, [], `processes of fake left after down: ${left.join(" ")}`);
    assert.equal(state(), "stopped");
    assert.ok(!existsSync(join(home, "run/fake/pid")), "the pidfile is gone once nothing of fake lives");
  });

  it("up after a dead leader stops its leftover children before it starts the service again", () => {
    const [lead, ...kids] = up();
    process.kill(lead, "SIGKILL");
    const deadline = Date.now() + 5_000;
    while (alive(lead) && Date.now() < deadline) execFileSync("sleep", ["0.1"]);
    up();
    const left = kids.filter(alive);
    assert.deepEqual(left, [], `children of the first run left after the second up: ${left.join(" ")}`);
    services("down", "fake");
    assert.equal(state(), "stopped");
  });
});

describe("scripts/services order of the real services", () => {
  it("lists (and so starts) the Kubernetes control plane before the real node that joins it; down reverses it", () => {
    const home = mkdtempSync(join(tmpdir(), "pipeline-home-"));
    try {
      const out = execFileSync(SCRIPT, ["status"], { env: { ...process.env, PIPELINE_HOME: home }, encoding: "utf8" });
      const names = out
        .trim()
        .split("\n")
        .map((l) => l.split(/\s+/)[0]);
      assert.ok(
        names.indexOf("k8s") >= 0 && names.indexOf("k8s") < names.indexOf("k8s-node"),
        `order: ${names.join(" ")}`,
      );
      assert.ok(names.indexOf("docker") < names.indexOf("image-registry"), `order: ${names.join(" ")}`);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
