/**
 * YAML text from plain data, for the config files the project renders: cassandra.yaml for the local
 * services (scripts/render-config.ts) and Prometheus' rules and prometheus.yml (infra/monitoring).
 */

export type Yaml = string | number | boolean | null | Yaml[] | { [k: string]: Yaml };

function yamlScalar(v: string | number | boolean | null): string {
  if (v === null) return "null";
  if (typeof v !== "string") return String(v);
  return JSON.stringify(v); // a double-quoted JSON string is a valid YAML string
}

/** A small block-style YAML emitter: enough for cassandra.yaml and Prometheus files (maps, lists, scalars). */
export function toYaml(v: Yaml, indent = 0): string {
  const pad = " ".repeat(indent);
  if (Array.isArray(v)) {
    if (v.length === 0) return `${pad}[]\n`;
    return v
      .map((item) => {
        if (item !== null && typeof item === "object") {
          const inner = toYaml(item, indent + 2);
          return `${pad}- ${inner.slice(indent + 2)}`;
        }
        return `${pad}- ${yamlScalar(item)}\n`;
      })
      .join("");
  }
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v);
    if (entries.length === 0) return `${pad}{}\n`;
    return entries
      .map(([k, val]) => {
        if (val !== null && typeof val === "object") {
          const empty = Array.isArray(val) ? val.length === 0 : Object.keys(val).length === 0;
          if (empty) return `${pad}${k}: ${Array.isArray(val) ? "[]" : "{}"}\n`;
          return `${pad}${k}:\n${toYaml(val, indent + 2)}`;
        }
        return `${pad}${k}: ${yamlScalar(val)}\n`;
      })
      .join("");
  }
  return `${pad}${yamlScalar(v)}\n`;
}
