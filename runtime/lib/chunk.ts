/** Split items into consecutive groups of at most `maxBytes` (by `size`) and `maxCount` items each. */
export function chunkByBytes<T>(
  items: T[],
  size: (t: T) => number,
  maxBytes: number,
  maxCount = Number.POSITIVE_INFINITY,
): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const it of items) {
    const n = size(it);
    if (cur.length > 0 && (bytes + n > maxBytes || cur.length >= maxCount)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(it);
    bytes += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
