// The loss tests' cases (shapes, options, edge cases) and their seeded inputs, shared by the CPU
// tests (test/engine/loss.test.ts) and the CUDA tests (test/cuda/linear_ce_cuda.test.ts).
import { integers, normals, rng } from "../helpers/random.js";

export interface Case {
  name: string;
  N: number; D: number; V: number;
  eps: number;
  temperature?: number;
  softcap?: number;
  bias?: boolean;
  reduction?: "mean" | "sum" | "none";
  ignoreFraction?: number; // share of targets set to ignoreIndex
  scale?: number;          // logit magnitude control
  gradOutput?: number | "per-token";
  ignoreIndex?: number;
}

export const CASES: Case[] = [
  { name: "N=1", N: 1, D: 8, V: 50, eps: 0.1 },
  { name: "V=1", N: 9, D: 5, V: 1, eps: 0.1 },
  { name: "V not a multiple of the tile, D odd", N: 37, D: 19, V: 301, eps: 0.1 },
  { name: "eps=0", N: 64, D: 32, V: 257, eps: 0 },
  { name: "eps=1", N: 20, D: 16, V: 130, eps: 1 },
  { name: "temperature 0.5", N: 40, D: 24, V: 200, eps: 0.1, temperature: 0.5 },
  { name: "temperature 2, sum", N: 40, D: 24, V: 200, eps: 0.05, temperature: 2, reduction: "sum", gradOutput: 0.7 },
  { name: "softcap 3", N: 50, D: 16, V: 300, eps: 0.1, softcap: 3, scale: 2 },
  { name: "softcap + temperature + bias", N: 30, D: 12, V: 259, eps: 0.2, softcap: 5, temperature: 0.7, bias: true },
  { name: "softcap, eps=0", N: 30, D: 12, V: 140, eps: 0, softcap: 2 },
  { name: "bias, no softcap", N: 45, D: 33, V: 129, eps: 0.1, bias: true },
  { name: "reduction none with per-token gradient", N: 31, D: 10, V: 150, eps: 0.1, reduction: "none", gradOutput: "per-token", ignoreFraction: 0.3 },
  { name: "some targets ignored", N: 60, D: 20, V: 260, eps: 0.1, ignoreFraction: 0.5 },
  { name: "custom ignoreIndex", N: 25, D: 9, V: 70, eps: 0.1, ignoreFraction: 0.4, ignoreIndex: 3 },
  { name: "logits of magnitude 1e4", N: 24, D: 16, V: 190, eps: 0.1, scale: 1e4 },
  { name: "logits 1e4 with softcap 30", N: 24, D: 16, V: 190, eps: 0.1, scale: 1e4, softcap: 30 },
];

export function makeInputs(c: Case, seed: number) {
  const r = rng(seed);
  const scale = c.scale ?? 1;
  // |z| ≈ scale: E ~ N(0,1), C ~ N(0, scale²/D)
  const E = normals(r, c.N * c.D);
  const C = normals(r, c.V * c.D, scale / Math.sqrt(c.D));
  const ignoreIndex = c.ignoreIndex ?? -100;
  const targets = integers(r, c.N, c.V);
  for (let i = 0; i < c.N; i++) {
    if (r() < (c.ignoreFraction ?? 0)) targets[i] = ignoreIndex;
    else if (targets[i] === ignoreIndex) targets[i] = (ignoreIndex + 1) % c.V;
  }
  const bias = c.bias ? normals(r, c.V, 0.5) : undefined;
  const gradOutput = c.gradOutput === "per-token" ? normals(r, c.N, 1) : c.gradOutput;
  return { E, C, targets, bias, gradOutput, ignoreIndex };
}
