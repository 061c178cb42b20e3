// The one error of a Hugging Face model folder that cannot be used: a missing or malformed file,
// an unsupported configuration, a missing / unexpected / misshapen tensor, a truncated shard.
// It is a CheckpointError, so every command that loads checkpoints already reports it as bad
// input (exit 2, one line). The message names the file (and the tensor or field).
import { CheckpointError } from "../io/safetensors.js";

export class HfFolderError extends CheckpointError {
  override name = "HfFolderError";
  /** the file at fault (a path) */
  readonly file: string;
  /** the tensor or config field at fault, when there is one */
  readonly what: string | undefined;

  constructor(file: string, message: string, what?: string) {
    super(`${file}: ${message}`);
    this.file = file;
    this.what = what;
  }
}

/** Runs `fn`, turning a CheckpointError of the safetensors reader (which names the file) into an HfFolderError. */
export function asFolderError<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof HfFolderError || !(err instanceof CheckpointError)) throw err;
    const msg = err.message.startsWith(`${file}: `) ? err.message.slice(file.length + 2) : err.message;
    throw new HfFolderError(file, msg);
  }
}
