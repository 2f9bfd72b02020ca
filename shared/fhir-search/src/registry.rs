//! The R4 search parameters (the specification's `search-parameters.json`: code, base, type,
//! FHIRPath expression) and the index values a resource yields for them.
//!
//! The expressions are evaluated by a small interpreter for the forms the specification uses:
//! dotted paths, `|` unions, `[0]`, `.where(resolve() is X)` (kept as a target-type filter),
//! `.where(system='email')`, `(X.value as Quantity)` and `.as(Age)` (choice elements:
//! `valueQuantity`, `onsetAge`), and choice elements named without a type
//! (`Observation.effective` reads `effectiveDateTime` or `effectivePeriod`). Parts using other
//! FHIRPath functions (`exists()`, `extension(...)`) are not indexed; special parameters are
//! not supported.
//!
//! Composites over the resource (`code-value-quantity`) are answered from their components'
//! own rows. Composites over an element (`component-code-value-quantity`, over
//! `Observation.component`) get rows of their own, `{code}${n}` for component n, tagged with
//! the element they come from ([`IndexRow::element`]), so a search can ask for every component
//! within one element.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::OnceLock,
};

use chrono::{DateTime, Utc};
use serde_json::Value;
use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};

use custodian_fhir::dates;

static SEARCH_PARAMETERS: &str = include_str!("../../fhir/schema/search-parameters.json");

/// Search parameter types this service indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamType {
    Token,
    Reference,
    String,
    Date,
    Quantity,
    Number,
    Uri,
}

impl ParamType {
    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "token" => Self::Token,
            "reference" => Self::Reference,
            "string" => Self::String,
            "date" => Self::Date,
            "quantity" => Self::Quantity,
            "number" => Self::Number,
            "uri" => Self::Uri,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Reference => "reference",
            Self::String => "string",
            Self::Date => "date",
            Self::Quantity => "quantity",
            Self::Number => "number",
            Self::Uri => "uri",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field {
        name: String,
        index: Option<usize>,
    },
    /// `.where(resolve() is X)`: only references to X.
    Resolves(String),
    /// `.where(key='value')`.
    Equals(String, String),
}

/// One search parameter as it applies to one resource type.
#[derive(Debug, Clone)]
pub struct SearchParam {
    pub code: String,
    pub kind: ParamType,
    /// The SearchParameter's canonical URL (CapabilityStatement `definition`).
    pub url: String,
    /// Resource types a reference parameter may point to.
    pub targets: Vec<String>,
    paths: Vec<Vec<Step>>,
}

/// One row of the search index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexRow {
    pub param: String,
    pub system: Option<String>,
    pub value: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub number: Option<f64>,
    /// For an element composite's rows: which of the elements its expression selects (counted
    /// from 0 within the resource and composite) the value comes from.
    pub element: Option<i32>,
}

impl IndexRow {
    fn new(param: &str) -> Self {
        Self {
            param: param.to_string(),
            system: None,
            value: None,
            start: None,
            end: None,
            number: None,
            element: None,
        }
    }
}

/// A composite parameter: each component is another parameter of the type (its type and
/// targets say how a value compares), and the composite holds when all of them do, over the
/// whole resource (`Observation?code-value-quantity=`) or within one element
/// (`component-code-value-quantity`: one `Observation.component` with that code and value).
#[derive(Debug, Clone)]
pub struct Composite {
    pub code: String,
    pub url: String,
    /// The components' parameter codes, in order.
    pub components: Vec<String>,
    /// `None` over the whole resource (the components' own rows answer it).
    elements: Option<Elements>,
}

/// Where an element composite's components are read.
#[derive(Debug, Clone)]
struct Elements {
    /// One per `|` part of the composite's expression: the path to its elements (empty: the
    /// resource itself, as `Observation` in `Observation | Observation.component`), and for each
    /// component its paths within such an element.
    bases: Vec<(Vec<Step>, Vec<Vec<ComponentPath>>)>,
    /// Each component as a parameter of its own (`{code}${n}`), of its definition's type.
    params: Vec<SearchParam>,
}

/// A component's path from its element, or from the resource (`%resource.referenceSeq...`: the
/// same value for every element).
#[derive(Debug, Clone, PartialEq)]
struct ComponentPath {
    from_resource: bool,
    steps: Vec<Step>,
}

impl Composite {
    /// Whether the components must hold within one element (rows of its own, by element).
    pub fn over_elements(&self) -> bool {
        self.elements.is_some()
    }
}

