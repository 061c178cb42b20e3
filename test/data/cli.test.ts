// `calib data`: exit codes and one-line errors for bad input, and the output of each subcommand.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
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
