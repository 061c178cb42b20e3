// Chat templates as the models ship them (Llama 3, Llama 3.1, Gemma 2), rendered to strings
// written out by hand; the prefix stability the SFT loss relies on; raise_exception and bad
// messages as TypeErrors; where a folder keeps its template; and the tokens of a rendering.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ChatMessage, ChatTemplate } from "../../backend/data/chat-template.js";
import { HfChatTemplate, HfFolderError, openHfFolder, readChatTemplateSource, strftime } from "../../backend/hf/index.js";
import {
  GEMMA2_TEMPLATE, LLAMA31_TEMPLATE, LLAMA3_TEMPLATE, gemmaTokenizerFiles, llama3TokenizerConfig, llama3TokenizerFiles, withTemp, writeTinyModel,
} from "./fixtures.js";

const llama3 = new HfChatTemplate(LLAMA3_TEMPLATE, { bosToken: "<|begin_of_text|>", eosToken: "<|eot_id|>" });
const gemma = new HfChatTemplate(GEMMA2_TEMPLATE, { bosToken: "<bos>", eosToken: "<eos>", padToken: "<pad>", unkToken: "<unk>" });
const CHAT: ChatMessage[] = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Hi" },
  { role: "assistant", content: "  Hello \n" },
];

test("Llama 3 Instruct template: headers, trimmed content, <|eot_id|>, BOS once", () => {
  assert.equal(
    llama3.render(CHAT),
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
      "<|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>",
  );
  assert.equal(
    llama3.render(CHAT.slice(1, 2), { addGenerationPrompt: true }),
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
  );
  assert.match(llama3.name, /^hf-chat\/sha256:[0-9a-f]{16}$/);
});

test("Llama 3.1 template: the system header with the knowledge date and a date that does not change by itself", () => {
  const t = new HfChatTemplate(LLAMA31_TEMPLATE, { bosToken: "<|begin_of_text|>" });
  const head = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n";
  assert.equal(
    t.render(CHAT),
    head + "Today Date: 26 Jul 2024\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
      "<|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>",
  );
  // no system message: an empty one after the dates; the generation prompt at the end
  assert.equal(
    t.render([{ role: "user", content: "Hi" }], { addGenerationPrompt: true }),
    head + "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
  );
  const dated = new HfChatTemplate(LLAMA31_TEMPLATE, { bosToken: "<|begin_of_text|>", now: new Date(Date.UTC(2025, 2, 5, 12)) });
  assert.ok(dated.render(CHAT).startsWith(head + "Today Date: 05 Mar 2025\n\n"));
  assert.equal(strftime(new Date(Date.UTC(2024, 11, 31, 23, 7)), "%Y-%m-%d %H:%M %B %b %%"), "2024-12-31 23:07 December Dec %");
});