impl Elements {
    /// Each component's paths within each element, taken from its own SearchParameter's
    /// expression (the part under the element's path, the longest such when the elements are
    /// nested: `Observation.code` is the resource's, `Observation.component.code` a
    /// component's) rather than from the composite's `component.expression`, which R4 gets
    /// wrong for `DocumentReference` `relationship` (the two are swapped). A component whose
    /// definition has no part under any element (`%resource.referenceSeq.chromosome`) is read
    /// by its `component.expression`.
    fn new(
        code: &str,
        element_paths: Vec<Vec<Step>>,
        definitions: &[&SearchParam],
        expressions: &[&str],
    ) -> Option<Self> {
        let mut bases: Vec<(Vec<Step>, Vec<Vec<ComponentPath>>)> = element_paths
            .into_iter()
            .map(|path| (path, vec![Vec::new(); definitions.len()]))
            .collect();
        for (n, (definition, expression)) in definitions.iter().zip(expressions).enumerate() {
            let mut placed = false;
            for path in &definition.paths {
                let under = bases
                    .iter()
                    .enumerate()
                    .filter(|(_, (base, _))| path.starts_with(base))
                    .max_by_key(|(_, (base, _))| base.len())
                    .map(|(i, _)| i);
                if let Some(i) = under {
                    let steps = path[bases[i].0.len()..].to_vec();
                    bases[i].1[n].push(ComponentPath {
                        from_resource: false,
                        steps,
                    });
                    placed = true;
                }
            }
            if !placed {
                let paths: Vec<ComponentPath> = split_top(expression, '|')
                    .into_iter()
                    .map(parse_relative)
                    .collect::<Option<_>>()?;
                for (_, components) in &mut bases {
                    components[n].clone_from(&paths);
                }
            }
        }
        let params = definitions
            .iter()
            .enumerate()
            .map(|(n, d)| SearchParam {
                code: component_param(code, n),
                kind: d.kind,
                url: d.url.clone(),
                targets: d.targets.clone(),
                paths: Vec::new(),
            })
            .collect();
        Some(Self { bases, params })
    }

    /// The rows of every element that has a value for each component (one that lacks one can
    /// match no search), tagged with the element's position.
    fn rows(&self, resource: &Value, out: &mut Vec<IndexRow>) {
        let mut k: i32 = 0;
        for (base, components) in &self.bases {
            for element in eval(resource, base) {
                let mut rows = Vec::new();
                let complete = components.iter().zip(&self.params).all(|(paths, param)| {
                    let before = rows.len();
                    for path in paths {
                        let root = if path.from_resource {
                            resource
                        } else {
                            element
                        };
                        for node in eval(root, &path.steps) {
                            // Only the value rows: `:text` and the like are not searched here.
                            rows.extend(
                                index_values(param, node)
                                    .into_iter()
                                    .filter(|r| r.param == param.code),
                            );
                        }
                    }
                    rows.len() > before
                });
                if complete {
                    out.extend(rows.into_iter().map(|mut r| {
                        r.element = Some(k);
                        r
                    }));
                }
                let Some(next) = k.checked_add(1) else {
                    return;
                };
                k = next;
            }
        }
    }
}

/// A component's `expression`, relative to its element or from `%resource`.
fn parse_relative(part: &str) -> Option<ComponentPath> {
    let part = part.trim();
    let (from_resource, path) = match part.strip_prefix("%resource.") {
        Some(rest) => (true, rest),
        None => (false, part),
    };
    let mut steps = Vec::new();
    parse_segments(&split_top(path, '.'), &mut steps)?;
    Some(ComponentPath {
        from_resource,
        steps,
    })
}

/// The index name of an element composite's rows for its component `n`.
pub fn component_param(code: &str, n: usize) -> String {
    format!("{code}${n}")
}

/// Every supported search parameter, by resource type.
pub struct Registry {
    by_type: HashMap<String, BTreeMap<String, SearchParam>>,
    composites: HashMap<String, BTreeMap<String, Composite>>,
    /// Parameters on `Resource`/`DomainResource` that every type has (`_tag`, `_profile` ...).
    common: BTreeMap<String, SearchParam>,
}

/// Codes handled by the query itself rather than the index.
pub const SPECIAL: &[&str] = &["_id", "_lastUpdated"];

const CHOICE_TYPES: &[&str] = &[
    "Address",
    "Age",
    "Annotation",
    "Attachment",
    "Base64Binary",
    "Boolean",
    "Canonical",
    "Code",
    "CodeableConcept",
    "Coding",
    "ContactPoint",
    "Count",
    "Date",
    "DateTime",
    "Decimal",
    "Distance",
    "Duration",
    "Expression",
    "HumanName",
    "Id",
    "Identifier",
    "Instant",
    "Integer",
    "Markdown",
    "Money",
    "Oid",
    "Period",
    "PositiveInt",
    "Quantity",
    "Range",
    "Ratio",
    "Reference",
    "SampledData",
    "Signature",
    "String",
    "Time",
    "Timing",
    "UnsignedInt",
    "Uri",
    "Url",
    "Uuid",
    "ContactDetail",
    "Contributor",
    "DataRequirement",
    "ParameterDefinition",
    "RelatedArtifact",
    "TriggerDefinition",
    "UsageContext",
    "Dosage",
    "Meta",
];

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Splits on `sep` outside parentheses and quotes.
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            c if c == sep && depth == 0 && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn apply_as(steps: &mut [Step], type_name: &str) -> Option<()> {
    match steps.last_mut() {
        Some(Step::Field { name, .. }) => {
            name.push_str(&capitalise(type_name.trim()));
            Some(())
        }
        _ => None,
    }
}

