/**
 * ServiceSpec.everyMachine (infra/spec.ts): one copy per machine, so checkService refuses what
 * would make the copies differ or count twice: a replicas setting, volumes of its own, state.
 */
import { strict as assert } from "node:assert";
import { ServiceSpec, checkService } from "../../../infra/spec";

const agent: ServiceSpec = {
  name: "agent",
  state: "stateless",
  everyMachine: true,
  image: "agent:1",
  env: {},
  ports: { metrics: { container: 9100 } },
  healthCheck: { command: ["true"] },
  memory: "64m",
};

describe("infra: a service on every machine", () => {
  it("is one copy: checkService takes it as it is, and replicas 1 too", () => {
    assert.equal(checkService(agent), 1);
    assert.equal(checkService({ ...agent, replicas: 1 }), 1);
  });

  it("refuses a replicas setting above 1, naming the field", () => {
    assert.throws(() => checkService({ ...agent, replicas: 3 }), /agent: an everyMachine service .*replicas \(3\)/);
  });

  it("refuses volumes of its own, naming them and the field", () => {
    const own = { ...agent, volumes: [{ volume: "agent-data", path: "/data" }] };
    assert.throws(
      () => checkService(own),
      /agent: an everyMachine service has no volumes of its own, but mounts agent-data \(volumes\)/,
    );
  });

  it("refuses to be stateful", () => {
    assert.throws(
      () => checkService({ ...agent, state: "stateful" }),
      /agent: an everyMachine service is stateless, not stateful/,
    );
  });
});
