// Learning-rate schedule: linear warm-up from lr/warmup to lr over the first `warmupSteps`
// optimizer steps, then a cosine decay to lr·minLrRatio at the last step (nanoGPT's shape).
export interface Schedule {
  lr: number;
  minLrRatio: number;
  warmupSteps: number;
  totalSteps: number;
}

/** The learning rate of optimizer step `step` (1-based). */
export function learningRate(s: Schedule, step: number): number {
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`step must be an integer ≥ 1 (got ${step})`);
  const { lr, warmupSteps: w, totalSteps: n } = s;
  if (w > 0 && step <= w) return (lr * step) / w;
  const min = lr * s.minLrRatio;
  if (n <= w) return lr;
  const progress = Math.min(1, (step - w) / (n - w));
  return min + 0.5 * (1 + Math.cos(Math.PI * progress)) * (lr - min);
}
