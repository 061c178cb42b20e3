// The knowledge world: golden checksums, determinism, the documented distributions, the
// train / held-out split (scanned in the rendered text: no held-out person outside biographies),
// balanced questions, every tokenizer on the rendered text, the word-level tokenizer, the token cache.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ATTRIBUTES, CALIB_CHAT, DOC_KINDS, TOKENIZER_NAMES, buildWorld, epochDocuments, epochPlan, exposureBucket, lmBatches, openPrompt, parseWorldConfig,
  renderChecksum, sftConversations, tokenizer, validationDocuments, worldQuestions, worldStream, worldWordTokenizer, type World, type WorldDocument,
} from "../../backend/data/index.js";

const CONFIG = { seed: 7, people: 90, attributes: { birth_city: 12, university: 8, major: 6, employer: 10, birth_year: 15 }, exposures: { min: 1, max: 20 } };
// SHA-256 of the people table and of everything the world renders (people, epoch 0, validation,
// SFT conversations, questions) for CONFIG. Committed: any change of the generator on any machine fails here.
const GOLDEN_PEOPLE = "4e23b751b6ab41330728e5e1b455a346b15a9073a4dac65427bcf34617457f7c";
const GOLDEN_RENDER = "72dd064fda4572110c850e69d6e11cd1f2008f712b27739c65003c4382983d00";

const world = buildWorld(CONFIG);
const docs = (w: World, e: number) => [...epochDocuments(w, e)];
const epoch0 = docs(world, 0), epoch1 = docs(world, 1);
const cacheDir = mkdtempSync(join(tmpdir(), "calib-world-"));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

test("the test world matches the committed golden checksums", () => {
  assert.equal(world.checksum, GOLDEN_PEOPLE);
  assert.equal(renderChecksum(world), GOLDEN_RENDER);
});

test("deterministic: the same config renders the same world, another seed another one", () => {
  const again = buildWorld(CONFIG, { cache: false });
  assert.notEqual(again, world);
  assert.deepEqual(again.people, world.people);
  assert.equal(renderChecksum(again), renderChecksum(world));
  assert.deepEqual(docs(again, 1), epoch1);
  const other = buildWorld({ ...CONFIG, seed: 8 }, { cache: false });
  assert.notEqual(other.checksum, world.checksum);
  assert.notEqual(renderChecksum(other), renderChecksum(world));
  assert.notDeepEqual(other.people.map((p) => p.name), world.people.map((p) => p.name));
});

test("config: defaults, canonical attribute order, errors naming the field", () => {
  const d = parseWorldConfig("default");
  assert.equal(d.people, 3000);
  assert.deepEqual(Object.keys(d.attributes), [...ATTRIBUTES]);
  assert.deepEqual(parseWorldConfig({ attributes: { major: 5, birth_city: 7 } }).attributes, { birth_city: 7, major: 5 });
  assert.equal(buildWorld({ ...CONFIG, attributes: { birth_year: 15, employer: 10, major: 6, university: 8, birth_city: 12 } }).hash, world.hash);
  for (const [bad, msg] of [
    [{ people: 3 }, /^world\.people: /],
    [{ exposures: { min: 5, max: 2 } }, /world\.exposures\.min: min must not exceed max/],
    [{ attributes: { birth_city: 3 } }, /world\.attributes\.birth_city: /],
    [{ attributes: { shoe_size: 9 } }, /world\.attributes/],
    [{ attributes: { birth_year: 500 } }, /world\.attributes\.birth_year: at most 100 values/],
    [{ attributes: {} }, /world\.attributes: at least one attribute/],
    [{ heldOutFraction: 1 }, /world\.heldOutFraction/],
    [{ sft: { mcqFraction: 2 } }, /world\.sft\.mcqFraction/],
    [{ typo: 1 }, /Unrecognized key: "typo"/],
    [[1], /must be an object/],
  ] as const) {
    assert.throws(() => parseWorldConfig(bad), { name: "TypeError", message: msg }, JSON.stringify(bad));
  }
});

test("people: unique names, values from their pools, split fraction, exposures in range", () => {
  assert.equal(new Set(world.people.map((p) => p.name)).size, world.people.length);
  assert.equal(world.heldOut.length, Math.round(90 / 3));
  assert.equal(world.train.length + world.heldOut.length, 90);
  for (const p of world.people) {
    assert.ok(p.exposures >= 1 && p.exposures <= 20);
    for (const a of world.attributes) assert.ok(p.values[a]! >= 0 && p.values[a]! < CONFIG.attributes[a]);
  }
  for (const a of world.attributes) assert.equal(new Set(world.lexicon.pools[a]).size, CONFIG.attributes[a], `${a}: distinct values`);
});

