// What a run on a knowledge world needs beyond the Brown path (docs/trainer.md, "Knowledge
// world"): the world and tokenizer of a config or a checkpoint, its held-out questions as
// scored items (base format or chat format), and their evaluation into question records and
// metrics. The trainer (pretrain / SFT) and `calib eval` share it.
import type { GptModel } from "../engine/index.js";
import {
  CALIB_CHAT, buildWorld, worldQuestions, worldTokenizer, type ChatTemplate, type TextTokenizer, type World, type WorldConfig, type WorldQuestion,
} from "../data/index.js";
import type { Scoring } from "../records/index.js";
import { CheckpointError, type LoadedCheckpoint } from "./checkpoint.js";
import type { EvalConfig, WorldRunConfig } from "./config.js";
import { evaluateItems, worldItems, type ItemsEval, type ScoredItem } from "./scoring.js";

export const CHAT_TEMPLATES: Readonly<Record<WorldRunConfig["chatTemplate"], ChatTemplate>> = Object.freeze({ "calib-chat/1": CALIB_CHAT });

/** The records' split of world questions: the held-out people. */
export const WORLD_QUESTION_SPLIT = "held-out";

export interface WorldRun {
  world: World;
  tokenizer: TextTokenizer;
  template: ChatTemplate;
  scorings: Scoring[];
  /** the evaluation questions (held-out people; eval.maxQuestions of them, 0 = none) */
  questions: WorldQuestion[];
  /** scored items per scoring (first = the headline), base format or chat format */
  items(chat: boolean): ScoredItem[][];
  /** what a checkpoint records so that SFT and `calib eval` find the same world */
  checkpointInfo(): { world: WorldConfig; world_hash: string; chat_template: string };
}

/**
 * The world of a run: config.config, else the checkpoint's (SFT); the tokenizer by name. A
 * checkpoint pretrained on another world is an error (its facts and word ids differ).
 */
export function openWorldRun(cfg: WorldRunConfig, tokName: string, ev: Pick<EvalConfig, "maxQuestions">, init?: LoadedCheckpoint | null, initDir?: string): WorldRun {
  const fromCk = init?.config.training.world as WorldConfig | undefined;
  if (cfg.config === undefined && fromCk === undefined) {
    throw new CheckpointError(`checkpoint ${initDir ?? "?"} was not trained on a knowledge world; name one in world.config`);
  }
  const world = buildWorld(cfg.config ?? fromCk!);
  const ckHash = init?.config.training.world_hash;
  if (typeof ckHash === "string" && ckHash !== world.hash) {
    throw new CheckpointError(`checkpoint ${initDir ?? "?"} was pretrained on world ${ckHash}, this config names world ${world.hash}`);
  }
  const tok = worldTokenizer(world, tokName);
  const questions = ev.maxQuestions > 0 ? worldQuestions(world, { limit: ev.maxQuestions }) : [];
  const cache = new Map<boolean, ScoredItem[][]>();
  const template = CHAT_TEMPLATES[cfg.chatTemplate];
  return {
    world, tokenizer: tok, template, scorings: cfg.scoring, questions,
    items(chat: boolean) {
      let it = cache.get(chat);
      if (!it) cache.set(chat, (it = cfg.scoring.map((s) => worldItems(questions, s, tok, chat ? template : null))));
      return it;
    },
    checkpointInfo: () => ({ world: world.config, world_hash: world.hash, chat_template: template.name }),
  };
}

export type WorldQuestionEval = ItemsEval;

/** Scores the items of every scoring with the model; metrics as documented in docs/trainer.md. */
export function evaluateWorldQuestions(
  model: GptModel, items: ScoredItem[][], o: { epoch: number; padId: number; temperature: number; softcap: number | null },
): WorldQuestionEval {
  return evaluateItems(model, items, { ...o, split: WORLD_QUESTION_SPLIT });
}
