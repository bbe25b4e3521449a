/**
 * The key bucket of a user id: 64 buckets. Relays lock whole buckets, so two relays never hold
 * rows of the same key at once, and a key's rows go out in outbox order.
 */
export const KEY_BUCKETS = 64;

/** FNV-1a of the key, modulo KEY_BUCKETS. */
export function keyBucket(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % KEY_BUCKETS;
}