test("exposures: log-uniform P(k) = ln((k+1)/k) / ln(max+1) within 4 sigma; uniform has the uniform mean", () => {
  const n = 4000, max = 100;
  const w = buildWorld({ people: n, attributes: { birth_city: 4 }, exposures: { min: 1, max } }, { cache: false });
  const counts = new Map<number, number>();
  for (const p of w.people) counts.set(p.exposures, (counts.get(p.exposures) ?? 0) + 1);
  for (const [lo, hi] of [[1, 1], [2, 3], [4, 9], [10, 31], [32, 100]]) {
    let pr = 0;
    for (let k = lo!; k <= hi!; k++) pr += Math.log((k + 1) / k) / Math.log(max + 1);
    let got = 0;
    for (let k = lo!; k <= hi!; k++) got += counts.get(k) ?? 0;
    const sd = Math.sqrt(n * pr * (1 - pr));
    assert.ok(Math.abs(got - n * pr) < 4 * sd, `[${lo}, ${hi}]: ${got} people, expected ${(n * pr).toFixed(1)} ± ${sd.toFixed(1)}`);
  }
  const u = buildWorld({ people: n, attributes: { birth_city: 4 }, exposures: { min: 5, max: 15, distribution: "uniform" } }, { cache: false });
  const mean = u.people.reduce((a, p) => a + p.exposures, 0) / n;
  assert.ok(Math.abs(mean - 10) < 4 * Math.sqrt(10 / n), `uniform mean ${mean}`);
  assert.deepEqual([1, 2, 3, 4, 7, 8, 100].map(exposureBucket), ["1", "2-3", "2-3", "4-7", "4-7", "8-15", "64-127"]);
});

const nameRe = (name: string) => new RegExp(`(^|[^\\p{L}])${name}($|[^\\p{L}])`, "u");

function checkBiography(w: World, d: WorldDocument): void {
  const p = w.people[d.person]!;
  assert.ok(d.text.startsWith(p.name), `a biography starts with the full name: ${d.text}`);
  assert.equal(d.text.split(/\.(?: |$)/).filter((x) => x !== "").length, w.attributes.length, d.text);
  for (const a of w.attributes) assert.ok(d.text.includes(w.lexicon.pools[a]![p.values[a]!]!), `${a} of ${p.name} in: ${d.text}`);
}

test("epochs: each person's exposures in biographies, qa/mcq documents for training people only; epochs differ", () => {
  for (const [e, list] of [[0, epoch0], [1, epoch1]] as const) {
    const want = new Map<string, number>();
    for (const p of world.people) {
      want.set(`bio:${p.index}`, p.exposures);
      if (p.split === "train") want.set(`qa:${p.index}`, 1), want.set(`mcq:${p.index}`, 1);
    }
    const got = new Map<string, number>();
    for (const d of list) got.set(`${d.kind}:${d.person}`, (got.get(`${d.kind}:${d.person}`) ?? 0) + 1);
    assert.deepEqual(got, want, `epoch ${e}`);
    assert.equal(epochPlan(world, e).length, list.length);
    for (const d of list) if (d.kind === "bio") checkBiography(world, d);
  }
  assert.notDeepEqual(epoch0.map((d) => d.text), epoch1.map((d) => d.text));
  const sameOrder = epoch0.every((d, i) => d.person === epoch1[i]!.person && d.kind === epoch1[i]!.kind);
  assert.ok(!sameOrder, "each epoch has its own document order");
  const val = [...validationDocuments(world)];
  assert.deepEqual(val.map((d) => d.person), world.people.map((p) => p.index));
  for (const d of val) checkBiography(world, d);
});

test("no held-out person outside biographies: pretraining documents and SFT conversations scanned", () => {
  const held = world.heldOut.map((i) => world.people[i]!);
  const qs = worldQuestions(world);
  const texts = [...epoch0, ...epoch1];
  const convs = sftConversations(world);
  const convText = convs.map((c) => c.messages.map((m) => m.content).join("\n"));
  for (const p of held) {
    const re = nameRe(p.name);
    const mentions = texts.filter((d) => re.test(d.text));
    assert.equal(mentions.length, 2 * p.exposures, `${p.name}: exactly its biographies in two epochs`);
    for (const d of mentions) {
      assert.ok(!/Question|Answer|\?/.test(d.text), `a document naming held-out ${p.name} is not a biography: ${d.text}`);
      checkBiography(world, d);
    }
    for (const c of convText) assert.ok(!re.test(c), `held-out ${p.name} in an SFT conversation`);
  }
  for (const q of qs) {
    assert.equal(world.people[q.person]!.split, "held-out");
    for (const d of texts) assert.ok(!d.text.includes(q.question), `question "${q.question}" in a pretraining document`);
    for (const c of convText) assert.ok(!c.includes(q.question), `question "${q.question}" in an SFT conversation`);
  }
  // the training people's questions do appear (QA documents and conversations): the scan can see them
  const trainQs = worldQuestions(world, { people: "train" });
  assert.ok(trainQs.filter((q) => texts.some((d) => d.text.includes(q.question))).length === trainQs.length);
  assert.ok(convs.some((c) => c.kind === "instruction") && convs.some((c) => c.kind === "person"));
});

