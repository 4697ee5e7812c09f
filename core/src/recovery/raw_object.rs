//! A JSON object kept as its members' raw text, in order: edit a few members of a request
//! body and write it back with every other member byte for byte as it was.

use std::fmt;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// A JSON object's members in document order, each value as its raw text.
#[derive(Debug)]
pub(crate) struct RawObject {
    members: Vec<(String, Box<RawValue>)>,
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<RawObject, A::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Box<RawValue>>()? {
                    members.push((k, v));
                }
                Ok(RawObject { members })
            }
        }
        d.deserialize_map(V)
    }
}

impl RawObject {
    /// Parses `body`, which must be one JSON object.
    pub(crate) fn parse(body: &[u8]) -> Option<RawObject> {
        serde_json::from_slice(body).ok()
    }

    /// The raw text of the last member named `key` (JSON readers keep the last duplicate).
    pub(crate) fn get(&self, key: &str) -> Option<&RawValue> {
        self.members
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// Sets `key` to `value`: every member of that name is replaced by one, where the first
    /// was; a new key goes last.
    pub(crate) fn set(&mut self, key: &str, value: &Value) {
        self.set_raw(key, to_raw(value));
    }

    /// Sets `key` to an already serialised value, as [`set`](Self::set) does.
    pub(crate) fn set_raw(&mut self, key: &str, raw: Box<RawValue>) {
        let Some(first) = self.members.iter().position(|(k, _)| k == key) else {
            self.members.push((key.to_owned(), raw));
            return;
        };
        self.members[first].1 = raw;
        let mut i = 0;
        self.members.retain(|(k, _)| {
            i += 1;
            i - 1 == first || k != key
        });
    }

    /// Removes every member named `key`.
    pub(crate) fn remove(&mut self, key: &str) {
        self.members.retain(|(k, _)| k != key);
    }

    /// The object as JSON text: `{"key":raw,...}`.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let len: usize = self
            .members
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum();
        let mut out = Vec::with_capacity(len + 2);
        out.push(b'{');
        for (i, (k, v)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(v.get().as_bytes());
        }
        out.push(b'}');
        out
    }
}

/// A JSON array's elements, each as its raw text.
#[derive(Debug)]
pub(crate) struct RawArray(pub Vec<Box<RawValue>>);

impl<'de> Deserialize<'de> for RawArray {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawArray;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<RawArray, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = a.next_element::<Box<RawValue>>()? {
                    out.push(v);
                }
                Ok(RawArray(out))
            }
        }
        d.deserialize_seq(V)
    }
}

impl RawArray {
    /// Parses raw JSON text that must be an array.
    pub(crate) fn parse(raw: &RawValue) -> Option<RawArray> {
        serde_json::from_str(raw.get()).ok()
    }

    /// The array as raw JSON text.
    pub(crate) fn into_raw(self) -> Box<RawValue> {
        let mut text = String::from("[");
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(v.get());
        }
        text.push(']');
        // The elements were each valid JSON, so the joined array is too.
        RawValue::from_string(text).unwrap_or_default()
    }
}

/// A value serialised as raw JSON.
pub(crate) fn to_raw(value: &Value) -> Box<RawValue> {
    // A `Value` always serialises to valid JSON.
    serde_json::value::to_raw_value(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_members_keep_their_bytes_and_order() {
        let body = br#"{"z": 1.50, "model":"m", "messages":[{"a":1}], "x":{"keep":  true}}"#;
        let mut o = RawObject::parse(body).unwrap();
        o.set("model", &Value::String("n".into()));
        o.set("new", &Value::Bool(true));
        let out = String::from_utf8(o.to_bytes()).unwrap();
        assert_eq!(
            out,
            r#"{"z":1.50,"model":"n","messages":[{"a":1}],"x":{"keep":  true},"new":true}"#
        );
    }

    #[test]
    fn duplicates_collapse_to_one_where_the_first_was() {
        let mut o = RawObject::parse(br#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(o.get("a").unwrap().get(), "3");
        o.set("a", &Value::from(9));
        assert_eq!(o.to_bytes(), br#"{"a":9,"b":2}"#);
        o.remove("b");
        assert_eq!(o.to_bytes(), br#"{"a":9}"#);
    }

    #[test]
    fn arrays_round_trip() {
        let o = RawObject::parse(br#"{"m":[ {"x":1} , 2 ,"s"]}"#).unwrap();
        let mut a = RawArray::parse(o.get("m").unwrap()).unwrap();
        a.0.push(to_raw(&Value::Null));
        assert_eq!(a.into_raw().get(), r#"[{"x":1},2,"s",null]"#);
        assert!(RawArray::parse(&to_raw(&Value::from(1))).is_none());
        assert!(RawObject::parse(b"[1]").is_none());
        assert!(RawObject::parse(b"{\"a\":").is_none());
    }
}
