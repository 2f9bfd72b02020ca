//! FHIRPath Patch (R4 fhirpatch.html): a `Parameters` resource of `operation`s, each with
//! `type` (add, insert, delete, replace, move), `path`, and `name`, `value`, `index`,
//! `source`, `destination` as the type needs.
//!
//! Only simple paths are supported: the resource type, then element names, each with an
//! optional index or `.where(child='value')` (`Patient.birthDate`, `Patient.name[0].given`,
//! `Patient.identifier.where(system='http://x').value`). A path through a repeating element
//! without an index must select exactly one element. Other functions (`first()`, `exists()`,
//! ...), other `where` criteria and values given as `part`s (anonymous types) are refused (400).

use custodian_fhir::FhirError;
use serde_json::Value;

use crate::domain::validation;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Add {
        path: Path,
        name: String,
        value: Value,
    },
    Insert {
        path: Path,
        value: Value,
        index: usize,
    },
    Delete {
        path: Path,
    },
    Replace {
        path: Path,
        value: Value,
    },
    Move {
        path: Path,
        source: usize,
        destination: usize,
    },
}

/// A parsed FHIRPath Patch.
#[derive(Debug, Clone, PartialEq)]
pub struct FhirPatch {
    ops: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq)]
struct Segment {
    name: String,
    index: Option<usize>,
    /// `.where(field='value')` on the element: the one repetition whose `field` is `value`.
    filter: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
struct Path {
    raw: String,
    root: String,
    segments: Vec<Segment>,
}

fn bad(msg: impl Into<String>) -> FhirError {
    FhirError::BadRequest(msg.into())
}

fn unprocessable(path: &str, msg: impl Into<String>) -> FhirError {
    FhirError::Unprocessable(vec![(path.to_string(), msg.into())])
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Path {
    fn parse(raw: &str) -> Result<Self, FhirError> {
        let unsupported = || {
            bad(format!(
                "the path {raw:?} is not supported: only simple paths are \
                 (Type.element[index].element, element.where(child='value'))"
            ))
        };
        // Split on the dots outside quotes.
        let mut parts = Vec::new();
        let (mut current, mut quoted) = (String::new(), false);
        for c in raw.chars() {
            match c {
                '\'' => {
                    quoted = !quoted;
                    current.push(c);
                }
                '.' if !quoted => parts.push(std::mem::take(&mut current)),
                _ => current.push(c),
            }
        }
        if quoted {
            return Err(unsupported());
        }
        parts.push(current);
        let mut parts = parts.into_iter();
        let root = parts.next().unwrap_or_default();
        if !custodian_fhir::validate::is_resource_type(&root) {
            return Err(bad(format!(
                "the path {raw:?} does not start with a resource type"
            )));
        }
        let mut segments: Vec<Segment> = Vec::new();
        for part in parts {
            if let Some(inner) = part
                .strip_prefix("where(")
                .and_then(|p| p.strip_suffix(')'))
            {
                let (field, value) = inner.split_once('=').ok_or_else(unsupported)?;
                let field = field.trim();
                let value = value
                    .trim()
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .ok_or_else(unsupported)?;
                let previous = segments.last_mut().ok_or_else(unsupported)?;
                if !is_name(field) || previous.index.is_some() || previous.filter.is_some() {
                    return Err(unsupported());
                }
                previous.filter = Some((field.to_string(), value.to_string()));
                continue;
            }
            if part.contains(['(', ')', ' ', '\'', '"', '|', '$']) {
                return Err(unsupported());
            }
            let (name, index) = match part.split_once('[') {
                Some((name, rest)) => {
                    let index = rest
                        .strip_suffix(']')
                        .and_then(|i| i.parse::<usize>().ok())
                        .ok_or_else(|| bad(format!("the index in {raw:?} is not [n]")))?;
                    (name, Some(index))
                }
                None => (part.as_str(), None),
            };
            if !is_name(name) {
                return Err(bad(format!(
                    "{name:?} in the path {raw:?} is not an element name"
                )));
            }
            segments.push(Segment {
                name: name.to_string(),
                index,
                filter: None,
            });
        }
        Ok(Self {
            raw: raw.to_string(),
            root,
            segments,
        })
    }

    /// The JSON Pointer of what the path selects in `doc`, None when it selects nothing.
    fn resolve(&self, resource_type: &str, doc: &Value) -> Result<Option<String>, FhirError> {
        if self.root != resource_type {
            return Err(unprocessable(
                &self.raw,
                format!("the path is not about a {resource_type}"),
            ));
        }
        let mut pointer = String::new();
        let mut node = doc;
        let last = self.segments.len().saturating_sub(1);
        for (i, seg) in self.segments.iter().enumerate() {
            let Some(child) = node.get(&seg.name) else {
                return Ok(None);
            };
            pointer.push('/');
            pointer.push_str(&seg.name.replace('~', "~0").replace('/', "~1"));
            node = child;
            if let Some((field, value)) = &seg.filter {
                let is_it = |item: &Value| item.get(field).and_then(Value::as_str) == Some(value);
                match node.as_array() {
                    Some(items) => {
                        let mut hits = items.iter().enumerate().filter(|(_, item)| is_it(item));
                        match (hits.next(), hits.next()) {
                            (Some((n, item)), None) => {
                                pointer.push_str(&format!("/{n}"));
                                node = item;
                            }
                            (None, _) => return Ok(None),
                            (Some(_), Some(_)) => {
                                return Err(unprocessable(
                                    &self.raw,
                                    format!("several {} match the where()", seg.name),
                                ))
                            }
                        }
                    }
                    None if is_it(node) => {}
                    None => return Ok(None),
                }
                continue;
            }
            match (seg.index, node.as_array()) {
                (Some(n), Some(items)) => {
                    let Some(item) = items.get(n) else {
                        return Ok(None);
                    };
                    pointer.push_str(&format!("/{n}"));
                    node = item;
                }
                (Some(0), None) => {}
                (Some(_), None) => return Ok(None),
                (None, Some(items)) if i < last => match items.as_slice() {
                    [one] => {
                        pointer.push_str("/0");
                        node = one;
                    }
                    [] => return Ok(None),
                    _ => {
                        return Err(unprocessable(
                            &self.raw,
                            format!(
                                "{} repeats: give the index of the one meant ({}[n])",
                                seg.name, seg.name
                            ),
                        ))
                    }
                },
                (None, _) => {}
            }
        }
        Ok(Some(pointer))
    }
}

/// The parts of one `operation` parameter: name -> the part.
fn parts(operation: &Value) -> Result<Vec<(&str, &Value)>, FhirError> {
    operation
        .get("part")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("an operation has no parts"))?
        .iter()
        .map(|p| {
            p.get("name")
                .and_then(Value::as_str)
                .map(|n| (n, p))
                .ok_or_else(|| bad("an operation part has no name"))
        })
        .collect()
}

/// The `value[x]` of a part.
fn value_of(part: &Value) -> Result<Value, FhirError> {
    if part.get("part").is_some() {
        return Err(bad(
            "values given as parts (anonymous types) are not supported; give a value[x]",
        ));
    }
    part.as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.starts_with("value") && k.len() > 5)
                .map(|(_, v)| v.clone())
        })
        .ok_or_else(|| bad("an operation's value has no value[x]"))
}

