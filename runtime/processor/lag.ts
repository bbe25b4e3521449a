/** The processor group's lag on its topic: a gauge per partition, and the one-shot mode's end. */
import type { Admin } from "kafkajs";
import { USERS_TOPIC } from "../contracts/names";
import type { Logger } from "../lib/logger";
import { metrics } from "../lib/metrics";
import { sleep } from "../lib/sleep";

/** Total lag of the group on the topic (users_created); sets the lag gauge per partition. */
export async function groupLag(admin: Admin, groupId: string, topic = USERS_TOPIC): Promise<number> {
  const [ends, committed] = await Promise.all([
    admin.fetchTopicOffsets(topic),
    admin.fetchOffsets({ groupId, topics: [topic] }),
  ]);
  const done = new Map<number, bigint>();
  for (const p of committed[0]?.partitions ?? []) done.set(p.partition, BigInt(p.offset));
  let total = 0n;
  for (const end of ends) {
    const committedOffset = done.get(end.partition) ?? -1n;
    const from = committedOffset >= 0n ? committedOffset : BigInt(end.low);
    const lag = BigInt(end.high) - from;
    metrics().consumerLag.set({ topic, partition: String(end.partition), group: groupId }, Number(lag));
    total += lag;
  }
  return Number(total);
}

export interface LagWatch {
  admin: Admin;
  groupId: string;
  topic: string;
  log: Logger;
  signal: AbortSignal;
  /** resolve once caught up: no lag and nothing stored for idleExitMs */
  untilCaughtUp?: { idleExitMs: number; lastActivity(): number };
}

/** Sets the lag gauge every second until stopped; true when it ended because the group caught up. */
export async function watchLag(w: LagWatch): Promise<boolean> {
  while (!w.signal.aborted) {
    await sleep(1000, w.signal);
    if (w.signal.aborted) break;
    let lag = -1;
    try {
      lag = await groupLag(w.admin, w.groupId, w.topic);
    } catch (e) {
      w.log.debug({ err: e }, "lag not available now");
    }
    const idle = w.untilCaughtUp;
    if (idle && lag === 0 && Date.now() - idle.lastActivity() >= idle.idleExitMs) return true;
  }
  return false;
}
