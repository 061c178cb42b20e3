// The CLI's shared option parser (backend/cli/args.ts): a negative number after a space is a
// value (`--ignore-index -100`, `--x -1.5e-3`), for every command; `--x=-1` keeps working; other
// dash-led words after an option stay an error; nothing after `--` is touched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { joinNegativeValues, parse } from "../../backend/cli/args.js";
import { UsageError } from "../../backend/cli/errors.js";

const OPTS = { x: { type: "string" }, n: { type: "string", short: "n" }, flag: { type: "boolean" } } as const;

test("negative numbers after a space are joined to their option", () => {
  assert.deepEqual(joinNegativeValues(["--x", "-1"], OPTS), ["--x=-1"]);
  assert.deepEqual(joinNegativeValues(["--x", "-1.5e-3", "pos"], OPTS), ["--x=-1.5e-3", "pos"]);
  assert.deepEqual(joinNegativeValues(["--x", "-.5", "-n", "-7"], OPTS), ["--x=-.5", "--n=-7"]);
  assert.deepEqual(joinNegativeValues(["--x=-1"], OPTS), ["--x=-1"]);
  // a boolean takes no value: -1 stays a word of its own; so does anything after --
  assert.deepEqual(joinNegativeValues(["--flag", "-1"], OPTS), ["--flag", "-1"]);
  assert.deepEqual(joinNegativeValues(["--", "--x", "-1"], OPTS), ["--", "--x", "-1"]);
  // not a number: left for parseArgs to reject
  assert.deepEqual(joinNegativeValues(["--x", "-foo"], OPTS), ["--x", "-foo"]);
  assert.deepEqual(joinNegativeValues(["--x", "-1-2"], OPTS), ["--x", "-1-2"]);
});

test("parse: values as given, ambiguous dash words still a UsageError", () => {
  const a = parse(["--x", "-100", "-n", "-2.5", "file"], OPTS);
  assert.equal(a.values.x, "-100");
  assert.equal(a.values.n, "-2.5");
  assert.deepEqual(a.positionals, ["file"]);
  assert.equal(parse(["--x=-3"], OPTS).values.x, "-3");
  assert.throws(() => parse(["--x", "-foo"], OPTS), (e: unknown) => e instanceof UsageError && /ambiguous/.test((e as Error).message));
  assert.throws(() => parse(["--x", "-1", "-1"], OPTS), (e: unknown) => e instanceof UsageError && /Unknown option '-1'/.test((e as Error).message));
});

const calib = (...args: string[]) => spawnSync(process.execPath, ["bin/calib.js", ...args], { encoding: "utf8", env: { ...process.env, CALIB_DATA_DIR: dataDir } });
const dataDir = mkdtempSync(join(tmpdir(), "calib-args-"));

test("every command reads a negative value after a space (and names the option when it is out of range)", (t) => {
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  for (const [args, pattern] of [
    [["metrics", "x.csv", "--bins", "-1"], /^calib metrics: --bins must be an integer in \[1, 1000000\] \(got '-1'\)$/],
    [["runs", "list", "--limit", "-5"], /^calib runs: --limit must be a positive integer \(got '-5'\)$/],
    [["runs", "cancel", "20990101-000000-abcdef", "--wait", "-1"], /^calib runs: --wait must be a number of seconds ≥ 0 \(got '-1'\)$/],
    [["sweep", "data/sweeps/study-ci.json", "--jobs", "-2", "--dry-run"], /^calib sweep: --jobs must be an integer in \[1, 64\] \(got '-2'\)$/],
    [["sweep", "data/sweeps/study-ci.json", "--deadline", "-1e3", "--dry-run"], /^calib sweep: --deadline must be a number of seconds > 0 \(got '-1e3'\)$/],
    [["data", "sample", "--task", "pos", "--n", "-3"], /^calib data: --n must be a positive integer \(got '-3'\)$/],
    [["serve", "--port", "-1"], /^calib serve: --port must be an integer in \[0, 65535\] \(got '-1'\)$/],
    [["train", "--config", "x.json", "--threads", "-4"], /^calib train: --threads must be an integer ≥ 0 \(got '-4'\)$|^calib train: --config x\.json: no such file$/],
    [["eval", "--checkpoint", "x", "--temperature", "-0.5"], /^calib eval: --temperature must be a number > 0 \(got '-0\.5'\)$/],
  ] as const) {
    const r = calib(...args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr.trim(), pattern, args.join(" "));
  }
});

test("calib sweep goes through the shared parser: --help, unknown options, --dry-run", () => {
  const help = calib("sweep", "--help");
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: calib sweep FILE \[options\]/);
  const bad = calib("sweep", "data/sweeps/study-ci.json", "--bogus");
  assert.equal(bad.status, 2);
  assert.match(bad.stderr.trim(), /^calib sweep: Unknown option '--bogus'/);
  const dry = calib("sweep", "data/sweeps/study-ci.json", "--dry-run", "--only", "byte");
  assert.equal(dry.status, 0, dry.stderr);
  assert.match(dry.stdout, /^study ci: 1 pretrained model\(s\), 2 SFT run\(s\)/);
  const none = calib("sweep", "data/sweeps/study-ci.json", "--dry-run", "--only", "^nothing$");
  assert.equal(none.status, 2);
  assert.match(none.stderr.trim(), /^calib sweep: --only \^nothing\$ matches no run$/);
});