/// Parses the segments after the root (`a.b[0].where(...)`).
fn parse_segments(segments: &[&str], steps: &mut Vec<Step>) -> Option<()> {
    for seg in segments {
        let seg = seg.trim();
        if let Some(inner) = seg.strip_prefix("where(").and_then(|s| s.strip_suffix(')')) {
            if let Some(t) = inner.strip_prefix("resolve() is ") {
                steps.push(Step::Resolves(t.trim().to_string()));
            } else if let Some((k, v)) = inner.split_once('=') {
                let v = v.trim().trim_matches('\'');
                steps.push(Step::Equals(k.trim().to_string(), v.to_string()));
            } else {
                return None;
            }
        } else if let Some(t) = seg.strip_prefix("as(").and_then(|s| s.strip_suffix(')')) {
            apply_as(steps, t)?;
        } else if let Some((name, rest)) = seg.split_once('[') {
            let index: usize = rest.strip_suffix(']')?.parse().ok()?;
            if !valid_name(name) {
                return None;
            }
            steps.push(Step::Field {
                name: name.to_string(),
                index: Some(index),
            });
        } else if valid_name(seg) {
            steps.push(Step::Field {
                name: seg.to_string(),
                index: None,
            });
        } else {
            return None;
        }
    }
    Some(())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One `|` part of an expression: its root type and its steps.
fn parse_part(part: &str) -> Option<(String, Vec<Step>)> {
    let part = part.trim();
    if let Some(rest) = part.strip_prefix('(') {
        let close = rest.find(')')?;
        let inner = &rest[..close];
        let after = rest[close + 1..].trim();
        let (path, type_name) = inner.split_once(" as ")?;
        let segments = split_top(path.trim(), '.');
        let root = segments.first()?.trim().to_string();
        let mut steps = Vec::new();
        parse_segments(&segments[1..], &mut steps)?;
        apply_as(&mut steps, type_name)?;
        if let Some(more) = after.strip_prefix('.') {
            parse_segments(&split_top(more, '.'), &mut steps)?;
        } else if !after.is_empty() {
            return None;
        }
        return Some((root, steps));
    }
    let segments = split_top(part, '.');
    let root = segments.first()?.trim().to_string();
    if !root.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let mut steps = Vec::new();
    parse_segments(&segments[1..], &mut steps)?;
    Some((root, steps))
}

impl Registry {
    /// The registry built from the specification's bundle (parsed once).
    pub fn global() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(|| Registry::from_bundle(SEARCH_PARAMETERS))
    }

    pub fn from_bundle(text: &str) -> Registry {
        let bundle: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let mut by_type: HashMap<String, BTreeMap<String, SearchParam>> = HashMap::new();
        let mut common = BTreeMap::new();
        let mut composite_defs: Vec<Value> = Vec::new();
        let entries = bundle
            .get("entry")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for entry in entries {
            let Some(sp) = entry.get("resource") else {
                continue;
            };
            if sp.get("type").and_then(Value::as_str) == Some("composite") {
                composite_defs.push(sp.clone());
                continue;
            }
            let (Some(code), Some(kind), Some(expression)) = (
                sp.get("code").and_then(Value::as_str),
                sp.get("type")
                    .and_then(Value::as_str)
                    .and_then(ParamType::parse),
                sp.get("expression").and_then(Value::as_str),
            ) else {
                continue;
            };
            let url = sp
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let targets: Vec<String> = sp
                .get("target")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let parts: Vec<(String, Vec<Step>)> = split_top(expression, '|')
                .into_iter()
                .filter_map(parse_part)
                .collect();
            let bases: Vec<&str> = sp
                .get("base")
                .and_then(Value::as_array)
                .map(|b| b.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for base in bases {
                let paths: Vec<Vec<Step>> = parts
                    .iter()
                    .filter(|(root, _)| root == base)
                    .map(|(_, steps)| steps.clone())
                    .collect();
                if paths.is_empty() && !SPECIAL.contains(&code) {
                    continue;
                }
                let param = SearchParam {
                    code: code.to_string(),
                    kind,
                    url: url.clone(),
                    targets: targets.clone(),
                    paths,
                };
                if base == "Resource" || base == "DomainResource" {
                    common.insert(code.to_string(), param);
                } else {
                    by_type
                        .entry(base.to_string())
                        .or_default()
                        .insert(code.to_string(), param);
                }
            }
        }
        let mut composites: HashMap<String, BTreeMap<String, Composite>> = HashMap::new();
        for sp in &composite_defs {
            let (Some(code), Some(expression), Some(bases), Some(parts)) = (
                sp.get("code").and_then(Value::as_str),
                sp.get("expression").and_then(Value::as_str),
                sp.get("base").and_then(Value::as_array),
                sp.get("component").and_then(Value::as_array),
            ) else {
                continue;
            };
            let url = sp
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            // Every part must be understood, or the composite is not offered at all.
            let Some(expression_parts) = split_top(expression, '|')
                .into_iter()
                .map(parse_part)
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            for base in bases.iter().filter_map(Value::as_str) {
                let Some(params) = by_type.get(base) else {
                    continue;
                };
                let definitions: Option<Vec<&SearchParam>> = parts
                    .iter()
                    .map(|c| {
                        let url = c.get("definition").and_then(Value::as_str)?;
                        params
                            .values()
                            .chain(common.values())
                            .find(|p| p.url == url)
                    })
                    .collect();
                let Some(definitions) = definitions.filter(|d| !d.is_empty()) else {
                    continue;
                };
                let element_paths: Vec<Vec<Step>> = expression_parts
                    .iter()
                    .filter(|(root, _)| root == base)
                    .map(|(_, steps)| steps.clone())
                    .collect();
                let elements = match element_paths.as_slice() {
                    [] => continue,
                    // The resource itself: the components' own rows answer it.
                    [only] if only.is_empty() => None,
                    _ => {
                        let expressions: Vec<&str> = parts
                            .iter()
                            .map(|c| c.get("expression").and_then(Value::as_str).unwrap_or(""))
                            .collect();
                        match Elements::new(code, element_paths, &definitions, &expressions) {
                            Some(e) => Some(e),
                            None => continue,
                        }
                    }
                };
                composites.entry(base.to_string()).or_default().insert(
                    code.to_string(),
                    Composite {
                        code: code.to_string(),
                        url: url.clone(),
                        components: definitions.iter().map(|p| p.code.clone()).collect(),
                        elements,
                    },
                );
            }
        }
        Registry {
            by_type,
            common,
            composites,
        }
    }

    /// The composite parameter `code` of `resource_type`, if supported.
    pub fn composite(&self, resource_type: &str, code: &str) -> Option<&Composite> {
        self.composites.get(resource_type).and_then(|m| m.get(code))
    }

    /// Every supported composite parameter of a type.
    pub fn composites(&self, resource_type: &str) -> Vec<&Composite> {
        self.composites
            .get(resource_type)
            .map(|m| m.values().collect())
            .unwrap_or_default()
    }

    /// The parameter `code` of `resource_type`, if supported.
    pub fn get(&self, resource_type: &str, code: &str) -> Option<&SearchParam> {
        self.by_type
            .get(resource_type)
            .and_then(|m| m.get(code))
            .or_else(|| self.common.get(code))
    }

    /// Every supported parameter of a type (type-specific first, then common ones).
    pub fn params(&self, resource_type: &str) -> Vec<&SearchParam> {
        let mut out: Vec<&SearchParam> = self
            .by_type
            .get(resource_type)
            .map(|m| m.values().collect())
            .unwrap_or_default();
        out.extend(self.common.values());
        out
    }

    /// The index rows of one parameter of a resource (none when the type has no such parameter).
    pub fn extract_param(
        &self,
        resource_type: &str,
        code: &str,
        resource: &Value,
    ) -> Vec<IndexRow> {
        let Some(param) = self.get(resource_type, code) else {
            return Vec::new();
        };
        param
            .evaluate(resource)
            .into_iter()
            .flat_map(|node| index_values(param, node))
            .collect()
    }

    /// The index rows of a resource.
    pub fn extract(&self, resource_type: &str, resource: &Value) -> Vec<IndexRow> {
        let mut rows = Vec::new();
        let mut seen = HashSet::new();
        for param in self.params(resource_type) {
            if SPECIAL.contains(&param.code.as_str()) {
                continue;
            }
            for node in param.evaluate(resource) {
                for row in index_values(param, node) {
                    let key = format!("{:?}", row);
                    if seen.insert(key) {
                        rows.push(row);
                    }
                }
            }
        }
        for composite in self.composites(resource_type) {
            if let Some(elements) = &composite.elements {
                let mut element_rows = Vec::new();
                elements.rows(resource, &mut element_rows);
                for row in element_rows {
                    if seen.insert(format!("{:?}", row)) {
                        rows.push(row);
                    }
                }
            }
        }
        rows
    }
}

impl SearchParam {
    /// The elements the parameter's expression selects in `resource`.
    pub fn evaluate<'a>(&self, resource: &'a Value) -> Vec<&'a Value> {
        let mut out = Vec::new();
        for path in &self.paths {
            out.extend(eval(resource, path));
        }
        out
    }

    /// Normalised reference values (`Patient/123`) the parameter finds in `resource`.
    pub fn references(&self, resource: &Value) -> Vec<String> {
        self.evaluate(resource)
            .into_iter()
            .filter_map(|n| n.get("reference").and_then(Value::as_str))
            .map(normalize_reference)
            .collect()
    }
}

