// backend/train — training and evaluation of the engine's GPT model: run configs (zod),
// the training loop (pretrain / SFT, gradient accumulation, clipping, warm-up + cosine,
// AdamW, checkpoints and resume), evaluation records, safetensors checkpoints. docs/trainer.md.
export { parseTrainConfig, configHash, TrainConfigSchema, PretrainSchema, SftSchema, HfInitSchema, SftDataSchema, QuestionsSchema, type HfInit, type SftDataConfig, type QuestionsConfig, type TrainConfig, type TrainConfigInput, type PretrainConfig, type SftConfig, type LossConfig, type OptimConfig, type EvalConfig } from "./config.js";
export { train, trimSftBatch, sftStepBatches, type TrainOptions, type TrainResult } from "./trainer.js";
export { learningRate, type Schedule } from "./schedule.js";
export { evaluateTokens, evaluateQuestions, validationLoss, type TokenEval, type QuestionEval, type TokenEvalOptions, type QuestionEvalOptions } from "./evaluate.js";
export {
  saveCheckpoint, loadCheckpoint, loadIntoModel, readCheckpointConfig, namedSlices, stateDict, isLlamaCheckpoint, CheckpointError, CHECKPOINT_FORMAT,
  LLAMA_CHECKPOINT_FORMAT, HF_SUBDIR, TRAINER_STATE_FORMAT, type LoadedCheckpoint, type CheckpointConfig, type GptCheckpointConfig, type LlamaCheckpointConfig, type HfCheckpointInfo, type TrainerState, type SaveOptions, type NamedSlice } from "./checkpoint.js";
export { encodeSafetensors, decodeSafetensors, readSafetensors, writeSafetensors, type SafeTensor, type SafeFile } from "../io/safetensors.js";
export { evaluateCheckpointDir, evaluateModelQuestions, type EvalRunOptions, type EvalRunResult, type ModelEvalOptions } from "./eval-run.js";
export {
  openLlamaSource, isCheckpointDir, checkSoftcap, chatExamples, conversationLoss, openQuestions, questionsTask, llamaView, gptView,
  type LlamaSource, type ModelInfo, type QuestionSource, type ScoringView,
} from "./hf-run.js";
export { exportCheckpoint, type CheckpointExportOptions } from "./export.js";
export { gptScorer, scoreItems, evaluateItems, mcqItems, withPrefix, splitContinuation, worldItems, type ItemsEval, type McqItemOptions, type TokenScorer, type ScorerBatch, type ScoredItem, type ScoreOptions, type ScoreResult } from "./scoring.js";
export { openWorldRun, evaluateWorldQuestions, CHAT_TEMPLATES, WORLD_QUESTION_SPLIT, type WorldRun, type WorldQuestionEval } from "./world-run.js";
export { WorldRunSchema, type WorldRunConfig } from "./config.js";
