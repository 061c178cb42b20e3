// The contract between conversations and the models that read them. A chat template turns a
// list of messages into the exact text a model was trained on; the SFT data (backend/data) and
// the evaluation (backend/train) only ever see this interface, so our own GPTs (a built-in
// template over our tokenizers) and Hugging Face checkpoints (their tokenizer_config.json
// `chat_template`, rendered with @huggingface/jinja) are handled by the same code.
//
// Assistant-only loss is derived from prefixes, as open-instruct and TRL do: the assistant
// tokens of message k are the tokens of render(messages[0..k]) after those of
// render(messages[0..k-1], {addGenerationPrompt: true}). A template must therefore be
// prefix-stable: rendering a prefix of a conversation gives a prefix of the full rendering.

export type ChatRole = "system" | "user" | "assistant";

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface RenderOptions {
  /** append the header that starts an assistant turn (for generation / scoring), default false */
  addGenerationPrompt?: boolean;
}

export interface ChatTemplate {
  /** identifies the template (and its version) in run.json and record metadata */
  readonly name: string;
  /** the conversation as text; throws TypeError naming the message index on a bad message */
  render(messages: readonly ChatMessage[], options?: RenderOptions): string;
}