fn push_items<'a>(v: &'a Value, index: Option<usize>, out: &mut Vec<&'a Value>) {
    match (v, index) {
        (Value::Array(items), None) => out.extend(items.iter()),
        (Value::Array(items), Some(i)) => out.extend(items.get(i)),
        (other, None | Some(0)) => out.push(other),
        _ => {}
    }
}

fn is_choice_of(key: &str, name: &str) -> bool {
    key.strip_prefix(name)
        .is_some_and(|rest| CHOICE_TYPES.contains(&rest))
}

fn eval<'a>(root: &'a Value, steps: &[Step]) -> Vec<&'a Value> {
    let mut current = vec![root];
    for step in steps {
        match step {
            Step::Field { name, index } => {
                let mut next = Vec::new();
                for node in &current {
                    let Some(obj) = node.as_object() else {
                        continue;
                    };
                    match obj.get(name) {
                        Some(v) => push_items(v, *index, &mut next),
                        None => {
                            for (k, v) in obj {
                                if is_choice_of(k, name) {
                                    push_items(v, *index, &mut next);
                                }
                            }
                        }
                    }
                }
                current = next;
            }
            Step::Resolves(target) => current.retain(|n| {
                n.get("reference")
                    .and_then(Value::as_str)
                    .map(normalize_reference)
                    .is_some_and(|r| {
                        r.split('/').next() == Some(target.as_str()) && r.contains('/')
                    })
            }),
            Step::Equals(key, value) => {
                current.retain(|n| n.get(key).and_then(Value::as_str) == Some(value.as_str()))
            }
        }
    }
    current
}

