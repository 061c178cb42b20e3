// An independent float64 implementation of the Llama family's forward pass and label-smoothed
// loss, written from Hugging Face's definitions (modeling_llama / modeling_gemma2 /
// modeling_rope_utils) with plain loops over named tensors; it never calls the engine.
//   x = embed[tok]·embedScale
//   per layer:  x += post(o·attn(rope(q), rope(k), v)),  q, k, v = W·rmsnorm(x) (+ b)
//               x += post(down·(act(gate·m) ⊙ up·m)),   m = rmsnorm(x)
//   logits = H·rmsnorm(x);  loss = T·(lse(s) − (1−ε)·s_y − ε/V·Σ s),  s = softcap(z/T)
// The rotary angles are float32(t·inv_freq) with inv_freq rounded to float32 as transformers
// computes it (Math.fround); everything else is float64.
import type { LlamaConfig, ModelConfig } from "../../backend/engine/index.js";

export interface Tensor {
  shape: number[];
  data: Float64Array;
}
export type Tensors = Map<string, Tensor>;

export interface RefLoss {
  labelSmoothing?: number;
  temperature?: number;
  softcap?: number;
  ignoreIndex?: number;
}

export interface RefResult {
  /** Per position (b·t + i): the raw logits z (V). */
  logits: Float64Array[];
  /** Per position: lse of the transformed logits s = softcap(z/T). */
  lse: Float64Array;
  /** Per position: the loss T·(lse − (1−ε)·s_y − ε/V·Σ s); NaN where ignored. */
  loss: Float64Array;
  lossSum: number;
  valid: number;
}

const f = Math.fround;

/** transformers' inv_freq for the config (float32 values). */
export function invFrequencies(m: LlamaConfig): number[] {
  const out: number[] = [];
  for (let i = 0; i < m.headDim / 2; i++) {
    const exponent = f((2 * i) / m.headDim);
    let inv = f(1 / f(Math.pow(f(m.ropeTheta), exponent)));
    if (m.ropeType === "linear") inv = f(inv / f(m.ropeFactor));
    if (m.ropeType === "llama3") {
      const factor = f(m.ropeFactor), low = f(m.ropeLowFreqFactor), high = f(m.ropeHighFreqFactor);
      const old = m.ropeOriginalContext;
      const wavelen = (2 * Math.PI) / inv;
      if (wavelen > old / low) inv = f(inv / factor);
      else if (wavelen >= old / high) {
        const smooth = (old / wavelen - low) / (high - low);
        inv = f((1 - smooth) * (inv / factor) + smooth * inv);
      }
    }
    out.push(inv);
  }
  return out;
}

function rmsnorm(x: Float64Array, w: Float64Array, eps: number, plusOne: boolean): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, c) => v * r * (plusOne ? 1 + w[c]! : w[c]!));
}

/** y = W·x (+ b), W stored [out, in] (nn.Linear); layer l of a stacked tensor. */
function linear(x: Float64Array, W: Tensor, l: number, b?: Tensor): Float64Array {
  const [out, inn] = W.shape.slice(-2) as [number, number];
  const base = l * out * inn;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b.data[l * out + o]! : 0;
    for (let i = 0; i < inn; i++) s += W.data[base + o * inn + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

const silu = (x: number) => x / (1 + Math.exp(-x));
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

/** Rotates every head of v (heads × hd) in place by the angles of position t (rotate-half layout). */
function rope(v: Float64Array, heads: number, hd: number, cos: number[], sin: number[]): void {
  const half = hd / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const a = v[h * hd + i]!, b = v[h * hd + half + i]!;
      v[h * hd + i] = a * cos[i]! - b * sin[i]!;
      v[h * hd + half + i] = b * cos[i]! + a * sin[i]!;
    }
  }
}

