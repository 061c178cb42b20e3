// The one table printer of the CLI and the benchmarks. Two styles:
//   text      columns separated by two spaces, a dashed rule under the header (rule: false drops it)
//   markdown  a GitHub table whose right-aligned columns are marked `---:` in the rule
// Numbers are written with thousands separators (12,345); strings as given. Alignment per column:
// by default the first column left and the others right; "auto" right-aligns the columns whose
// cells are all numbers (or numeric text like 1.5%, 1,024) and left-aligns the rest.
export type Align = "left" | "right";
export type Cell = string | number;

export interface TableOptions {
  style?: "text" | "markdown";
  align?: readonly Align[] | "auto";
  /** text style: the dashed rule under the header (default true) */
  rule?: boolean;
}

const NUMERIC = /^[-+−]?[\d,.]+(?:e[-+]?\d+)?\s*(?:%|×|ms|s)?$/i;

function alignments(header: readonly string[], rows: readonly string[][], numbers: boolean[], align: TableOptions["align"]): Align[] {
  if (Array.isArray(align)) return header.map((_, j) => align[j] ?? "left");
  if (align === "auto") return header.map((_, j) => (rows.every((r, i) => numbers[i * header.length + j] || NUMERIC.test(r[j] ?? "")) ? "right" : "left"));
  return header.map((_, j) => (j === 0 ? "left" : "right"));
}

export function formatTable(header: readonly string[], rows: readonly (readonly Cell[])[], o: TableOptions = {}): string {
  const numbers: boolean[] = [];
  const cells = rows.map((r) => header.map((_, j) => {
    const c = r[j] ?? "";
    numbers.push(typeof c === "number");
    return typeof c === "number" ? c.toLocaleString("en-US") : c;
  }));
  const align = alignments(header, cells, numbers, o.align);
  const widths = header.map((h, j) => Math.max(h.length, ...cells.map((r) => r[j]!.length)));
  const pad = (c: string, j: number) => (align[j] === "right" ? c.padStart(widths[j]!) : c.padEnd(widths[j]!));
  if (o.style === "markdown") {
    const line = (r: readonly string[]) => `| ${r.map(pad).join(" | ")} |`;
    const rule = `|${widths.map((w, j) => (align[j] === "right" ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")}|`;
    return [line(header), rule, ...cells.map(line)].join("\n");
  }
  const line = (r: readonly string[]) => r.map(pad).join("  ").trimEnd();
  const rule = o.rule === false ? [] : [widths.map((w) => "-".repeat(w)).join("  ")];
  return [line(header), ...rule, ...cells.map(line)].join("\n");
}
