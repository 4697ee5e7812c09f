//! Small helpers for reading and writing loosely typed JSON bodies.

use serde_json::{Map, Value};

use super::TranslateError;

/// A JSON object.
pub(crate) type Obj = Map<String, Value>;

/// `obj[key]` unless absent or `null`.
pub(crate) fn non_null<'a>(obj: &'a Obj, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// `v[key]` as a string.
pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// `v[key]` as an unsigned integer.
pub(crate) fn u64_of(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

/// `v["type"]`.
pub(crate) fn type_of(v: &Value) -> Option<&str> {
    str_of(v, "type")
}

pub(crate) fn invalid(msg: impl Into<String>) -> TranslateError {
    TranslateError::InvalidRequest(msg.into())
}

pub(crate) fn unsupported(msg: impl Into<String>) -> TranslateError {
    TranslateError::Unsupported(msg.into())
}

pub(crate) fn bad_response(msg: impl Into<String>) -> TranslateError {
    TranslateError::InvalidResponse(msg.into())
}

/// Parses a request body that must be a JSON object.
pub(crate) fn parse_object(body: &[u8]) -> Result<Obj, TranslateError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        _ => Err(TranslateError::InvalidJson),
    }
}

/// Parses a response body that must be a JSON object.
pub(crate) fn parse_response_object(body: &[u8]) -> Result<Obj, TranslateError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(bad_response("not a JSON object")),
        Err(_) => Err(TranslateError::InvalidJson),
    }
}

/// Serialises a value built by an encoder.
pub(crate) fn to_bytes(v: &Value) -> bytes::Bytes {
    bytes::Bytes::from(v.to_string())
}

/// Splits `data:<media type>;base64,<data>`.
pub(crate) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    (!media_type.is_empty()).then_some((media_type, data))
}

/// `data:<media type>;base64,<data>`.
pub(crate) fn data_url(media_type: &str, data: &str) -> String {
    format!("data:{media_type};base64,{data}")
}

/// Whether `url` is an `http://` or `https://` URL.
pub(crate) fn is_http_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// A number field that must be a number when present.
pub(crate) fn opt_f64(obj: &Obj, key: &str) -> Result<Option<f64>, TranslateError> {
    match non_null(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(format!("`{key}` must be a number"))),
    }
}

/// A token limit: a positive integer that fits a `u32`.
pub(crate) fn token_limit(v: &Value, names: &str) -> Result<u64, TranslateError> {
    match v.as_u64() {
        Some(n) if n >= 1 && n <= u64::from(u32::MAX) => Ok(n),
        _ => Err(invalid(format!("{names} must be a positive integer"))),
    }
}
