/**
 * Text PostgreSQL can store. Its text and jsonb refuse a NUL character (22021, 22P05: one in a
 * page's transaction fails the whole page, again at every retry), and node-postgres encodes a
 * lone UTF-16 surrogate as U+FFFD (the value silently changed). Values from outside (API records,
 * HTTP bodies, parse errors quoting them) are checked or escaped with these before they are stored.
 */

interface WellFormed {
  isWellFormed(): boolean;
}

/** No NUL character and no lone surrogate: stored as it is. */
export function isPgStorable(s: string): boolean {
  return !s.includes("\u0000") && (s as unknown as WellFormed).isWellFormed();
}

const hex4 = (c: number) => "\\u" + c.toString(16).padStart(4, "0");

/**
 * `s` with each NUL character and lone surrogate written as its JSON escape (the six characters
 * `\u0000`, `\ud800`): readable, storable, and the same string when it already was storable.
 */
export function pgText(s: string): string {
  if (isPgStorable(s)) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) out += hex4(c);
    else if (
      c >= 0xd800 &&
      c <= 0xdbff &&
      i + 1 < s.length &&
      s.charCodeAt(i + 1) >= 0xdc00 &&
      s.charCodeAt(i + 1) <= 0xdfff
    ) {
      out += s[i] + s[i + 1];
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) out += hex4(c);
    else out += s[i];
  }
  return out;
}

/** `s` cut to at most `max` UTF-16 units, then made storable (a cut pair is escaped, not mangled). */
export function pgTextCut(s: string, max: number): string {
  return pgText(s.length > max ? s.slice(0, max) : s);
}

/** What makes `s` unstorable, for a reason: "a NUL character", "a lone surrogate (U+D800)". */
export function unstorableWhat(s: string): string | undefined {
  if (s.includes("\u0000")) return "a NUL character";
  if ((s as unknown as WellFormed).isWellFormed()) return undefined;
  const m = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.exec(s);
  const unit = m ? m[0].charCodeAt(0).toString(16).toUpperCase() : "?";
  return `a lone surrogate (U+${unit})`;
}

/** Whether every string and key of a JSON value is storable; no allocation (the hot path). */
export function isPgStorableJson(v: unknown): boolean {
  if (typeof v === "string") return isPgStorable(v);
  if (v === null || typeof v !== "object") return true;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!isPgStorableJson(v[i])) return false;
    return true;
  }
  for (const k in v) if (!isPgStorable(k) || !isPgStorableJson((v as Record<string, unknown>)[k])) return false;
  return true;
}

/**
 * The first place in a JSON value (a string, or an object key) PostgreSQL cannot store, as a
 * storable path and what is wrong there; undefined when the whole value is storable.
 */
export function unstorablePath(v: unknown, path: string[] = []): { path: string; what: string } | undefined {
  const at = (p: string[]) => (p.length === 0 ? "(record)" : pgText(p.join(".")));
  if (typeof v === "string") {
    const what = unstorableWhat(v);
    return what === undefined ? undefined : { path: at(path), what };
  }
  if (v === null || typeof v !== "object") return undefined;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (!isPgStorable(k)) return { path: at([...path, k]), what: `${unstorableWhat(k)} in a key` };
    const r = unstorablePath(x, [...path, k]);
    if (r) return r;
  }
  return undefined;
}

/** A copy of a JSON value with every string and key made storable (pgText). */
export function pgJsonValue(v: unknown): unknown {
  if (typeof v === "string") return pgText(v);
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(pgJsonValue);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[pgText(k)] = pgJsonValue(x);
  return out;
}

/**
 * A raw value for a jsonb column: its JSON text when storable; else the JSON text of a copy made
 * storable (pgJsonValue), with `original` the exact JSON text of the value (JSON.stringify writes
 * NUL and lone surrogates as \u escapes, so any text column holds it, and JSON.parse gives it back).
 */
export function pgJson(v: unknown): { json: string; original?: string } {
  const original = JSON.stringify(v ?? null);
  if (isPgStorableJson(v)) return { json: original };
  return { json: JSON.stringify(pgJsonValue(v)), original };
}