/// `http://server/fhir/Patient/1/_history/2` -> `Patient/1`; relative references stay as they are.
pub fn normalize_reference(raw: &str) -> String {
    let raw = raw.trim();
    let raw = match raw.find("/_history/") {
        Some(pos) => &raw[..pos],
        None => raw,
    };
    if raw.contains("://") {
        let parts: Vec<&str> = raw.rsplitn(3, '/').collect();
        if parts.len() >= 2 && custodian_fhir::validate::is_resource_type(parts[1]) {
            return format!("{}/{}", parts[1], parts[0]);
        }
    }
    raw.to_string()
}

/// Lower case, accents removed: how string parameters compare.
pub fn normalize_string(s: &str) -> String {
    s.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

fn token_rows(param: &SearchParam, node: &Value, out: &mut Vec<IndexRow>) {
    let mut row = |system: Option<&str>, value: &str| {
        let mut r = IndexRow::new(&param.code);
        r.system = system.map(str::to_string);
        r.value = Some(value.to_string());
        out.push(r);
    };
    match node {
        Value::String(s) => row(None, s),
        Value::Bool(b) => row(None, if *b { "true" } else { "false" }),
        Value::Object(obj) => {
            let mut texts: Vec<&str> = Vec::new();
            if let Some(codings) = obj.get("coding").and_then(Value::as_array) {
                texts.extend(obj.get("text").and_then(Value::as_str));
                for c in codings {
                    if let Some(code) = c.get("code").and_then(Value::as_str) {
                        row(c.get("system").and_then(Value::as_str), code);
                    }
                    texts.extend(c.get("display").and_then(Value::as_str));
                }
            } else if let Some(code) = obj.get("code").and_then(Value::as_str) {
                row(obj.get("system").and_then(Value::as_str), code);
                texts.extend(obj.get("display").and_then(Value::as_str));
            } else if let Some(value) = obj.get("value").and_then(Value::as_str) {
                row(obj.get("system").and_then(Value::as_str), value);
                // `:of-type` (Identifier.type): the type's system, `code|value`.
                let types = obj
                    .get("type")
                    .and_then(|t| t.get("coding"))
                    .and_then(Value::as_array);
                for coding in types.into_iter().flatten() {
                    if let Some(code) = coding.get("code").and_then(Value::as_str) {
                        let mut r = IndexRow::new(&of_type_param(&param.code));
                        r.system = coding
                            .get("system")
                            .and_then(Value::as_str)
                            .map(str::to_string);
                        r.value = Some(format!("{code}|{value}"));
                        out.push(r);
                    }
                }
            } else {
                texts.extend(obj.get("text").and_then(Value::as_str));
            }
            // `:text` searches CodeableConcept.text and Coding.display, kept as a string row.
            for text in texts {
                let mut r = IndexRow::new(&text_param(&param.code));
                r.system = Some(text.to_string());
                r.value = Some(normalize_string(text));
                out.push(r);
            }
        }
        _ => {}
    }
}

/// The index name of a reference parameter's `:identifier` rows (`Reference.identifier`).
pub fn identifier_param(code: &str) -> String {
    format!("{code}:identifier")
}

/// The index name of an identifier parameter's `:of-type` rows.
pub fn of_type_param(code: &str) -> String {
    format!("{code}:of-type")
}

/// The index name of a token parameter's `:text` rows.
pub fn text_param(code: &str) -> String {
    format!("{code}:text")
}

fn string_leaves<'a>(node: &'a Value, out: &mut Vec<&'a str>) {
    match node {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| string_leaves(i, out)),
        Value::Object(obj) => {
            for (k, v) in obj {
                if matches!(
                    k.as_str(),
                    "use" | "type" | "system" | "id" | "extension" | "period" | "url"
                ) || k.starts_with('_')
                {
                    continue;
                }
                if v.is_string() || v.is_array() {
                    string_leaves(v, out);
                }
            }
        }
        _ => {}
    }
}

