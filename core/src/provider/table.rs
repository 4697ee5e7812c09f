//! The provider prefixes switchback knows, as data (spec §3.2): each prefix's wire protocol,
//! public API root and credential style. Written from each provider's public API
//! documentation; `docs/providers.md` renders the same table.

use crate::config::Interface;

/// How a provider expects its credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `x-api-key: <key>` plus `anthropic-version`.
    XApiKey,
    /// `api-key: <key>` (Azure OpenAI).
    ApiKey,
    /// No credential (the in-process mock).
    None,
}

/// What switchback knows about one provider prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderSpec {
    pub prefix: &'static str,
    /// The protocol the prefix implies when `provider_interface` is not given.
    pub interface: Interface,
    /// The public API root; `None` means a `base_url` is required.
    pub default_root: Option<&'static str>,
    pub auth: AuthStyle,
}

const fn spec(
    prefix: &'static str,
    interface: Interface,
    default_root: Option<&'static str>,
    auth: AuthStyle,
) -> ProviderSpec {
    ProviderSpec {
        prefix,
        interface,
        default_root,
        auth,
    }
}

use AuthStyle::{ApiKey, Bearer, XApiKey};
use Interface::{Anthropic, AzureOpenAi, Mock, OpenAi};

/// Every known prefix. The public roots come from each provider's API documentation; the
/// ones Plano serves without `base_url` match Plano's endpoint table (katanemo/plano
/// `config/envoy.template.yaml` and `cli/planoai/defaults.py`), except where a comment
/// says why not. Unknown prefixes are OpenAI-compatible unless `provider_interface`
/// says otherwise, authenticate with a bearer token, and require `base_url`.
pub const PROVIDERS: [ProviderSpec; 22] = [
    spec("openai", OpenAi, Some("https://api.openai.com/v1"), Bearer),
    spec(
        "anthropic",
        Anthropic,
        Some("https://api.anthropic.com/v1"),
        XApiKey,
    ),
    spec("mistral", OpenAi, Some("https://api.mistral.ai/v1"), Bearer),
    spec(
        "groq",
        OpenAi,
        Some("https://api.groq.com/openai/v1"),
        Bearer,
    ),
    spec(
        "deepseek",
        OpenAi,
        Some("https://api.deepseek.com/v1"),
        Bearer,
    ),
    spec("xai", OpenAi, Some("https://api.x.ai/v1"), Bearer),
    spec(
        "together_ai",
        OpenAi,
        Some("https://api.together.xyz/v1"),
        Bearer,
    ),
    spec(
        "gemini",
        OpenAi,
        Some("https://generativelanguage.googleapis.com/v1beta/openai"),
        Bearer,
    ),
    spec(
        "openrouter",
        OpenAi,
        Some("https://openrouter.ai/api/v1"),
        Bearer,
    ),
    spec(
        "moonshotai",
        OpenAi,
        Some("https://api.moonshot.ai/v1"),
        Bearer,
    ),
    spec(
        "zhipu",
        OpenAi,
        Some("https://open.bigmodel.cn/api/paas/v4"),
        Bearer,
    ),
    spec(
        "qwen",
        OpenAi,
        Some("https://dashscope-intl.aliyuncs.com/compatible-mode/v1"),
        Bearer,
    ),
    // Alibaba Cloud Model Studio's international OpenAI-compatible root, as for `qwen`.
    spec(
        "dashscope",
        OpenAi,
        Some("https://dashscope-intl.aliyuncs.com/compatible-mode/v1"),
        Bearer,
    ),
    // Xiaomi MiMo's OpenAI-compatible API (Plano's envoy.template.yaml cluster
    // api.xiaomimimo.com; platform.xiaomimimo.com docs).
    spec(
        "xiaomi",
        OpenAi,
        Some("https://api.xiaomimimo.com/v1"),
        Bearer,
    ),
    // DigitalOcean Gradient serverless inference (Plano's cluster inference.do-ai.run;
    // docs.digitalocean.com/products/gradient-ai-platform).
    spec(
        "digitalocean",
        OpenAi,
        Some("https://inference.do-ai.run/v1"),
        Bearer,
    ),
    // Vercel AI Gateway's OpenAI-compatible API (Plano's cli/planoai/defaults.py;
    // vercel.com/docs/ai-gateway).
    spec(
        "vercel",
        OpenAi,
        Some("https://ai-gateway.vercel.sh/v1"),
        Bearer,
    ),
    // Eden AI's v3 LLM endpoint, POST /v3/llm/chat/completions
    // (docs.edenai.co/v3/quickstart/first-llm-call). Plano's defaults.py names
    // https://api.edenai.run/v3, whose /v3/chat/completions Eden AI does not document.
    spec(
        "edenai",
        OpenAi,
        Some("https://api.edenai.run/v3/llm"),
        Bearer,
    ),
    spec("ollama", OpenAi, None, Bearer),
    // Plano's own hosted models (Arch-Function, Plano-Orchestrator): Plano requires a
    // `base_url` for them too.
    spec("plano", OpenAi, None, Bearer),
    spec("vllm", OpenAi, None, Bearer),
    spec("azure_openai", AzureOpenAi, None, ApiKey),
    spec("mock", Mock, None, AuthStyle::None),
];

/// The spec of a known prefix.
pub fn lookup(prefix: &str) -> Option<&'static ProviderSpec> {
    PROVIDERS.iter().find(|s| s.prefix == prefix)
}

/// The protocol a prefix implies (OpenAI for unknown prefixes).
pub fn interface_for_prefix(prefix: &str) -> Interface {
    lookup(prefix).map_or(OpenAi, |s| s.interface)
}

/// Whether an entry with this prefix must give a `base_url` (no public default; the mock
/// needs none).
pub fn requires_base_url(prefix: &str) -> bool {
    match lookup(prefix) {
        Some(s) => s.default_root.is_none() && s.interface != Mock,
        None => true,
    }
}

/// The credential style of an interface.
pub fn auth_style(interface: Interface) -> AuthStyle {
    match interface {
        OpenAi => Bearer,
        Anthropic => XApiKey,
        AzureOpenAi => ApiKey,
        Mock => AuthStyle::None,
    }
}

/// Prefixes Plano knows that need a flow switchback does not implement, with the reason
/// `check` gives (spec §10). They are refused, never sent somewhere as another protocol.
pub const UNSUPPORTED: [(&str, &str); 2] = [
    (
        "chatgpt",
        "a ChatGPT subscription sign-in (the Codex CLI's tokens and ChatGPT account headers)",
    ),
    (
        "amazon_bedrock",
        "Bedrock's Converse API and AWS SigV4 request signing",
    ),
];
