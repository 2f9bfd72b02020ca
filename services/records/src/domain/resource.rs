//! The client's JSON is the record of truth. Parsing keeps every top-level element as the raw
//! text the client sent (minified), so decimals keep their textual form (`60.50` stays `60.50`)
//! and element order is kept; only `id` and `meta` are rewritten by the server.

use chrono::{DateTime, Utc};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{value::RawValue, Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not valid JSON: {0}")]
    Malformed(String),
    #[error("the body must be a JSON object")]
    NotAnObject,
    #[error("the body has no resourceType")]
    NoResourceType,
    #[error("element {0:?} appears twice")]
    DuplicateKey(String),
    #[error("meta must be an object")]
    BadMeta,
}

/// Removes insignificant whitespace from valid JSON text.
pub fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// A JSON object's members in order, each as its raw text.
pub(crate) struct Fields(pub(crate) Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    out.push((k, v));
                }
                Ok(Fields(out))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// A resource as the client sent it: its elements in order, as raw JSON text.
#[derive(Debug)]
pub struct IncomingResource {
    fields: Vec<(String, Box<RawValue>)>,
    resource_type: String,
}

impl IncomingResource {
    pub fn parse(body: &[u8]) -> Result<Self, BodyError> {
        let text = std::str::from_utf8(body).map_err(|e| BodyError::Malformed(e.to_string()))?;
        // Check it is JSON at all, and an object, before keeping raw parts.
        let value: Value =
            serde_json::from_str(text).map_err(|e| BodyError::Malformed(e.to_string()))?;
        if !value.is_object() {
            return Err(BodyError::NotAnObject);
        }
        let minified = minify(text);
        let Fields(fields) =
            serde_json::from_str(&minified).map_err(|e| BodyError::Malformed(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for (k, _) in &fields {
            if !seen.insert(k.as_str()) {
                return Err(BodyError::DuplicateKey(k.clone()));
            }
        }
        let resource_type = value
            .get("resourceType")
            .and_then(Value::as_str)
            .ok_or(BodyError::NoResourceType)?
            .to_string();
        Ok(Self {
            fields,
            resource_type,
        })
    }

    pub fn resource_type(&self) -> &str {
        &self.resource_type
    }

    /// The `id` the client put in the body, if any.
    pub fn id(&self) -> Option<String> {
        self.field("id")
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
    }

    /// A top-level element, parsed.
    pub fn value_of(&self, name: &str) -> Option<Value> {
        self.field(name)
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    /// A copy with `name` set to `value` (replacing what the client sent, if anything).
    pub fn with_field(&self, name: &str, value: &Value) -> Result<Self, BodyError> {
        let raw = RawValue::from_string(value.to_string())
            .map_err(|e| BodyError::Malformed(e.to_string()))?;
        let mut fields: Vec<(String, Box<RawValue>)> = self
            .fields
            .iter()
            .filter(|(k, _)| k != name)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        fields.push((name.to_string(), raw));
        Ok(Self {
            fields,
            resource_type: self.resource_type.clone(),
        })
    }

    fn field(&self, name: &str) -> Option<&RawValue> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// The stored text: `resourceType`, the server's `id`, `meta` with `versionId` and
    /// `lastUpdated` (the client's other meta elements kept), then every other element exactly
    /// as sent, in the client's order.
    pub fn stamp(
        &self,
        id: &str,
        version: i64,
        last_updated: DateTime<Utc>,
    ) -> Result<String, BodyError> {
        let mut meta = match self.field("meta") {
            Some(raw) => match serde_json::from_str::<Value>(raw.get()) {
                Ok(Value::Object(m)) => m,
                _ => return Err(BodyError::BadMeta),
            },
            None => Map::new(),
        };
        meta.insert("versionId".into(), Value::String(version.to_string()));
        meta.insert(
            "lastUpdated".into(),
            Value::String(format_instant(last_updated)),
        );
        let mut out = String::with_capacity(
            self.fields
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum::<usize>()
                + 128,
        );
        out.push('{');
        out.push_str("\"resourceType\":");
        out.push_str(&Value::String(self.resource_type.clone()).to_string());
        out.push_str(",\"id\":");
        out.push_str(&Value::String(id.to_string()).to_string());
        out.push_str(",\"meta\":");
        out.push_str(&Value::Object(meta).to_string());
        for (k, v) in &self.fields {
            if k == "resourceType" || k == "id" || k == "meta" {
                continue;
            }
            out.push(',');
            out.push_str(&Value::String(k.clone()).to_string());
            out.push(':');
            out.push_str(v.get());
        }
        out.push('}');
        Ok(out)
    }
}

pub use custodian_fhir::dates::{format_instant, now_millis};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minify_keeps_strings() {
        assert_eq!(
            minify("{ \"a\" : \"x y \\\" z\" ,\n \"b\": [1, 2] }"),
            "{\"a\":\"x y \\\" z\",\"b\":[1,2]}"
        );
    }

    #[test]
    fn stamps_id_and_meta_and_keeps_the_rest_verbatim() {
        let body = br#"{"resourceType":"Observation","id":"client","meta":{"profile":["http://x"],"versionId":"9"},
            "status":"final","valueQuantity":{"value":60.50,"unit":"kg"},"code":{"text":"weight"}}"#;
        let r = IncomingResource::parse(body).unwrap();
        assert_eq!(r.resource_type(), "Observation");
        assert_eq!(r.id().as_deref(), Some("client"));
        let t = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.678Z")
            .unwrap()
            .with_timezone(&Utc);
        let out = r.stamp("srv", 2, t).unwrap();
        assert!(
            out.starts_with(r#"{"resourceType":"Observation","id":"srv","meta":{"#),
            "{out}"
        );
        assert!(out.contains(r#""value":60.50"#), "decimal text kept: {out}");
        assert!(out.contains(r#""versionId":"2""#));
        assert!(out.contains(r#""lastUpdated":"2024-01-02T03:04:05.678Z""#));
        assert!(out.contains(r#""profile":["http://x"]"#));
        let status = out.find("status").unwrap();
        let code = out.find("\"code\"").unwrap();
        assert!(status < code, "client order kept");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["id"], "srv");
    }

    #[test]
    fn refuses_bad_bodies() {
        assert!(matches!(
            IncomingResource::parse(b"{"),
            Err(BodyError::Malformed(_))
        ));
        assert_eq!(
            IncomingResource::parse(b"[1]").unwrap_err(),
            BodyError::NotAnObject
        );
        assert_eq!(
            IncomingResource::parse(b"{\"a\":1}").unwrap_err(),
            BodyError::NoResourceType
        );
        assert!(matches!(
            IncomingResource::parse(br#"{"resourceType":"Patient","a":1,"a":2}"#),
            Err(BodyError::DuplicateKey(_))
        ));
        let r = IncomingResource::parse(br#"{"resourceType":"Patient","meta":3}"#).unwrap();
        assert_eq!(r.stamp("a", 1, Utc::now()).unwrap_err(), BodyError::BadMeta);
    }
}
