// Chat-format SFT data: the built-in template's text, assistant-only masks by the prefix rule (a
// hand-computed example for bytes and for the word-level vocabulary; every BPE tokenizer on a
// world's conversations), SFT batches (pad / pack), and the JSONL readers' errors.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CALIB_CHAT, IGNORE_INDEX, TOKENIZER_NAMES, buildWorld, chatSftBatches, encodeConversation, parseChatJsonl, readChatJsonl, sftConversations, tokenizer,
  worldWordTokenizer, type ChatMessage, type ChatTemplate,
} from "../../backend/data/index.js";

const dir = mkdtempSync(join(tmpdir(), "calib-chat-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const CONV: ChatMessage[] = [
  { role: "system", content: "S" }, { role: "user", content: "hi" }, { role: "assistant", content: "yo" }, { role: "user", content: "?" }, { role: "assistant", content: "ok" },
];

test("calib-chat/1 renders the documented text and is prefix-stable", () => {
  assert.equal(CALIB_CHAT.render(CONV), "<|system|>\nS\n<|user|>\nhi\n<|assistant|>\nyo<|end|>\n<|user|>\n?\n<|assistant|>\nok<|end|>\n");
  assert.equal(CALIB_CHAT.render(CONV.slice(0, 2), { addGenerationPrompt: true }), "<|system|>\nS\n<|user|>\nhi\n<|assistant|>\n");
  const full = CALIB_CHAT.render(CONV);
  for (let k = 0; k <= CONV.length; k++) {
    assert.ok(full.startsWith(CALIB_CHAT.render(CONV.slice(0, k))));
    if (CONV[k]?.role === "assistant") assert.ok(full.startsWith(CALIB_CHAT.render(CONV.slice(0, k), { addGenerationPrompt: true })));
  }
  assert.throws(() => CALIB_CHAT.render([{ role: "user", content: "a" }, { role: "bot", content: "b" }] as never), { name: "TypeError", message: /messages\[1\]\.role must be one of system, user, assistant/ });
  assert.throws(() => CALIB_CHAT.render([{ role: "user", content: 3 }] as never), { name: "TypeError", message: /messages\[0\]\.content must be a string/ });
});

test("byte tokenizer: the mask and targets of a hand-computed conversation", () => {
  const e = encodeConversation(CONV, CALIB_CHAT, tokenizer("byte"), "c1");
  // <|system|>\nS\n = 13 bytes, <|user|>\nhi\n = 12 → 25, <|assistant|>\n = 14 → 39, yo<|end|>\n = 10 → 49,
  // <|user|>\n?\n = 11 → 60, <|assistant|>\n → 74, ok<|end|>\n → 84
  assert.equal(e.ids.length, 84);
  const want = new Uint8Array(84);
  want.fill(1, 39, 49);
  want.fill(1, 74, 84);
  assert.deepEqual(e.mask, want);
  assert.equal(e.inputs.length, 83);
  assert.deepEqual(Array.from(e.inputs), Array.from(Buffer.from(CALIB_CHAT.render(CONV)).subarray(0, 83)));
  for (let t = 0; t < 83; t++) assert.equal(e.targets[t], (t >= 38 && t < 48) || (t >= 73 && t < 83) ? e.ids[t + 1] : IGNORE_INDEX, `target ${t}`);
  assert.equal(Buffer.from(e.ids.subarray(39, 49)).toString(), "yo<|end|>\n");
});

test("word-level tokenizer: the markers are single special ids; the mask covers the reply, <|end|> and the newline", () => {
  const word = worldWordTokenizer(buildWorld({ people: 20, attributes: { birth_city: 5 } }));
  const msgs: ChatMessage[] = [{ role: "system", content: "He" }, { role: "user", content: "What is 3 plus 4?" }, { role: "assistant", content: "7" }];
  const e = encodeConversation(msgs, CALIB_CHAT, word, "w");
  const piece = (p: string) => {
    const ids = word.encode(p);
    assert.equal(ids.length, 1, `'${p}' is one token`);
    return ids[0]!;
  };
  const want = ["<|system|>", "\n", "He", "\n", "<|user|>", "\n", "What", " is", " 3", " plus", " 4", "?", "\n", "<|assistant|>", "\n", "7", "<|end|>", "\n"].map(piece);
  assert.deepEqual(Array.from(e.ids), want);
  assert.deepEqual(Array.from(e.mask), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
  assert.deepEqual(Array.from(e.targets).filter((x) => x !== IGNORE_INDEX), want.slice(15));
  assert.equal(word.fallbackCount(e.ids), 0);
});

test("every tokenizer: the masked tokens decode to exactly the replies and their end markers", () => {
  const world = buildWorld({ seed: 3, people: 40, attributes: { birth_city: 8, university: 6, birth_year: 10 }, sft: { mcqFraction: 0.4 } });
  const convs = sftConversations(world).slice(0, 25);
  for (const tok of [...TOKENIZER_NAMES.map((n) => tokenizer(n)), worldWordTokenizer(world)]) {
    for (const c of convs) {
      const e = encodeConversation(c.messages, CALIB_CHAT, tok, c.id);
      assert.equal(tok.decode(e.ids), CALIB_CHAT.render(c.messages));
      const runs: string[] = [];
      for (let t = 0; t < e.ids.length; t++) {
        if (!e.mask[t]) continue;
        const s = t;
        while (t < e.ids.length && e.mask[t]) t++;
        runs.push(tok.decode(e.ids.subarray(s, t)));
      }
      assert.deepEqual(runs, c.messages.filter((m) => m.role === "assistant").map((m) => `${m.content}<|end|>\n`), `${tok.name} ${c.id}`);
    }
  }
});

test("encodeConversation: no assistant message, or a template that is not prefix-stable, is an error", () => {
  assert.throws(() => encodeConversation([{ role: "user", content: "x" }], CALIB_CHAT, tokenizer("byte"), "c9"), { name: "TypeError", message: /c9: the conversation has no assistant message/ });
  const unstable: ChatTemplate = {
    name: "unstable",
    render: (m, o) => m.map((x, i) => `${x.role}:${x.content}${i === m.length - 1 && !o?.addGenerationPrompt ? "." : ";"}`).join("") + (o?.addGenerationPrompt ? "assistant:" : ""),
  };
  assert.throws(() => encodeConversation(CONV.slice(1), unstable, tokenizer("byte"), "c2"), { name: "TypeError", message: /c2: messages\[1\]: template unstable .* not prefix-stable/ });
});

test("chat SFT batches: pad and pack keep each example's (input, target) pairs; too-long examples skipped", () => {
  const tok = tokenizer("byte");
  const convs = [CONV, CONV.slice(1, 3), [{ role: "user", content: "x".repeat(200) }, { role: "assistant", content: "y" }]] as ChatMessage[][];
  const ex = convs.map((m, i) => encodeConversation(m, CALIB_CHAT, tok, `c${i}`));
  for (const mode of ["pad", "pack"] as const) {
    const T = 128;
    const ep = chatSftBatches(ex, { contextLength: T, batchSize: 2, padId: 0, mode, seed: 1 });
    assert.deepEqual(ep.skipped, ["c2"]);
    const seen = new Set<number>();
    let supervised = 0;
    for (const b of ep) {
      for (let i = 0; i < b.rows * T; i++) {
        const seg = b.segments[i]!;
        if (seg < 0) {
          assert.equal(b.targets[i], IGNORE_INDEX);
          assert.equal(b.inputs[i], 0);
          continue;
        }
        seen.add(seg);
        const k = b.positions[i]!;
        assert.equal(b.inputs[i], ex[seg]!.inputs[k]);
        assert.equal(b.targets[i], ex[seg]!.targets[k]);
        if (b.targets[i] !== IGNORE_INDEX) supervised++;
      }
    }
    assert.deepEqual([...seen].sort(), [0, 1]);
    assert.equal(supervised, 20 + 10, `${mode}: the two replies of c0 (10 + 10 tokens) and one of c1`);
    assert.equal(ep.numRows, mode === "pad" ? 2 : 1);
  }
});

test("JSONL: messages, ShareGPT and prompt–completion lines; errors name the line and the field", () => {
  const text = [
    JSON.stringify({ id: "a", messages: [{ role: "user", content: "q" }, { role: "assistant", content: "a" }] }),
    "",
    JSON.stringify({ conversations: [{ from: "system", value: "s" }, { from: "human", value: "q" }, { from: "gpt", value: "a" }] }),
    JSON.stringify({ prompt: "p", completion: "c" }),
    JSON.stringify({ prompt: [{ role: "user", content: "p" }], completion: [{ role: "assistant", content: "c" }] }),
  ].join("\n");
  const recs = parseChatJsonl(text, "f.jsonl");
  assert.deepEqual(recs.map((r) => r.line), [1, 3, 4, 5]);
  assert.deepEqual(recs[1]!.messages, [{ role: "system", content: "s" }, { role: "user", content: "q" }, { role: "assistant", content: "a" }]);
  assert.deepEqual(recs[2]!.messages, [{ role: "user", content: "p" }, { role: "assistant", content: "c" }]);
  assert.deepEqual(recs[3]!.messages, recs[2]!.messages);
  const ok = JSON.stringify({ prompt: "p", completion: "c" });
  for (const [bad, msg] of [
    [`${ok}\n{"messages": [`, /^f\.jsonl:2: not valid JSON/],
    [JSON.stringify({ messages: [{ role: "user", content: "q" }, { role: "bot", content: "a" }] }), /^f\.jsonl:1: messages\[1\]\.role must be one of system, user, assistant \(got "bot"\)/],
    [JSON.stringify({ messages: [{ role: "user", content: 5 }] }), /^f\.jsonl:1: messages\[0\]\.content must be a string/],
    [JSON.stringify({ messages: [{ role: "user", content: "q" }] }), /^f\.jsonl:1: the conversation has no assistant message/],
    [JSON.stringify({ messages: [] }), /^f\.jsonl:1: the conversation is empty/],
    [JSON.stringify({ prompt: "p" }), /^f\.jsonl:1: completion is missing/],
    [JSON.stringify({ completion: "c" }), /^f\.jsonl:1: prompt is missing/],
    [JSON.stringify({ prompt: 1, completion: "c" }), /^f\.jsonl:1: prompt must be a string or a list of \{role, content\}/],
    [JSON.stringify({ conversations: [{ from: "robot", value: "x" }] }), /^f\.jsonl:1: conversations\[0\]\.from must be one of system, human, gpt/],
    [JSON.stringify({ text: "x" }), /^f\.jsonl:1: needs "messages"/],
    ["[1, 2]", /^f\.jsonl:1: each line must be a JSON object/],
  ] as const) {
    assert.throws(() => parseChatJsonl(bad, "f.jsonl"), { name: "TypeError", message: msg }, bad);
  }
  const path = join(dir, "sft.jsonl");
  writeFileSync(path, `${ok}\n${JSON.stringify({ prompt: "p", completion: 3 })}\n`);
  assert.throws(() => readChatJsonl(path), { message: new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:2: completion must be a string`) });
  assert.throws(() => readChatJsonl(join(dir, "missing.jsonl")), { message: /missing\.jsonl: no such file/ });
});
