use super::*;
use proptest::prelude::*;
use serde_json::Value;
use serde_json::{json, Map};

fn span_text<'a>(body: &'a str, info: &ChatRequestInfo) -> &'a str {
    &body[info.model_span.clone()]
}

fn ok(body: &str) -> ChatRequestInfo {
    inspect(body.as_bytes()).expect("valid chat request")
}

fn rewrite(body: &str, model_id: &str) -> String {
    let info = ok(body);
    let out = rewrite_model(body.as_bytes(), &info.model_span, model_id);
    String::from_utf8(out.to_vec()).expect("utf-8")
}

#[test]
fn minimal_request() {
    let body = r#"{"model":"gpt-4o","messages":[]}"#;
    let info = ok(body);
    assert_eq!(info.model, "gpt-4o");
    assert!(!info.stream);
    assert!(!info.include_usage);
    assert_eq!(span_text(body, &info), r#""gpt-4o""#);
    assert_eq!(
        rewrite(body, "gpt-4o-mini"),
        r#"{"model":"gpt-4o-mini","messages":[]}"#
    );
}

#[test]
fn stream_and_include_usage() {
    let info = ok(r#"{"model":"m","messages":[],"stream":true,
        "stream_options":{"include_usage":true}}"#);
    assert!(info.stream);
    assert!(info.include_usage);
    let info = ok(r#"{"model":"m","messages":[],"stream":false,"stream_options":null}"#);
    assert!(!info.stream);
    assert!(!info.include_usage);
    let info = ok(r#"{"model":"m","messages":[],"stream":null,
        "stream_options":{"include_usage":null}}"#);
    assert!(!info.stream);
    assert!(!info.include_usage);
}

#[test]
fn fields_the_gateway_reads_must_have_their_types() {
    let wrong = |field, found| RequestBodyError::WrongType {
        field,
        expected: if field == "stream_options" {
            "an object"
        } else {
            "a boolean (true or false)"
        },
        found,
    };
    let cases = [
        (
            r#"{"model":"m","messages":[],"stream":"true"}"#,
            wrong("stream", "a string"),
        ),
        (
            r#"{"model":"m","messages":[],"stream":1}"#,
            wrong("stream", "a number"),
        ),
        (
            r#"{"model":"m","messages":[],"stream":[true]}"#,
            wrong("stream", "an array"),
        ),
        (
            r#"{"model":"m","messages":[],"stream":true,"stream_options":"yes"}"#,
            wrong("stream_options", "a string"),
        ),
        (
            r#"{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":1}}"#,
            wrong("stream_options.include_usage", "a number"),
        ),
    ];
    for (body, want) in cases {
        let got = inspect(body.as_bytes());
        assert_eq!(got.as_ref(), Err(&want), "{body}");
        let e = got.expect_err("wrong type");
        assert!(e.to_string().contains(e.param().unwrap_or("?")), "{e}");
    }
}

#[test]
fn nested_model_keys_are_not_matched() {
    let body = r#"{"metadata":{"model":"nested"},"messages":[{"role":"user","content":"x","model":"deep"}],
        "tools":[{"model":"a"},["model","b"]],"model":"top","extra":"\"model\": \"fake\""}"#;
    let info = ok(body);
    assert_eq!(info.model, "top");
    assert_eq!(span_text(body, &info), r#""top""#);
    let out = rewrite(body, "provider-id");
    assert_eq!(
        out,
        body.replace(r#""model":"top""#, r#""model":"provider-id""#)
    );
}

#[test]
fn strings_with_escapes_before_model() {
    let body = r#"{"a":"x\"}\\","b\"":"\u0041\\\"{[","messages":[],"model":"m\"1\\"}"#;
    let info = ok(body);
    assert_eq!(info.model, "m\"1\\");
    assert_eq!(span_text(body, &info), r#""m\"1\\""#);
    let out = rewrite(body, "z");
    assert_eq!(out, body.replace(r#""m\"1\\""#, r#""z""#));
}

#[test]
fn escaped_key_is_the_model_key() {
    let body = r#"{"messages":[],"mod\u0065l":"gpt-4o"}"#;
    let info = ok(body);
    assert_eq!(info.model, "gpt-4o");
    assert_eq!(rewrite(body, "x"), r#"{"messages":[],"mod\u0065l":"x"}"#);
}

#[test]
fn model_value_with_unicode_escapes() {
    let body = r#"{"model":"gpt\u002d4o \u00e9\ud83d\ude00","messages":[]}"#;
    let info = ok(body);
    assert_eq!(info.model, "gpt-4o \u{e9}\u{1f600}");
    assert_eq!(
        span_text(body, &info),
        r#""gpt\u002d4o \u00e9\ud83d\ude00""#
    );
}

#[test]
fn unicode_and_whitespace_survive() {
    let body = "\r\n\t {\n  \"messages\" : [ {\"content\": \"h\u{e9}llo \u{1f600}\"} ] ,\n  \"model\"\t:\n  \"m\u{fc}\"  ,\n  \"temperature\": 1.0e10, \"n\": -0.0\n}\n ";
    let info = ok(body);
    assert_eq!(info.model, "m\u{fc}");
    let out = rewrite(body, "\u{65e5}\u{672c}");
    assert_eq!(out, body.replace("\"m\u{fc}\"", "\"\u{65e5}\u{672c}\""));
}

#[test]
fn pretty_printed_body() {
    let value = json!({
        "model": "openai/gpt-4o",
        "messages": [{"role": "user", "content": "hi", "model": "no"}],
        "stream": true,
        "temperature": 0.5,
    });
    let body = serde_json::to_string_pretty(&value).expect("serialise");
    let info = ok(&body);
    assert_eq!(info.model, "openai/gpt-4o");
    assert!(info.stream);
    let out = rewrite(&body, "gpt-4o");
    let mut want = value.clone();
    want["model"] = json!("gpt-4o");
    assert_eq!(serde_json::from_str::<Value>(&out).expect("json"), want);
}

#[test]
fn model_id_is_escaped() {
    let body = r#"{"model":"m","messages":[]}"#;
    let nasty = "a\"b\\c\nd\u{1}e\u{1f}\u{7f}\u{2028}";
    let out = rewrite(body, nasty);
    assert_eq!(
        out,
        "{\"model\":\"a\\\"b\\\\c\\nd\\u0001e\\u001f\u{7f}\u{2028}\",\"messages\":[]}"
    );
    assert_eq!(ok(&out).model, nasty);
}

#[test]
fn errors() {
    let cases: &[(&str, RequestBodyError)] = &[
        ("[]", RequestBodyError::NotAnObject),
        ("\"model\"", RequestBodyError::NotAnObject),
        ("null", RequestBodyError::NotAnObject),
        (r#"{"messages":[]}"#, RequestBodyError::MissingModel),
        (
            r#"{"model":null,"messages":[]}"#,
            RequestBodyError::ModelNotString,
        ),
        (
            r#"{"model":["m"],"messages":[]}"#,
            RequestBodyError::ModelNotString,
        ),
        (r#"{"model":"m"}"#, RequestBodyError::MissingMessages),
        (
            r#"{"model":"m","messages":{}}"#,
            RequestBodyError::MessagesNotArray,
        ),
        (
            r#"{"model":"m","messages":"hi"}"#,
            RequestBodyError::MessagesNotArray,
        ),
        (
            r#"{"model":"a","messages":[],"model":"b"}"#,
            RequestBodyError::DuplicateKey("model"),
        ),
        (
            r#"{"model":"a","messages":[],"m\u006fdel":"b"}"#,
            RequestBodyError::DuplicateKey("model"),
        ),
        (
            r#"{"model":"a","messages":[],"stream":true,"stream":false}"#,
            RequestBodyError::DuplicateKey("stream"),
        ),
        (
            r#"{"model":"a","messages":[],"messages":[]}"#,
            RequestBodyError::DuplicateKey("messages"),
        ),
    ];
    for (body, want) in cases {
        assert_eq!(inspect(body.as_bytes()).as_ref(), Err(want), "{body}");
    }
}

#[test]
fn invalid_json_reports_position() {
    let err = inspect(b"{\n  \"model\": \"m\",\n  \"messages\": [,]\n}").expect_err("invalid");
    match &err {
        RequestBodyError::InvalidJson {
            message,
            line,
            column,
        } => {
            assert_eq!((*line, *column), (3, 16));
            assert!(message.contains("line 3"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().starts_with("invalid JSON: "));
    for bad in [
        &b""[..],
        b"{",
        b"{\"model\":\"m\",\"messages\":[]} x",
        b"{\"model\":\"m\xff\",\"messages\":[]}",
        b"{\"model\":\"\\ud800\",\"messages\":[]}",
        b"\xEF\xBB\xBF{\"model\":\"m\",\"messages\":[]}",
        b"{\"model\":'m',\"messages\":[]}",
    ] {
        assert!(
            matches!(inspect(bad), Err(RequestBodyError::InvalidJson { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let mut body = String::from(r#"{"model":"m","messages":"#);
    body.push_str(&"[".repeat(100_000));
    body.push_str(&"]".repeat(100_000));
    body.push('}');
    assert!(matches!(
        inspect(body.as_bytes()),
        Err(RequestBodyError::InvalidJson { .. })
    ));
}

#[test]
fn rewrite_with_out_of_range_span_does_not_panic() {
    let body = b"{\"model\":\"m\"}";
    assert_eq!(rewrite_model(body, &(100..200), "x").len(), body.len() + 3);
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 5..2;
    assert_eq!(rewrite_model(body, &reversed, "x").len(), body.len() + 3);
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("model".to_owned()),
        Just("messages".to_owned()),
        "[a-z_]{1,8}",
        any::<String>(),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[\"\\\\{}\\[\\]:, model]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn arb_request() -> impl Strategy<Value = Value> {
    (
        any::<String>(),
        prop::collection::vec(arb_value(), 0..4),
        prop::collection::vec(("[a-z_\"\\\\]{1,10}|.{1,6}", arb_value()), 0..6),
    )
        .prop_map(|(model, messages, extra)| {
            let mut map = Map::new();
            for (k, v) in extra {
                map.insert(k, v);
            }
            map.insert("model".to_owned(), Value::String(model));
            map.insert("messages".to_owned(), Value::Array(messages));
            map.remove("stream");
            map.remove("stream_options");
            Value::Object(map)
        })
}

fn check_roundtrip(body: &[u8], value: &Value, new_model: &str) -> Result<(), TestCaseError> {
    let info = inspect(body).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(Some(info.model.as_str()), value["model"].as_str());
    let span = info.model_span.clone();
    let out = rewrite_model(body, &span, new_model);
    prop_assert_eq!(&out[..span.start], &body[..span.start]);
    let tail = body.len() - span.end;
    prop_assert_eq!(&out[out.len() - tail..], &body[span.end..]);
    let reparsed: Value =
        serde_json::from_slice(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
    // Compare with the original bytes parsed (not `value`): serde_json's default float parsing
    // may differ from the generated f64 in the last bit.
    let mut want: Value =
        serde_json::from_slice(body).map_err(|e| TestCaseError::fail(e.to_string()))?;
    want["model"] = Value::String(new_model.to_owned());
    prop_assert_eq!(reparsed, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn rewrite_changes_only_the_model(
        value in arb_request(),
        new_model in any::<String>(),
    ) {
        let compact = serde_json::to_vec(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_roundtrip(&compact, &value, &new_model)?;
        let pretty = serde_json::to_vec_pretty(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_roundtrip(&pretty, &value, &new_model)?;
    }

    #[test]
    fn inspect_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = inspect(&bytes);
    }

    #[test]
    fn inspect_never_panics_on_near_json(
        s in "[{}\\[\\]\",:\\\\ a-z0-9]{0,80}",
    ) {
        let body = format!("{{\"model\":\"m\",\"messages\":[],{s}");
        if let Ok(info) = inspect(body.as_bytes()) {
            prop_assert_eq!(&body[info.model_span], "\"m\"");
        }
    }
}