fn index_values(param: &SearchParam, node: &Value) -> Vec<IndexRow> {
    let mut out = Vec::new();
    match param.kind {
        ParamType::Token => token_rows(param, node, &mut out),
        ParamType::Reference => {
            let value = match node {
                Value::Object(obj) => obj
                    .get("reference")
                    .and_then(Value::as_str)
                    .map(normalize_reference),
                Value::String(s) => Some(s.clone()),
                _ => None,
            };
            // `:identifier` searches Reference.identifier, kept as token rows.
            if let Some(id) = node.get("identifier") {
                if let Some(value) = id.get("value").and_then(Value::as_str) {
                    let mut r = IndexRow::new(&identifier_param(&param.code));
                    r.system = id.get("system").and_then(Value::as_str).map(str::to_string);
                    r.value = Some(value.to_string());
                    out.push(r);
                }
            }
            if let Some(value) = value.filter(|v| !v.is_empty() && !v.starts_with('#')) {
                let mut r = IndexRow::new(&param.code);
                r.system = value
                    .split_once('/')
                    .map(|(t, _)| t.to_string())
                    .filter(|t| !t.contains(':'));
                r.value = Some(value);
                out.push(r);
            }
        }
        ParamType::String => {
            let mut leaves = Vec::new();
            string_leaves(node, &mut leaves);
            for s in leaves {
                let mut r = IndexRow::new(&param.code);
                r.system = Some(s.to_string());
                r.value = Some(normalize_string(s));
                out.push(r);
            }
        }
        ParamType::Date => {
            let mut ranges = Vec::new();
            match node {
                Value::String(s) => {
                    if let Some((start, end)) = dates::parse_range(s) {
                        ranges.push((Some(start), Some(end)));
                    }
                }
                Value::Object(obj) => {
                    if let Some(events) = obj.get("event").and_then(Value::as_array) {
                        for e in events
                            .iter()
                            .filter_map(Value::as_str)
                            .filter_map(dates::parse_range)
                        {
                            ranges.push((Some(e.0), Some(e.1)));
                        }
                    } else if obj.contains_key("start") || obj.contains_key("end") {
                        let start = obj
                            .get("start")
                            .and_then(Value::as_str)
                            .and_then(dates::parse_range)
                            .map(|r| r.0);
                        let end = obj
                            .get("end")
                            .and_then(Value::as_str)
                            .and_then(dates::parse_range)
                            .map(|r| r.1);
                        if start.is_some() || end.is_some() {
                            ranges.push((start, end));
                        }
                    }
                }
                _ => {}
            }
            for (start, end) in ranges {
                let mut r = IndexRow::new(&param.code);
                r.start = start;
                r.end = end;
                out.push(r);
            }
        }
        ParamType::Quantity | ParamType::Number => {
            let (number, system, code) = match node {
                Value::Number(n) => (n.as_f64(), None, None),
                Value::Object(obj) => (
                    obj.get("value").and_then(Value::as_f64),
                    obj.get("system").and_then(Value::as_str),
                    obj.get("code")
                        .and_then(Value::as_str)
                        .or_else(|| obj.get("unit").and_then(Value::as_str)),
                ),
                _ => (None, None, None),
            };
            if let Some(number) = number {
                let mut r = IndexRow::new(&param.code);
                r.number = Some(number);
                r.system = system.map(str::to_string);
                r.value = code.map(str::to_string);
                out.push(r);
            }
        }
        ParamType::Uri => {
            if let Value::String(s) = node {
                let mut r = IndexRow::new(&param.code);
                r.value = Some(s.clone());
                out.push(r);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> &'static Registry {
        Registry::global()
    }

    fn values(rows: &[IndexRow], param: &str) -> Vec<(Option<String>, Option<String>)> {
        rows.iter()
            .filter(|r| r.param == param)
            .map(|r| (r.system.clone(), r.value.clone()))
            .collect()
    }

    #[test]
    fn parses_expression_forms() {
        assert_eq!(
            parse_part("(Observation.value as Quantity)").unwrap().1,
            vec![Step::Field {
                name: "valueQuantity".into(),
                index: None
            }]
        );
        assert_eq!(
            parse_part("Condition.onset.as(Age)").unwrap().1,
            vec![Step::Field {
                name: "onsetAge".into(),
                index: None
            }]
        );
        let (root, steps) = parse_part("Account.subject.where(resolve() is Patient)").unwrap();
        assert_eq!(root, "Account");
        assert_eq!(steps[1], Step::Resolves("Patient".into()));
        assert!(parse_part("Patient.deceased.exists() and Patient.deceased != false").is_none());
        assert_eq!(
            parse_part("Bundle.entry[0].resource").unwrap().1[0],
            Step::Field {
                name: "entry".into(),
                index: Some(0)
            }
        );
        let (_, steps) = parse_part("(Observation.value as CodeableConcept).text").unwrap();
        assert_eq!(steps.len(), 2);
    }

    #[test]
    fn knows_common_parameters() {
        let r = registry();
        assert_eq!(r.get("Observation", "code").unwrap().kind, ParamType::Token);
        assert_eq!(
            r.get("Observation", "subject").unwrap().kind,
            ParamType::Reference
        );
        assert_eq!(r.get("Patient", "name").unwrap().kind, ParamType::String);
        assert_eq!(r.get("Observation", "date").unwrap().kind, ParamType::Date);
        assert!(r.get("Observation", "_tag").is_some());
        assert!(r.get("Observation", "_id").is_some());
        assert!(r.get("Observation", "colour").is_none());
        assert!(r.get("Patient", "code").is_none());
    }

    #[test]
    fn extracts_index_values() {
        let obs = json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}], "text": "Body weight"},
            "subject": {"reference": "Patient/alice"},
            "effectiveDateTime": "2020-03-04",
            "valueQuantity": {"value": 60.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
            "meta": {"tag": [{"system": "urn:t", "code": "x"}]}
        });
        let rows = registry().extract("Observation", &obs);
        assert!(values(&rows, "code")
            .contains(&(Some("http://loinc.org".into()), Some("29463-7".into()))));
        assert!(values(&rows, "subject")
            .contains(&(Some("Patient".into()), Some("Patient/alice".into()))));
        assert!(values(&rows, "patient")
            .contains(&(Some("Patient".into()), Some("Patient/alice".into()))));
        assert!(values(&rows, "status").contains(&(None, Some("final".into()))));
        assert!(values(&rows, "_tag").contains(&(Some("urn:t".into()), Some("x".into()))));
        let date = rows.iter().find(|r| r.param == "date").unwrap();
        assert!(date.start.is_some() && date.end.is_some());
        let q = rows.iter().find(|r| r.param == "value-quantity").unwrap();
        assert_eq!(q.number, Some(60.5));
        assert_eq!(q.value.as_deref(), Some("kg"));
    }

    #[test]
    fn composites_over_the_resource_are_known() {
        let c = registry()
            .composite("Observation", "code-value-quantity")
            .unwrap();
        assert_eq!(c.components, vec!["code", "value-quantity"]);
        assert!(!c.over_elements());
        let c = registry()
            .composite("Observation", "component-code-value-quantity")
            .unwrap();
        assert_eq!(
            c.components,
            vec!["component-code", "component-value-quantity"]
        );
        assert!(c.over_elements());
    }

    /// Every composite of the specification is offered: none is left out for an expression
    /// the interpreter does not read.
    #[test]
    fn every_composite_is_known() {
        let bundle: Value = serde_json::from_str(SEARCH_PARAMETERS).unwrap();
        let mut expected = 0;
        for entry in bundle["entry"].as_array().unwrap() {
            let sp = &entry["resource"];
            if sp["type"] == "composite" {
                for base in sp["base"].as_array().unwrap() {
                    let base = base.as_str().unwrap();
                    let code = sp["code"].as_str().unwrap();
                    assert!(registry().composite(base, code).is_some(), "{base} {code}");
                    expected += 1;
                }
            }
        }
        let known: usize = registry().composites.values().map(BTreeMap::len).sum();
        assert_eq!(known, expected);
    }

    /// Blood pressure: systolic 120 and diastolic 150 (odd, but the point is which value goes
    /// with which code).
    fn blood_pressure() -> Value {
        json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}], "text": "BP"},
            "subject": {"reference": "Patient/alice"},
            "component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                 "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}], "text": "Diastolic"},
                 "valueQuantity": {"value": 150, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                {"code": {"coding": [{"system": "http://loinc.org", "code": "9999-9"}]}}
            ]
        })
    }

    fn element_rows(
        rows: &[IndexRow],
        param: &str,
    ) -> Vec<(Option<i32>, Option<String>, Option<f64>)> {
        rows.iter()
            .filter(|r| r.param == param)
            .map(|r| (r.element, r.value.clone(), r.number))
            .collect()
    }

    #[test]
    fn element_composites_tag_rows_with_their_element() {
        let rows = registry().extract("Observation", &blood_pressure());
        assert_eq!(
            element_rows(&rows, "component-code-value-quantity$0"),
            vec![
                (Some(0), Some("8480-6".into()), None),
                (Some(1), Some("8462-4".into()), None)
            ]
        );
        assert_eq!(
            element_rows(&rows, "component-code-value-quantity$1"),
            vec![
                (Some(0), Some("mm[Hg]".into()), Some(120.0)),
                (Some(1), Some("mm[Hg]".into()), Some(150.0))
            ]
        );
        // The component's type and system are its definition's.
        assert!(rows
            .iter()
            .filter(|r| r.param == "component-code-value-quantity$0")
            .all(|r| r.system.as_deref() == Some("http://loinc.org")));
        // The resource itself is the combo's element 0 (its code, but no value: no rows); the
        // components are 1, 2 and 3 (without a value, 3 has none).
        assert_eq!(
            element_rows(&rows, "combo-code-value-quantity$1"),
            vec![
                (Some(1), Some("mm[Hg]".into()), Some(120.0)),
                (Some(2), Some("mm[Hg]".into()), Some(150.0))
            ]
        );
        assert_eq!(
            element_rows(&rows, "combo-code-value-quantity$0"),
            vec![
                (Some(1), Some("8480-6".into()), None),
                (Some(2), Some("8462-4".into()), None)
            ]
        );
        // No component has a CodeableConcept value; no `:text` rows for composites.
        assert!(!rows
            .iter()
            .any(|r| r.param.starts_with("component-code-value-concept")
                || r.param.starts_with("combo-code-value-concept")
                || (r.param.contains('$') && r.param.contains(':'))));
        // Other rows have no element.
        assert!(rows
            .iter()
            .filter(|r| !r.param.contains('$'))
            .all(|r| r.element.is_none()));
        assert_eq!(rows.iter().filter(|r| r.element.is_some()).count(), 8);

        let weight = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "valueQuantity": {"value": 60, "code": "kg"}});
        let rows = registry().extract("Observation", &weight);
        assert_eq!(
            element_rows(&rows, "combo-code-value-quantity$1"),
            vec![(Some(0), Some("kg".into()), Some(60.0))]
        );
    }

    #[test]
    fn element_composites_of_other_types() {
        // R4 swaps the components' expressions of `relationship`; the definitions decide:
        // the target (relatesto, a reference) first, then the code (relation, a token).
        let doc = json!({"resourceType": "DocumentReference", "status": "current",
        "content": [{"attachment": {"url": "http://x"}}],
        "relatesTo": [
            {"code": "replaces", "target": {"reference": "DocumentReference/old"}},
            {"code": "appends", "target": {"reference": "DocumentReference/other"}}
        ]});
        let rows = registry().extract("DocumentReference", &doc);
        assert_eq!(
            element_rows(&rows, "relationship$0"),
            vec![
                (Some(0), Some("DocumentReference/old".into()), None),
                (Some(1), Some("DocumentReference/other".into()), None)
            ]
        );
        assert_eq!(
            element_rows(&rows, "relationship$1"),
            vec![
                (Some(0), Some("replaces".into()), None),
                (Some(1), Some("appends".into()), None)
            ]
        );

        let group = json!({"resourceType": "Group", "type": "person", "actual": true,
        "characteristic": [
            {"code": {"text": "smoker"}, "valueBoolean": true, "exclude": false},
            {"code": {"coding": [{"system": "urn:c", "code": "sex"}]},
             "valueCodeableConcept": {"coding": [{"system": "urn:s", "code": "female"}]}, "exclude": false}
        ]});
        let rows = registry().extract("Group", &group);
        assert_eq!(
            element_rows(&rows, "characteristic-value$1"),
            vec![(Some(1), Some("female".into()), None)]
        );

        // `%resource.referenceSeq.chromosome`: the resource's value, with each variant.
        let seq = json!({"resourceType": "MolecularSequence", "coordinateSystem": 0,
            "referenceSeq": {"chromosome": {"coding": [{"system": "urn:chr", "code": "1"}]}},
            "variant": [{"start": 10, "end": 20}, {"start": 30, "end": 40}]});
        let rows = registry().extract("MolecularSequence", &seq);
        assert_eq!(
            element_rows(&rows, "chromosome-variant-coordinate$0"),
            vec![
                (Some(0), Some("1".into()), None),
                (Some(1), Some("1".into()), None)
            ]
        );
        assert_eq!(
            element_rows(&rows, "chromosome-variant-coordinate$2"),
            vec![(Some(0), None, Some(20.0)), (Some(1), None, Some(40.0))]
        );
    }

    #[test]
    fn patient_parameter_only_takes_patients() {
        let obs = json!({"resourceType": "Observation", "subject": {"reference": "Group/g1"}});
        let rows = registry().extract("Observation", &obs);
        assert!(values(&rows, "patient").is_empty());
        assert_eq!(values(&rows, "subject").len(), 1);
    }

    #[test]
    fn strings_are_normalised() {
        let p = json!({"resourceType": "Patient", "name": [{"family": "Müller", "given": ["Zoë", "Ann"], "use": "official"}],
            "birthDate": "1980-02-01", "gender": "female"});
        let rows = registry().extract("Patient", &p);
        let names = values(&rows, "name");
        assert!(names.contains(&(Some("Müller".into()), Some("muller".into()))));
        assert!(names.contains(&(Some("Zoë".into()), Some("zoe".into()))));
        assert!(!names.iter().any(|(_, v)| v.as_deref() == Some("official")));
        assert!(values(&rows, "family").contains(&(Some("Müller".into()), Some("muller".into()))));
        assert!(values(&rows, "gender").contains(&(None, Some("female".into()))));
        assert!(rows
            .iter()
            .any(|r| r.param == "birthdate" && r.start.is_some()));
    }

    #[test]
    fn references_are_normalised() {
        assert_eq!(
            normalize_reference("http://x.org/fhir/Patient/1/_history/2"),
            "Patient/1"
        );
        assert_eq!(normalize_reference("Patient/1"), "Patient/1");
        assert_eq!(normalize_reference("urn:uuid:abc"), "urn:uuid:abc");
    }

    #[test]
    fn choice_elements_without_a_type() {
        let c = json!({"resourceType": "Condition", "onsetPeriod": {"start": "2019-01-01"}, "subject": {"reference": "Patient/p"}});
        let rows = registry().extract("Condition", &c);
        let onset = rows.iter().find(|r| r.param == "onset-date").unwrap();
        assert!(onset.start.is_some() && onset.end.is_none());
    }
}
