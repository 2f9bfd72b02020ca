//! FHIR search: query parameters become one SQL statement over the current-version table and
//! the search index. Parameters AND; comma-separated values OR.
//!
//! Supported: token (`system|code`, `code`, `|code`, `system|`; `:not`, `:text` over
//! CodeableConcept.text and Coding.display, and `:in`/`:not-in` a ValueSet stored here, listed
//! exactly by [`crate::value_set`] once the route has read it through access),
//! reference (`Type/id`, `id`, absolute URLs, `:Type`, `:identifier` over
//! Reference.identifier), string (starts-with, case and accent insensitive;
//! `:exact`, `:contains`), date (`eq ne lt gt le ge sa eb ap` on partial dates against dates,
//! date-times, instants and Periods), number and quantity (`[prefix]n[|system|code]`), uri
//! (`:below`, `:above`), composites over the whole resource (`code-value-quantity=
//! loinc|1234$gt5`) and over an element (`component-code-value-quantity=loinc|8480-6$gt140`:
//! both within one `Observation.component`; no modifiers, no `_sort`),
//! `:of-type` on identifiers (`system|code|value`), `:missing` on any parameter, `_id`,
//! `_lastUpdated`.
//!
//! Chains of any depth up to [`MAX_CHAIN`] links (`subject:Patient.name`, `subject.name` over
//! every target type that has `name`, a 400 when none has; modifiers on the last link) and
//! `_has:Type:param:...`, nested, as subqueries (see `Conditions`). Every resource a chain or
//! `_has` goes through must be one the caller may see: the kernel's scope for its type is
//! compiled into the subquery ([`SearchQuery::restrict_linked`]), so a chain never tells a
//! caller anything about a resource she could not find by searching its own type.
//! `_list=List/id` keeps the resources the List's entries name, once the route has read a List
//! the caller may see ([`SearchQuery::use_lists`]).
//!
//! Result parameters: `_count` (default 50, max 1000), `_cursor` (pages of the default order,
//! given in `next` and `previous` links), `_offset` (pages of other orders), `_sort`
//! (`_lastUpdated`, `_id` or any supported parameter, `-` for descending, comma-separated
//! keys), `_summary` (`true|text|data|count|false`), `_elements`, `_total` (`none`; `estimate`
//! counts exactly, as `accurate`), `_include` and `_revinclude` (`Type:param[:target]`,
//! `Type:*`, `_include=*`, `_revinclude=*`, `:iterate`; the route decides every included
//! resource by access like the matches).
//!
//! Unknown or unsupported parameters (special ones, `_contained=true`,
//! `_text`, `_content`, `_filter`, ...) follow `Prefer: handling`: left out and listed in
//! [`SearchQuery::ignored`] (lenient, the default) or refused (strict, a 400). Malformed values
//! of known parameters, unknown `_sort` keys, unsupported modifiers and malformed `_include`s
//! are a 400 either way, and so is a ValueSet `:in` cannot list exactly.

use chrono::{DateTime, Utc};
use custodian_fhir::{dates, elements::Summary, validate::is_valid_id, FhirError};
use diesel::{
    query_builder::BoxedSqlQuery,
    result::QueryResult,
    sql_types::{Array, Double, Text, Timestamptz},
    QueryableByName,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    registry::{
        component_param, identifier_param, normalize_reference, normalize_string, of_type_param,
        text_param, Composite, ParamType, Registry, SPECIAL,
    },
    value_set::CodeSet,
};

/// What one search engine searches: the parameters' definitions, and the resource types its
/// store holds (a chain, `_has` or include through any other type is refused, or left out
/// under lenient handling: it cannot be answered from this store).
#[derive(Clone, Copy)]
pub struct Store {
    pub registry: &'static Registry,
    pub holds: fn(&str) -> bool,
}

impl Store {
    fn holds(&self, resource_type: &str) -> bool {
        custodian_fhir::validate::is_resource_type(resource_type) && (self.holds)(resource_type)
    }
}

pub use custodian_fhir::bundle::{DEFAULT_COUNT, MAX_COUNT};

/// Parameters accepted and ignored (responses are always JSON).
const IGNORED: &[&str] = &["_format", "_pretty"];

/// Why `_text` and `_content` are not searched.
const NO_FULL_TEXT: &str = "full-text search (_text, _content) is not supported: resources are \
     encrypted at rest and the search index holds no narrative or full text";

/// Why `_contained=true|both` is not searched.
const NO_CONTAINED: &str = "searching contained resources (_contained=true|both) is not \
     supported: contained resources are not indexed";

/// A `_cursor`: the page after (or, for `previous` links, before) a row of the default order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub last_updated: DateTime<Utc>,
    pub id: String,
    pub before: bool,
}

impl Cursor {
    /// The value of `_cursor`.
    pub fn token(&self) -> String {
        let at = self
            .last_updated
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        if self.before {
            format!("before|{at}|{}", self.id)
        } else {
            format!("{at}|{}", self.id)
        }
    }
}

/// One `_sort` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sort {
    LastUpdated {
        descending: bool,
    },
    Id {
        descending: bool,
    },
    /// A search parameter: its smallest (ascending) or largest (descending) indexed value.
    Param {
        code: String,
        kind: ParamType,
        descending: bool,
    },
}

/// A value bound to a `$n` parameter of the statement (never spliced into its text).
#[derive(Debug, Clone)]
pub enum Bind {
    Text(String),
    Texts(Vec<String>),
    Time(DateTime<Utc>),
    Float(f64),
}

/// `_include=Type:param[:target]` or `_revinclude=Type:param[:target]`; `param` is `*` for
/// every reference parameter of the type, and `_include=*` and `_revinclude=*` (every reference
/// to the matches) have `source_type` `*` too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub source_type: String,
    pub param: String,
    pub target: Option<String>,
    /// `:iterate` (or R3's `:recurse`): also followed from included resources.
    pub iterate: bool,
}

impl Include {
    /// Whether the include applies to resources of `resource_type`.
    pub fn applies_to(&self, resource_type: &str) -> bool {
        self.source_type == "*" || self.source_type == resource_type
    }

    /// The reference parameters it follows from `resource_type`.
    pub fn params(&self, registry: &Registry, resource_type: &str) -> Vec<String> {
        if self.param == "*" {
            registry
                .params(resource_type)
                .into_iter()
                .filter(|p| p.kind == ParamType::Reference)
                .map(|p| p.code.clone())
                .collect()
        } else {
            vec![self.param.clone()]
        }
    }
}

/// Most resources `_include`/`_revinclude` add to one page.
pub const MAX_INCLUDES: i64 = 1000;

/// How many times `:iterate` includes are followed from included resources.
pub const MAX_ITERATIONS: usize = 3;

/// Most links in one chained or `_has` parameter.
pub const MAX_CHAIN: usize = 4;

/// Most linked subqueries in one search (a chain without types fans out to every target type
/// that has the next parameter, at each link).
pub const MAX_LINKED: usize = 64;

/// `Type:param[:target]` of `_include`/`_revinclude`. A type that is not a resource type, or a
/// parameter that is not a reference, is malformed (a 400); an include that can only lead to
/// (or come from) types this store does not hold is a [`Refusal::Unknown`]: it cannot be
/// answered here, which lenient handling reports and strict handling refuses.
fn parse_include(store: &Store, raw: &str, iterate: bool) -> Result<Include, Refusal> {
    if raw == "*" {
        return Ok(Include {
            source_type: "*".into(),
            param: "*".into(),
            target: None,
            iterate,
        });
    }
    let mut parts = raw.split(':');
    let (Some(source_type), Some(param)) = (parts.next(), parts.next()) else {
        return Err(bad(format!("{raw:?} is not Type:parameter[:target]")).into());
    };
    let target = parts.next().map(str::to_string);
    if parts.next().is_some() {
        return Err(bad(format!("{raw:?} is not Type:parameter[:target]")).into());
    }
    for t in std::iter::once(source_type).chain(target.as_deref()) {
        if !custodian_fhir::validate::is_resource_type(t) {
            return Err(bad(format!("{t:?} is not a resource type")).into());
        }
    }
    if !store.holds(source_type) {
        return Err(Refusal::Unknown(format!(
            "_include/_revinclude {raw}: {source_type} is not held by this service"
        )));
    }
    let mut targets: Vec<&str> = Vec::new();
    if param == "*" {
        for p in store.registry.params(source_type) {
            if p.kind == ParamType::Reference {
                targets.extend(p.targets.iter().map(String::as_str));
            }
        }
    } else {
        match store.registry.get(source_type, param) {
            Some(p) if p.kind == ParamType::Reference => {
                targets.extend(p.targets.iter().map(String::as_str));
            }
            _ => {
                return Err(bad(format!(
                    "{source_type}:{param} is not a reference search parameter"
                ))
                .into())
            }
        }
    }
    if let Some(t) = &target {
        targets = vec![t.as_str()];
    }
    // A parameter without targets refers to any type.
    if !targets.is_empty() && !targets.iter().any(|t| store.holds(t)) {
        return Err(Refusal::Unknown(format!(
            "_include/_revinclude {raw}: it leads to {}, not held by this service",
            targets.join(", ")
        )));
    }
    Ok(Include {
        source_type: source_type.to_string(),
        param: param.to_string(),
        target,
        iterate,
    })
}

pub use custodian_fhir::{bundle::Ignored, http::Handling};

/// `_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TotalMode {
    /// Not asked: given when the first page holds every match, else left out (the `next` link
    /// says more follow), as HAPI FHIR leaves it out of a large search it has not finished
    /// loading: counting every match of a broad search made each of its pages cost as much
    /// as all of them.
    #[default]
    WhenCheap,
    None,
    /// Counted exactly, as `accurate` is: the planner's estimate would be cheap, but its
    /// statistics are over every organisation's data, and no count may reflect what the
    /// caller cannot see.
    Estimate,
    Accurate,
}

