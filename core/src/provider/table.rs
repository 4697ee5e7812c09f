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

/// Every known prefix. Unknown prefixes are OpenAI-compatible unless `provider_interface`
/// says otherwise, authenticate with a bearer token, and require `base_url`.
pub const PROVIDERS: [ProviderSpec; 16] = [
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
    spec("ollama", OpenAi, None, Bearer),
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