test("Gemma 2 template: <start_of_turn>model, no system role, alternation enforced through raise_exception", () => {
  const chat = CHAT.slice(1);
  assert.equal(gemma.render(chat), "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n");
  assert.equal(gemma.render(chat.slice(0, 1), { addGenerationPrompt: true }), "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
  assert.throws(() => gemma.render(CHAT), (e: unknown) => e instanceof TypeError && /^chat template hf-chat\/sha256:[0-9a-f]+: System role not supported$/.test((e as Error).message));
  assert.throws(() => gemma.render([{ role: "user", content: "a" }, { role: "user", content: "b" }]), /Conversation roles must alternate/);
});

/** The ChatTemplate contract: render(prefix, generation prompt) is a prefix of render(prefix + assistant turn). */
function checkPrefixStable(t: ChatTemplate, chat: ChatMessage[]): void {
  for (let k = 1; k <= chat.length; k++) {
    if (chat[k - 1]!.role !== "assistant") continue;
    const before = t.render(chat.slice(0, k - 1), { addGenerationPrompt: true });
    const after = t.render(chat.slice(0, k));
    assert.ok(after.startsWith(before), `${t.name}: turn ${k - 1}`);
    assert.ok(after.length > before.length);
    for (let j = 1; j < k; j++) assert.ok(after.startsWith(t.render(chat.slice(0, j))), `${t.name}: prefix of ${j} messages`);
  }
}

test("the three templates are prefix-stable (assistant-only loss is derived from prefixes)", () => {
  const long: ChatMessage[] = [
    { role: "user", content: "2 + 2?" }, { role: "assistant", content: "4" },
    { role: "user", content: "and 3 + 3?" }, { role: "assistant", content: "6" },
  ];
  checkPrefixStable(llama3, [{ role: "system", content: "Be brief." }, ...long]);
  checkPrefixStable(new HfChatTemplate(LLAMA31_TEMPLATE, { bosToken: "<|begin_of_text|>" }), [{ role: "system", content: "Be brief." }, ...long]);
  checkPrefixStable(gemma, long);
});

test("bad messages and broken templates are TypeErrors that say where", () => {
  assert.throws(() => llama3.render([{ role: "tool" as "user", content: "x" }]), /messages\[0\]\.role must be system, user or assistant/);
  assert.throws(() => llama3.render([{ role: "user", content: "ok" }, { role: "user", content: 5 as unknown as string }]), /messages\[1\]\.content must be a string/);
  assert.throws(() => llama3.render("hi" as unknown as ChatMessage[]), TypeError);
  assert.throws(() => new HfChatTemplate("{% for %}"), (e: unknown) => e instanceof TypeError && /chat_template does not parse/.test((e as Error).message));
  assert.throws(() => new HfChatTemplate("{% for %}", { file: "/m/tokenizer_config.json" }), (e: unknown) => e instanceof HfFolderError && /^\/m\/tokenizer_config\.json: chat_template does not parse/.test((e as Error).message));
  assert.throws(() => new HfChatTemplate("{{ messages | nofilter }}").render([]), (e: unknown) => e instanceof TypeError && /^chat template /.test((e as Error).message));
});

test("a folder's template: tokenizer_config.json (string or named list), else chat_template.jinja; the tokenizer's special tokens", () => {
  withTemp("chat", (dir) => {
    writeTinyModel(dir, "llama", { files: llama3TokenizerFiles() });
    const f = openHfFolder(dir);
    assert.ok(f.chatTemplate);
    assert.match(f.chatTemplate!.name, /^hf:calib-hf-chat-\w+\/chat:sha256:[0-9a-f]{16}$/);
    const text = f.chatTemplate!.render([{ role: "user", content: "hello" }]);
    assert.equal(text, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|>");
    // the rendering already holds BOS: encode() adds nothing
    assert.deepEqual(Array.from(f.tokenizer.encode(text)), [265, 267, 117, 115, 101, 114, 268, 10, 10, 259, 269]);

    const cfgPath = join(dir, "tokenizer_config.json");
    writeFileSync(cfgPath, JSON.stringify({ ...llama3TokenizerConfig(), chat_template: [{ name: "default", template: GEMMA2_TEMPLATE }, { name: "tool_use", template: LLAMA3_TEMPLATE }] }));
    assert.equal(readChatTemplateSource(dir)!.source, GEMMA2_TEMPLATE);
    assert.equal(readChatTemplateSource(dir, "tool_use")!.source, LLAMA3_TEMPLATE);
    assert.throws(() => readChatTemplateSource(dir, "rag"), (e: unknown) => e instanceof HfFolderError && /chat_template has no template named 'rag' \(default, tool_use\)/.test((e as Error).message));

    const { chat_template: _c, ...noTemplate } = llama3TokenizerConfig();
    writeFileSync(cfgPath, JSON.stringify(noTemplate));
    assert.equal(openHfFolder(dir).chatTemplate, null, "a base model has no template");
    writeFileSync(join(dir, "chat_template.jinja"), GEMMA2_TEMPLATE);
    const j = readChatTemplateSource(dir)!;
    assert.deepEqual(j, { source: GEMMA2_TEMPLATE, file: join(dir, "chat_template.jinja") });
  });
});

test("a Gemma folder renders with its own <bos> and tokenizes the turn markers", () => {
  withTemp("gchat", (dir) => {
    writeTinyModel(dir, "gemma2", { files: gemmaTokenizerFiles() });
    const f = openHfFolder(dir);
    const text = f.chatTemplate!.render([{ role: "user", content: "hello world" }], { addGenerationPrompt: true });
    assert.equal(text, "<bos><start_of_turn>user\nhello world<end_of_turn>\n<start_of_turn>model\n");
    const u = 4 + 0x75, s = 4 + 0x73, nl = 4 + 0x0a, m = 4 + 0x6d;
    // <bos> <start_of_turn> u s e r \n hello ▁world <end_of_turn> \n <start_of_turn> m o d e l \n
    assert.deepEqual(Array.from(f.tokenizer.encode(text)), [2, 277, u, s, 262, 266, nl, 271, 276, 278, nl, 277, m, 264, 267, 262, 263, nl]);
  });
});
