/**
 * The Cassandra write time of a message: last write wins by the OUTBOX ID, not by a clock.
 *
 * The relay puts the outbox id in the `outbox_id` header; outbox ids grow with every new version
 * of a user (one bigserial), so a version written later in the outbox always has the larger
 * write time, whatever order or how many times the versions reach Cassandra (an evicted
 * processor still writing its old chunk, a redelivered message, another partition).
 *
 * Write time = OUTBOX_WRITETIME_BASE + outbox id (microseconds, as Cassandra reads them). The base
 * (10^16 µs, year 2286) puts every relayed write above any write stamped by a clock: rows written
 * before this change (client timestamps, ~1.8·10^15) are overwritten by the next version, and
 * `WRITETIME(col) - 10^16` reads back as the outbox id. Consequences, documented in docs/pipeline.md:
 * WRITETIME is no longer a wall-clock time, a manual write or delete must use
 * `USING TIMESTAMP` above it, and the outbox sequence must never restart while Cassandra keeps
 * its rows (restore it with setval above the highest id written).
 *
 * A message without the header (not from the relay: a hand-made backfill, a test producer) is
 * written with the driver's clock, so it never overwrites a relayed version. A header that is
 * there but not an outbox id is the producer's bug: a content reason (dead-lettered).
 */
import type { IHeaders } from "kafkajs";

export const OUTBOX_WRITETIME_BASE = 10_000_000_000_000_000n;
/** Cassandra write times are signed 64-bit. */
const MAX_OUTBOX_ID = 2n ** 63n - 1n - OUTBOX_WRITETIME_BASE;

export type WriteTime = { ok: true; micros?: bigint } | { ok: false; reason: string };

export function writeTimeOf(headers: IHeaders | undefined): WriteTime {
  const h = headers?.outbox_id;
  if (h === undefined) return { ok: true };
  const v = Array.isArray(h) ? h[h.length - 1] : h;
  const s = Buffer.isBuffer(v) ? v.toString() : String(v);
  if (!/^[1-9][0-9]{0,18}$/.test(s) || BigInt(s) > MAX_OUTBOX_ID) {
    return {
      ok: false,
      reason: `invalid: header outbox_id ${JSON.stringify(s.slice(0, 40))} is not an outbox id (a positive integer)`,
    };
  }
  return { ok: true, micros: OUTBOX_WRITETIME_BASE + BigInt(s) };
}
