// backend/data — the data pipeline of Calibration Lab: the Brown corpus, four tokenizers, the
// train / validation / test split, LM and SFT batches, and the multiple-choice tasks; a
// synthetic knowledge world (world/) with its word-level tokenizer; chat-format SFT data.
// This file is the public entry point; import from here, not from the modules. Details and
// the reasons behind each choice: docs/data.md.
//
// Typical use (trainer):
//
//   import { tokenizer, prepareSplits, lmBatches, generateQuestions, encodeQuestions, sftBatches } from "../data/index.js";
//   const tok = tokenizer("r50k");                       // { name, vocabSize: 50257, encode, decode, padId, … }
//   const data = prepareSplits({ tokenizer: tok });      // cached in data/cache/, ~1 s to build
//   for (const b of lmBatches(data.splits.train, { contextLength: 128, batchSize: 16, seed: 1, epoch: 0 })) {
//     b.inputs; b.targets;                               // Int32Array rows×T; b.docs / b.positions per target
//   }
//   const qs = generateQuestions({ task: "pos", split: "train", seed: 0 });
//   const ex = encodeQuestions(qs, tok);                 // promptIds, letterIds (A–D), answerId
//   for (const b of sftBatches(ex, { contextLength: 256, batchSize: 16, padId: tok.padId, mode: "pad" })) {
//     b.targets;                                         // IGNORE_INDEX (-100) except the answer letter
//   }
//
// Knowledge world and chat SFT:
//
//   const world = buildWorld("default");                 // people, attributes, split, exposures
//   const s = worldStream({ world, tokenizer: "word", stream: 0 });   // epoch 0, cached in data/cache/world/
//   lmBatches(s, { contextLength: 256, batchSize: 16 });
//   const ex = sftConversations(world).map((c) => encodeConversation(c.messages, CALIB_CHAT, tok, c.id));
//   chatSftBatches(ex, { contextLength: 256, batchSize: 16, padId: tok.padId, mode: "pack" });
//   worldQuestions(world);                               // held-out people, 4 options, exposures

// Corpus
export { GENRES, genreOf, loadCorpus, defaultCorpusDir, corpusFingerprint, parseDocument } from "./corpus.js";
export type { GenreInfo, Sentence, BrownDocument, Corpus } from "./corpus.js";
export { renderTokens, sentenceText, passageText, documentText, TEXT_FORMAT_VERSION } from "./text.js";
export type { Rendered } from "./text.js";

// Split
export { SPLITS, splitDocuments, VALIDATION_FRACTION, TEST_FRACTION } from "./split.js";
export type { SplitName, DocumentSplit } from "./split.js";

// Tokenizers
export { tokenizer, TOKENIZER_NAMES, isTokenizerName, resolveTokenizer } from "./tokenizers.js";
export type { TextTokenizer, Tokenizer, TokenizerName } from "./tokenizers.js";
export { wordTokenizer, wordPieces, WORD_SPECIALS } from "./word-tokenizer.js";
export type { WordTokenizer } from "./word-tokenizer.js";

// Encoded splits and their cache
export { prepareSplits, defaultCacheDir, sourceHashFor } from "./prepare.js";
export type { PrepareOptions, PreparedSplits } from "./prepare.js";
export { readTokenCache, TokenCacheError, docAt, cachePaths, CACHE_FORMAT } from "./cache.js";
export type { SplitTokens, DocSpan, TokenCacheHeader, TokenCacheProblem } from "./cache.js";

// LM batches
export { lmBatches, lmWindowCount } from "./lm.js";
export type { LmBatch, LmBatchOptions, LmEpoch, TokenStream } from "./lm.js";

// Multiple-choice tasks
export { generateQuestions, TASK_NAMES, checkTaskName, clozeVocabulary, BLANK } from "./tasks.js";
export type { Question, QuestionOptions, TaskName } from "./tasks.js";
export { COARSE_POS, COARSE_OF_TAG, coarsePos, baseTag } from "./tags.js";
export type { CoarsePos } from "./tags.js";
export { LETTERS, PROMPT_TEMPLATE, formatQuestionBlock, formatPrompt, formatExample, answerFormat, encodeQuestion, encodeQuestions } from "./prompt.js";
export type { AnswerFormat, EncodedQuestion } from "./prompt.js";

// SFT batches
export { sftBatches, sequenceBatches, IGNORE_INDEX } from "./sft.js";
export type { SequenceExample, SftBatch, SftEpoch, SftOptions } from "./sft.js";

// Chat format (the contract, the built-in template, assistant-only masks, JSONL readers)
export type { ChatMessage, ChatRole, ChatTemplate, RenderOptions } from "./chat-template.js";
export { CALIB_CHAT, CHAT_MARKERS, CHAT_ROLES, chatSftBatches, checkMessages, encodeConversation, parseChatJsonl, readChatJsonl } from "./chat.js";
export type { ChatExample, ChatRecord } from "./chat.js";

// Multiple-choice JSONL files ({question, choices, answer}: MMLU's shape) and lm-eval's prompts
export { parseMcqJsonl, readMcqJsonl, fewShotExamples, mcqPrompt, mcqMessages, mcqContinuations, choiceLetter, MAX_CHOICES } from "./mcq.js";
export type { McqQuestion, McqScoring } from "./mcq.js";

// Knowledge world
export * from "./world/index.js";

// Utilities
export { Rng } from "./rng.js";
