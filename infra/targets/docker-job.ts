/**
 * A job's run on the Docker target: starts the job's container (created, not started, by the
 * target) through the Docker Engine API, waits for it to exit, and fails when it exits non-zero,
 * with the end of its log. The docker provider's own `attach` waits but records any exit code
 * as success, so a failed kafka-topics or airflow-init counted as done and was never re-run.
 *
 * A failed run is not recorded (its create failed), so the next `up` runs the job again; a new
 * container (new image, env or arguments) is a new run. Dependents wait on this resource.
 *
 * The provider runs in Pulumi's dynamic-provider process: everything it uses is required inside
 * the functions (they are serialized). The engine is the docker provider's: its stack config
 * (docker:host …) or else DOCKER_HOST and its companions, at an API version both sides speak.
 */
import * as pulumi from "@pulumi/pulumi";

export interface JobRunInputs {
  /** Container name (for messages). */
  name: pulumi.Input<string>;
  /** The container to run; a new id is a new run. */
  containerId: pulumi.Input<string>;
}

interface JobRunState {
  name: string;
  containerId: string;
  exitCode: number;
  /** The docker provider's own settings as the DOCKER_* variables they stand for (see dockerSettings). */
  engine?: Record<string, string>;
}

/**
 * The docker provider prefers its stack config (`pulumi config set docker:host ssh://…`) to DOCKER_*;
 * the dynamic provider's process sees only the environment, so the run carries them, or it would look
 * for the container on another engine. Secret when they hold TLS material.
 */
function dockerSettings(): pulumi.Output<Record<string, string>> | undefined {
  const c = new pulumi.Config("docker");
  const plain: Record<string, string> = {};
  const host = c.get("host");
  const certPath = c.get("certPath");
  const sshOpts = c.getObject<string[]>("sshOpts");
  if (host) plain.DOCKER_HOST = host;
  if (certPath) plain.DOCKER_CERT_PATH = certPath;
  if (sshOpts?.length) plain.DOCKER_SSH_OPTS = sshOpts.join(" ");
  const material = [
    ["DOCKER_CA_MATERIAL", "caMaterial"],
    ["DOCKER_CERT_MATERIAL", "certMaterial"],
    ["DOCKER_KEY_MATERIAL", "keyMaterial"],
  ].filter(([, key]) => c.getSecret(key) !== undefined);
  if (material.length === 0) return Object.keys(plain).length ? pulumi.output(plain) : undefined;
  const values = pulumi.all(material.map(([, key]) => c.requireSecret(key)));
  return values.apply((v) => ({ ...plain, ...Object.fromEntries(material.map(([e], i) => [e, v[i]])) }));
}

/**
 * Runs one container to completion; throws when it exits non-zero. Self-contained: Pulumi serializes
 * it into the dynamic-provider process, so it requires what it uses inside and calls nothing else here.
 * `env` is where DOCKER_HOST and the TLS and ssh settings are read, as the docker provider reads them.
 *
 * Hand-written rather than dockerode: it makes four calls, and it must reach the engine the way the
 * docker provider (which created the container) does: ssh:// through the ssh binary (so ~/.ssh/config,
 * the agent and DOCKER_SSH_OPTS apply; docker-modem uses the ssh2 library), TLS from DOCKER_CERT_PATH or
 * DOCKER_*_MATERIAL, and a negotiated API version (docker-modem sends unversioned paths).
 */
