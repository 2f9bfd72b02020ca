//! `Parameters` bodies of operations (operations.html#request): each parameter a name and one
//! `value[x]`; resources and parts are not taken by the operations records serves.

use custodian_fhir::FhirError;
use serde_json::Value;

/// One parameter: its name, the `value[x]` element's name (`valueMeta`) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub name: String,
    pub kind: String,
    pub value: Value,
}

impl Parameter {
    /// A primitive value as a URL would give it (`_count=10`), for operations that take both.
    pub fn as_text(&self) -> Result<String, FhirError> {
        match &self.value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(FhirError::BadRequest(format!(
                "parameter {} must have a primitive value, not {}",
                self.name, self.kind
            ))),
        }
    }
}

/// The parameters of a `Parameters` body (an empty body has none).
pub fn parse(body: &[u8]) -> Result<Vec<Parameter>, FhirError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| FhirError::BadRequest(format!("the body is not JSON: {e}")))?;
    if value.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(FhirError::BadRequest(
            "the body must be a Parameters resource".into(),
        ));
    }
    let items = match value.get("parameter") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(FhirError::BadRequest(
                "Parameters.parameter must be an array".into(),
            ))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Some(object) = item.as_object() else {
                return Err(FhirError::BadRequest(format!(
                    "Parameters.parameter[{i}] is not an object"
                )));
            };
            let Some(name) = object.get("name").and_then(Value::as_str) else {
                return Err(FhirError::BadRequest(format!(
                    "Parameters.parameter[{i}] has no name"
                )));
            };
            let mut values = object.iter().filter(|(k, _)| k.starts_with("value"));
            match (values.next(), values.next()) {
                (Some((kind, value)), None) => Ok(Parameter {
                    name: name.to_string(),
                    kind: kind.clone(),
                    value: value.clone(),
                }),
                _ => Err(FhirError::BadRequest(format!(
                    "Parameters.parameter[{i}] ({name}) must have exactly one value[x]"
                ))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_have_one_value_each() {
        let body = br#"{"resourceType":"Parameters","parameter":[
            {"name":"_count","valueInteger":10},{"name":"_type","valueCode":"Observation"}]}"#;
        let params = parse(body).unwrap();
        assert_eq!(params.len(), 2);
        assert_eq!(params[0].as_text().unwrap(), "10");
        assert_eq!(params[1].kind, "valueCode");
        assert!(parse(b"").unwrap().is_empty());
        assert!(parse(br#"{"resourceType":"Patient"}"#).is_err());
        assert!(parse(b"nope").is_err());
        assert!(parse(br#"{"resourceType":"Parameters","parameter":{}}"#).is_err());
        assert!(
            parse(br#"{"resourceType":"Parameters","parameter":[{"valueCode":"x"}]}"#).is_err()
        );
        assert!(parse(
            br#"{"resourceType":"Parameters","parameter":[{"name":"a","valueCode":"x","valueString":"y"}]}"#
        )
        .is_err());
        let meta =
            parse(br#"{"resourceType":"Parameters","parameter":[{"name":"meta","valueMeta":{}}]}"#)
                .unwrap();
        assert!(meta[0].as_text().is_err());
    }
}