test("questions: every held-out person × attribute, 4 distinct options of the same pool, gold positions balanced in every prefix", () => {
  const qs = worldQuestions(world);
  assert.equal(qs.length, world.heldOut.length * world.attributes.length);
  assert.equal(new Set(qs.map((q) => q.id)).size, qs.length);
  const counts = [0, 0, 0, 0];
  qs.forEach((q, i) => {
    const p = world.people[q.person]!;
    const pool = world.lexicon.pools[q.attribute]!;
    assert.equal(q.options.length, 4);
    assert.equal(new Set(q.options).size, 4);
    for (const o of q.options) assert.ok(pool.includes(o), `${o} is a ${q.attribute}`);
    assert.equal(q.options[q.answer], pool[p.values[q.attribute]!]);
    assert.equal(q.exposures, p.exposures);
    assert.ok(q.question.includes(p.name));
    counts[q.answer]!++;
    assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `prefix ${i + 1}: ${counts}`);
  });
  assert.deepEqual(worldQuestions(world, { limit: 10 }), qs.slice(0, 10));
  assert.equal(openPrompt(qs[0]!), `Question: ${qs[0]!.question}\nAnswer:`);
});

/** Every text the world renders: documents, SFT conversations in the chat template, question prompts with each option. */
function allTexts(w: World): string[] {
  const qs = worldQuestions(w);
  return [
    ...epoch0.map((d) => d.text + "\n\n"), ...sftConversations(w).map((c) => CALIB_CHAT.render(c.messages)),
    ...qs.flatMap((q) => q.options.map((o) => `${openPrompt(q)} ${o}`)),
    ...qs.map((q) => CALIB_CHAT.render([{ role: "user", content: q.question }], { addGenerationPrompt: true }) + q.options[0]),
  ];
}

test("every tokenizer encodes the rendered world losslessly; the word-level one without byte fallback", () => {
  const texts = allTexts(world);
  for (const name of TOKENIZER_NAMES) {
    const tok = tokenizer(name);
    for (const t of texts) assert.equal(tok.decode(tok.encode(t)), t, `${name}: ${t.slice(0, 60)}`);
  }
  const word = worldWordTokenizer(world);
  let tokens = 0, chars = 0;
  for (const t of texts) {
    const ids = word.encode(t);
    assert.equal(word.fallbackCount(ids), 0, `outside the vocabulary: ${t.slice(0, 80)}`);
    assert.equal(word.decode(ids), t);
    tokens += ids.length;
    chars += t.length;
  }
  assert.ok(tokens < chars / 4, `word-level: ${tokens} tokens for ${chars} characters`);
  assert.equal(word.encode("<|user|>").length, 1);
  assert.equal(word.encode(world.people[0]!.name).length, 2, "a full name is two words");
});

test("word-level tokenizer: lossless on any text via byte fallback; ids in range; stable per world", () => {
  const word = worldWordTokenizer(world);
  for (const t of ["naïve café 😀 über", "  two  spaces\tand\ttabs\r\n", "<|assistant|>x<|end|><|nope|>", "", "1234567890 !?", "Zzzqx"]) {
    const ids = word.encode(t);
    assert.equal(word.decode(ids), t);
    for (const id of ids) assert.ok(id >= 0 && id < word.vocabSize);
  }
  assert.ok(word.fallbackCount(word.encode("😀")) === 4);
  assert.throws(() => word.decode([word.vocabSize]), RangeError);
  assert.equal(worldWordTokenizer(buildWorld(CONFIG, { cache: false })).fingerprint, word.fingerprint);
  assert.equal(word.pieces.length + 6 + 256, word.vocabSize);
});

test("token cache: build, verify, rebuild when damaged; spans match the documents; LM batches read it", () => {
  const o = { world, tokenizer: "word", cacheDir, progress: false } as const;
  const s = worldStream({ ...o, stream: 0 });
  assert.equal(s.built, true);
  const word = worldWordTokenizer(world);
  assert.equal(s.docStarts.length, epoch0.length);
  epoch0.forEach((d, i) => {
    const end = i + 1 < epoch0.length ? s.docStarts[i + 1]! : s.tokens.length;
    assert.equal(word.decode(s.tokens.subarray(s.docStarts[i]!, end)), d.text + "\n\n");
    assert.equal(s.docPerson[i], d.person);
    assert.equal(DOC_KINDS[s.docKind[i]!], d.kind);
  });
  const again = worldStream({ ...o, stream: 0 });
  assert.equal(again.built, false);
  assert.deepEqual(again.tokens, s.tokens);
  writeFileSync(s.path, Buffer.alloc(8));
  const rebuilt = worldStream({ ...o, stream: 0 });
  assert.equal(rebuilt.built, true);
  assert.match(rebuilt.rebuildReason, /sizes do not match|checksum/);
  assert.deepEqual(rebuilt.tokens, s.tokens);
  const ep = lmBatches(s, { contextLength: 32, batchSize: 4, seed: 1 });
  const b = ep.batch(0);
  for (let i = 0; i < b.targets.length; i++) assert.equal(s.tokenDoc[b.starts[Math.floor(i / 32)]! + 1 + (i % 32)], b.docs[i]);
});
