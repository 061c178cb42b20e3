// lm-evaluation-harness `--log_samples` lines for the tests, in the harness's exact layout
// (lm_eval/result_schema.py SampleResult; values as strings, as lm-eval 0.4 writes them).
// REAL_ARC_EASY holds the numbers of four records written by lm-eval 0.4.12
// (`--model dummy --tasks arc_easy --log_samples`, so the log-likelihoods are random) with the
// harness's own acc / acc_norm per document: an independent reference for our argmax and
// length normalization. randomSamples() makes larger files, with acc / acc_norm computed here
// in float64 the way lm-eval's process_results does.

export interface SampleSpec {
  docId: number;
  question: string;
  choices: string[];
  lls: number[];
  gold: number;
  acc?: number;
  accNorm?: number;
  filter?: string;
}

export const REAL_ARC_EASY: SampleSpec[] = [
  {
    docId: 0, question: "Which statement best explains why photosynthesis is the foundation of most food webs?",
    choices: ["Sunlight is the source of energy for nearly all ecosystems.", "Most ecosystems are found on land instead of in water.",
      "Carbon dioxide is more available than other gases.", "The producers in all ecosystems are plants."],
    lls: [-0.2604923103919594, -0.8050278270130223, -0.5486993038355893, -0.014041700164018955], gold: 0, acc: 0, accNorm: 0,
  },
  {
    docId: 1, question: "Which piece of safety equipment is used to keep mold spores from entering the respiratory system?",
    choices: ["safety goggles", "breathing mask", "rubber gloves", "lead apron"],
    lls: [-0.7197046864039541, -0.39882354222426875, -0.824844977148233, -0.6681532012318508], gold: 1, acc: 1, accNorm: 1,
  },
  {
    docId: 2, question: "Meiosis is a type of cell division in which germ cells divide to produce haploid cells. Where does meiosis occur?",
    choices: ["brain cells", "bone cells", "muscle cells", "ovary cells"],
    lls: [-0.0011428193144282783, -0.49357786646532464, -0.8676027754927809, -0.24391087688713198], gold: 3, acc: 0, accNorm: 0,
  },
  {
    docId: 3, question: "Which characteristic describes the texture of a kitten's fur?",
    choices: ["gray", "warm", "long", "soft"],
    lls: [-0.32520436274739006, -0.8704712321086546, -0.19106709150239054, -0.5675107406206719], gold: 3, acc: 0, accNorm: 0,
  },
];

/** One JSONL line in the harness's layout. */
export function harnessLine(s: SampleSpec, o: { numbers?: boolean } = {}): string {
  const context = `Question: ${s.question}\nAnswer:`;
  const v = (x: number) => (o.numbers ? x : String(x));
  const args: Record<string, { arg_0: string; arg_1: string }> = {};
  s.choices.forEach((c, i) => (args[`gen_args_${i}`] = { arg_0: context, arg_1: ` ${c}` }));
  return JSON.stringify({
    doc_id: s.docId,
    doc: { id: `Q${s.docId}`, question: s.question, choices: { text: s.choices, label: s.choices.map((_, i) => "ABCDEFGH"[i]) }, answerKey: "ABCDEFGH"[s.gold] },
    target: String(s.gold),
    arguments: args,
    resps: s.lls.map((ll) => [[v(ll), "False"]]),
    filtered_resps: s.lls.map((ll) => [v(ll), "False"]),
    filter: s.filter ?? "none",
    metrics: ["acc", "acc_norm"],
    doc_hash: "0".repeat(64), prompt_hash: "1".repeat(64), target_hash: "2".repeat(64),
    acc: s.acc ?? 0, acc_norm: s.accNorm ?? 0,
  });
}

export const harnessFile = (specs: SampleSpec[], o: { numbers?: boolean } = {}) => specs.map((s) => harnessLine(s, o)).join("\n") + "\n";

/** float64 softmax */
export function softmax64(z: readonly number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

export function argmax(p: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < p.length; i++) if (p[i]! > p[b]!) b = i;
  return b;
}

/** lm-eval: acc_norm = argmax(ll_i / len(choice_i)) == gold, len in characters (without the " " delimiter). */
export function accNormOf(s: Pick<SampleSpec, "lls" | "choices" | "gold">): number {
  return argmax(s.lls.map((ll, i) => ll / s.choices[i]!.length)) === s.gold ? 1 : 0;
}

/** n random 4-option documents (seeded), with the harness's acc / acc_norm. */
export function randomSamples(n: number, seed: number): SampleSpec[] {
  let x = seed >>> 0 || 1;
  const u = () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return (x + 0.5) / 4294967296;
  };
  const words = ["red", "blue", "green", "a tall tree", "the river bank", "seven", "photosynthesis", "a cat", "granite", "ice"];
  return Array.from({ length: n }, (_, d) => {
    const choices = Array.from({ length: 4 }, () => `${words[Math.floor(u() * words.length)]} ${words[Math.floor(u() * words.length)]}`);
    const gold = Math.floor(u() * 4);
    // the gold option is more likely on average: a model better than chance, not perfectly calibrated
    const lls = choices.map((c, i) => -(0.3 + 4 * u()) * (c.length / 10) * (i === gold ? 1 - 0.7 * u() : 1));
    const spec: SampleSpec = { docId: d, question: `question ${d}?`, choices, lls, gold };
    spec.acc = argmax(lls) === gold ? 1 : 0;
    spec.accNorm = accNormOf(spec);
    return spec;
  });
}