/// A parsed search.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub includes: Vec<Include>,
    pub revincludes: Vec<Include>,
    /// `FROM resources r WHERE ...`: the parameters, then what the caller may see. Resources
    /// a chain or `_has` goes through carry a marker per type ([`visible_marker`]), replaced
    /// by [`SearchQuery::restrict_linked`] (and by `false` until then).
    filter: String,
    order: String,
    binds: Vec<Bind>,
    /// Types a chain or `_has` links through, with what the caller may see of each once
    /// [`SearchQuery::restrict_linked`] has said.
    linked: BTreeMap<String, Option<String>>,
    /// The one patient the search names (`patient=`, `subject=Patient/..`, `Patient?_id=`):
    /// access is decided for her, and break-glass is possible.
    pub named_patient: Option<String>,
    pub count: usize,
    pub offset: usize,
    /// `_cursor`: the page after (or before) a (last updated, id) in the default order.
    pub cursor: Option<Cursor>,
    pub sort: Vec<Sort>,
    /// The parameters that define the search (for `self` and `next` links).
    pub link_params: Vec<(String, String)>,
    /// Parameters left out (lenient handling), for the `outcome` entry.
    pub ignored: Vec<Ignored>,
    /// `:in`/`:not-in` conditions, each a marker in `filter` ([`in_marker`]) until
    /// [`SearchQuery::use_value_sets`] gives its SQL (`false` until then).
    value_sets: Vec<(InValueSet, Option<String>)>,
    /// `_list` parameters (List ids each), markers ([`list_marker`]) until
    /// [`SearchQuery::use_lists`] (`false` until then).
    lists: Vec<(Vec<String>, Option<String>)>,
    pub total_mode: TotalMode,
    pub summary: Option<Summary>,
    pub elements: Option<Vec<String>>,
}

/// The placeholder of what the caller may see of linked resources of `resource_type` (a
/// validated type name: letters only).
fn visible_marker(resource_type: &str) -> String {
    format!("{{visible:{resource_type}}}")
}

/// The placeholder of the `n`th `:in`/`:not-in` condition (the whole condition, so that one
/// not yet given matches nothing, negated or not).
fn in_marker(n: usize) -> String {
    format!("{{in:{n}}}")
}

/// The placeholder of the `n`th `_list` condition.
fn list_marker(n: usize) -> String {
    format!("{{list:{n}}}")
}

/// `param:in=vs1,vs2` (or `:not-in`): the ValueSets, as given (`url`, `url|version`,
/// `ValueSet/id`).
#[derive(Debug, Clone)]
struct InValueSet {
    param: String,
    negated: bool,
    value_sets: Vec<String>,
}

/// SQL over `i`, a token row of the index: its system and code are in `set`. Rows without a
/// system (elements of type `code`) are in no set: a ValueSet names codes by system.
fn code_set_sql(b: &mut Builder, set: &CodeSet) -> String {
    let mut ors = Vec::new();
    if !set.codes().is_empty() {
        let (systems, codes): (Vec<String>, Vec<String>) = set.codes().iter().cloned().unzip();
        let s = b.bind(Bind::Texts(systems));
        let c = b.bind(Bind::Texts(codes));
        ors.push(format!(
            "(i.system, i.value) IN (SELECT v.system, v.code FROM unnest({s}::text[], {c}::text[]) AS v(system, code))"
        ));
    }
    for (system, excluded) in set.systems() {
        let s = b.text(system.as_str());
        if excluded.is_empty() {
            ors.push(format!("i.system = {s}"));
        } else {
            let e = b.bind(Bind::Texts(excluded.iter().cloned().collect()));
            ors.push(format!("(i.system = {s} AND NOT (i.value = ANY({e})))"));
        }
    }
    if ors.is_empty() {
        "false".into()
    } else {
        format!("({})", ors.join(" OR "))
    }
}

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = diesel::sql_types::Int8)]
    n: i64,
}

/// The patient a single-valued compartment parameter names, when it can only be a patient.
fn patient_named_by(
    code: &str,
    modifier: Option<&str>,
    targets: &[String],
    raw: &str,
) -> Option<String> {
    if !matches!(code, "patient" | "subject" | "beneficiary" | "individual")
        || modifier.is_some_and(|m| m != "Patient")
    {
        return None;
    }
    let value = normalize_reference(raw);
    match value.split_once('/') {
        Some(("Patient", id)) if is_valid_id(id) => Some(value),
        // `patient` always means a Patient (its expressions select only Patients, though the
        // shared definition lists Group among its targets).
        None if is_valid_id(&value)
            && (code == "patient"
                || modifier == Some("Patient")
                || targets.iter().all(|t| t == "Patient")) =>
        {
            Some(format!("Patient/{value}"))
        }
        _ => None,
    }
}

/// A matching resource the caller may see.
#[derive(Debug, Clone, QueryableByName)]
pub struct Match {
    #[diesel(sql_type = Text)]
    pub resource_id: String,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    pub version: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub patient_ref: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub confidentiality: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub last_updated: DateTime<Utc>,
}

/// The statement's bound values: each `bind` returns the `$n` that stands for it.
pub struct Builder {
    binds: Vec<Bind>,
}

impl Builder {
    pub fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }
    pub fn text(&mut self, s: impl Into<String>) -> String {
        self.bind(Bind::Text(s.into()))
    }
    pub fn texts(&mut self, v: Vec<String>) -> String {
        self.bind(Bind::Texts(v))
    }
}

fn bad(msg: impl Into<String>) -> FhirError {
    FhirError::BadRequest(msg.into())
}

/// Splits on commas not escaped with `\`, unescaping `\,` `\|` `\$` `\\`.
fn split_values(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ (',' | '$' | '\\')) => cur.push(n),
                Some('|') => cur.push_str("\\|"),
                Some(n) => {
                    cur.push('\\');
                    cur.push(n);
                }
                None => cur.push('\\'),
            },
            ',' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().filter(|v| !v.is_empty()).collect()
}

/// Splits `a|b` on the first unescaped `|`.
fn split_pipe(v: &str) -> Option<(String, String)> {
    let bytes = v.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'|' && (i == 0 || bytes[i - 1] != b'\\') {
            return Some((v[..i].replace("\\|", "|"), v[i + 1..].replace("\\|", "|")));
        }
    }
    None
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

const PREFIXES: &[&str] = &["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"];

fn split_prefix(v: &str) -> (&str, &str) {
    // `get` and not `[..2]`: the value is client text and need not be ASCII.
    match (v.get(..2), v.get(2..)) {
        (Some(prefix), Some(rest))
            if PREFIXES.contains(&prefix)
                && rest
                    .bytes()
                    .next()
                    .is_some_and(|b| !b.is_ascii_alphabetic()) =>
        {
            (prefix, rest)
        }
        _ => ("eq", v),
    }
}

/// SQL comparing a stored range [s, e) with the searched range [ps, pe).
fn date_sql(b: &mut Builder, s: &str, e: &str, raw: &str) -> Result<String, FhirError> {
    let (prefix, value) = split_prefix(raw);
    let (start, end) =
        dates::parse_range(value).ok_or_else(|| bad(format!("{value:?} is not a valid date")))?;
    let ps = b.bind(Bind::Time(start));
    let pe = b.bind(Bind::Time(end));
    Ok(match prefix {
        "eq" => format!("({s} >= {ps} AND {e} <= {pe})"),
        "ne" => format!("NOT ({s} >= {ps} AND {e} <= {pe})"),
        "gt" => format!("({e} > {pe})"),
        "lt" => format!("({s} < {ps})"),
        "ge" => format!("({e} > {ps})"),
        "le" => format!("({s} < {pe})"),
        "sa" => format!("({s} >= {pe})"),
        "eb" => format!("({e} <= {ps})"),
        _ => format!("({s} < {pe} AND {e} > {ps})"),
    })
}

fn number_sql(b: &mut Builder, raw: &str) -> Result<String, FhirError> {
    let (prefix, value) = split_prefix(raw);
    let n: f64 = value
        .parse()
        .map_err(|_| bad(format!("{value:?} is not a number")))?;
    if !n.is_finite() {
        return Err(bad("numbers must be finite"));
    }
    // Equality is within the value's precision: 100 matches [99.5, 100.5).
    let decimals = value
        .split_once('.')
        .map(|(_, d)| d.len() as i32)
        .unwrap_or(0);
    let half = 0.5 * 10f64.powi(-decimals);
    let v = b.bind(Bind::Float(n));
    Ok(match prefix {
        "eq" | "ap" => {
            let lo = b.bind(Bind::Float(n - half));
            let hi = b.bind(Bind::Float(n + half));
            format!("(i.number >= {lo} AND i.number < {hi})")
        }
        "ne" => {
            let lo = b.bind(Bind::Float(n - half));
            let hi = b.bind(Bind::Float(n + half));
            format!("(i.number < {lo} OR i.number >= {hi})")
        }
        "gt" | "sa" => format!("(i.number > {v})"),
        "lt" | "eb" => format!("(i.number < {v})"),
        "ge" => format!("(i.number >= {v})"),
        _ => format!("(i.number <= {v})"),
    })
}

