import assert from "node:assert/strict";
import { assertCoordinatorKilled } from "../../ha/coordinator-check";

describe("the kill suite's check that a broker kill took the group's coordinator (tests/ha/coordinator-check.ts)", () => {
  it("passes when one kill or both took it (after the first, the group moves to a survivor the second may kill)", () => {
    assertCoordinatorKilled([
      { killed: 2, coordinator: 2 },
      { killed: 1, coordinator: 0 },
    ]);
    assertCoordinatorKilled([
      { killed: 1, coordinator: 1 },
      { killed: 2, coordinator: 2 },
    ]);
  });

  it("fails, naming each kill's coordinator, when no kill took it", () => {
    assert.throws(
      () =>
        assertCoordinatorKilled([
          { killed: 2, coordinator: 0 },
          { killed: 1, coordinator: 0 },
        ]),
      /broker 2 killed while broker 0 coordinated; broker 1 killed while broker 0 coordinated/,
    );
    assert.throws(() => assertCoordinatorKilled([]), /no broker kill$/);
  });
});
