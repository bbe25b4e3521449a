/**
 * PromQL out of console templates, for consoles.test.ts: the JS graphs' `expr:` strings and the Go
 * template's `args`, `query` and `printf` strings (a printf's %s filled with a placeholder), and the
 * series names an expression reads.
 */

const KEYWORDS = new Set([
  "and",
  "or",
  "unless",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "offset",
  "bool",
  "inf",
  "nan",
]);

/** Double-quoted strings after `expr:` (one, or a list) and after args/query/printf in {{ }}. */
export function consoleExprs(template: string): string[] {
  const out: string[] = [];
  // a graph's expr: one string, or a list of them (whose strings may hold [5m])
  for (const m of template.matchAll(/expr:\s*/g)) {
    const rest = template.slice((m.index ?? 0) + m[0].length);
    const list = rest.startsWith("[") ? (rest.match(/^\[(?:\s*"[^"]*"\s*,?)*\s*\]/)?.[0] ?? "") : rest;
    if (rest.startsWith("[") && !list) throw new Error(`an expr list this parser cannot read: ${rest.slice(0, 80)}`);
    for (const s of list.matchAll(/"([^"]*)"/g)) {
      out.push(s[1]);
      if (!rest.startsWith("[")) break;
    }
  }
  for (const m of template.matchAll(/\((?:args|printf) "([^"]*)"|query "([^"]*)"/g)) {
    const s = (m[1] ?? m[2]).replace(/%s/g, "x");
    // printf's number formats and the args' units are not PromQL
    if (/[a-z_:][\w:]*/i.test(s) && !/^%/.test(s)) out.push(s);
  }
  return out;
}

/** The metric names an expression selects: neither functions, label names, values nor keywords. */
export function seriesNames(expr: string): string[] {
  const bare = expr
    .replace(/'[^']*'|"[^"]*"/g, "")
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = [...bare.matchAll(/(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()/g)]
    .map((m) => m[1])
    .filter((n) => !KEYWORDS.has(n.toLowerCase()));
  return [...new Set(names)];
}