fn value_sql(
    b: &mut Builder,
    kind: ParamType,
    modifier: Option<&str>,
    targets: &[String],
    raw: &str,
) -> Result<String, FhirError> {
    match kind {
        ParamType::Token => {
            if modifier.is_some() {
                return Err(bad(format!(
                    "modifier :{} is not supported on token parameters",
                    modifier.unwrap_or_default()
                )));
            }
            Ok(match split_pipe(raw) {
                None => format!("i.value = {}", b.text(raw)),
                Some((system, code)) if system.is_empty() => {
                    format!("(i.system IS NULL AND i.value = {})", b.text(code))
                }
                Some((system, code)) if code.is_empty() => format!("i.system = {}", b.text(system)),
                Some((system, code)) => format!(
                    "(i.system = {} AND i.value = {})",
                    b.text(system),
                    b.text(code)
                ),
            })
        }
        ParamType::Reference => {
            let mut value = normalize_reference(raw);
            if let Some(t) = modifier {
                if !custodian_fhir::validate::is_resource_type(t) {
                    return Err(bad(format!(
                        "modifier :{t} is not supported on reference parameters"
                    )));
                }
                if !value.contains('/') {
                    value = format!("{t}/{value}");
                } else if !value.starts_with(&format!("{t}/")) {
                    return Err(bad(format!("{raw:?} is not a {t} reference")));
                }
            }
            if value.contains('/') || !is_valid_id(&value) {
                Ok(format!("i.value = {}", b.text(value)))
            } else {
                // A bare id: any of the parameter's target types.
                let mut refs: Vec<String> =
                    targets.iter().map(|t| format!("{t}/{value}")).collect();
                refs.push(value);
                Ok(format!("i.value = ANY({})", b.bind(Bind::Texts(refs))))
            }
        }
        ParamType::String => match modifier {
            None => Ok(format!(
                "i.value LIKE {} ESCAPE '\\'",
                b.text(format!("{}%", like_escape(&normalize_string(raw))))
            )),
            Some("contains") => Ok(format!(
                "i.value LIKE {} ESCAPE '\\'",
                b.text(format!("%{}%", like_escape(&normalize_string(raw))))
            )),
            Some("exact") => Ok(format!("i.system = {}", b.text(raw))),
            Some(m) => Err(bad(format!(
                "modifier :{m} is not supported on string parameters"
            ))),
        },
        ParamType::Date => {
            if modifier.is_some() {
                return Err(bad("modifiers are not supported on date parameters"));
            }
            date_sql(
                b,
                "COALESCE(i.value_start, '-infinity')",
                "COALESCE(i.value_end, 'infinity')",
                raw,
            )
        }
        ParamType::Number => {
            if modifier.is_some() {
                return Err(bad("modifiers are not supported on number parameters"));
            }
            number_sql(b, raw)
        }
        ParamType::Quantity => {
            if modifier.is_some() {
                return Err(bad("modifiers are not supported on quantity parameters"));
            }
            let mut parts = raw.splitn(3, '|');
            let number = parts.next().unwrap_or_default();
            let system = parts.next().unwrap_or_default();
            let code = parts.next().unwrap_or_default();
            let mut sql = number_sql(b, number)?;
            if !system.is_empty() {
                sql = format!("({sql} AND i.system = {})", b.text(system));
            }
            if !code.is_empty() {
                sql = format!("({sql} AND i.value = {})", b.text(code));
            }
            Ok(sql)
        }
        ParamType::Uri => match modifier {
            None => Ok(format!("i.value = {}", b.text(raw))),
            Some("below") => Ok(format!(
                "i.value LIKE {} ESCAPE '\\'",
                b.text(format!("{}%", like_escape(raw)))
            )),
            // The stored URI is a prefix of the searched one (`:above` of a canonical URL).
            Some("above") => Ok(format!(
                "(i.value IS NOT NULL AND starts_with({}, i.value))",
                b.text(raw)
            )),
            Some(m) => Err(bad(format!(
                "modifier :{m} is not supported on uri parameters"
            ))),
        },
    }
}

/// Why a parameter cannot be used: unknown or unsupported (ignored when handling is lenient),
/// or malformed (always a 400).
enum Refusal {
    Unknown(String),
    Bad(FhirError),
}

impl From<FhirError> for Refusal {
    fn from(e: FhirError) -> Self {
        Self::Bad(e)
    }
}

fn split_modifier(name: &str) -> (&str, Option<&str>) {
    match name.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (name, None),
    }
}

/// Builds the condition each search parameter puts on `r`, a row of `resources`.
///
/// Chains and `_has` are nested subqueries that name their own rows `r` again (SQL scoping:
/// the innermost `r` wins), so every condition, and what the caller may see, is written once
/// over `r` and holds for the main resources and for every linked one alike. Each linked
/// resource must be one the caller may see: its subquery ends with the visibility marker of
/// its type, which [`SearchQuery::restrict_linked`] replaces with the same SQL
/// [`SearchQuery::restrict`] adds for the main type (the kernel's scope for that type). This is
/// exact rather than a refusal of chains: the scope the kernel gives for a type is what a
/// search of that type would return, so `Observation?subject.name=x` matches through exactly
/// the Patients `Patient?name=x` would show the caller, and never through a hidden one.
struct Conditions<'r> {
    store: &'r Store,
    registry: &'r Registry,
    b: Builder,
    linked: BTreeMap<String, Option<String>>,
    /// Linked subqueries so far (at most [`MAX_LINKED`]).
    subqueries: usize,
    /// `:in`/`:not-in` conditions, by marker number.
    value_sets: Vec<InValueSet>,
}

