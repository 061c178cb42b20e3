// `calib data`: exit codes and one-line errors for bad input, and the output of each subcommand.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cacheDir = mkdtempSync(join(tmpdir(), "calib-data-cli-"));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

function calib(...args: string[]) {
  const r = spawnSync(process.execPath, ["bin/calib.js", "data", ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("bad input: exit code 2 and one clear line", () => {
  for (const [args, msg] of [
    [["sample", "--task", "ner"], /--task must be one of pos, cloze, genre \(got 'ner'\)/],
    [["sample"], /--task is required/],
    [["prepare", "--tokenizer", "gpt5", "--cache-dir", cacheDir], /--tokenizer must be one of byte, r50k, cl100k, o200k or all \(got 'gpt5'\)/],
    [["stats", "--split-seed", "1.5", "--cache-dir", cacheDir], /--split-seed must be a non-negative integer/],
    [["frobnicate"], /unknown subcommand 'frobnicate'/],
  ] as const) {
    const r = calib(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});

test("sample prints n questions with their answers", () => {
  const r = calib("sample", "--task", "pos", "--n", "3", "--tokenizer", "byte");
  assert.equal(r.code, 0, r.stderr);
  const blocks = r.stdout.trim().split("\n\n");
  assert.equal(blocks.length, 3);
  for (const b of blocks) {
    assert.match(b, /^# pos-0-c[a-r]\d\d-\d+-\d+ {2}\(validation, document c[a-r]\d\d, \w+, gold tag \S+\)\nQuestion: In the sentence ".*", what part of speech is the word '.*'\?\nA\. \w+\nB\. \w+\nC\. \w+\nD\. \w+\nAnswer: [ABCD]\n\[byte\] prompt \d+ tokens/);
  }
});

test("prepare and stats: tables on stdout, progress on stderr, JSON on request", () => {
  const p = calib("prepare", "--tokenizer", "byte", "--cache-dir", cacheDir, "--json");
  assert.equal(p.code, 0, p.stderr);
  const rows = JSON.parse(p.stdout) as { tokenizer: string; vocabSize: number; built: boolean; train: number }[];
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.tokenizer, "byte");
  assert.equal(rows[0]!.vocabSize, 256);
  assert.equal(rows[0]!.built, true);
  assert.match(p.stderr, /encoding Brown with byte .* 500\/500 docs/);
  const s = calib("stats", "--tokenizer", "byte", "--cache-dir", cacheDir, "--no-questions");
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /\| all +\| +396 \| +52 \| +52 \| +500 \|/);
  assert.match(s.stdout, new RegExp(`\\| byte +\\| +256 \\| +${rows[0]!.train.toLocaleString("en-US")} \\|`));
  assert.equal(s.stderr, "", "the cache was valid: nothing re-encoded");
});

test("--world: prepare (JSON), stats, sample; a bad config exits 2 naming the file and the field", () => {
  const cfg = join(cacheDir, "w.json");
  writeFileSync(cfg, JSON.stringify({ seed: 2, people: 30, attributes: { birth_city: 6, birth_year: 8 }, exposures: { min: 1, max: 4 } }));
  const p = calib("prepare", "--world", cfg, "--tokenizer", "word,byte", "--epochs", "2", "--cache-dir", cacheDir, "--json");
  assert.equal(p.code, 0, p.stderr);
  const out = JSON.parse(p.stdout) as { world: string; rows: { tokenizer: string; vocabSize: number; built: boolean; streams: Record<string, number> }[] };
  assert.deepEqual(out.rows.map((r) => r.tokenizer), ["word", "byte"]);
  assert.deepEqual(Object.keys(out.rows[0]!.streams), ["validation", "epoch-0", "epoch-1"]);
  assert.ok(out.rows.every((r) => r.built));
  assert.ok(out.rows[1]!.streams["epoch-0"]! > 3 * out.rows[0]!.streams["epoch-0"]!, "bytes: several tokens per word");
  assert.match(p.stderr, new RegExp(`world ${out.world.slice(0, 8)} epoch-1 → byte .* docs`));
  const s = calib("stats", "--world", cfg, "--cache-dir", cacheDir);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /\| +30 \| +20 \| +10 \|/);
  assert.match(s.stdout, /Evaluation questions \(held-out people\): 20; gold positions A–D 5 \/ 5 \/ 5 \/ 5/);
  assert.match(s.stdout, new RegExp(`\\| word +\\| +[\\d,]+ \\| +${out.rows[0]!.streams["epoch-0"]!.toLocaleString("en-US")} \\|`));
  const q = calib("sample", "--world", cfg, "--kind", "question", "--n", "2", "--tokenizer", "word");
  assert.equal(q.code, 0, q.stderr);
  assert.equal(q.stdout.match(/^# question w[0-9a-f]{8}-\d+-(birth_city|birth_year) \(.*\) {2}\[word: \d+ tokens\]$/gm)?.length, 2, q.stdout);
  const c = calib("sample", "--world", cfg, "--kind", "sft", "--n", "1");
  assert.match(c.stdout, /^# sft sft-0 .*\n<\|user\|>\n/);
  writeFileSync(join(cacheDir, "bad.json"), JSON.stringify({ people: 30, exposures: { min: 3, max: 1 } }));
  for (const [args, msg] of [
    [["stats", "--world", join(cacheDir, "bad.json")], /--world .*bad\.json: exposures\.min: min must not exceed max/],
    [["stats", "--world", join(cacheDir, "none.json")], /--world .*none\.json: no such file/],
    [["prepare", "--world", cfg, "--tokenizer", "gpt5"], /--tokenizer must be one of byte, r50k, cl100k, o200k, word or all/],
    [["prepare", "--world", cfg, "--epochs", "0"], /--epochs must be a positive integer/],
    [["prepare", "--epochs", "2"], /--epochs needs --world/],
    [["sample", "--world", cfg, "--kind", "poem"], /--kind must be one of bio, qa, mcq, sft, question, all/],
  ] as const) {
    const r = calib(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});
