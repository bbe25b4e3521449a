/**
 * dev under the real engine against the local Docker engine: the docker provider checks every
 * container, volume, network and image build the program declares (mocks never call a provider's
 * Check: this is where relative build paths failed). Bringing dev up, with containers running and
 * data flowing, is tests/stacks/dev-up (issue 12).
 */
import { strict as assert } from "node:assert";
import { Stack } from "@pulumi/pulumi/automation";
import { Operation, Project, report, tools } from "./harness";

describe("stacks: dev on the local Docker engine (the real engine)", function () {
  this.timeout(10 * 60 * 1000);
  let project: Project;
  let stack: Stack;
  let first: Operation;

  before(async () => {
    const t = tools();
    assert.ok(t.dockerHost, "no Docker engine: scripts/services up docker (or set DOCKER_HOST)");
    project = await Project.create(t);
    stack = await project.stack("dev", {});
  });

  after(() => project?.remove());

  it("preview is clean: every resource to create, no warning, no error", async () => {
    first = await project.preview(stack);
    report("dev", first);
    assert.deepEqual(first.errors, []);
    assert.deepEqual(first.warnings, []);
    assert.deepEqual(Object.keys(first.changes), ["create"]);
    assert.ok(first.changes.create! > 40, `only ${first.changes.create} resources`);
    // The four project images are among them (workers, Airflow, Spark, the JMX agent), from the repository's own
    // Dockerfiles.
    assert.equal(first.steps.filter((s) => s.type === "docker:index/image:Image").length, 4);
  });

  it("a second preview plans exactly the same steps", async () => {
    const again = await project.preview(stack);
    report("dev (again)", again);
    assert.deepEqual(again.changes, first.changes);
    const steps = (o: Operation) => o.steps.map((s) => `${s.op} ${s.type} ${s.name}`).sort();
    assert.deepEqual(steps(again), steps(first));
  });
});