impl Conditions<'_> {
    /// The condition of `name=raw` on `r`, a resource of `resource_type`; `None` when the value
    /// is empty (the parameter is then left out, as an absent one).
    fn param(
        &mut self,
        resource_type: &str,
        name: &str,
        raw: &str,
        depth: usize,
    ) -> Result<Option<String>, Refusal> {
        if depth > MAX_CHAIN {
            return Err(bad(format!(
                "at most {MAX_CHAIN} links in one chained or _has parameter"
            ))
            .into());
        }
        if let Some(rest) = name.strip_prefix("_has:") {
            return self.has(resource_type, rest, raw, depth);
        }
        if let Some((link, rest)) = name.split_once('.') {
            return self.chain(resource_type, link, rest, raw, depth);
        }
        self.leaf(resource_type, name, raw)
    }

    fn linked(&mut self, resource_type: &str) -> Result<String, Refusal> {
        self.subqueries += 1;
        if self.subqueries > MAX_LINKED {
            return Err(bad(format!(
                "the chained parameters reach more than {MAX_LINKED} resource types: name them with :Type"
            ))
            .into());
        }
        self.linked.insert(resource_type.to_string(), None);
        Ok(visible_marker(resource_type))
    }

    /// `_has:Type:param:rest`: some resource of `Type` the caller may see refers to `r` (of
    /// `resource_type`) through `param` and satisfies `rest` (itself possibly a `_has` or a
    /// chain).
    fn has(
        &mut self,
        resource_type: &str,
        rest: &str,
        raw: &str,
        depth: usize,
    ) -> Result<Option<String>, Refusal> {
        let mut parts = rest.splitn(3, ':');
        let (Some(source), Some(code), Some(inner)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(format!("_has:{rest} is not _has:Type:parameter:parameter")).into());
        };
        if !self.store.holds(source) {
            return Err(Refusal::Unknown(format!(
                "_has: {source:?} is not a resource type held by this service"
            )));
        }
        match self.registry.get(source, code) {
            Some(p) if p.kind == ParamType::Reference => {}
            _ => {
                return Err(Refusal::Unknown(format!(
                    "_has: {source}:{code} is not a reference search parameter"
                )))
            }
        }
        let Some(condition) = self.param(source, inner, raw, depth + 1)? else {
            return Ok(None);
        };
        let t = self.b.text(source);
        let p = self.b.text(code);
        let prefix = format!("{resource_type}/");
        // 1-based: the id after `Type/` (a type name is ASCII letters).
        let from = prefix.len() + 1;
        let prefix = self.b.text(prefix);
        let visible = self.linked(source)?;
        let h = format!("h{depth}");
        // As chains: the referrers do not depend on `r` (the inner `r` is the referrer), so the
        // ids they name are found once (an InitPlan) and `r` looked up by key, rather than a
        // correlated EXISTS run again for every row. `value = Type/id` exactly when the value
        // starts with `Type/` and the rest is the id.
        Ok(Some(format!(
            "r.resource_id = ANY(ARRAY(SELECT substr({h}.value, {from}) FROM search_index {h} \
             JOIN resources r ON r.resource_type = {h}.resource_type AND r.resource_id = {h}.resource_id \
             WHERE {h}.resource_type = {t} AND {h}.param = {p} AND starts_with({h}.value, {prefix}) \
             AND NOT r.deleted AND {condition} AND {visible}))"
        )))
    }

    /// `param[:Type].rest`: `r` refers through `param` to a resource the caller may see that
    /// satisfies `rest`. Without a type, every target type that has `rest`'s parameter.
    fn chain(
        &mut self,
        resource_type: &str,
        link: &str,
        rest: &str,
        raw: &str,
        depth: usize,
    ) -> Result<Option<String>, Refusal> {
        let (code, modifier) = split_modifier(link);
        let registry = self.registry;
        let Some(param) = registry.get(resource_type, code) else {
            return Err(Refusal::Unknown(format!(
                "Unknown search parameter \"{code}\" for resource type \"{resource_type}\""
            )));
        };
        if param.kind != ParamType::Reference {
            return Err(bad(format!(
                "{code} is not a reference parameter: it cannot be chained"
            ))
            .into());
        }
        let next = rest.split(['.', ':']).next().unwrap_or_default();
        let targets: Vec<String> = match modifier {
            Some(t) => {
                if !custodian_fhir::validate::is_resource_type(t) {
                    return Err(bad(format!("{t:?} is not a resource type")).into());
                }
                if !self.store.holds(t) {
                    return Err(Refusal::Unknown(format!(
                        "{link}: {t} is not held by this service"
                    )));
                }
                if !param.targets.is_empty() && !param.targets.iter().any(|x| x == t) {
                    return Err(bad(format!("{code} does not refer to {t}")).into());
                }
                vec![t.to_string()]
            }
            None => param
                .targets
                .iter()
                .filter(|t| {
                    self.store.holds(t)
                        && (next == "_has"
                            || SPECIAL.contains(&next)
                            || registry.get(t, next).is_some())
                })
                .cloned()
                .collect(),
        };
        if targets.is_empty() && !param.targets.iter().any(|t| self.store.holds(t)) {
            return Err(Refusal::Unknown(format!(
                "{code} leads to {}, not held by this service",
                param.targets.join(", ")
            )));
        }
        if targets.is_empty() {
            return Err(bad(format!(
                "no resource type {resource_type}.{code} refers to has a search parameter {next:?}"
            ))
            .into());
        }
        let mut selects = Vec::new();
        for t in &targets {
            let Some(condition) = self.param(t, rest, raw, depth + 1)? else {
                return Ok(None);
            };
            let tb = self.b.text(t.as_str());
            let visible = self.linked(t)?;
            selects.push(format!(
                "SELECT r.resource_type || '/' || r.resource_id FROM resources r WHERE \
                 r.resource_type = {tb} AND NOT r.deleted AND {condition} AND {visible}"
            ));
        }
        let p = self.b.text(code);
        // `= ANY(ARRAY(...))`, not `IN (...)`: the linked resources do not depend on `r`, so
        // they are found once (an InitPlan) and `r`'s references looked up by index; an `IN`
        // is pulled up into a semi-join whose plan, on a table the planner misjudges, re-runs
        // the inner search per row (seen: 2 s on 200 resources).
        Ok(Some(format!(
            "EXISTS (SELECT 1 FROM search_index i WHERE i.resource_type = r.resource_type \
             AND i.resource_id = r.resource_id AND i.param = {p} AND i.value = ANY(ARRAY({})))",
            selects.join(" UNION ALL ")
        )))
    }

    /// One parameter of `r` itself.
    fn leaf(
        &mut self,
        resource_type: &str,
        name: &str,
        raw: &str,
    ) -> Result<Option<String>, Refusal> {
        let (code, modifier) = split_modifier(name);
        let special = SPECIAL.contains(&code);
        if !special && self.registry.get(resource_type, code).is_none() {
            if let Some(composite) = self.registry.composite(resource_type, code) {
                if modifier.is_some() {
                    return Err(bad(format!("modifiers are not supported on {code}")).into());
                }
                if composite.over_elements() {
                    return self.element_composite(resource_type, composite, raw);
                }
                return self.composite(resource_type, &composite.components, code, raw);
            }
        }
        let param = if special {
            None
        } else {
            Some(self.registry.get(resource_type, code).ok_or_else(|| {
                Refusal::Unknown(format!(
                    "Unknown search parameter \"{code}\" for resource type \"{resource_type}\""
                ))
            })?)
        };
        let values = split_values(raw);
        if values.is_empty() {
            return Ok(None);
        }
        let b = &mut self.b;
        if modifier == Some("missing") {
            let missing = match raw {
                "true" => true,
                "false" => false,
                _ => return Err(bad(":missing takes true or false").into()),
            };
            if special {
                return Ok(Some(if missing { "false" } else { "true" }.into()));
            }
            let p = b.text(code);
            let exists = format!(
                "EXISTS (SELECT 1 FROM search_index i WHERE i.resource_type = r.resource_type \
                 AND i.resource_id = r.resource_id AND i.param = {p})"
            );
            return Ok(Some(if missing {
                format!("NOT {exists}")
            } else {
                exists
            }));
        }
        match (code, param) {
            ("_id", _) => {
                if modifier.is_some() {
                    return Err(bad("modifiers are not supported on _id").into());
                }
                let p = b.bind(Bind::Texts(values));
                Ok(Some(format!("r.resource_id = ANY({p})")))
            }
            (_, None) => {
                if modifier.is_some() {
                    return Err(bad("modifiers are not supported on _lastUpdated").into());
                }
                let mut ors = Vec::new();
                for v in &values {
                    ors.push(date_sql(
                        b,
                        "r.last_updated",
                        "(r.last_updated + interval '1 millisecond')",
                        v,
                    )?);
                }
                Ok(Some(format!("({})", ors.join(" OR "))))
            }
            (_, Some(param))
                if matches!(modifier, Some("in" | "not-in")) && param.kind == ParamType::Token =>
            {
                // Listed once the route has read the ValueSets ([`SearchQuery::use_value_sets`]).
                self.value_sets.push(InValueSet {
                    param: code.to_string(),
                    negated: modifier == Some("not-in"),
                    value_sets: values.iter().map(|v| v.replace("\\|", "|")).collect(),
                });
                Ok(Some(in_marker(self.value_sets.len() - 1)))
            }
            (_, Some(param)) if modifier == Some("of-type") && param.kind == ParamType::Token => {
                // `system|code|value`: an Identifier of that type with that value.
                let p = b.text(of_type_param(code));
                let mut ors = Vec::new();
                for v in &values {
                    let parts: Vec<String> = split_escaped(v, '|')
                        .into_iter()
                        .map(|x| x.replace("\\|", "|"))
                        .collect();
                    let [system, type_code, value] = parts.as_slice() else {
                        return Err(bad(format!("{name}={v} is not system|code|value")).into());
                    };
                    ors.push(format!(
                        "(i.system = {} AND i.value = {})",
                        b.text(system.as_str()),
                        b.text(format!("{type_code}|{value}"))
                    ));
                }
                Ok(Some(format!(
                    "EXISTS (SELECT 1 FROM search_index i WHERE i.resource_type = r.resource_type \
                     AND i.resource_id = r.resource_id AND i.param = {p} AND ({}))",
                    ors.join(" OR ")
                )))
            }
            (_, Some(param)) => {
                let negated = modifier == Some("not") && param.kind == ParamType::Token;
                let text = modifier == Some("text") && param.kind == ParamType::Token;
                let identifier =
                    modifier == Some("identifier") && param.kind == ParamType::Reference;
                let (p, kind, modifier) = if text {
                    (b.text(text_param(code)), ParamType::String, None)
                } else if identifier {
                    (b.text(identifier_param(code)), ParamType::Token, None)
                } else if negated {
                    (b.text(code), param.kind, None)
                } else {
                    (b.text(code), param.kind, modifier)
                };
                let mut ors = Vec::new();
                for v in &values {
                    ors.push(value_sql(b, kind, modifier, &param.targets, v)?);
                }
                Ok(Some(format!(
                    "{}EXISTS (SELECT 1 FROM search_index i WHERE i.resource_type = r.resource_type \
                     AND i.resource_id = r.resource_id AND i.param = {p} AND ({}))",
                    if negated { "NOT " } else { "" },
                    ors.join(" OR ")
                )))
            }
        }
    }
}

impl Conditions<'_> {
    /// A composite over the whole resource: `a$b` holds when each component parameter holds
    /// for its part; comma-separated values OR.
    fn composite(
        &mut self,
        resource_type: &str,
        components: &[String],
        code: &str,
        raw: &str,
    ) -> Result<Option<String>, Refusal> {
        let mut ors = Vec::new();
        for value in split_escaped(raw, ',') {
            let parts = split_escaped(&value, '$');
            if parts.len() != components.len() {
                return Err(bad(format!(
                    "{code} takes {} values separated by $",
                    components.len()
                ))
                .into());
            }
            let mut ands = Vec::new();
            for (component, part) in components.iter().zip(&parts) {
                match self.leaf(resource_type, component, part)? {
                    Some(condition) => ands.push(condition),
                    None => return Err(bad(format!("{code}: a component is empty")).into()),
                }
            }
            ors.push(format!("({})", ands.join(" AND ")));
        }
        if ors.is_empty() {
            return Ok(None);
        }
        Ok(Some(format!("({})", ors.join(" OR "))))
    }
}

impl Conditions<'_> {
    /// A composite over an element: `a$b` holds when one element (one `Observation.component`)
    /// has a value of each component matching its part; comma-separated values OR. The
    /// element's rows are the composite's own, `{code}${n}` ([`component_param`]), tagged with
    /// the element: the first component's row is found, and each other component must have a
    /// matching row with the same element. Every `IN` subquery names its rows `i` again, so
    /// each component's condition is the one [`value_sql`] writes for its type.
    fn element_composite(
        &mut self,
        resource_type: &str,
        composite: &Composite,
        raw: &str,
    ) -> Result<Option<String>, Refusal> {
        let code = composite.code.as_str();
        let registry = self.registry;
        let mut ors = Vec::new();
        for value in split_escaped(raw, ',') {
            let parts = split_escaped(&value, '$');
            if parts.len() != composite.components.len() {
                return Err(bad(format!(
                    "{code} takes {} values separated by $",
                    composite.components.len()
                ))
                .into());
            }
            let mut rows = Vec::new();
            for (n, (component, part)) in composite.components.iter().zip(&parts).enumerate() {
                let Some(param) = registry.get(resource_type, component) else {
                    return Err(Refusal::Unknown(format!(
                        "{code}: component {component:?} is not a parameter of {resource_type}"
                    )));
                };
                // The part is one value: the commas in it were escaped.
                let values = split_values(part);
                let [v] = values.as_slice() else {
                    return Err(bad(format!("{code}: a component is empty")).into());
                };
                let p = self.b.text(component_param(code, n));
                let condition = value_sql(&mut self.b, param.kind, None, &param.targets, v)?;
                rows.push(format!(
                    "FROM search_index i WHERE i.resource_type = r.resource_type \
                     AND i.resource_id = r.resource_id AND i.param = {p} AND ({condition})"
                ));
            }
            let mut rows = rows.into_iter();
            let Some(first) = rows.next() else {
                continue;
            };
            let same_element: String = rows
                .map(|other| format!(" AND i.element IN (SELECT i.element {other})"))
                .collect();
            ors.push(format!("EXISTS (SELECT 1 {first}{same_element})"));
        }
        if ors.is_empty() {
            return Ok(None);
        }
        Ok(Some(format!("({})", ors.join(" OR "))))
    }
}

/// Splits on `sep` where not escaped with `\`, keeping escapes (the parts are split again).
fn split_escaped(raw: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in raw.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out.into_iter().filter(|v| !v.is_empty()).collect()
}

/// The `_cursor` of the page after a row: its last update (microseconds, as stored) and id.
pub fn cursor_of(last_updated: DateTime<Utc>, id: &str) -> String {
    Cursor {
        last_updated,
        id: id.to_string(),
        before: false,
    }
    .token()
}

