//! The one internal model of a turn that every API translates to and from.
//!
//! A request, a response and a stream are described once here; each API module decodes its
//! wire shape into these types and encodes them back, so N APIs need 2N converters rather
//! than N×N. The model keeps what the three APIs share (messages, content parts, tools,
//! sampling, usage, stop reasons) and, where a value is meaningful only to the API that
//! produced it (Anthropic thinking signatures, OpenAI encrypted reasoning), it says whose it
//! is, so an encoder never sends one provider's opaque token to another.

use serde_json::Value;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A system prompt (Chat `system`, Messages `system`, Responses `instructions`/`system`).
    System,
    /// OpenAI's `developer` role; encoders without it treat it as [`Role::System`].
    Developer,
    /// The user. Tool results travel in user messages (as Messages does).
    User,
    /// The model.
    Assistant,
}

/// Where an image or a document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An `http(s)://` URL.
    Url(String),
    /// Inline base64 data.
    Base64 { media_type: String, data: String },
    /// Plain text (Anthropic text documents).
    Text(String),
    /// A file uploaded to the client's provider (`file_id`): meaningful only there.
    FileId(String),
}

/// Which API produced an opaque reasoning token (a signature or encrypted content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningOrigin {
    /// Anthropic `thinking` (with `signature`) or `redacted_thinking` (with `data`).
    Anthropic,
    /// OpenAI Responses `reasoning` items (with `encrypted_content`).
    OpenAi,
}

/// A tool result's content: a string, or parts (text and images).
#[derive(Debug, Clone, PartialEq)]
pub enum ToolOutput {
    Text(String),
    Parts(Vec<Part>),
}

impl ToolOutput {
    /// The text of the output: the string, or its text parts concatenated.
    pub fn text(&self) -> String {
        match self {
            ToolOutput::Text(s) => s.clone(),
            ToolOutput::Parts(parts) => parts
                .iter()
                .filter_map(|p| match p {
                    Part::Text { text, .. } => Some(text.as_str()),
                    _ => None,
                })
                .collect(),
        }
    }
}

/// One piece of a message's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Text; `cache` is an Anthropic `cache_control` object, kept for Anthropic encoders.
    Text { text: String, cache: Option<Value> },
    /// An image.
    Image { source: Source },
    /// A document (PDF or text); `filename` when the client named it.
    Document {
        source: Source,
        filename: Option<String>,
    },
    /// A call the model made. `arguments` is JSON text, as Chat and Responses carry it.
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
    /// The result of a call, sent back by the client.
    ToolResult {
        call_id: String,
        output: ToolOutput,
        is_error: bool,
    },
    /// The model's reasoning: visible text (or summary) and the opaque token its API needs
    /// to accept it back (`signature`, redacted `data`, or `encrypted_content`).
    Thinking {
        text: String,
        signature: Option<String>,
        redacted: bool,
        origin: ReasoningOrigin,
        /// The Responses reasoning item id, for OpenAI-origin reasoning.
        item_id: Option<String>,
    },
    /// A refusal the model gave instead of an answer.
    Refusal(String),
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// The JSON schema of its arguments; `None` when the client gave none.
    pub parameters: Option<Value>,
    pub strict: Option<bool>,
}

/// How the model should use the tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    /// Must call some tool (Chat `required`, Messages `any`).
    Required,
    None,
    /// Must call this tool.
    Tool(String),
}

/// A structured output the client asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputFormat {
    /// Any JSON object (Chat `json_object`).
    JsonObject,
    /// JSON matching a schema.
    JsonSchema {
        name: Option<String>,
        schema: Value,
        strict: Option<bool>,
        description: Option<String>,
    },
}

/// A generation request, as every API can express it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Request {
    /// In conversation order; system messages stay where the client put them.
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)`: at most one tool call per turn.
    pub parallel_tool_calls: Option<bool>,
    /// The most tokens to generate, when the client set it.
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// Anthropic `top_k` (no OpenAI equivalent).
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub stream: bool,
    /// An end-user id (Chat `user`, Messages `metadata.user_id`, Responses `user`).
    pub user: Option<String>,
    pub format: Option<OutputFormat>,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
    /// Anthropic paused a long turn; the client may continue it.
    PauseTurn,
    Refusal,
    ContextWindowExceeded,
}

/// Token counts, split as Anthropic reports them: `input` excludes cached tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Input tokens neither read from nor written to the cache.
    pub input: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub output: u64,
    /// Output tokens spent on reasoning, when reported.
    pub reasoning: Option<u64>,
}

impl Usage {
    /// All input tokens (OpenAI's `prompt_tokens`/`input_tokens`).
    pub fn total_input(&self) -> u64 {
        self.input
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write)
    }
}

/// A complete (non-streamed) answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The upstream's id, or a stand-in naming the upstream API when it sent none.
    pub id: String,
    pub parts: Vec<Part>,
    pub stop: Option<StopReason>,
    pub stop_sequence: Option<String>,
    pub usage: Usage,
}

/// What kind of block a stream opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockKind {
    Text,
    Refusal,
    ToolCall {
        id: String,
        name: String,
    },
    Thinking {
        origin: ReasoningOrigin,
        redacted: bool,
    },
}

/// One step of a streamed answer. Blocks are named by an id the decoder assigns (unique
/// within the stream); several may be open at once, and deltas name their block.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The answer begins; `id` is the upstream's id when it gave one.
    Start {
        id: Option<String>,
    },
    BlockStart {
        block: usize,
        kind: BlockKind,
    },
    TextDelta {
        block: usize,
        text: String,
    },
    RefusalDelta {
        block: usize,
        text: String,
    },
    ToolArgsDelta {
        block: usize,
        json: String,
    },
    ThinkingDelta {
        block: usize,
        text: String,
    },
    /// Part of the opaque token of a thinking block.
    SignatureDelta {
        block: usize,
        signature: String,
    },
    BlockStop {
        block: usize,
    },
    /// Token counts so far; later values replace earlier ones field by field.
    Usage(UsageUpdate),
    /// The model stopped (the stream may still carry usage before it ends).
    Finish {
        stop: Option<StopReason>,
        stop_sequence: Option<String>,
    },
    /// An in-band upstream error. `message` is for people; `kind` is the error type the
    /// upstream named (`overloaded_error`, `server_error`, ...), if any; `raw` is the event's
    /// data as sent.
    Error {
        kind: Option<String>,
        message: String,
        raw: String,
    },
    /// The stream is complete.
    Done,
}

/// A partial usage report: only the fields the upstream sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageUpdate {
    pub input: Option<u64>,
    pub cache_read: Option<u64>,
    pub cache_write: Option<u64>,
    pub output: Option<u64>,
    pub reasoning: Option<u64>,
}

impl Usage {
    /// Applies the fields `update` carries.
    pub fn apply(&mut self, update: &UsageUpdate) {
        if let Some(v) = update.input {
            self.input = v;
        }
        if let Some(v) = update.cache_read {
            self.cache_read = v;
        }
        if let Some(v) = update.cache_write {
            self.cache_write = v;
        }
        if let Some(v) = update.output {
            self.output = v;
        }
        if update.reasoning.is_some() {
            self.reasoning = update.reasoning;
        }
    }
}
