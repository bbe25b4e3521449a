import assert from "node:assert/strict";
import { errors as cassErrors } from "cassandra-driver";
import { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError } from "kafkajs";
import { classify, ContentError, InfrastructureError, ProgrammingError } from "../../../runtime/lib/errors";
import { RetryableError, untilAvailable } from "../../../runtime/lib/retry";
import { healthProblems, markHealthy } from "../../../runtime/lib/health";

const pgError = (code: string, message = "x") => Object.assign(new Error(message), { code, severity: "FATAL" });

describe("errors: classified once, by whose fault", () => {
  it("PostgreSQL: restart and connection loss are infrastructure; bad data is content; bad SQL is programming", () => {
    assert.equal(classify(pgError("57P01", "terminating connection due to administrator command")), "infrastructure");
    assert.equal(classify(pgError("57P03", "the database system is starting up")), "infrastructure");
    assert.equal(classify(pgError("08006")), "infrastructure");
    assert.equal(classify(pgError("57014", "canceling statement due to statement timeout")), "infrastructure");
    assert.equal(classify(pgError("25P03")), "infrastructure");
    assert.equal(classify(new Error("Connection terminated unexpectedly")), "infrastructure");
    assert.equal(
      classify(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" })),
      "infrastructure",
    );
    assert.equal(classify(pgError("22P05", "unsupported Unicode escape sequence")), "content");
    assert.equal(classify(pgError("23505")), "content");
    assert.equal(classify(pgError("42601", "syntax error")), "programming");
  });

  it("PostgreSQL after a failover, overloaded or short of a resource: infrastructure (retry, keep the offset)", () => {
    const infra = [
      "25006", // read-only: the old primary, demoted, or a standby
      "57P01",
      "57P02",
      "57P03",
      "57P05",
      "08000",
      "08001",
      "08003",
      "08006",
      "08P01",
      "53000",
      "53100",
      "53200",
      "53300",
      "53400",
      "40001",
      "40P01",
      "40003",
      "58000",
      "58030",
      "25P03",
      "25P04",
      "55P03",
      "55006",
      "72000",
      "F0000",
      "XX000",
    ];
    for (const code of infra) assert.equal(classify(pgError(code)), "infrastructure", code);
    // a standby reached through the primary's address, before the failover finished
    assert.equal(classify(pgError("55000", "recovery is in progress")), "infrastructure");
    assert.equal(classify(pgError("55000", "cannot ALTER TABLE because it has pending trigger events")), "programming");
    // our SQL, our schema or our credentials stay programming errors; bad data stays content
    for (const code of ["42601", "42P01", "42703", "28P01", "3D000", "0A000", "25P02"])
      assert.equal(classify(pgError(code)), "programming", code);
    for (const code of ["22P05", "22021", "23502"]) assert.equal(classify(pgError(code)), "content", code);
  });

  it("Kafka: connection and exhausted retries are infrastructure; a too-large message is content", () => {
    assert.equal(classify(new KafkaJSConnectionError("Connection error: connect ECONNREFUSED")), "infrastructure");
    assert.equal(
      classify(new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError("x"), { retryCount: 5, retryTime: 1 })),
      "infrastructure",
    );
    assert.equal(
      classify(
        new KafkaJSProtocolError({
          type: "MESSAGE_TOO_LARGE",
          code: 10,
          retriable: false,
          message: "too large",
        } as unknown as Error),
      ),
      "content",
    );
    assert.equal(
      classify(
        new KafkaJSProtocolError({
          type: "NOT_LEADER_FOR_PARTITION",
          code: 6,
          retriable: true,
          message: "x",
        } as unknown as Error),
      ),
      "infrastructure",
    );
    assert.equal(
      classify(
        new KafkaJSProtocolError({
          type: "UNKNOWN_MEMBER_ID",
          code: 25,
          retriable: false,
          message: "The coordinator is not aware of this member",
        } as unknown as Error),
      ),
      "infrastructure",
    );
  });

  it("Cassandra: no host, time-outs, unavailable are infrastructure; invalid CQL is programming", () => {
    assert.equal(classify(new cassErrors.NoHostAvailableError({})), "infrastructure");
    assert.equal(classify(new cassErrors.OperationTimedOutError("timed out")), "infrastructure");
    assert.equal(classify(new cassErrors.ResponseError(0x1000, "Cannot achieve consistency")), "infrastructure");
    assert.equal(classify(new cassErrors.ResponseError(0x1100, "write timeout")), "infrastructure");
    assert.equal(classify(new cassErrors.ResponseError(0x2000, "line 1: syntax")), "programming");
    // a node killed under an open request: the driver's own words for a lost or unmade connection
    // (DriverError is abstract in the driver's types; the driver itself throws it as is)
    const driverError = (m: string) => new (cassErrors.DriverError as unknown as new (m: string) => Error)(m);
    assert.equal(classify(driverError("Socket was closed")), "infrastructure");
    assert.equal(classify(driverError("Connection timeout")), "infrastructure");
    assert.equal(classify(driverError("There was already state for this frame")), "programming");
  });

  it("the registry client: network (400 without body) and 5xx are infrastructure; 409/422 programming", () => {
    const resp = (status: number) =>
      Object.assign(new Error(`Error, status ${status}`), { name: "ResponseError", status });
    assert.equal(classify(resp(400)), "infrastructure");
    assert.equal(classify(resp(503)), "infrastructure");
    assert.equal(classify(resp(409)), "programming");
  });

  it("our own types, and anything unknown is a programming error", () => {
    assert.equal(classify(new InfrastructureError("x")), "infrastructure");
    assert.equal(classify(new RetryableError("x")), "infrastructure");
    assert.equal(classify(new ContentError("x")), "content");
    assert.equal(classify(new ProgrammingError("x")), "programming");
    assert.equal(classify(new TypeError("undefined is not a function")), "programming");
    assert.equal(classify("a string"), "programming");
  });

  it("untilAvailable retries infrastructure errors without a budget, marks the loop unhealthy meanwhile, and throws others at once", async () => {
    let calls = 0;
    let sawUnhealthy = false;
    const r = await untilAvailable(
      "dep",
      async () => {
        if (++calls < 8) throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
        sawUnhealthy = "loop[7]" in healthProblems();
        return "up";
      },
      { health: "loop[7]", policy: { baseMs: 1, maxMs: 2 } },
    );
    assert.equal(r, "up");
    assert.equal(calls, 8);
    assert.ok(sawUnhealthy);
    assert.ok(!("loop[7]" in healthProblems()), "healthy again");
    let n = 0;
    await assert.rejects(
      untilAvailable("dep", async () => {
        n++;
        throw new ContentError("bad row");
      }),
      /bad row/,
    );
    await assert.rejects(
      untilAvailable("dep", async () => {
        n++;
        throw new TypeError("bug");
      }),
      /bug/,
    );
    assert.equal(n, 2);
    markHealthy("loop[7]");
  });
});
