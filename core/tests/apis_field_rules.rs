//! Every field rule the real clients depend on is written in `docs/apis.md` and does what
//! the doc says: each case names a pair's section, a field, the rule word of its row
//! (kept, mapped, dropped, rejected, ignored) and a request that uses the field.

use bytes::Bytes;
use serde_json::Value;
use switchback_core::apis::{ApiRequest, ClientApi, Target, UpstreamApi};

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/apis.md");
    std::fs::read_to_string(path).expect("docs/apis.md")
}

/// The rule cell of `field`'s row in the section whose heading starts with `section`.
fn rule_in_doc(doc: &str, section: &str, field: &str) -> String {
    let start = doc
        .find(&format!("## {section}"))
        .unwrap_or_else(|| panic!("no section `{section}`"));
    let body = &doc[start + 3..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    let needle = if field.contains('`') {
        field.to_owned()
    } else {
        format!("`{field}`")
    };
    for line in body.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() >= 3 && cells[1].contains(&needle) {
            return cells[2].to_owned();
        }
    }
    panic!("no row for `{field}` in `{section}`")
}

#[derive(Clone, Copy)]
enum Rule {
    Kept,
    Mapped,
    Dropped,
    Rejected,
    Ignored,
}

impl Rule {
    fn word(self) -> &'static str {
        match self {
            Rule::Kept => "kept",
            Rule::Mapped => "mapped",
            Rule::Dropped => "dropped",
            Rule::Rejected => "rejected",
            Rule::Ignored => "ignored",
        }
    }
}

struct Case {
    section: &'static str,
    field: &'static str,
    rule: Rule,
    client: ClientApi,
    upstream: UpstreamApi,
    body: &'static str,
    /// For dropped and ignored fields: text that must not appear in the upstream body.
    /// For kept and mapped ones: text that must appear.
    evidence: &'static str,
}

const MC: &str = "Messages → OpenAI Chat";
const RC: &str = "Responses → OpenAI Chat";
const RA: &str = "Responses → Anthropic Messages";

