// backend/train — training and evaluation of the engine's GPT model: run configs (zod),
// the training loop (pretrain / SFT, gradient accumulation, clipping, warm-up + cosine,
// AdamW, checkpoints and resume), evaluation records, safetensors checkpoints. docs/trainer.md.
export { parseTrainConfig, configHash, TrainConfigSchema, PretrainSchema, SftSchema, type TrainConfig, type TrainConfigInput, type PretrainConfig, type SftConfig, type LossConfig, type OptimConfig, type EvalConfig } from "./config.js";
export { train, trimSftBatch, type TrainOptions, type TrainResult } from "./trainer.js";
export { learningRate, type Schedule } from "./schedule.js";
export { evaluateTokens, evaluateQuestions, validationLoss, type TokenEval, type QuestionEval, type TokenEvalOptions, type QuestionEvalOptions } from "./evaluate.js";
export { saveCheckpoint, loadCheckpoint, loadIntoModel, readCheckpointConfig, namedSlices, stateDict, CheckpointError, CHECKPOINT_FORMAT, TRAINER_STATE_FORMAT, type LoadedCheckpoint, type CheckpointConfig, type TrainerState, type SaveOptions, type NamedSlice } from "./checkpoint.js";
export { encodeSafetensors, decodeSafetensors, readSafetensors, writeSafetensors, type SafeTensor, type SafeFile } from "../io/safetensors.js";
export { evaluateCheckpointDir, type EvalRunOptions, type EvalRunResult } from "./eval-run.js";
export { gptScorer, scoreItems, splitContinuation, worldItems, type TokenScorer, type ScorerBatch, type ScoredItem, type ScoreOptions, type ScoreResult } from "./scoring.js";
export { openWorldRun, evaluateWorldQuestions, CHAT_TEMPLATES, WORLD_QUESTION_SPLIT, type WorldRun, type WorldQuestionEval } from "./world-run.js";
export { WorldRunSchema, type WorldRunConfig } from "./config.js";
