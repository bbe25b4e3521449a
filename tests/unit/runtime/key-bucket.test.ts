import assert from "node:assert/strict";
import crypto from "node:crypto";
import { keyBucket, KEY_BUCKETS } from "../../../runtime/lib/key-bucket";

describe("relay: key buckets", () => {
  it("maps a key to one stable bucket in range, spread evenly", () => {
    const counts = new Array<number>(KEY_BUCKETS).fill(0);
    for (let i = 0; i < 64_000; i++) {
      const k = crypto.randomUUID();
      const b = keyBucket(k);
      assert.equal(keyBucket(k), b);
      assert.ok(Number.isInteger(b) && b >= 0 && b < KEY_BUCKETS);
      counts[b]++;
    }
    assert.ok(Math.min(...counts) > 800 && Math.max(...counts) < 1200, counts.join(","));
  });
});