fn cases() -> Vec<Case> {
    use ClientApi::{Messages as M, Responses as R};
    use UpstreamApi::{ChatCompletions as CHAT, Messages as ANTHROPIC};
    let m = |field, rule, body, evidence| Case {
        section: MC,
        field,
        rule,
        client: M,
        upstream: CHAT,
        body,
        evidence,
    };
    let r = |field, rule, body, evidence| Case {
        section: RC,
        field,
        rule,
        client: R,
        upstream: CHAT,
        body,
        evidence,
    };
    let ra = |field, rule, body, evidence| Case {
        section: RA,
        field,
        rule,
        client: R,
        upstream: ANTHROPIC,
        body,
        evidence,
    };
    vec![
        m(
            "max_tokens",
            Rule::Mapped,
            r#"{"model":"c","max_tokens":64000,"messages":[{"role":"user","content":"x"}]}"#,
            r#""max_tokens":64000"#,
        ),
        m(
            "cache_control",
            Rule::Dropped,
            r#"{"model":"c","max_tokens":5,"cache_control":{"type":"ephemeral"},"messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}]}]}"#,
            "cache_control",
        ),
        m(
            "thinking",
            Rule::Dropped,
            r#"{"model":"c","max_tokens":5,"thinking":{"type":"adaptive"},"messages":[{"role":"user","content":"x"}]}"#,
            "adaptive",
        ),
        m(
            "output_config.effort",
            Rule::Dropped,
            r#"{"model":"c","max_tokens":5,"output_config":{"effort":"high"},"messages":[{"role":"user","content":"x"}]}"#,
            "effort",
        ),
        m(
            "output_config.format",
            Rule::Mapped,
            r#"{"model":"c","max_tokens":5,"output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}},"messages":[{"role":"user","content":"x"}]}"#,
            r#""response_format""#,
        ),
        m(
            "context_management",
            Rule::Dropped,
            r#"{"model":"c","max_tokens":5,"context_management":{"edits":[{"type":"clear_thinking_20251015"}]},"messages":[{"role":"user","content":"x"}]}"#,
            "clear_thinking",
        ),
        m(
            "top_k",
            Rule::Dropped,
            r#"{"model":"c","max_tokens":5,"top_k":40,"messages":[{"role":"user","content":"x"}]}"#,
            "top_k",
        ),
        m(
            "service_tier",
            Rule::Dropped,
            r#"{"model":"c","max_tokens":5,"service_tier":"auto","container":"ct_1","inference_geo":"us","messages":[{"role":"user","content":"x"}]}"#,
            "ct_1",
        ),
        m(
            "metadata.user_id",
            Rule::Mapped,
            r#"{"model":"c","max_tokens":5,"metadata":{"user_id":"u-9"},"messages":[{"role":"user","content":"x"}]}"#,
            r#""user":"u-9""#,
        ),
        m(
            "stop_sequences",
            Rule::Mapped,
            r#"{"model":"c","max_tokens":5,"stop_sequences":["END"],"messages":[{"role":"user","content":"x"}]}"#,
            r#""stop":["END"]"#,
        ),
        m(
            "temperature",
            Rule::Kept,
            r#"{"model":"c","max_tokens":5,"temperature":0.5,"messages":[{"role":"user","content":"x"}]}"#,
            r#""temperature":0.5"#,
        ),
        m(
            "stream",
            Rule::Kept,
            r#"{"model":"c","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}]}"#,
            r#""include_usage":true"#,
        ),
        m(
            "`thinking`, `redacted_thinking`",
            Rule::Dropped,
            r#"{"model":"c","max_tokens":5,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"SIG-1"},{"type":"redacted_thinking","data":"RED-1"},{"type":"text","text":"y"}]},{"role":"user","content":"z"}]}"#,
            "SIG-1",
        ),
        m(
            "tool_use",
            Rule::Mapped,
            r#"{"model":"c","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}]}"#,
            r#""tool_call_id":"t1""#,
        ),
        m(
            "tools",
            Rule::Mapped,
            r#"{"model":"c","max_tokens":5,"tools":[{"name":"Bash","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"x"}]}"#,
            r#""name":"Bash""#,
        ),
        m(
            "bash_*",
            Rule::Dropped,
            r#"{"model":"c","max_tokens":5,"tools":[{"type":"bash_20250124","name":"bash"},{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"x"}]}"#,
            "web_search",
        ),
        m(
            "server_tool_use",
            Rule::Dropped,
            r#"{"model":"c","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"server_tool_use","id":"srv_1","name":"web_search","input":{}},{"type":"text","text":"y"}]},{"role":"user","content":"x"}]}"#,
            "srv_1",
        ),
        m(
            "tool_choice",
            Rule::Mapped,
            r#"{"model":"c","max_tokens":5,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"},"messages":[{"role":"user","content":"x"}]}"#,
            r#""tool_choice":"required""#,
        ),
        m(
            "mcp_servers",
            Rule::Dropped,
            r#"{"model":"c","max_tokens":5,"mcp_servers":[{"type":"url","url":"https://mcp.example/x","name":"ex"}],"messages":[{"role":"user","content":"x"}]}"#,
            "mcp.example",
        ),
        r(
            "instructions",
            Rule::Mapped,
            r#"{"model":"g","instructions":"Be Codex.","input":"x"}"#,
            r#""content":"Be Codex.","role":"system""#,
        ),
        r(
            "previous_response_id",
            Rule::Rejected,
            r#"{"model":"g","input":"x","previous_response_id":"resp_1"}"#,
            "",
        ),
        r(
            "background: true",
            Rule::Rejected,
            r#"{"model":"g","input":"x","background":true}"#,
            "",
        ),
        r(
            "prompt",
            Rule::Rejected,
            r#"{"model":"g","input":"x","prompt":{"id":"pmpt_1"}}"#,
            "",
        ),
        r(
            "item_reference",
            Rule::Rejected,
            r#"{"model":"g","input":[{"type":"item_reference","id":"msg_1"}]}"#,
            "",
        ),
        r(
            "input_audio",
            Rule::Rejected,
            r#"{"model":"g","input":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"","format":"wav"}}]}]}"#,
            "",
        ),
        r(
            "reasoning",
            Rule::Dropped,
            r#"{"model":"g","input":"x","reasoning":{"effort":"high","summary":"auto"}}"#,
            "effort",
        ),
        r(
            "include",
            Rule::Dropped,
            r#"{"model":"g","input":"x","include":["reasoning.encrypted_content"]}"#,
            "encrypted",
        ),
        r(
            "store",
            Rule::Ignored,
            r#"{"model":"g","input":"x","store":true}"#,
            "store",
        ),
        r(
            "prompt_cache_key",
            Rule::Dropped,
            r#"{"model":"g","input":"x","prompt_cache_key":"019a","client_metadata":{"originator":"codex"}}"#,
            "019a",
        ),
        r(
            "text.verbosity",
            Rule::Dropped,
            r#"{"model":"g","input":"x","text":{"verbosity":"low"}}"#,
            "verbosity",
        ),
        r(
            "text.format",
            Rule::Mapped,
            r#"{"model":"g","input":"x","text":{"format":{"type":"json_object"}}}"#,
            r#""response_format":{"type":"json_object"}"#,
        ),
        r(
            "parallel_tool_calls",
            Rule::Kept,
            r#"{"model":"g","input":"x","tools":[{"type":"function","name":"f"}],"parallel_tool_calls":false}"#,
            r#""parallel_tool_calls":false"#,
        ),
        r(
            "function",
            Rule::Mapped,
            r#"{"model":"g","input":"x","tools":[{"type":"function","name":"exec_command","parameters":{"type":"object"}}]}"#,
            r#""name":"exec_command""#,
        ),
        r(
            "namespace",
            Rule::Mapped,
            r#"{"model":"g","input":"x","tools":[{"type":"namespace","name":"crm","description":"d","tools":[{"type":"function","name":"lookup"}]}]}"#,
            r#""name":"crm__lookup""#,
        ),
        r(
            "web_search",
            Rule::Dropped,
            r#"{"model":"g","input":"x","tools":[{"type":"web_search"},{"type":"custom","name":"apply_patch"}]}"#,
            "apply_patch",
        ),
        r(
            "function_call",
            Rule::Mapped,
            r#"{"model":"g","input":[{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"ok"}]}"#,
            r#""tool_call_id":"c1""#,
        ),
        r(
            "`reasoning` items",
            Rule::Dropped,
            r#"{"model":"g","input":[{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"ENC-1"},{"role":"user","content":"x"}]}"#,
            "ENC-1",
        ),
        r(
            "web_search_call",
            Rule::Dropped,
            r#"{"model":"g","input":[{"type":"web_search_call","id":"ws_9","status":"completed"},{"role":"user","content":"x"}]}"#,
            "ws_9",
        ),
        r(
            "max_output_tokens",
            Rule::Mapped,
            r#"{"model":"g","input":"x","max_output_tokens":77}"#,
            r#""max_tokens":77"#,
        ),
        ra(
            "`text.format` `json_object`",
            Rule::Dropped,
            r#"{"model":"g","input":"x","text":{"format":{"type":"json_object"}}}"#,
            "json_object",
        ),
        ra(
            "reasoning",
            Rule::Dropped,
            r#"{"model":"g","input":"x","reasoning":{"effort":"high"}}"#,
            "thinking",
        ),
        ra(
            "parallel_tool_calls: false",
            Rule::Mapped,
            r#"{"model":"g","input":"x","tools":[{"type":"function","name":"f"}],"parallel_tool_calls":false}"#,
            r#""disable_parallel_tool_use":true"#,
        ),
        ra(
            "max_output_tokens",
            Rule::Mapped,
            r#"{"model":"g","input":"x"}"#,
            r#""max_tokens":4096"#,
        ),
    ]
}