/** The forward pass of b sequences of t tokens and the loss against targets. */
export function llamaReference(cfg: ModelConfig, w: Tensors, inputs: Int32Array, targets: Int32Array, b: number, t: number, o: RefLoss = {}): RefResult {
  const m = cfg.llama as LlamaConfig;
  const D = cfg.dModel, H = cfg.nHead, KV = m.nKvHead, hd = m.headDim, V = cfg.vocab, L = cfg.nLayer;
  const get = (name: string) => {
    const x = w.get(name);
    if (!x) throw new Error(`no tensor ${name}`);
    return x;
  };
  const row = (name: string, l: number) => get(name).data.subarray(l * D, (l + 1) * D);
  const norm = (x: Float64Array, name: string, l: number) => rmsnorm(x, row(name, l), f(m.normEps), m.normPlusOne);
  const inv = invFrequencies(m);
  const angles = (pos: number) => inv.map((fr) => f(pos * fr));
  const act = m.mlpAct === "silu" ? silu : geluTanh;
  const eps = o.labelSmoothing ?? 0, T = o.temperature ?? 1, cap = o.softcap ?? 0, ignore = o.ignoreIndex ?? -100;
  const head = get(cfg.tied ? "embed" : "lm_head");
  const res: RefResult = { logits: [], lse: new Float64Array(b * t), loss: new Float64Array(b * t), lossSum: 0, valid: 0 };

  for (let s = 0; s < b; s++) {
    const tok = inputs.subarray(s * t, (s + 1) * t);
    let x = Array.from(tok, (id) => get("embed").data.slice(id * D, (id + 1) * D).map((v) => v * f(m.embedScale)));
    for (let l = 0; l < L; l++) {
      const a = x.map((r) => norm(r, "attn_norm", l));
      const bias = (name: string) => (m.qkvBias ? get(name) : undefined);
      const q = a.map((r, pos) => {
        const v = linear(r, get("q"), l, bias("q_bias"));
        const th = angles(pos);
        rope(v, H, hd, th.map(Math.cos), th.map(Math.sin));
        return v;
      });
      const k = a.map((r, pos) => {
        const v = linear(r, get("k"), l, bias("k_bias"));
        const th = angles(pos);
        rope(v, KV, hd, th.map(Math.cos), th.map(Math.sin));
        return v;
      });
      const v = a.map((r) => linear(r, get("v"), l, bias("v_bias")));
      const window = m.slidingWindow > 0 && l % m.slidingPeriod === 0 ? m.slidingWindow : 0;
      const y = x.map(() => new Float64Array(H * hd));
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / (H / KV));
        for (let i = 0; i < t; i++) {
          const lo = window > 0 ? Math.max(0, i - window + 1) : 0;
          const logits: number[] = [];
          for (let j = lo; j <= i; j++) {
            let d = 0;
            for (let e = 0; e < hd; e++) d += q[i]![h * hd + e]! * k[j]![g * hd + e]!;
            let u = d * f(m.attnScale);
            if (m.attnSoftcap > 0) u = f(m.attnSoftcap) * Math.tanh(u / f(m.attnSoftcap));
            logits.push(u);
          }
          const mx = Math.max(...logits);
          const ex = logits.map((u) => Math.exp(u - mx));
          const z = ex.reduce((acc, e) => acc + e, 0);
          for (let j = lo; j <= i; j++) {
            for (let e = 0; e < hd; e++) y[i]![h * hd + e] += (ex[j - lo]! / z) * v[j]![g * hd + e]!;
          }
        }
      }
      const post = (hv: Float64Array, name: string) => (m.postNorms ? norm(hv, name, l) : hv);
      x = x.map((r, i) => {
        const h1 = post(linear(y[i]!, get("o"), l), "attn_post_norm");
        return r.map((val, c) => val + h1[c]!);
      });
      x = x.map((r) => {
        const mn = norm(r, "mlp_norm", l);
        const gate = linear(mn, get("gate"), l), up = linear(mn, get("up"), l);
        const h2 = post(linear(gate.map((gv, i) => act(gv) * up[i]!), get("down"), l), "mlp_post_norm");
        return r.map((val, c) => val + h2[c]!);
      });
    }
    for (let i = 0; i < t; i++) {
      const n = s * t + i;
      const hidden = rmsnorm(x[i]!, get("norm_f").data, f(m.normEps), m.normPlusOne);
      const z = linear(hidden, head, 0);
      res.logits.push(z);
      const sv = z.map((zv) => (cap > 0 ? cap * Math.tanh(zv / T / cap) : zv / T));
      const mx = Math.max(...sv);
      const lse = mx + Math.log(sv.reduce((acc, u) => acc + Math.exp(u - mx), 0));
      res.lse[n] = lse;
      const y = targets[n]!;
      if (y === ignore) {
        res.loss[n] = NaN;
        continue;
      }
      const sum = sv.reduce((acc, u) => acc + u, 0);
      res.loss[n] = T * (lse - (1 - eps) * sv[y]! - (eps / V) * sum);
      res.lossSum += res.loss[n]!;
      res.valid++;
    }
  }
  return res;
}