fn index_of(part: &Value, name: &str) -> Result<usize, FhirError> {
    let value = part.get("valueInteger");
    value
        .and_then(Value::as_u64)
        .and_then(|i| usize::try_from(i).ok())
        // A patch read with its numbers kept as written (`exact_numbers`).
        .or_else(|| {
            value
                .and_then(custodian_fhir::exact_numbers::number)?
                .parse()
                .ok()
        })
        .ok_or_else(|| bad(format!("{name} must be a non-negative valueInteger")))
}

impl FhirPatch {
    /// Parses the Parameters resource.
    pub fn parse(body: &Value) -> Result<Self, FhirError> {
        if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err(bad(
                "a FHIRPath Patch is a Parameters resource (or send application/json-patch+json)",
            ));
        }
        let mut ops = Vec::new();
        for p in body
            .get("parameter")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if p.get("name").and_then(Value::as_str) != Some("operation") {
                return Err(bad("every parameter of a FHIRPath Patch is an operation"));
            }
            let parts = parts(p)?;
            let get = |name: &str| parts.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
            let text = |name: &str| {
                get(name)
                    .and_then(|v| {
                        ["valueCode", "valueString"]
                            .iter()
                            .find_map(|k| v.get(k).and_then(Value::as_str))
                    })
                    .map(str::to_string)
                    .ok_or_else(|| bad(format!("an operation needs {name}")))
            };
            let value = || {
                get("value")
                    .ok_or_else(|| bad("the operation needs a value"))
                    .and_then(value_of)
            };
            let index = |name: &str| {
                get(name)
                    .ok_or_else(|| bad(format!("the operation needs {name}")))
                    .and_then(|v| index_of(v, name))
            };
            let path = Path::parse(&text("path")?)?;
            ops.push(match text("type")?.as_str() {
                "add" => Op::Add {
                    path,
                    name: {
                        let name = text("name")?;
                        if !is_name(&name) {
                            return Err(bad(format!("{name:?} is not an element name")));
                        }
                        name
                    },
                    value: value()?,
                },
                "insert" => Op::Insert {
                    path,
                    value: value()?,
                    index: index("index")?,
                },
                "delete" => Op::Delete { path },
                "replace" => Op::Replace {
                    path,
                    value: value()?,
                },
                "move" => Op::Move {
                    path,
                    source: index("source")?,
                    destination: index("destination")?,
                },
                other => return Err(bad(format!("{other:?} is not a FHIRPath Patch operation"))),
            });
        }
        if ops.is_empty() {
            return Err(bad("the patch has no operation"));
        }
        Ok(Self { ops })
    }

    /// Applies every operation in order to `doc`.
    pub fn apply(&self, resource_type: &str, doc: &mut Value) -> Result<(), FhirError> {
        for op in &self.ops {
            apply_one(op, resource_type, doc)?;
        }
        Ok(())
    }
}