#[test]
fn documented_rules_hold() {
    let doc = doc();
    for case in cases() {
        let rule = rule_in_doc(&doc, case.section, case.field);
        let word = case.rule.word();
        assert!(
            rule.starts_with(word),
            "{} / `{}`: the doc says `{rule}`, the test expects `{word}`",
            case.section,
            case.field
        );
        let req = ApiRequest::inspect(case.client, Bytes::from_static(case.body.as_bytes()))
            .unwrap_or_else(|e| panic!("{}: {e}", case.field));
        let out = req.upstream_body(case.upstream, &Target::new("target-model"));
        match case.rule {
            Rule::Rejected => {
                let err = out.expect_err(case.field);
                assert!(!err.to_string().is_empty());
            }
            Rule::Dropped | Rule::Ignored => {
                let out = out.unwrap_or_else(|e| panic!("{}: {e}", case.field));
                let text = String::from_utf8_lossy(&out);
                assert!(serde_json::from_slice::<Value>(&out).is_ok());
                assert!(
                    !text.contains(case.evidence),
                    "{}: `{}` still in {text}",
                    case.field,
                    case.evidence
                );
            }
            Rule::Kept | Rule::Mapped => {
                let out = out.unwrap_or_else(|e| panic!("{}: {e}", case.field));
                let text = String::from_utf8_lossy(&out);
                assert!(
                    text.contains(case.evidence),
                    "{}: `{}` missing from {text}",
                    case.field,
                    case.evidence
                );
            }
        }
    }
}

#[test]
fn every_pair_has_a_section() {
    let doc = doc();
    for section in [
        "Messages → OpenAI Chat",
        "Responses → OpenAI Chat",
        "Responses → Anthropic Messages",
        "OpenAI Chat → Anthropic Messages",
        "Pairs the routing does not choose",
        "Same-API pairs",
        "Embeddings",
        "count_tokens",
        "Commit points",
        "Errors",
    ] {
        assert!(doc.contains(&format!("## {section}")), "{section}");
    }
}
