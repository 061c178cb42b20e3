// A synthetic knowledge world of fictional people (after Allen-Zhu & Li, Physics of Language
// Models 3.1): config, people, rendered documents / conversations / questions, token caches.
// docs/data.md, "Knowledge world".
export { ATTRIBUTES, DEFAULT_POOLS, FIRST_YEAR, WORLD_FORMAT, WorldConfigSchema, loadWorldConfig, parseWorldConfig, worldAttributes, worldConfigHash } from "./config.js";
export type { Attribute, WorldConfig, WorldConfigInput } from "./config.js";
export { LIST_WORDS, buildLexicon, namePoolSizes } from "./lexicon.js";
export type { Lexicon } from "./lexicon.js";
export { buildWorld, exposureBucket, personLine, attributeValue } from "./people.js";
export type { Person, PersonSplit, World } from "./people.js";
export {
  BIOGRAPHY_TEMPLATES, DOC_KINDS, DOC_SEPARATOR, QA_ANSWER, QA_PREFIX, QUESTION_TEMPLATES, biography, epochDocuments, epochPlan, fixedTexts,
  mcqDocument, mcqUserText, openPrompt, qaDocument, questionText, renderChecksum, sftConversations, validationDocuments, worldQuestions,
} from "./render.js";
export type { Conversation, DocKind, WorldDocument, WorldQuestion, WorldQuestionOptions } from "./render.js";
export { INSTRUCTION_KINDS, instructionTurn } from "./instructions.js";
export { formatWorldStats, worldStats } from "./stats.js";
export type { WorldStats } from "./stats.js";
export type { InstructionTurn } from "./instructions.js";
export {
  WORLD_CACHE_FORMAT, WORLD_TOKENIZERS, WorldCacheError, encodeDocuments, isWorld, isWorldTokenizerName, prepareWorld, worldStream, worldStreamLength,
  worldTokenizer, worldWordTokenizer,
} from "./prepare.js";
export type { PreparedWorld, StreamName, WorldStream, WorldStreamHeader, WorldStreamOptions, WorldTokenizerName } from "./prepare.js";
