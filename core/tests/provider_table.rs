//! One test per provider prefix: where requests go and how they authenticate.

use bytes::Bytes;
use http::HeaderMap;
use switchback_core::config::{load_str, Provider};
use switchback_core::provider::table::{requires_base_url, PROVIDERS};
use switchback_core::provider::{build_request, endpoint, AZURE_API_VERSION};

fn provider(entry: &str) -> Provider {
    let yaml = format!("version: v0.3.0\nmodel_providers:\n{entry}");
    let loaded = load_str(&yaml, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    loaded.config.providers.into_iter().next().unwrap()
}

/// The URL and the credential header of the request built for `entry`.
fn target(entry: &str) -> (String, Option<(String, String)>) {
    let p = provider(entry);
    let ep = endpoint(&p).unwrap().expect("not a mock");
    let req = build_request(&p, &ep, Bytes::from_static(b"{}"), &HeaderMap::new(), false);
    let url = format!("{}{}", req.origin, req.path_and_query);
    let auth = ["authorization", "x-api-key", "api-key"]
        .iter()
        .find_map(|h| {
            req.headers
                .get(*h)
                .map(|v| ((*h).to_owned(), v.to_str().unwrap().to_owned()))
        });
    (url, auth)
}

fn public(prefix: &str, url: &str) {
    let (got, auth) = target(&format!(
        "  - model: {prefix}/some-model\n    access_key: KEY\n"
    ));
    assert_eq!(got, url, "{prefix}");
    let auth = auth.expect("a credential header");
    if prefix == "anthropic" {
        assert_eq!(auth, ("x-api-key".into(), "KEY".into()));
    } else {
        assert_eq!(
            auth,
            ("authorization".into(), "Bearer KEY".into()),
            "{prefix}"
        );
    }
}

#[test]
fn openai() {
    public("openai", "https://api.openai.com:443/v1/chat/completions");
}
#[test]
fn anthropic() {
    public("anthropic", "https://api.anthropic.com:443/v1/messages");
    let p = provider("  - model: anthropic/claude\n    access_key: K\n");
    let ep = endpoint(&p).unwrap().unwrap();
    let req = build_request(&p, &ep, Bytes::new(), &HeaderMap::new(), true);
    assert_eq!(req.headers["anthropic-version"], "2023-06-01");
}
#[test]
fn mistral() {
    public("mistral", "https://api.mistral.ai:443/v1/chat/completions");
}
#[test]
fn groq() {
    public(
        "groq",
        "https://api.groq.com:443/openai/v1/chat/completions",
    );
}
#[test]
fn deepseek() {
    public(
        "deepseek",
        "https://api.deepseek.com:443/v1/chat/completions",
    );
}
#[test]
fn xai() {
    public("xai", "https://api.x.ai:443/v1/chat/completions");
}
#[test]
fn together_ai() {
    public(
        "together_ai",
        "https://api.together.xyz:443/v1/chat/completions",
    );
}
#[test]
fn gemini() {
    public(
        "gemini",
        "https://generativelanguage.googleapis.com:443/v1beta/openai/chat/completions",
    );
}
#[test]
fn openrouter() {
    public(
        "openrouter",
        "https://openrouter.ai:443/api/v1/chat/completions",
    );
}
#[test]
fn moonshotai() {
    public(
        "moonshotai",
        "https://api.moonshot.ai:443/v1/chat/completions",
    );
}
#[test]
fn zhipu() {
    public(
        "zhipu",
        "https://open.bigmodel.cn:443/api/paas/v4/chat/completions",
    );
}
#[test]
fn qwen() {
    public(
        "qwen",
        "https://dashscope-intl.aliyuncs.com:443/compatible-mode/v1/chat/completions",
    );
}

#[test]
fn dashscope() {
    public(
        "dashscope",
        "https://dashscope-intl.aliyuncs.com:443/compatible-mode/v1/chat/completions",
    );
}
#[test]
fn xiaomi() {
    public(
        "xiaomi",
        "https://api.xiaomimimo.com:443/v1/chat/completions",
    );
}
#[test]
fn digitalocean() {
    public(
        "digitalocean",
        "https://inference.do-ai.run:443/v1/chat/completions",
    );
}
#[test]
fn vercel() {
    public(
        "vercel",
        "https://ai-gateway.vercel.sh:443/v1/chat/completions",
    );
}
#[test]
fn edenai() {
    public(
        "edenai",
        "https://api.edenai.run:443/v3/llm/chat/completions",
    );
}

#[test]
fn plano_interfaces_are_openai_compatible() {
    for iface in [
        "plano",
        "edenai",
        "xiaomi",
        "digitalocean",
        "vercel",
        "openrouter",
    ] {
        let (url, auth) = target(&format!(
            "  - model: corp/m\n    provider_interface: {iface}\n    base_url: https://llm.corp.example/v1\n    access_key: K\n"
        ));
        assert_eq!(
            url, "https://llm.corp.example:443/v1/chat/completions",
            "{iface}"
        );
        assert_eq!(auth, Some(("authorization".into(), "Bearer K".into())));
    }
}

#[test]
fn http_host_sets_the_host_header_and_endpoint_is_base_url() {
    let p = provider("  - model: openai/gpt-4o\n    base_url: https://10.1.2.3:8443/v1\n    http_host: api.internal.example\n");
    let ep = endpoint(&p).unwrap().unwrap();
    let req = build_request(&p, &ep, Bytes::new(), &HeaderMap::new(), false);
    assert_eq!(req.headers["host"], "api.internal.example");
    assert_eq!(
        req.origin.host, "10.1.2.3",
        "the connection still goes to the URL"
    );
    for (written, url) in [
        (
            "api.example.com",
            "https://api.example.com:443/v1/chat/completions",
        ),
        (
            "api.example.com:443",
            "https://api.example.com:443/v1/chat/completions",
        ),
        (
            "127.0.0.1:11434",
            "http://127.0.0.1:11434/v1/chat/completions",
        ),
        (
            "http://127.0.0.1:9000/api",
            "http://127.0.0.1:9000/api/chat/completions",
        ),
    ] {
        let (got, _) = target(&format!(
            "  - model: ollama/llama3\n    endpoint: {written}\n"
        ));
        assert_eq!(got, url, "{written}");
    }
}

#[test]
fn ollama_needs_base_url_and_gets_v1() {
    assert!(requires_base_url("ollama"));
    let (url, auth) = target("  - model: ollama/llama3\n    base_url: http://127.0.0.1:11434\n");
    assert_eq!(url, "http://127.0.0.1:11434/v1/chat/completions");
    assert_eq!(auth, None, "no key, no credential header");
}

#[test]
fn vllm_and_unknown_prefixes_need_base_url() {
    assert!(requires_base_url("vllm"));
    assert!(requires_base_url("my_own_server"));
    let (url, _) =
        target("  - model: my_own_server/m\n    base_url: http://10.0.0.5:8000/api/v2\n");
    assert_eq!(url, "http://10.0.0.5:8000/api/v2/chat/completions");
    let (url, auth) = target(
        "  - model: corp/claude\n    provider_interface: anthropic\n    base_url: https://llm.corp.example/anthropic\n    access_key: K\n",
    );
    assert_eq!(url, "https://llm.corp.example:443/anthropic/messages");
    assert_eq!(auth, Some(("x-api-key".into(), "K".into())));
}

#[test]
fn azure_uses_deployment_paths_and_api_key() {
    assert!(requires_base_url("azure_openai"));
    let (url, auth) = target(
        "  - model: azure_openai/gpt-4o-prod\n    base_url: https://myres.openai.azure.com\n    access_key: AZ\n",
    );
    assert_eq!(
        url,
        format!("https://myres.openai.azure.com:443/openai/deployments/gpt-4o-prod/chat/completions?api-version={AZURE_API_VERSION}")
    );
    assert_eq!(auth, Some(("api-key".into(), "AZ".into())));
    let (url, _) = target(
        "  - model: azure_openai/gpt-4o\n    base_url: https://myres.openai.azure.com/openai/v1\n    access_key: AZ\n",
    );
    assert_eq!(
        url,
        "https://myres.openai.azure.com:443/openai/v1/chat/completions"
    );
}

#[test]
fn base_url_path_replaces_the_default_root() {
    let (url, _) = target(
        "  - model: openai/gpt-4o\n    base_url: https://host/openai/v1\n    access_key: K\n",
    );
    assert_eq!(url, "https://host:443/openai/v1/chat/completions");
    let (url, _) = target(
        "  - model: openai/gpt-4o\n    base_url: http://127.0.0.1:8080\n    access_key: K\n",
    );
    assert_eq!(url, "http://127.0.0.1:8080/v1/chat/completions");
}

#[test]
fn credentials_and_headers() {
    let p = provider(
        "  - model: openai/gpt-4o\n    access_key: SECRET\n    headers:\n      x-team: blue\n",
    );
    let ep = endpoint(&p).unwrap().unwrap();
    let mut client = HeaderMap::new();
    client.insert("authorization", "Bearer client-token".parse().unwrap());
    let req = build_request(&p, &ep, Bytes::new(), &client, false);
    assert_eq!(
        req.headers["authorization"], "Bearer SECRET",
        "never the client's"
    );
    assert_eq!(req.headers["x-team"], "blue");
    assert!(
        !format!("{p:?}").contains("SECRET"),
        "keys never show in Debug"
    );

    let p = provider("  - model: openai/gpt-4o\n    passthrough_auth: true\n");
    let req = build_request(&p, &ep, Bytes::new(), &client, false);
    assert_eq!(req.headers["authorization"], "Bearer client-token");
}

#[test]
fn every_table_entry_is_covered() {
    let prefixes: Vec<&str> = PROVIDERS.iter().map(|s| s.prefix).collect();
    assert_eq!(
        prefixes,
        [
            "openai",
            "anthropic",
            "mistral",
            "groq",
            "deepseek",
            "xai",
            "together_ai",
            "gemini",
            "openrouter",
            "moonshotai",
            "zhipu",
            "qwen",
            "dashscope",
            "xiaomi",
            "digitalocean",
            "vercel",
            "edenai",
            "ollama",
            "plano",
            "vllm",
            "azure_openai",
            "mock"
        ]
    );
    let p = provider("  - model: mock/ok\n");
    assert!(
        endpoint(&p).unwrap().is_none(),
        "the mock is answered in-process"
    );
}