export async function runContainer(name: string, id: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const http = require("node:http") as typeof import("node:http");
  const https = require("node:https") as typeof import("node:https");
  const fs = require("node:fs") as typeof import("node:fs");
  const path = require("node:path") as typeof import("node:path");
  const os = require("node:os") as typeof import("node:os");
  const childProcess = require("node:child_process") as typeof import("node:child_process");
  const stream = require("node:stream") as typeof import("node:stream");
  /* eslint-enable @typescript-eslint/no-require-imports */

  // OURS: the newest Engine API these calls were written against (Docker 27); a newer engine is spoken
  // to at OURS. FLOOR: Docker 19.03; older engines are out of support and untested here.
  const OURS = "1.47";
  const FLOOR = "1.40";
  const cmp = (a: string, b: string): number => {
    const [x, y] = [a, b].map((v) => v.split(".").map(Number));
    return x[0] - y[0] || (x[1] ?? 0) - (y[1] ?? 0);
  };

  const host = env.DOCKER_HOST || "unix:///var/run/docker.sock";
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(host)?.[1]?.toLowerCase();
  type Target = { options: import("node:http").RequestOptions; tls: boolean; form: string; hint: string };
  const sshStderr: string[] = [];

  const tlsOptions = (): { options: import("node:https").RequestOptions; form: string } => {
    // The docker provider turns TLS on with DOCKER_CERT_PATH or DOCKER_CERT_MATERIAL; the CLI with
    // DOCKER_TLS_VERIFY (verify the engine) or DOCKER_TLS (encrypt only), certificates in ~/.docker.
    const verify = Boolean(env.DOCKER_TLS_VERIFY);
    if (env.DOCKER_CERT_MATERIAL || env.DOCKER_KEY_MATERIAL) {
      const ca = env.DOCKER_CA_MATERIAL || undefined;
      const options = { ca, cert: env.DOCKER_CERT_MATERIAL, key: env.DOCKER_KEY_MATERIAL, rejectUnauthorized: !!ca };
      return { options, form: "tcp with TLS, certificates from DOCKER_*_MATERIAL" };
    }
    const dir = env.DOCKER_CERT_PATH || path.join(os.homedir(), ".docker");
    const read = (f: string) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f)) : undefined);
    const [ca, cert, key] = ["ca.pem", "cert.pem", "key.pem"].map(read);
    if (verify && !ca) throw new Error(`job ${name}: DOCKER_TLS_VERIFY is set but ${dir} has no ca.pem`);
    const insecure = !ca && Boolean(env.DOCKER_TLS) && !verify;
    const options = { ca, cert, key, rejectUnauthorized: !insecure };
    return { options, form: `tcp with TLS, certificates from ${dir}` };
  };

  const sshConnection = (args: string[]) => () => {
    // As `docker -H ssh://…` does: one ssh session per connection, the remote CLI bridging it to its engine.
    const child = childProcess.spawn("ssh", args, { env, stdio: ["pipe", "pipe", "pipe"] });
    child.stderr.on("data", (d: Buffer) => sshStderr.push(d.toString()));
    const socket = new stream.Duplex({
      read: () => void child.stdout.resume(),
      write: (chunk: Buffer, _enc, done) => void child.stdin.write(chunk, done),
      final: (done) => void child.stdin.end(done),
      destroy: (err, done) => {
        child.kill();
        done(err);
      },
    });
    child.stdout.on("data", (d: Buffer) => {
      if (!socket.push(d)) child.stdout.pause();
    });
    child.stdout.on("end", () => socket.push(null));
    child.stdin.on("error", (e) => socket.destroy(e));
    child.on("error", (e) => socket.destroy(e));
    child.on("exit", (code) => {
      if (code && !socket.destroyed) socket.destroy(new Error(`ssh exited with code ${code}`));
    });
    // The HTTP client treats its connection as a net.Socket; these have no meaning on a pipe.
    return Object.assign(socket, { setTimeout: () => socket, setNoDelay: () => socket, setKeepAlive: () => socket });
  };

  const target = ((): Target => {
    if (scheme === "unix") {
      const socketPath = host.slice("unix://".length);
      return {
        options: { socketPath },
        tls: false,
        form: `${env.DOCKER_HOST ? "" : "DOCKER_HOST unset, the default: "}unix socket ${socketPath}`,
        hint:
          "that the engine runs (`docker info`), the socket exists and this user may open it (the docker group; " +
          "rootless Docker listens on unix://$XDG_RUNTIME_DIR/docker.sock)",
      };
    }
    if (scheme === "npipe") {
      const socketPath = host.slice("npipe://".length).replace(/\//g, "\\");
      const form = `named pipe ${socketPath}`;
      return { options: { socketPath }, tls: false, form, hint: "that Docker Desktop runs" };
    }
    if (scheme === "tcp" || scheme === "http" || scheme === "https") {
      const u = new URL(host.replace(/^[a-z]+:/i, "http:"));
      const tlsOn =
        scheme === "https" ||
        Boolean(
          env.DOCKER_TLS_VERIFY ||
          env.DOCKER_TLS ||
          env.DOCKER_CERT_PATH ||
          env.DOCKER_CERT_MATERIAL ||
          env.DOCKER_KEY_MATERIAL,
        );
      const base = { host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || (tlsOn ? 2376 : 2375)) };
      if (!tlsOn) {
        return {
          options: base,
          tls: false,
          form: "tcp, plain HTTP (no DOCKER_TLS_VERIFY, DOCKER_CERT_PATH or DOCKER_CERT_MATERIAL set)",
          hint:
            "that the engine listens on that address and port (dockerd -H tcp://…) and nothing blocks it; " +
            "an engine serving TLS (usually on 2376) needs DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH",
        };
      }
      const t = tlsOptions();
      return {
        options: { ...base, ...t.options },
        tls: true,
        form: t.form,
        hint:
          "that the engine listens there with TLS, that the certificates are the ones it trusts (ca.pem, cert.pem, " +
          "key.pem) and that its certificate names the host in DOCKER_HOST",
      };
    }
    if (scheme === "ssh") {
      const u = new URL(host);
      if ((u.pathname && u.pathname !== "/") || u.search) {
        throw new Error(`job ${name}: DOCKER_HOST=${host}: ssh:// takes no path or query (ssh://[user@]host[:port])`);
      }
      const args = [
        ...(env.DOCKER_SSH_OPTS ? env.DOCKER_SSH_OPTS.split(/\s+/).filter(Boolean) : []),
        "-o",
        "ConnectTimeout=30",
        "-T",
        ...(u.username ? ["-l", decodeURIComponent(u.username)] : []),
        ...(u.port ? ["-p", u.port] : []),
        "--",
        u.hostname.replace(/^\[|\]$/g, ""),
        "docker",
        "system",
        "dial-stdio",
      ];
      return {
        options: { createConnection: sshConnection(args) as never },
        tls: false,
        form: `ssh: \`ssh ${args.join(" ")}\``,
        hint:
          "that this command works without a prompt (the key in ssh-agent or ~/.ssh/config, the host in " +
          "known_hosts) and that docker is on the remote user's PATH",
      };
    }
    throw new Error(
      `job ${name}: DOCKER_HOST=${host} is not a form the docker provider accepts: ` +
        "unix:///path, tcp://host:port (TLS with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH), ssh://[user@]host[:port]",
    );
  })();

  type Answer = { status: number; type: string; body: Buffer };
  const call = (method: string, p: string, timeoutMs = 0): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const options = { ...target.options, method, path: p, headers: { "content-type": "application/json" } };
      let timer: NodeJS.Timeout | undefined;
      const req = (target.tls ? https : http).request(options, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          clearTimeout(timer);
          const type = String(res.headers["content-type"] ?? "");
          resolve({ status: res.statusCode ?? 0, type, body: Buffer.concat(chunks) });
        });
        res.on("error", reject);
      });
      if (timeoutMs) timer = setTimeout(() => req.destroy(new Error(`no answer in ${timeoutMs / 1000} s`)), timeoutMs);
      req.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      req.end();
    });
  const text = (a: Answer) => a.body.toString().trim().slice(0, 500);
  const where = `the Docker engine at ${host} (${target.form})`;

  // Unversioned, so that any engine answers it; the version to speak follows from its answer.
  let engine: { ApiVersion?: string; MinAPIVersion?: string; Version?: string };
  try {
    const answer = await call("GET", "/version", 60_000);
    if (answer.status !== 200) throw new Error(`GET /version answered HTTP ${answer.status} ${text(answer)}`);
    engine = JSON.parse(answer.body.toString()) as typeof engine;
  } catch (e) {
    const ssh = sshStderr.join("").trim().split("\n").slice(-5).join("\n");
    throw new Error(
      `job ${name}: cannot reach ${where}: ${(e as Error).message}. Check ${target.hint}.` +
        (ssh ? `\nssh said:\n${ssh}` : ""),
    );
  }
  if (!engine.ApiVersion || !/^\d+\.\d+$/.test(engine.ApiVersion)) {
    throw new Error(`job ${name}: ${where} answered /version without an API version: is it a Docker engine?`);
  }
  const version = cmp(engine.ApiVersion, OURS) < 0 ? engine.ApiVersion : OURS;
  if (cmp(version, FLOOR) < 0) {
    throw new Error(
      `job ${name}: ${where} is Docker ${engine.Version ?? "?"} with Engine API ${engine.ApiVersion}; ` +
        `this job runner needs API ${FLOOR} (Docker 19.03) or newer: upgrade the engine.`,
    );
  }
  if (engine.MinAPIVersion && cmp(version, engine.MinAPIVersion) < 0) {
    throw new Error(
      `job ${name}: ${where} (Docker ${engine.Version ?? "?"}) accepts Engine API ${engine.MinAPIVersion} ` +
        "and newer; " +
        `this job runner speaks up to ${OURS}: raise OURS in infra/targets/docker-job.ts once its calls are checked.`,
    );
  }
  const api = (method: string, p: string) => call(method, `/v${version}${p}`);
  const refused = (what: string, a: Answer) =>
    new Error(`job ${name}: ${what} at API ${version} on ${where}: HTTP ${a.status} ${text(a)}`);

  const started = await api("POST", `/containers/${id}/start`);
  // 204: started; 304: already running (a run interrupted by a cancelled `up`): wait for it.
  if (started.status !== 204 && started.status !== 304) {
    throw refused(`the engine refused to start container ${id}`, started);
  }
  const waited = await api("POST", `/containers/${id}/wait`);
  if (waited.status !== 200) throw refused(`waiting for container ${id} failed`, waited);
  const result = JSON.parse(waited.body.toString()) as { StatusCode: number; Error?: { Message?: string } | null };
  const code = Number(result.StatusCode);
  if (code !== 0) {
    const logs = await api("GET", `/containers/${id}/logs?stdout=1&stderr=1&tail=40`);
    let tail: string;
    if (logs.status !== 200) {
      tail = `(its log could not be read: HTTP ${logs.status} ${text(logs)})`;
    } else {
      // Without a TTY the stream is multiplexed: an 8-byte frame header (stream, 0, 0, 0, size) per chunk.
      const b = logs.body;
      const muxed = logs.type.includes("multiplexed") || (b.length >= 8 && b[0] <= 2 && b.readUIntBE(1, 3) === 0);
      const parts: string[] = [];
      for (let i = 0; muxed && i + 8 <= b.length;) {
        const size = b.readUInt32BE(i + 4);
        parts.push(b.subarray(i + 8, i + 8 + size).toString());
        i += 8 + size;
      }
      tail = (muxed ? parts.join("") : b.toString()).trimEnd();
    }
    const why = result.Error?.Message ? ` (${result.Error.Message})` : "";
    throw new Error(
      `job ${name} exited with code ${code}${why}; it runs again on the next \`pulumi up\`. ` +
        `Last lines of its log:\n${tail}`,
    );
  }
  return code;
}

const jobRunProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: JobRunState) {
    const exitCode = await runContainer(inputs.name, inputs.containerId, { ...process.env, ...inputs.engine });
    return { id: `${inputs.containerId}`, outs: { name: inputs.name, containerId: inputs.containerId, exitCode } };
  },
  async diff(_id: string, olds: JobRunState, news: JobRunState) {
    const replace = olds.containerId !== news.containerId;
    const changes = replace || olds.name !== news.name;
    return { changes, replaces: replace ? ["containerId"] : [], deleteBeforeReplace: false };
  },
  async update(_id: string, _olds: JobRunState, news: JobRunState) {
    return { outs: { ...news, exitCode: 0 } };
  },
};

/** One completed run of a job container. */
export class JobRun extends pulumi.dynamic.Resource {
  declare readonly exitCode: pulumi.Output<number>;

  constructor(name: string, args: JobRunInputs, opts?: pulumi.CustomResourceOptions) {
    const inputs = { ...args, engine: dockerSettings(), exitCode: undefined };
    super(jobRunProvider, name, inputs, opts, "realtime-pipeline", "JobRun");
  }
}