fn parse_cursor(raw: &str) -> Result<Cursor, FhirError> {
    let refused = || bad("_cursor is not a cursor this server gave");
    let (before, rest) = match raw.strip_prefix("before|") {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let (at, id) = rest.split_once('|').ok_or_else(refused)?;
    let at = DateTime::parse_from_rfc3339(at).map_err(|_| refused())?;
    if !is_valid_id(id) {
        return Err(refused());
    }
    Ok(Cursor {
        last_updated: at.with_timezone(&Utc),
        id: id.to_string(),
        before,
    })
}

/// Leaves `name` out of a lenient search (noting why), or refuses a strict one.
fn refuse(
    handling: Handling,
    ignored: &mut Vec<Ignored>,
    name: &str,
    reason: String,
) -> Result<(), FhirError> {
    match handling {
        Handling::Strict => Err(bad(reason)),
        Handling::Lenient => {
            ignored.push(Ignored {
                name: name.to_string(),
                reason,
            });
            Ok(())
        }
    }
}

impl SearchQuery {
    /// Parses the query parameters of a search on `resource_type`. Parameters it does not know
    /// or support are refused when `handling` is strict, else left out and listed in
    /// [`SearchQuery::ignored`]; malformed values of known parameters are refused either way.
    pub fn parse(
        store: &Store,
        resource_type: &str,
        pairs: &[(String, String)],
        handling: Handling,
    ) -> Result<Self, FhirError> {
        // PostgreSQL text cannot hold U+0000: such a value would fail in the query (a 500).
        if pairs
            .iter()
            .any(|(name, value)| name.contains('\0') || value.contains('\0'))
        {
            return Err(FhirError::BadRequest(
                "search parameters may not contain the NUL character (U+0000)".into(),
            ));
        }
        let registry = store.registry;
        let mut c = Conditions {
            store,
            registry,
            b: Builder { binds: Vec::new() },
            linked: BTreeMap::new(),
            subqueries: 0,
            value_sets: Vec::new(),
        };
        let type_bind = c.b.text(resource_type);
        let mut sql =
            format!("FROM resources r WHERE r.resource_type = {type_bind} AND NOT r.deleted");
        let mut named_patient: Option<String> = None;
        let mut count = DEFAULT_COUNT;
        let mut offset = 0usize;
        let mut cursor = None;
        let mut sort: Vec<Sort> = Vec::new();
        let mut includes = Vec::new();
        let mut revincludes = Vec::new();
        let mut link_params = Vec::new();
        let mut ignored = Vec::new();
        let mut total_mode = TotalMode::default();
        let mut summary = None;
        let mut elements = None;
        let mut lists: Vec<Vec<String>> = Vec::new();
        for (name, raw) in pairs {
            let (code, modifier) = split_modifier(name);
            match code {
                "_count" => {
                    count = custodian_fhir::bundle::page_size(raw)?;
                    link_params.push((name.clone(), raw.clone()));
                    continue;
                }
                "_cursor" => {
                    cursor = Some(parse_cursor(raw)?);
                    continue;
                }
                "_offset" | "_getpagesoffset" => {
                    offset = raw
                        .parse::<usize>()
                        .map_err(|_| bad("_offset must be a non-negative integer"))?;
                    continue;
                }
                "_sort" => {
                    // An unknown key is a bad value of `_sort` (as in HAPI FHIR): a 400 whatever
                    // the handling, since ignoring it would reorder the pages silently.
                    for key in raw.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                        let (descending, key) = match key.strip_prefix('-') {
                            Some(k) => (true, k),
                            None => (false, key),
                        };
                        sort.push(match key {
                            "_lastUpdated" => Sort::LastUpdated { descending },
                            "_id" => Sort::Id { descending },
                            other => match registry.get(resource_type, other) {
                                Some(p) if !SPECIAL.contains(&other) => Sort::Param {
                                    code: p.code.clone(),
                                    kind: p.kind,
                                    descending,
                                },
                                _ if registry.composite(resource_type, other).is_some() => {
                                    return Err(bad(format!(
                                        "cannot sort by composite parameter {other:?}"
                                    )))
                                }
                                _ => {
                                    return Err(bad(format!(
                                        "cannot sort by unknown parameter {other:?}"
                                    )))
                                }
                            },
                        });
                    }
                    link_params.push((name.clone(), raw.clone()));
                    continue;
                }
                "_include" | "_revinclude" => {
                    let iterate = match modifier {
                        None => false,
                        Some("iterate" | "recurse") => true,
                        Some(m) => return Err(bad(format!("{code}:{m} is not supported"))),
                    };
                    let reverse = code == "_revinclude";
                    let include = match parse_include(store, raw, iterate) {
                        Ok(include) => include,
                        Err(Refusal::Unknown(reason)) => {
                            refuse(handling, &mut ignored, name, reason)?;
                            continue;
                        }
                        Err(Refusal::Bad(e)) => return Err(e),
                    };
                    if reverse {
                        revincludes.push(include);
                    } else {
                        if !iterate && !include.applies_to(resource_type) {
                            return Err(bad(format!(
                                "_include={raw} does not start with {resource_type}"
                            )));
                        }
                        includes.push(include);
                    }
                    link_params.push((name.clone(), raw.clone()));
                    continue;
                }
                "_summary" => {
                    let s = Summary::parse(raw).ok_or_else(|| {
                        bad(format!(
                            "_summary={raw} is not true, text, data, count or false"
                        ))
                    })?;
                    if s == Summary::Count {
                        count = 0;
                    }
                    summary = Some(s);
                    link_params.push((name.clone(), raw.clone()));
                    continue;
                }
                "_elements" => {
                    let names: Vec<String> = raw
                        .split(',')
                        .map(str::trim)
                        .filter(|e| !e.is_empty())
                        .map(str::to_string)
                        .collect();
                    if let Some(e) = names
                        .iter()
                        .find(|e| !e.chars().all(|c| c.is_ascii_alphanumeric()))
                    {
                        return Err(bad(format!("_elements: {e:?} is not an element name")));
                    }
                    elements = Some(names);
                    link_params.push((name.clone(), raw.clone()));
                    continue;
                }
                "_total" => {
                    total_mode = match raw.as_str() {
                        "none" => TotalMode::None,
                        "estimate" => TotalMode::Estimate,
                        "accurate" => TotalMode::Accurate,
                        other => {
                            return Err(bad(format!(
                                "_total={other} is not none, estimate or accurate"
                            )))
                        }
                    };
                    link_params.push((name.clone(), raw.clone()));
                    continue;
                }
                "_list" => {
                    if modifier.is_some() {
                        return Err(bad("modifiers are not supported on _list"));
                    }
                    let values = split_values(raw);
                    if let Some(f) = values.iter().find(|v| v.starts_with('$')) {
                        refuse(
                            handling,
                            &mut ignored,
                            name,
                            format!("_list={f}: functional lists are not supported; name a List as List/id"),
                        )?;
                        continue;
                    }
                    let mut ids = Vec::new();
                    for v in &values {
                        let id = v.strip_prefix("List/").unwrap_or(v);
                        if !is_valid_id(id) {
                            return Err(bad(format!("_list={v} is not List/id")));
                        }
                        ids.push(id.to_string());
                    }
                    if ids.is_empty() {
                        continue;
                    }
                    sql.push_str(&format!(" AND {}", list_marker(lists.len())));
                    lists.push(ids);
                    link_params.push((name.clone(), raw.clone()));
                    continue;
                }
                "_contained" | "_containedType" => {
                    if modifier.is_some() {
                        return Err(bad(format!("modifiers are not supported on {code}")));
                    }
                    // The defaults (`false`, `container`) are what every search does.
                    match (code, raw.as_str()) {
                        ("_contained", "false") | ("_containedType", "container") => {}
                        ("_contained", "true" | "both") | ("_containedType", "contained") => {
                            refuse(handling, &mut ignored, name, NO_CONTAINED.into())?
                        }
                        _ if code == "_contained" => {
                            return Err(bad("_contained takes true, false or both"))
                        }
                        _ => return Err(bad("_containedType takes container or contained")),
                    }
                    continue;
                }
                "_text" | "_content" => {
                    refuse(handling, &mut ignored, name, NO_FULL_TEXT.into())?;
                    continue;
                }
                c if IGNORED.contains(&c) => continue,
                _ => {}
            }
            let condition = match c.param(resource_type, name, raw, 0) {
                Ok(Some(condition)) => condition,
                Ok(None) => continue,
                Err(Refusal::Unknown(reason)) => {
                    refuse(handling, &mut ignored, name, reason)?;
                    continue;
                }
                Err(Refusal::Bad(e)) => return Err(e),
            };
            sql.push_str(&format!(" AND {condition}"));
            link_params.push((name.clone(), raw.clone()));
            if named_patient.is_none() && !name.contains('.') && !name.starts_with("_has:") {
                let values = split_values(raw);
                if let [value] = values.as_slice() {
                    if code == "_id" {
                        if resource_type == "Patient" && is_valid_id(value) {
                            named_patient = Some(format!("Patient/{value}"));
                        }
                    } else if let Some(p) = registry.get(resource_type, code) {
                        named_patient = patient_named_by(code, modifier, &p.targets, value);
                    }
                }
            }
        }
        if sort.is_empty() {
            sort.push(Sort::LastUpdated { descending: false });
        }
        if cursor.is_some() {
            if sort != [Sort::LastUpdated { descending: false }] {
                return Err(bad("_cursor pages only the default order (_lastUpdated)"));
            }
            offset = 0;
        }
        let mut order = Vec::new();
        for key in &sort {
            order.push(match key {
                Sort::LastUpdated { descending } => format!("r.last_updated {}", if *descending { "DESC" } else { "ASC" }),
                Sort::Id { descending } => format!("r.resource_id {}", if *descending { "DESC" } else { "ASC" }),
                Sort::Param { code, kind, descending } => {
                    let column = match kind {
                        ParamType::Date => "i.value_start",
                        ParamType::Number | ParamType::Quantity => "i.number",
                        _ => "i.value",
                    };
                    let (agg, dir) = if *descending { ("MAX", "DESC") } else { ("MIN", "ASC") };
                    let p = c.b.text(code.clone());
                    format!(
                        "(SELECT {agg}({column}) FROM search_index i WHERE i.resource_type = r.resource_type \
                         AND i.resource_id = r.resource_id AND i.param = {p}) {dir} NULLS LAST"
                    )
                }
            });
        }
        order.push("r.resource_id ASC".into());
        Ok(Self {
            includes,
            revincludes,
            filter: sql,
            order: order.join(", "),
            binds: c.b.binds,
            linked: c.linked,
            named_patient,
            count,
            offset,
            cursor,
            sort,
            link_params,
            ignored,
            value_sets: c.value_sets.into_iter().map(|v| (v, None)).collect(),
            lists: lists.into_iter().map(|l| (l, None)).collect(),
            total_mode,
            summary,
            elements,
        })
    }

    /// Whether pages follow each other by cursor (the default order, ascending last update
    /// then id, is a key: a page starts after the previous one's last row, so resources
    /// written meanwhile shift nothing) rather than by `_offset`.
    pub fn keyset(&self) -> bool {
        self.sort == [Sort::LastUpdated { descending: false }]
    }

    /// Limits the search to what the caller may see: `visible` writes it as SQL over `r` (a
    /// row of the store's `resources`), binding its values through the builder. Everything
    /// after (counts, pages) is over visible data. The store decides what "visible" means
    /// (records: the kernel's compartments and conditions; consent: her own, or naming the
    /// caller).
    pub fn restrict_with(&mut self, visible: impl FnOnce(&mut Builder) -> String) {
        let mut b = Builder {
            binds: std::mem::take(&mut self.binds),
        };
        let visible = visible(&mut b);
        self.filter.push_str(&format!(" AND {visible}"));
        self.binds = b.binds;
    }

    /// Limits the search to resources in patient compartments: any (`None`, a Patient-level
    /// export) or those of `patients` (a Group's members).
    pub fn within_compartments(&mut self, patients: Option<&[String]>) {
        match patients {
            None => self.filter.push_str(" AND r.patient_ref IS NOT NULL"),
            Some(patients) => {
                let mut b = Builder {
                    binds: std::mem::take(&mut self.binds),
                };
                let p = b.bind(Bind::Texts(patients.to_vec()));
                self.filter
                    .push_str(&format!(" AND r.patient_ref = ANY({p})"));
                self.binds = b.binds;
            }
        }
    }

    /// Continues the default order after (`last_updated`, `id`): the next page of a keyset walk.
    pub fn continue_after(&mut self, last_updated: DateTime<Utc>, id: &str) {
        self.cursor = Some(Cursor {
            last_updated,
            id: id.to_string(),
            before: false,
        });
    }

    /// Whether this page is the one before its cursor (reached by a `previous` link).
    pub fn backward(&self) -> bool {
        self.cursor.as_ref().is_some_and(|c| c.before)
    }

    /// Whether some match the caller may see comes before (`before`) or after the row
    /// (`last_updated`, `id`) in the default order: where a `previous` or `next` link of a
    /// keyset page leads somewhere.
    pub async fn any_beyond(
        &self,
        conn: &mut AsyncPgConnection,
        last_updated: DateTime<Utc>,
        id: &str,
        before: bool,
    ) -> QueryResult<bool> {
        let mut probe = self.clone();
        probe.cursor = Some(Cursor {
            last_updated,
            id: id.to_string(),
            before,
        });
        Ok(!probe.page(conn, 0, 1).await?.is_empty())
    }

    /// Leaves every `_include` and `_revinclude` out (lenient handling: each reported with
    /// `reason`) or refuses them (strict): for a store that cannot follow them.
    pub fn leave_out_includes(
        &mut self,
        handling: Handling,
        reason: &str,
    ) -> Result<(), FhirError> {
        if self.includes.is_empty() && self.revincludes.is_empty() {
            return Ok(());
        }
        let mut left_out = Vec::new();
        self.link_params.retain(|(name, _)| {
            let include = split_modifier(name).0;
            let is = include == "_include" || include == "_revinclude";
            if is {
                left_out.push(name.clone());
            }
            !is
        });
        for name in left_out {
            refuse(handling, &mut self.ignored, &name, reason.to_string())?;
        }
        self.includes.clear();
        self.revincludes.clear();
        Ok(())
    }

    /// The ValueSets `:in` and `:not-in` name, as given (`url`, `url|version`, `ValueSet/id`).
    pub fn value_sets_wanted(&self) -> BTreeSet<String> {
        self.value_sets
            .iter()
            .flat_map(|(v, _)| v.value_sets.iter().cloned())
            .collect()
    }

    /// Gives `:in` and `:not-in` their codes: `sets` holds the codes of every ValueSet
    /// [`SearchQuery::value_sets_wanted`] named (one missing lists none).
    pub fn use_value_sets(&mut self, sets: &BTreeMap<String, CodeSet>) {
        let mut b = Builder {
            binds: std::mem::take(&mut self.binds),
        };
        let empty = CodeSet::default();
        for (wanted, sql) in &mut self.value_sets {
            let p = b.text(wanted.param.as_str());
            let ors: Vec<String> = wanted
                .value_sets
                .iter()
                .map(|v| code_set_sql(&mut b, sets.get(v).unwrap_or(&empty)))
                .collect();
            *sql = Some(format!(
                "{}EXISTS (SELECT 1 FROM search_index i WHERE i.resource_type = r.resource_type \
                 AND i.resource_id = r.resource_id AND i.param = {p} AND ({}))",
                if wanted.negated { "NOT " } else { "" },
                ors.join(" OR ")
            ));
        }
        self.binds = b.binds;
    }

    /// The Lists `_list` names (ids).
    pub fn lists_wanted(&self) -> BTreeSet<String> {
        self.lists
            .iter()
            .flat_map(|(ids, _)| ids.iter().cloned())
            .collect()
    }

    /// Gives `_list` its members: `members` holds, for each List the caller may see, the ids
    /// of resources of the searched type its entries name (a List not in it names none).
    pub fn use_lists(&mut self, members: &BTreeMap<String, Vec<String>>) {
        let mut b = Builder {
            binds: std::mem::take(&mut self.binds),
        };
        for (lists, sql) in &mut self.lists {
            let ids: BTreeSet<String> = lists
                .iter()
                .filter_map(|l| members.get(l))
                .flatten()
                .cloned()
                .collect();
            *sql = Some(if ids.is_empty() {
                "false".into()
            } else {
                format!(
                    "r.resource_id = ANY({})",
                    b.bind(Bind::Texts(ids.into_iter().collect()))
                )
            });
        }
        self.binds = b.binds;
    }

    /// The resource types chains and `_has` go through: each needs
    /// [`SearchQuery::restrict_linked`], else no resource of it links.
    pub fn linked_types(&self) -> Vec<String> {
        self.linked.keys().cloned().collect()
    }

    /// Limits the linked resources of `resource_type` to what the caller may see of that type,
    /// written by `visible` as [`SearchQuery::restrict_with`]'s is (`None`: nothing, as when
    /// the caller may see nothing of the type).
    pub fn restrict_linked_with(
        &mut self,
        resource_type: &str,
        visible: Option<impl FnOnce(&mut Builder) -> String>,
    ) {
        if !self.linked.contains_key(resource_type) {
            return;
        }
        let sql = match visible {
            Some(visible) => {
                let mut b = Builder {
                    binds: std::mem::take(&mut self.binds),
                };
                let sql = visible(&mut b);
                self.binds = b.binds;
                sql
            }
            None => "false".into(),
        };
        self.linked.insert(resource_type.to_string(), Some(sql));
    }

    /// The filter, linked resources restricted (to nothing where not yet said), `:in` and
    /// `_list` given (matching nothing where not yet given).
    fn filter_sql(&self) -> String {
        let mut filter = self.filter.clone();
        for (t, visible) in &self.linked {
            filter = filter.replace(&visible_marker(t), visible.as_deref().unwrap_or("false"));
        }
        for (n, (_, sql)) in self.value_sets.iter().enumerate() {
            filter = filter.replace(&in_marker(n), sql.as_deref().unwrap_or("false"));
        }
        for (n, (_, sql)) in self.lists.iter().enumerate() {
            filter = filter.replace(&list_marker(n), sql.as_deref().unwrap_or("false"));
        }
        filter
    }

    fn bound<'q>(
        &self,
        sql: String,
    ) -> BoxedSqlQuery<'q, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
        let mut query: BoxedSqlQuery<'q, diesel::pg::Pg, diesel::query_builder::SqlQuery> =
            diesel::sql_query(sql).into_boxed();
        for bind in &self.binds {
            query = match bind {
                Bind::Text(s) => query.bind::<Text, _>(s.clone()),
                Bind::Texts(v) => query.bind::<Array<Text>, _>(v.clone()),
                Bind::Time(t) => query.bind::<Timestamptz, _>(*t),
                Bind::Float(f) => query.bind::<Double, _>(*f),
            };
        }
        query
    }

    /// How many resources match (after [`SearchQuery::restrict`]: how many the caller may see).
    pub async fn total(&self, conn: &mut AsyncPgConnection) -> QueryResult<usize> {
        let row: Total = self
            .bound(format!("SELECT COUNT(*) AS n {}", self.filter_sql()))
            .get_result(conn)
            .await?;
        Ok(usize::try_from(row.n).unwrap_or(0))
    }

    /// One page of matches in the search's order.
    pub async fn page(
        &self,
        conn: &mut AsyncPgConnection,
        offset: usize,
        limit: usize,
    ) -> QueryResult<Vec<Match>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut query = self.clone();
        let mut order = self.order.as_str();
        let after = match &self.cursor {
            Some(c) => {
                let mut b = Builder {
                    binds: std::mem::take(&mut query.binds),
                };
                let at = b.bind(Bind::Time(c.last_updated));
                let id = b.text(c.id.as_str());
                query.binds = b.binds;
                if c.before {
                    // The rows nearest before it, read backwards, then put in order.
                    order = "r.last_updated DESC, r.resource_id DESC";
                    format!(" AND (r.last_updated, r.resource_id) < ({at}, {id})")
                } else {
                    format!(" AND (r.last_updated, r.resource_id) > ({at}, {id})")
                }
            }
            None => String::new(),
        };
        let sql = format!(
            "SELECT r.resource_id, r.version, r.patient_ref, r.confidentiality, r.last_updated {}{after} \
             ORDER BY {order} LIMIT {limit} OFFSET {offset}",
            self.filter_sql(),
        );
        let mut rows = query.bound(sql).load::<Match>(conn).await?;
        if self.backward() {
            rows.reverse();
        }
        Ok(rows)
    }

    /// Ids of resources whose reference parameters `sources` ((type, parameter) pairs) hold one
    /// of `refs`, in (type, id) order after `after`, at most `limit` (`_revinclude=*`).
    pub async fn referencing_any(
        conn: &mut AsyncPgConnection,
        sources: &[(String, String)],
        refs: &[String],
        after: Option<&(String, String)>,
        limit: i64,
    ) -> QueryResult<Vec<(String, String)>> {
        #[derive(QueryableByName)]
        struct Referrer {
            #[diesel(sql_type = Text)]
            resource_type: String,
            #[diesel(sql_type = Text)]
            resource_id: String,
        }
        if sources.is_empty() || refs.is_empty() {
            return Ok(Vec::new());
        }
        let (types, params): (Vec<String>, Vec<String>) = sources.iter().cloned().unzip();
        // ("", "") precedes every (type, id): types are never empty.
        let (after_type, after_id) = after.cloned().unwrap_or_default();
        let rows: Vec<Referrer> = diesel::sql_query(format!(
            "SELECT DISTINCT i.resource_type, i.resource_id FROM unnest($1::text[], $2::text[]) AS p(t, c) \
             JOIN search_index i ON i.resource_type = p.t AND i.param = p.c \
             WHERE i.value = ANY($3) AND (i.resource_type, i.resource_id) > ($4, $5) \
             ORDER BY 1, 2 LIMIT {limit}"
        ))
        .bind::<Array<Text>, _>(types)
        .bind::<Array<Text>, _>(params)
        .bind::<Array<Text>, _>(refs.to_vec())
        .bind::<Text, _>(after_type)
        .bind::<Text, _>(after_id)
        .load(conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.resource_type, r.resource_id))
            .collect())
    }

    /// The statement's conditions and order as SQL (values as `$n`, in [`SearchQuery::binds`]):
    /// for tests and for `EXPLAIN` when a search is slow.
    pub fn statement(&self) -> String {
        format!("{} ORDER BY {}", self.filter_sql(), self.order)
    }

    /// The values bound to the statement's `$n`, in order.
    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A store holding every type but Consent (as records does).
    static STORE: std::sync::LazyLock<Store> = std::sync::LazyLock::new(|| Store {
        registry: Registry::global(),
        holds: |t| t != "Consent",
    });

    proptest! {
        /// No query string makes parsing panic (`Observation?date=x%C3%A9` once did).
        #[test]
        fn parsing_never_panics(
            name in prop::sample::select(vec![
                "date", "code", "subject", "patient", "value-quantity", "_id", "_lastUpdated",
                "_count", "_offset", "_sort", "_include", "_revinclude", "_summary", "status",
                "code:text", "date:missing", "subject:Patient", "identifier", "name", "x.y",
            ]),
            value in "\\PC{0,24}",
        ) {
            let pairs = vec![(name.to_string(), value.clone())];
            for handling in [Handling::Lenient, Handling::Strict] {
                let _ = SearchQuery::parse(&STORE, "Observation", &pairs, handling);
                let _ = SearchQuery::parse(&STORE, "Patient", &pairs, handling);
            }
            let _ = split_prefix(&value);
            let _ = dates::parse_range(&value);
        }
    }

    #[test]
    fn non_ascii_values_are_errors_not_panics() {
        assert!(parse("Observation", &[("date", "x\u{e9}")]).is_err());
        assert!(parse("Observation", &[("date", "g\u{e9}2020")]).is_err());
        assert!(parse("Observation", &[("value-quantity", "\u{e9}\u{e9}5")]).is_err());
    }

    #[test]
    fn names_one_patient() {
        let q = parse("Observation", &[("patient", "alice")]).unwrap();
        assert_eq!(q.named_patient.as_deref(), Some("Patient/alice"));
        let q = parse("Observation", &[("subject", "Patient/alice")]).unwrap();
        assert_eq!(q.named_patient.as_deref(), Some("Patient/alice"));
        let q = parse("Observation", &[("subject", "alice")]).unwrap();
        assert_eq!(q.named_patient, None, "a bare subject id may be a Group");
        let q = parse("Observation", &[("patient", "alice,bob")]).unwrap();
        assert_eq!(q.named_patient, None);
        let q = parse("Patient", &[("_id", "alice")]).unwrap();
        assert_eq!(q.named_patient.as_deref(), Some("Patient/alice"));
        let q = parse("Observation", &[("code", "x")]).unwrap();
        assert_eq!(q.named_patient, None);
    }

    fn parse(t: &str, q: &[(&str, &str)]) -> Result<SearchQuery, FhirError> {
        let pairs: Vec<(String, String)> = q
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        SearchQuery::parse(&STORE, t, &pairs, Handling::Strict)
    }

    fn lenient(t: &str, q: &[(&str, &str)]) -> Result<SearchQuery, FhirError> {
        let pairs: Vec<(String, String)> = q
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        SearchQuery::parse(&STORE, t, &pairs, Handling::Lenient)
    }

    #[test]
    fn splits_values() {
        assert_eq!(split_values("a,b\\,c,,d"), vec!["a", "b,c", "d"]);
        assert_eq!(
            split_pipe("http://x|123"),
            Some(("http://x".into(), "123".into()))
        );
        assert_eq!(split_pipe("|123"), Some(("".into(), "123".into())));
        assert_eq!(split_pipe("abc"), None);
        assert_eq!(split_prefix("ge2020"), ("ge", "2020"));
        assert_eq!(split_prefix("2020"), ("eq", "2020"));
    }

    #[test]
    fn builds_conditions() {
        let q = parse(
            "Observation",
            &[
                ("code", "http://loinc.org|1234,5678"),
                ("subject", "Patient/a"),
                ("date", "ge2020"),
            ],
        )
        .unwrap();
        assert_eq!(q.statement().matches("EXISTS").count(), 3);
        assert_eq!(q.binds.len(), 1 + 1 + 3 + 1 + 1 + 1 + 2);
        assert_eq!(q.count, DEFAULT_COUNT);
    }

    #[test]
    fn refuses_unknown_and_unsupported_when_strict() {
        assert!(parse("Observation", &[("colour", "blue")]).is_err());
        assert!(parse("Observation", &[("subject.colour", "x")]).is_err());
        assert!(parse("Observation", &[("date", "soon")]).is_err());
        assert!(parse("Observation", &[("code:text", "x")]).is_ok());
        assert!(parse("Observation", &[("code:above", "x")]).is_err());
        assert!(parse("Observation", &[("_sort", "colour")]).is_err());
        assert!(parse("Observation", &[("_summary", "maybe")]).is_err());
        assert!(parse("Observation", &[("_total", "some")]).is_err());
        assert!(parse("Observation", &[("_include", "Observation:code")]).is_err());
        assert!(parse("Observation", &[("_include", "Patient:organization")]).is_err());
        assert!(parse("Observation", &[("_include:deep", "Observation:subject")]).is_err());
        assert!(parse("Observation", &[("_has:Colour:x:y", "1")]).is_err());
        let q = parse(
            "Observation",
            &[
                ("_include", "Observation:subject:Patient"),
                ("_revinclude", "Provenance:target"),
                ("_include:iterate", "Patient:general-practitioner"),
                ("_include", "*"),
                ("_revinclude", "*"),
            ],
        )
        .unwrap();
        assert_eq!(q.revincludes[1].source_type, "*");
        assert_eq!(q.includes[0].target.as_deref(), Some("Patient"));
        assert!(q.includes[1].iterate && q.includes[2].applies_to("Encounter"));
        assert_eq!(q.revincludes[0].source_type, "Provenance");
        assert!(parse("Observation", &[("_count", "-1")]).is_err());
    }

    #[test]
    fn lenient_ignores_unknown_but_not_malformed() {
        let q = lenient(
            "Observation",
            &[
                ("colour", "blue"),
                ("_sort", "-date"),
                ("_contained", "true"),
                ("code", "x"),
            ],
        )
        .unwrap();
        let names: Vec<&str> = q.ignored.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, vec!["colour", "_contained"]);
        assert_eq!(
            q.link_params,
            vec![
                ("_sort".to_string(), "-date".to_string()),
                ("code".to_string(), "x".to_string())
            ]
        );
        assert!(lenient("Observation", &[("_sort", "colour")]).is_err());
        assert!(lenient("Observation", &[("date", "soon")]).is_err());
        assert!(lenient("Observation", &[("code:above", "x")]).is_err());
        // A chain none of whose targets has the parameter is a 400 either way.
        assert!(lenient("Observation", &[("subject.colour", "x")]).is_err());
    }

    #[test]
    fn cursors_page_the_default_order() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = cursor_of(at, "a-1");
        let q = parse("Patient", &[("_cursor", c.as_str()), ("_offset", "5")]).unwrap();
        assert_eq!(
            q.cursor,
            Some(Cursor {
                last_updated: at,
                id: "a-1".to_string(),
                before: false
            })
        );
        assert_eq!(q.offset, 0);
        assert!(q.keyset() && !q.backward());
        let back = Cursor {
            last_updated: at,
            id: "a-1".into(),
            before: true,
        };
        let q = parse("Patient", &[("_cursor", back.token().as_str())]).unwrap();
        assert_eq!(q.cursor, Some(back));
        assert!(q.backward());
        assert!(parse("Patient", &[("_cursor", "before|a-1")]).is_err());
        assert!(parse("Patient", &[("_cursor", "yesterday|a")]).is_err());
        assert!(parse(
            "Patient",
            &[("_cursor", c.as_str()), ("_sort", "-_lastUpdated")]
        )
        .is_err());
        assert!(!parse("Patient", &[("_sort", "_id")]).unwrap().keyset());
    }

    #[test]
    fn composites_and_their_parts() {
        let q = parse(
            "Observation",
            &[("code-value-quantity", "http://loinc.org|1234$gt5,x$lt1")],
        )
        .unwrap();
        assert_eq!(
            q.statement().matches("i.param = ").count(),
            4,
            "{}",
            q.statement()
        );
        assert!(parse("Observation", &[("code-value-quantity", "x")]).is_err());
        assert!(parse("Observation", &[("code-value-quantity", "x$soon")]).is_err());
        assert_eq!(split_escaped("a\\$b$c", '$'), vec!["a\\$b", "c"]);
        let q = parse("Patient", &[("identifier:of-type", "http://t|MR|123")]).unwrap();
        assert!(q
            .binds
            .iter()
            .any(|b| matches!(b, Bind::Text(t) if t == "MR|123")));
        assert!(parse("Patient", &[("identifier:of-type", "MR|123")]).is_err());
    }

    #[test]
    fn element_composites_match_within_one_element() {
        let q = parse(
            "Observation",
            &[(
                "component-code-value-quantity",
                "http://loinc.org|8480-6$gt140,8462-4$lt90|http://unitsofmeasure.org|mm[Hg]",
            )],
        )
        .unwrap();
        let sql = q.statement();
        // One EXISTS per value, each component's rows in the same element.
        assert_eq!(
            sql.matches("i.element IN (SELECT i.element").count(),
            2,
            "{sql}"
        );
        assert_eq!(sql.matches("i.param = $").count(), 4, "{sql}");
        // Every value is bound, none spliced.
        for spliced in [
            "8480-6",
            "8462-4",
            "loinc",
            "140",
            "mm[Hg]",
            "component-code",
        ] {
            assert!(!sql.contains(spliced), "{spliced} in {sql}");
        }
        let texts: Vec<&str> = q
            .binds
            .iter()
            .filter_map(|b| match b {
                Bind::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        for bound in [
            "component-code-value-quantity$0",
            "component-code-value-quantity$1",
            "http://loinc.org",
            "8480-6",
            "8462-4",
            "mm[Hg]",
        ] {
            assert!(texts.contains(&bound), "{bound} not in {texts:?}");
        }
        assert!(q
            .binds
            .iter()
            .any(|b| matches!(b, Bind::Float(f) if *f == 140.0)));

        // An escaped `$` and `,` stay in the value.
        let q = parse(
            "Observation",
            &[("component-code-value-concept", "a\\$b\\,c$x")],
        )
        .unwrap();
        assert!(q
            .binds
            .iter()
            .any(|b| matches!(b, Bind::Text(t) if t == "a$b,c")));

        for bad in [
            ("component-code-value-quantity", "8480-6"),
            ("component-code-value-quantity", "8480-6$soon"),
            ("component-code-value-quantity", "a$1$2"),
            ("component-code-value-quantity:missing", "true"),
            ("_sort", "component-code-value-quantity"),
        ] {
            assert!(parse("Observation", &[bad]).is_err(), "{bad:?}");
            assert!(lenient("Observation", &[bad]).is_err(), "{bad:?}");
        }
        let q = parse(
            "DocumentReference",
            &[("relationship", "DocumentReference/old$replaces")],
        )
        .unwrap();
        assert!(q
            .binds
            .iter()
            .any(|b| matches!(b, Bind::Text(t) if t == "replaces")));
        // Over the resource, as before: the components' own rows, no element.
        let q = parse("Observation", &[("code-value-quantity", "x$gt5")]).unwrap();
        assert!(!q.statement().contains("element"));
    }

    #[test]
    fn chains_and_has_link_through_visible_resources_only() {
        let mut q = parse(
            "Observation",
            &[
                ("subject:Patient.name", "peter"),
                ("subject.general-practitioner.name:exact", "X"),
            ],
        )
        .unwrap();
        // general-practitioner: Organization, Practitioner (PractitionerRole has no name).
        assert_eq!(
            q.linked_types(),
            vec!["Organization", "Patient", "Practitioner"]
        );
        // Linked rows see nothing until restricted.
        assert_eq!(
            q.statement().matches("AND false").count(),
            4,
            "{}",
            q.statement()
        );
        assert!(!q.statement().contains("{visible"));
        q.restrict_linked_with(
            "Patient",
            Some(|_: &mut Builder| "r.patient_ref IS NULL".to_string()),
        );
        let sql = q.statement();
        assert_eq!(sql.matches("r.patient_ref IS NULL").count(), 2, "{sql}");
        assert!(!sql.contains("peter"));
        let q = parse("Observation", &[("subject.name", "peter")]).unwrap();
        // Patient, Group, Device, Location have `name`; Medication and Substance... do not.
        assert!(
            q.linked_types().contains(&"Patient".to_string()),
            "{:?}",
            q.linked_types()
        );
        let q = parse(
            "Patient",
            &[(
                "_has:Observation:patient:_has:Provenance:target:agent",
                "Practitioner/p",
            )],
        )
        .unwrap();
        assert_eq!(q.linked_types(), vec!["Observation", "Provenance"]);
        assert!(q.named_patient.is_none());
        assert!(parse(
            "Patient",
            &[("_has:Observation:patient:_has:Observation:patient:_has:Observation:patient:_has:Observation:patient:_has:Observation:patient:code", "x")]
        )
        .is_err());
        // Fan-out is bounded.
        let q = lenient("Observation", &[("focus.name", "x")]);
        assert!(q.is_ok() || q.is_err());
        assert!(lenient("Observation", &[("focus.focus.focus.focus.name", "x")]).is_err());
    }

    #[test]
    fn has_is_uncorrelated_nested_too() {
        let q = parse(
            "Patient",
            &[(
                "_has:Observation:patient:_has:Provenance:target:agent",
                "Practitioner/p",
            )],
        )
        .unwrap();
        let sql = q.statement();
        // Each level: ids of its own type found once, no reference to the row outside.
        assert_eq!(
            sql.matches("r.resource_id = ANY(ARRAY(SELECT substr(")
                .count(),
            2,
            "{sql}"
        );
        assert!(!sql.contains("r.resource_type || '/'"), "{sql}");
        assert!(q
            .binds
            .iter()
            .any(|b| matches!(b, Bind::Text(t) if t == "Patient/")));
        assert!(q
            .binds
            .iter()
            .any(|b| matches!(b, Bind::Text(t) if t == "Observation/")));
    }

    #[test]
    fn in_and_list_match_nothing_until_given() {
        let mut q = parse(
            "Observation",
            &[
                ("code:not-in", "http://x/vs|2,ValueSet/v1"),
                ("_list", "List/l1,l2"),
            ],
        )
        .unwrap();
        assert_eq!(
            q.value_sets_wanted().into_iter().collect::<Vec<_>>(),
            vec!["ValueSet/v1", "http://x/vs|2"]
        );
        assert_eq!(
            q.lists_wanted().into_iter().collect::<Vec<_>>(),
            vec!["l1", "l2"]
        );
        // Not given: `false` stands for the whole condition (never `NOT false`).
        let sql = q.statement();
        assert!(
            !sql.contains('{') && sql.matches("AND false").count() == 2,
            "{sql}"
        );
        let mut set = CodeSet::default();
        set = set.union({
            let vs = serde_json::json!({"compose": {"include": [{"system": "http://loinc.org", "concept": [{"code": "1"}]}]}});
            crate::value_set::expand("v", &vs, &|_| None).unwrap()
        });
        q.use_value_sets(&BTreeMap::from([("ValueSet/v1".to_string(), set)]));
        q.use_lists(&BTreeMap::from([(
            "l2".to_string(),
            vec!["o1".to_string()],
        )]));
        let sql = q.statement();
        assert!(
            sql.contains("NOT EXISTS") && sql.contains("unnest("),
            "{sql}"
        );
        assert!(sql.contains("r.resource_id = ANY("), "{sql}");
        assert!(!sql.contains("loinc") && !sql.contains("o1"), "{sql}");
        // Only tokens take :in.
        assert!(parse("Observation", &[("subject:in", "ValueSet/v1")]).is_err());
        assert!(parse("Observation", &[("_list", "Group/g")]).is_err());
        assert!(parse("Observation", &[("_list", "$current-problems")]).is_err());
        let q = lenient("Observation", &[("_list", "$current-problems")]).unwrap();
        assert_eq!(q.ignored.len(), 1);
    }

    #[test]
    fn contained_and_full_text_are_refused_with_their_reason() {
        assert!(parse("Observation", &[("_contained", "false")]).is_ok());
        assert!(parse("Observation", &[("_containedType", "container")]).is_ok());
        assert!(parse("Observation", &[("_contained", "maybe")]).is_err());
        for (name, value) in [
            ("_contained", "true"),
            ("_contained", "both"),
            ("_containedType", "contained"),
            ("_text", "fever"),
            ("_content", "fever"),
        ] {
            let err = parse("Observation", &[(name, value)]).unwrap_err();
            assert!(err.to_string().contains("not supported"), "{err}");
            let q = lenient("Observation", &[(name, value)]).unwrap();
            assert_eq!(q.ignored[0].name, name);
            assert!(q.link_params.is_empty());
        }
        let q = lenient("Observation", &[("_text", "x")]).unwrap();
        assert!(q.ignored[0].reason.contains("encrypted"), "{:?}", q.ignored);
    }

    #[test]
    fn count_is_capped_and_paging_read() {
        let q = parse(
            "Patient",
            &[
                ("_count", "5000"),
                ("_offset", "20"),
                ("_sort", "-_lastUpdated"),
            ],
        )
        .unwrap();
        assert_eq!(q.count, MAX_COUNT);
        assert_eq!(q.offset, 20);
        assert_eq!(q.sort, vec![Sort::LastUpdated { descending: true }]);
        let q = parse(
            "Observation",
            &[("_sort", "-date,_id"), ("_summary", "count")],
        )
        .unwrap();
        assert_eq!(q.sort.len(), 2);
        assert_eq!(q.count, 0);
        assert!(q.statement().contains("MAX(i.value_start)"));
        assert!(parse("Patient", &[("_format", "json"), ("name", "")]).is_ok());
    }
}