/// The element a pointer names, which must exist.
fn at<'a>(doc: &'a mut Value, pointer: &str, path: &Path) -> Result<&'a mut Value, FhirError> {
    doc.pointer_mut(pointer)
        .ok_or_else(|| unprocessable(&path.raw, "the path selects nothing"))
}

fn existing(resource_type: &str, doc: &Value, path: &Path) -> Result<String, FhirError> {
    path.resolve(resource_type, doc)?
        .ok_or_else(|| unprocessable(&path.raw, "the path selects nothing"))
}

fn apply_one(op: &Op, resource_type: &str, doc: &mut Value) -> Result<(), FhirError> {
    match op {
        Op::Add { path, name, value } => {
            let pointer = existing(resource_type, doc, path)?;
            let target = at(doc, &pointer, path)?;
            let Some(object) = target.as_object_mut() else {
                return Err(unprocessable(
                    &path.raw,
                    "the path does not select an element with children",
                ));
            };
            match object.get_mut(name) {
                Some(Value::Array(items)) => items.push(value.clone()),
                Some(_) => {
                    return Err(unprocessable(
                        &path.raw,
                        format!("{name} already has a value: use replace"),
                    ))
                }
                None => {
                    // Whether the element repeats is the schema's: the form it accepts.
                    object.insert(name.clone(), Value::Array(vec![value.clone()]));
                    if validation::validate(doc).is_err() {
                        if let Some(object) =
                            doc.pointer_mut(&pointer).and_then(Value::as_object_mut)
                        {
                            object.insert(name.clone(), value.clone());
                        }
                    }
                }
            }
        }
        Op::Insert { path, value, index } => {
            let pointer = existing(resource_type, doc, path)?;
            let Some(items) = at(doc, &pointer, path)?.as_array_mut() else {
                return Err(unprocessable(&path.raw, "insert needs a repeating element"));
            };
            if *index > items.len() {
                return Err(unprocessable(
                    &path.raw,
                    format!("index {index} is past the end"),
                ));
            }
            items.insert(*index, value.clone());
        }
        Op::Delete { path } => {
            // Deleting what is not there is no error.
            let Some(pointer) = path.resolve(resource_type, doc)? else {
                return Ok(());
            };
            let Some((parent, last)) = pointer.rsplit_once('/') else {
                return Err(unprocessable(
                    &path.raw,
                    "the resource itself cannot be deleted",
                ));
            };
            let parent_value = at(doc, parent, path)?;
            match parent_value {
                Value::Array(items) => {
                    let i: usize = last
                        .parse()
                        .map_err(|_| unprocessable(&path.raw, "not an index"))?;
                    items.remove(i);
                    // No empty arrays in FHIR JSON.
                    if items.is_empty() {
                        if let Some((grand, field)) = parent.rsplit_once('/') {
                            if let Some(o) = doc.pointer_mut(grand).and_then(Value::as_object_mut) {
                                o.remove(&field.replace("~1", "/").replace("~0", "~"));
                            }
                        }
                    }
                }
                Value::Object(o) => {
                    o.remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                _ => {
                    return Err(unprocessable(
                        &path.raw,
                        "the path selects nothing deletable",
                    ))
                }
            }
        }
        Op::Replace { path, value } => {
            let pointer = existing(resource_type, doc, path)?;
            *at(doc, &pointer, path)? = value.clone();
        }
        Op::Move {
            path,
            source,
            destination,
        } => {
            let pointer = existing(resource_type, doc, path)?;
            let Some(items) = at(doc, &pointer, path)?.as_array_mut() else {
                return Err(unprocessable(&path.raw, "move needs a repeating element"));
            };
            if *source >= items.len() || *destination >= items.len() {
                return Err(unprocessable(
                    &path.raw,
                    "source or destination is past the end",
                ));
            }
            let item = items.remove(*source);
            items.insert(*destination, item);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(kind: &str, path: &str, extra: Vec<Value>) -> Value {
        let mut part = vec![
            json!({"name": "type", "valueCode": kind}),
            json!({"name": "path", "valueString": path}),
        ];
        part.extend(extra);
        json!({"name": "operation", "part": part})
    }

    fn patch(ops: Vec<Value>) -> FhirPatch {
        FhirPatch::parse(&json!({"resourceType": "Parameters", "parameter": ops})).unwrap()
    }

    fn alice() -> Value {
        json!({"resourceType": "Patient", "id": "a", "birthDate": "1980-01-01",
               "name": [{"family": "Smith", "given": ["Alice", "B"]}]})
    }

    #[test]
    fn replace_add_insert_move_delete() {
        let mut doc = alice();
        patch(vec![
            op(
                "replace",
                "Patient.birthDate",
                vec![json!({"name": "value", "valueDate": "1981-02-03"})],
            ),
            op(
                "add",
                "Patient",
                vec![
                    json!({"name": "name", "valueString": "gender"}),
                    json!({"name": "value", "valueCode": "female"}),
                ],
            ),
            op(
                "add",
                "Patient.name[0]",
                vec![
                    json!({"name": "name", "valueString": "prefix"}),
                    json!({"name": "value", "valueString": "Dr"}),
                ],
            ),
            op(
                "insert",
                "Patient.name.given",
                vec![
                    json!({"name": "value", "valueString": "Zed"}),
                    json!({"name": "index", "valueInteger": 0}),
                ],
            ),
            op(
                "move",
                "Patient.name[0].given",
                vec![
                    json!({"name": "source", "valueInteger": 0}),
                    json!({"name": "destination", "valueInteger": 2}),
                ],
            ),
            op("delete", "Patient.name[0].given[0]", vec![]),
            op("delete", "Patient.telecom", vec![]),
        ])
        .apply("Patient", &mut doc)
        .unwrap();
        assert_eq!(doc["birthDate"], "1981-02-03");
        assert_eq!(doc["gender"], "female");
        assert_eq!(doc["name"][0]["prefix"], json!(["Dr"]));
        assert_eq!(doc["name"][0]["given"], json!(["B", "Zed"]));
    }

    #[test]
    fn where_selects_one_repetition() {
        let mut doc = json!({"resourceType": "Patient", "id": "a", "identifier": [
            {"system": "http://a.org/mrn", "value": "1"},
            {"system": "http://b.org/ssn", "value": "2"}]});
        patch(vec![
            op(
                "replace",
                "Patient.identifier.where(system='http://b.org/ssn').value",
                vec![json!({"name": "value", "valueString": "3"})],
            ),
            op(
                "delete",
                "Patient.identifier.where(system='http://a.org/mrn')",
                vec![],
            ),
        ])
        .apply("Patient", &mut doc)
        .unwrap();
        assert_eq!(
            doc["identifier"],
            json!([{"system": "http://b.org/ssn", "value": "3"}])
        );
        // Several matches are ambiguous; none selects nothing.
        let mut doc = json!({"resourceType": "Patient", "id": "a", "identifier": [
            {"system": "s", "value": "1"}, {"system": "s", "value": "2"}]});
        let ambiguous = patch(vec![op(
            "delete",
            "Patient.identifier.where(system='s')",
            vec![],
        )]);
        assert!(ambiguous.apply("Patient", &mut doc).is_err());
        let none = patch(vec![op(
            "delete",
            "Patient.identifier.where(system='t')",
            vec![],
        )]);
        assert!(none.apply("Patient", &mut doc).is_ok());
    }

    #[test]
    fn refuses_what_it_does_not_support() {
        let refused = |path: &str| {
            FhirPatch::parse(
                &json!({"resourceType": "Parameters", "parameter": [op("delete", path, vec![])]}),
            )
            .is_err()
        };
        assert!(refused("Patient.identifier.where(system='x').first()"));
        assert!(refused("Patient.identifier.where(system='x)"));
        assert!(refused("Patient.where(system='x')"));
        assert!(refused("Patient.name.first()"));
        assert!(refused("name"));
        assert!(FhirPatch::parse(&json!({"resourceType": "Patient"})).is_err());
        let mut doc = alice();
        let wrong_type = patch(vec![op("delete", "Observation.status", vec![])]);
        assert!(wrong_type.apply("Patient", &mut doc).is_err());
        let missing = patch(vec![op(
            "replace",
            "Patient.gender",
            vec![json!({"name": "value", "valueCode": "male"})],
        )]);
        assert!(missing.apply("Patient", &mut doc).is_err());
    }
}
