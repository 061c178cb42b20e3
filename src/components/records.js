// Selecting rows and columns of the Arrow record tables in the browser (no metric code here: the
// metrics come from ./calibration.js, i.e. backend/metrics).

/** Row indices of `table` where every column in `where` equals the given value (null = any). */
export function rowsWhere(table, where) {
  const entries = Object.entries(where).filter(([, v]) => v != null);
  const cols = entries.map(([k]) => table.getChild(k));
  const vals = entries.map(([, v]) => v);
  const out = [];
  const n = table.numRows;
  // Typed (numeric) columns are compared on their arrays, strings through get().
  const arrays = cols.map((c, j) => {
    if (!c || typeof vals[j] !== "number") return null;
    const a = c.toArray();
    return ArrayBuffer.isView(a) && !(a instanceof Uint8Array) ? a : null;
  });
  for (let i = 0; i < n; i++) {
    let ok = true;
    for (let j = 0; j < cols.length; j++) {
      const v = arrays[j] ? arrays[j][i] : cols[j]?.get(i);
      if (v !== vals[j]) {
        ok = false;
        break;
      }
    }
    if (ok) out.push(i);
  }
  return out;
}

/** Distinct values of `col` over the rows matching `where`, sorted. */
export function distinctWhere(table, col, where = {}) {
  const idx = rowsWhere(table, where);
  const c = table.getChild(col);
  const s = new Set();
  for (const i of idx) s.add(c.get(i));
  return [...s].filter((v) => v != null).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export function numbers(table, col, idx) {
  const c = table.getChild(col);
  const out = new Float64Array(idx.length);
  if (!c) return out.fill(NaN);
  for (let j = 0; j < idx.length; j++) {
    const v = c.get(idx[j]);
    out[j] = v == null ? NaN : Number(v);
  }
  return out;
}

export function flags(table, col, idx) {
  const c = table.getChild(col);
  const out = new Uint8Array(idx.length);
  for (let j = 0; j < idx.length; j++) out[j] = c.get(idx[j]) ? 1 : 0;
  return out;
}

export function strings(table, col, idx) {
  const c = table.getChild(col);
  return idx.map((i) => String(c.get(i)));
}

/** A list<float> column as a flat row-major matrix; null when a row is null or the widths differ. */
export function matrix(table, col, idx) {
  const c = table.getChild(col);
  if (!c || idx.length === 0) return null;
  const first = c.get(idx[0]);
  if (first == null) return null;
  const K = first.length;
  const flat = new Float64Array(idx.length * K);
  for (let j = 0; j < idx.length; j++) {
    const row = c.get(idx[j]);
    if (row == null || row.length !== K) return null;
    const a = row.toArray();
    for (let k = 0; k < K; k++) flat[j * K + k] = a[k];
  }
  return {flat, K, n: idx.length};
}

/** Question key used to pair runs: split | task | id. */
export function questionKeys(table, idx) {
  const s = table.getChild("split"), t = table.getChild("task"), q = table.getChild("id");
  return idx.map((i) => `${s.get(i)}|${t.get(i)}|${q.get(i)}`);
}

/** Token key used to pair runs of the same tokenizer: split | doc | position. */
export function tokenKeys(table, idx) {
  const s = table.getChild("split"), d = table.getChild("doc").toArray(), p = table.getChild("position").toArray();
  return idx.map((i) => `${s.get(i)}|${d[i]}|${p[i]}`);
}

/** Positions (ia, ib) of the keys common to a and b, in a's order. */
export function alignKeys(keysA, keysB) {
  const pos = new Map();
  keysB.forEach((k, j) => pos.set(k, j));
  const ia = [], ib = [];
  keysA.forEach((k, i) => {
    const j = pos.get(k);
    if (j !== undefined) {
      ia.push(i);
      ib.push(j);
    }
  });
  return {ia, ib};
}

export function pick(arr, positions) {
  const out = new arr.constructor(positions.length);
  for (let j = 0; j < positions.length; j++) out[j] = arr[positions[j]];
  return out;
}

/** Arrow rows → plain objects (BigInt → Number). */
export function plainRows(table) {
  return table.toArray().map((r) => Object.fromEntries(Object.entries(r.toJSON()).map(([k, v]) => [k, typeof v === "bigint" ? Number(v) : v])));
}
