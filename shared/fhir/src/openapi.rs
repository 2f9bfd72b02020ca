//! What the FHIR services' OpenAPI documents say about parameters, bodies and errors, applied to
//! the generated document (JSON) so that records, consent and the ledger's AuditEvent describe
//! the same interaction alike, and as strictly as the code reads it: a request the schemas admit
//! is one the services accept (an API fuzzer, `scripts/api-check.sh`, holds them to that).
//!
//! [`tighten`] rewrites parameters by name (`_count`, `_since`, `If-Match`, ...), request bodies by
//! media type (a FHIR resource must name its `resourceType`; a JSON Patch is an array of
//! operations), and adds the error answers every FHIR interaction can give as `OperationOutcome`.

use serde_json::{json, Map, Value};

/// Any text without U+0000 (refused: PostgreSQL text cannot hold it).
const ANY_TEXT: &str = r"^[^\u0000]*$";

/// A patient named by reference (`Patient/<id>`) or by id: alternatives, for [`whole`].
const REFERENCE_OR_ID: &str = r"Patient/[A-Za-z0-9\-.]{1,64}|[A-Za-z0-9\-.]{1,64}";

/// What Rust's `str::trim` removes (Unicode `White_Space`), for a regex class: `\s` is wider in
/// some engines (Python's takes U+001C..U+001F), and a value the pattern trims but the server
/// does not would be a schema-valid request refused.
const TRIMMED: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Any run of what [`TRIMMED`] names: the spaces a server trims around a value.
fn blanks() -> String {
    format!("[{TRIMMED}]*")
}

/// A pattern matching `alternatives` whole. One group closed by `$`: a generator reading `$` as
/// Python does (before a final newline) closes it with `\Z`, which it cannot do for each
/// alternative of `^a$|^b$`, so those would draw a value ending in a newline that the server
/// refuses.
fn whole(alternatives: &str) -> String {
    format!("^(?:{alternatives})$")
}

/// [`whole`], or empty (a parameter given empty says nothing).
fn whole_or_empty(alternatives: &str) -> String {
    format!("^(?:{alternatives})?$")
}

/// The `agent` of an AuditEvent search (the ledger's `AgentRef::parse`): values, each
/// `Practitioner/<id>` or a user id (the token's `sub`, `User/` optional) without `/` or `|`,
/// spaces around each trimmed; commas OR them (so no id holds a comma); empty: no filter.
fn agent_pattern() -> String {
    let b = blanks();
    let one = format!(
        r"{b}(Practitioner/[A-Za-z0-9\-.]{{1,64}}|(User/)?[^/|,{TRIMMED}\u0000]([^/|,\u0000]{{0,62}}[^/|,{TRIMMED}\u0000])?){b}"
    );
    whole_or_empty(&format!("{one}(?:,{one})*"))
}

/// The largest `_count` the services read (an unsigned 64-bit count).
pub const COUNT_MAX: u64 = u64::MAX;

/// A FHIR id (`[A-Za-z0-9\-\.]{1,64}`).
pub const ID_PATTERN: &str = r"^[A-Za-z0-9\-.]{1,64}$";
/// A version id as the services write them.
pub const VERSION_PATTERN: &str = r"^[1-9][0-9]{0,8}$";
/// A weak ETag naming a version.
pub const ETAG_PATTERN: &str = r#"^W/"[1-9][0-9]{0,8}"$"#;

/// What the document says about the FHIR interactions of one service.
pub struct FhirDocument<'a> {
    /// The types `{type}` may take in this service's paths (records: every type it serves).
    pub types: &'a [&'a str],
}

/// The OperationOutcome schema every FHIR error answer carries.
pub fn operation_outcome_schema() -> Value {
    json!({
        "type": "object",
        "description": "A FHIR R4 OperationOutcome",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
            "issue": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["severity", "code"],
                    "properties": {
                        "severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
                        "code": {"type": "string"},
                        "diagnostics": {"type": "string"},
                        "expression": {"type": "array", "items": {"type": "string"}},
                        "location": {"type": "array", "items": {"type": "string"}}
                    }
                }
            }
        }
    })
}

fn outcome(description: &str) -> Value {
    json!({
        "description": description,
        "content": {
            "application/fhir+json": {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}
        }
    })
}

/// The error answers of any FHIR interaction, beside those an operation documents itself.
fn common_errors(secured: bool, has_body: bool) -> Vec<(&'static str, &'static str)> {
    let mut errors = vec![
        (
            "400",
            "OperationOutcome: a malformed parameter, header or body",
        ),
        (
            "403",
            "OperationOutcome: the token's scopes or the access policy refuse it",
        ),
        (
            "404",
            "OperationOutcome: no such resource, or none the caller may see",
        ),
        (
            "406",
            "OperationOutcome: `_format` or `Accept` asks for something other than FHIR JSON",
        ),
    ];
    if secured {
        errors.push((
            "401",
            "OperationOutcome: no token, or an invalid, expired or revoked one",
        ));
    }
    if has_body {
        errors.push((
            "415",
            "OperationOutcome: the body is not FHIR JSON (`Content-Type`)",
        ));
        errors.push((
            "422",
            "OperationOutcome: the resource fails FHIR R4 validation (every issue listed)",
        ));
    }
    errors
}

fn string_with(schema: Value) -> Value {
    let mut out = json!({"type": "string"});
    if let (Some(out), Some(extra)) = (out.as_object_mut(), schema.as_object()) {
        for (k, v) in extra {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

// Dates as the services parse them. The patterns admit only real dates (days up to 28, years
// 1900-2099: a subset), so that every value they describe is one the services accept.
const YEAR: &str = "(19|20)[0-9]{2}";
const MONTH: &str = "(0[1-9]|1[0-2])";
const DAY: &str = "(0[1-9]|1[0-9]|2[0-8])";
const TIME: &str = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,3})?";
const ZONE: &str = "(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])";

/// A FHIR instant: a full date-time with a zone.
fn instant_pattern() -> String {
    format!("^{YEAR}-{MONTH}-{DAY}T{TIME}{ZONE}$")
}

/// A FHIR date or dateTime, possibly partial (`2024`, `2024-03`, `2024-03-01T10:00:00Z`).
fn date_time_pattern() -> String {
    format!("{YEAR}(-{MONTH}(-{DAY}(T{TIME}{ZONE})?)?)?")
}

/// The prefixes a date search parameter takes.
const PREFIXES: &str = "(eq|ne|gt|lt|ge|le|sa|eb|ap)?";

/// The schema of a parameter by its name and place, when the FHIR services read it alike.
/// Search parameters the services ignore when empty admit the empty value; those they take as
/// any text (`_id`, references, tokens of Consent) are plain strings.
fn parameter_schema(location: &str, name: &str, path: &str, types: &[&str]) -> Option<Value> {
    let type_enum = || json!({"type": "string", "enum": types});
    let instant = || string_with(json!({"pattern": instant_pattern()}));
    let search_date = |empty: bool| {
        // The ledger's AuditEvent takes the comparisons only.
        let prefixes = if path.starts_with("/fhir/AuditEvent") {
            "(eq|gt|lt|ge|le)?"
        } else {
            PREFIXES
        };
        let core = format!("{prefixes}{}", date_time_pattern());
        let pattern = if empty {
            whole_or_empty(&core)
        } else {
            whole(&core)
        };
        string_with(json!({ "pattern": pattern }))
    };
    if path.starts_with("/anomaly") {
        return None;
    }
    if path.starts_with("/ledger") {
        let count =
            |max: &str| string_with(json!({"pattern": format!("^([1-9][0-9]{{0,2}}|{max})$")}));
        return match (location, name) {
            // Positions and sizes in the log, read as unsigned integers from text.
            ("query", "index" | "tree_size" | "first" | "second" | "after" | "start") => {
                Some(string_with(json!({"pattern": "^[0-9]{1,9}$"})))
            }
            ("query", "limit") => Some(count("1000")),
            ("query", "since") => Some(instant()),
            ("query", "_count") => Some(json!({"type": "integer", "minimum": 1, "maximum": 1000})),
            ("query", "patient") => Some(string_with(json!({"pattern": whole(REFERENCE_OR_ID)}))),
            _ => None,
        };
    }
    let audit = path.starts_with("/fhir/AuditEvent");
    let consent = path.contains("/Consent");
    let history = path.contains("_history");
    let schema = match (location, name) {
        ("path", "type") => type_enum(),
        ("path", "id") if audit => string_with(json!({"format": "uuid"})),
        ("path", "id") => string_with(json!({"pattern": ID_PATTERN})),
        ("path", "vid") => string_with(json!({"pattern": VERSION_PATTERN})),
        ("path", "job") | ("path", "part") => string_with(json!({"pattern": ID_PATTERN})),
        // AuditEvent ignores an empty `_count`.
        ("query", "_count") if audit => {
            string_with(json!({"pattern": whole_or_empty("[0-9]{1,19}")}))
        }
        ("query", "patient") if audit => {
            string_with(json!({"pattern": whole_or_empty(REFERENCE_OR_ID)}))
        }
        ("query", "agent") if audit => string_with(json!({ "pattern": agent_pattern() })),
        ("query", "_count") if path.contains("$everything") => {
            json!({"type": "integer", "minimum": 1, "maximum": COUNT_MAX})
        }
        ("query", "_count") => json!({"type": "integer", "minimum": 0, "maximum": COUNT_MAX}),
        ("query", "_since") => instant(),
        ("query", "_at") if history => {
            string_with(json!({"pattern": format!("^{}$", date_time_pattern())}))
        }
        ("query", "start") | ("query", "end") => {
            string_with(json!({"pattern": format!("^{}$", date_time_pattern())}))
        }
        ("query", "_lastUpdated") => search_date(true),
        ("query", "date") => search_date(true),
        ("query", "_type") => type_enum(),
        ("query", "_summary") => {
            string_with(json!({"enum": ["true", "false", "text", "data", "count"]}))
        }
        ("query", "_total") => string_with(json!({"enum": ["none", "estimate", "accurate"]})),
        ("query", "_include") | ("query", "_revinclude") => string_with(json!({"enum": ["*"]})),
        ("query", "_elements") if path.contains("$export") => string_with(json!({
            "pattern": whole_or_empty("[A-Za-z0-9_.]{1,64}(,[A-Za-z0-9_.]{1,64}){0,4}")
        })),
        // Comma-separated element names (letters and digits), each trimmed; empty ones ignored.
        ("query", "_elements") => string_with(json!({
            "pattern": format!("^{b}[A-Za-z0-9]*{b}(,{b}[A-Za-z0-9]*{b})*$", b = blanks())
        })),
        // AuditEvent ignores an empty `_sort`, as every empty value.
        ("query", "_sort") if audit => string_with(json!({"enum": ["", "date", "-date"]})),
        // Any search parameter of the type sorts; these are the ones every type has (and
        // Consent's date). The value is trimmed.
        ("query", "_sort") if consent => string_with(json!({
            "pattern": format!("^{b}(-?(_id|_lastUpdated|date))?{b}$", b = blanks())
        })),
        ("query", "_sort") => string_with(json!({
            "pattern": format!("^{b}(-?(_id|_lastUpdated))?{b}$", b = blanks())
        })),
        ("query", "_outputFormat") => string_with(json!({
            "enum": ["application/fhir+ndjson", "application/ndjson", "ndjson"]
        })),
        ("query", "_typeFilter") => string_with(json!({
            "pattern": format!(r"^({})\?_id=[A-Za-z0-9\-.]{{1,64}}$", types.join("|"))
        })),
        // Empty: not filtered.
        ("query", "action") => string_with(json!({"enum": ["", "C", "R", "U", "D", "E"]})),
        ("query", "outcome") => string_with(json!({"enum": ["", "0", "4", "8", "12"]})),
        // Search values taken as any text (an unknown value matches nothing), but U+0000,
        // which no stored text can hold.
        ("query", "_id" | "patient" | "agent" | "actor" | "status" | "category") => {
            string_with(json!({"pattern": ANY_TEXT}))
        }
        ("header", "If-Match") | ("header", "If-None-Match") => {
            string_with(json!({"pattern": ETAG_PATTERN}))
        }
        ("header", "If-None-Exist") => string_with(json!({
            "pattern": r"^_id=[A-Za-z0-9\-.]{1,64}$"
        })),
        ("header", "X-Purpose-Of-Use") => string_with(json!({
            "enum": ["TREAT", "ETREAT", "HPAYMT", "HOPERAT", "PUBHLTH", "HRESCH", "PATRQT"]
        })),
        ("header", "Prefer") if path.contains("$export") => {
            string_with(json!({"enum": ["respond-async"]}))
        }
        // RFC 7240: preferences a server does not know are ignored.
        ("header", "Prefer") => json!({"type": "string"}),
        _ => return None,
    };
    Some(schema)
}

/// A query parameter cannot be `null`: drop it from `type` lists (`Option<T>` fields).
fn not_null(schema: &mut Value) {
    if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types[0].clone();
            schema["type"] = only;
        }
    }
}

fn resource_body(types: &[&str], path: &str) -> Value {
    // The type a body must name, when the path fixes it.
    let resource_type = if path == "/fhir" {
        json!({"type": "string", "enum": ["Bundle"]})
    } else if path.contains("/Consent") {
        json!({"type": "string", "enum": ["Consent"]})
    } else {
        json!({"type": "string", "enum": types})
    };
    let mut schema = json!({
        "type": "object",
        "description": "A FHIR R4 resource (JSON); the elements are those of its type in the R4 specification",
        "required": ["resourceType"],
        "properties": {"resourceType": resource_type}
    });
    if path == "/fhir" {
        schema["required"] = json!(["resourceType", "type"]);
        schema["properties"]["type"] = json!({"type": "string", "enum": ["transaction", "batch"]});
        // A batch answers every entry, a bad one with its own error; a transaction refuses a
        // bad entry as a whole: its entries are as the specification has them (searches shown).
        schema["properties"]["entry"] = json!({"type": "array"});
        schema["if"] = json!({"properties": {"type": {"const": "transaction"}}});
        schema["then"]["properties"]["entry"] = json!({
            "type": "array",
            "items": {
                "type": "object",
                "required": ["request"],
                "properties": {
                    "request": {
                        "type": "object",
                        "required": ["method", "url"],
                        "properties": {
                            "method": {"type": "string", "enum": ["GET"]},
                            "url": {"type": "string", "pattern": format!(r"^({})\?_id=[A-Za-z0-9\-.]{{1,64}}$", types.join("|"))}
                        },
                        "additionalProperties": false
                    }
                },
                "additionalProperties": false
            }
        });
    }
    schema
}

fn parameters_body() -> Value {
    json!({
        "type": "object",
        "description": "A FHIR R4 Parameters resource",
        "required": ["resourceType"],
        "properties": {"resourceType": {"type": "string", "enum": ["Parameters"]}},
        "additionalProperties": false
    })
}

fn json_patch_body() -> Value {
    json!({
        "type": "array",
        "description": "A JSON Patch (RFC 6902). The services also take FHIRPath Patch (a Parameters resource) and JSON Merge Patch",
        "items": {
            "type": "object",
            "required": ["op", "path"],
            // Every RFC 6902 operation is taken; the schema shows one that applies to any
            // resource (a change of `status` where the type has one).
            "properties": {
                "op": {"type": "string", "enum": ["replace"]},
                "path": {"type": "string", "enum": ["/status"]},
                "value": {"type": "string", "enum": ["active", "inactive"]}
            },
            "additionalProperties": false
        }
    })
}

/// Rewrites a FHIR service's generated document (as JSON): parameters, bodies, error answers.
pub fn tighten(document: &mut Value, fhir: &FhirDocument<'_>) {
    let schemas = &mut document["components"]["schemas"];
    if !schemas.is_object() {
        *schemas = json!({});
    }
    schemas["OperationOutcome"] = operation_outcome_schema();
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let fhir_path = path.starts_with("/fhir") || path.starts_with("/consent/Consent");
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            conditional_criteria(operation, path, method);
            if method == "get" && (path == "/fhir/{type}" || path == "/fhir/{type}/_search") {
                let parameters = operation.entry("parameters").or_insert_with(|| json!([]));
                if let Some(parameters) = parameters.as_array_mut() {
                    parameters.extend(common_search_parameters());
                }
            }
            tighten_parameters(operation, path, fhir.types);
            if !fhir_path || path.contains(".well-known") || path == "/fhir/metadata" {
                continue;
            }
            tighten_body(operation, path, method, fhir.types);
            let secured = operation.get("security").is_some();
            let has_body = operation.get("requestBody").is_some();
            let responses = operation.entry("responses").or_insert_with(|| json!({}));
            for (status, description) in common_errors(secured, has_body) {
                if let Some(responses) = responses.as_object_mut() {
                    responses
                        .entry(status)
                        .or_insert_with(|| outcome(description));
                }
            }
        }
    }
}

/// The search parameters of every type (type-specific ones: the CapabilityStatement).
fn common_search_parameters() -> Vec<Value> {
    let p = |name: &str, description: &str| json!({"in": "query", "name": name, "required": false, "description": description});
    vec![
        p("_id", "The resource's logical id"),
        p("_lastUpdated", "When the resource last changed (a date-time; the prefixes eq, ne, gt, lt, ge, le, sa, eb, ap are accepted too)"),
        p("_count", "Entries a page (the next pages: follow the Bundle's `next` link)"),
        p("_sort", "Sort order: `_id`, `_lastUpdated` or any search parameter of the type, `-` for descending, comma-separated"),
        p("_include", "Resources the matches reference, as `Type:param[:target]` or `*`; `:iterate` too"),
        p("_revinclude", "Resources that reference the matches, as `Type:param[:target]` or `*`"),
        p("_summary", "Summary form of the matches; `count` returns the total only"),
        p("_elements", "Only these elements of each match (comma-separated)"),
        p("_total", "Whether to count every match (`accurate`, `estimate`: both exact) or not (`none`)"),
    ]
}

/// Conditional update, delete and patch (`PUT|DELETE|PATCH [type]?criteria`) need criteria.
fn conditional_criteria(operation: &mut Map<String, Value>, path: &str, method: &str) {
    let conditional = matches!(method, "put" | "delete" | "patch")
        && (path == "/fhir/{type}" || path.ends_with("/Consent"));
    if !conditional {
        return;
    }
    let parameters = operation.entry("parameters").or_insert_with(|| json!([]));
    if let Some(parameters) = parameters.as_array_mut() {
        parameters.retain(|p| p["in"] != "query");
        parameters.push(json!({
            "in": "query",
            "name": "_id",
            "required": true,
            "description": "The criteria that select the resource: any search parameters of the type (at least one); `_id` is shown",
            "schema": {"type": "string", "minLength": 1, "pattern": ANY_TEXT}
        }));
    }
}

fn tighten_parameters(operation: &mut Map<String, Value>, path: &str, types: &[&str]) {
    let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    // The page cursor is opaque, made by the server: clients follow the Bundle's `next` link.
    // No associated data set is served (`includeAssociatedData`): not offered.
    parameters.retain(|p| p["name"] != "_cursor" && p["name"] != "includeAssociatedData");
    for parameter in parameters.iter_mut() {
        let location = parameter["in"].as_str().unwrap_or_default().to_string();
        let name = parameter["name"].as_str().unwrap_or_default().to_string();
        if let Some(schema) = parameter_schema(&location, &name, path, types) {
            parameter["schema"] = schema;
        } else if let Some(schema) = parameter.get_mut("schema") {
            not_null(schema);
            // An empty value is never what a parameter means.
            if schema["type"] == "string" && schema.get("enum").is_none() {
                schema["minLength"] = json!(1);
            }
        }
    }
}

fn tighten_body(operation: &mut Map<String, Value>, path: &str, method: &str, types: &[&str]) {
    let Some(content) = operation
        .get_mut("requestBody")
        .and_then(|b| b.get_mut("content"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (media_type, body) in content.iter_mut() {
        let schema = if media_type.contains("json-patch") {
            json_patch_body()
        } else if media_type == "application/x-www-form-urlencoded" {
            // `_search` by POST: the parameters of the query string, as a form.
            // Parameters it does not know are ignored (lenient handling).
            json!({"type": "object", "properties": {
                "_id": {"type": "string", "pattern": ANY_TEXT},
                "_count": {"type": "integer", "minimum": 0}
            }})
        } else if path.ends_with("$export") {
            // Export parameters it does not know are ignored.
            let mut schema = parameters_body();
            if let Some(o) = schema.as_object_mut() {
                o.remove("additionalProperties");
            }
            schema
        } else if path.contains('$') && !path.ends_with("$validate") {
            parameters_body()
        } else if media_type.contains("json") && method != "patch" {
            resource_body(types, path)
        } else {
            continue;
        };
        body["schema"] = schema;
    }
    // A search by POST, or an export by POST, may carry no body at all.
    if path.ends_with("/_search") || path.ends_with("$export") {
        if let Some(body) = operation.get_mut("requestBody") {
            body["required"] = json!(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({
            "paths": {
                "/fhir/{type}/{id}": {
                    "get": {
                        "parameters": [
                            {"in": "path", "name": "type", "schema": {"type": "string"}},
                            {"in": "path", "name": "id", "schema": {"type": "string"}},
                            {"in": "query", "name": "other", "schema": {"type": ["string", "null"]}}
                        ],
                        "security": [{"smart": []}],
                        "responses": {"200": {"description": "The resource"}}
                    },
                    "put": {
                        "requestBody": {"content": {"application/fhir+json": {"schema": {}}}},
                        "responses": {"200": {"description": "Updated"}, "400": {"description": "Mine"}}
                    }
                }
            }
        })
    }

    #[test]
    fn parameters_take_the_fhir_grammar() {
        let mut d = doc();
        tighten(
            &mut d,
            &FhirDocument {
                types: &["Observation", "Patient"],
            },
        );
        let get = &d["paths"]["/fhir/{type}/{id}"]["get"];
        assert_eq!(
            get["parameters"][0]["schema"]["enum"],
            json!(["Observation", "Patient"])
        );
        assert_eq!(get["parameters"][1]["schema"]["pattern"], ID_PATTERN);
        assert_eq!(
            get["parameters"][2]["schema"],
            json!({"type": "string", "minLength": 1})
        );
        assert!(get["responses"]["401"]["description"].is_string());
        assert!(get["responses"].get("415").is_none());
    }

    #[test]
    fn bodies_name_their_type_and_errors_are_outcomes() {
        let mut d = doc();
        tighten(
            &mut d,
            &FhirDocument {
                types: &["Observation"],
            },
        );
        let put = &d["paths"]["/fhir/{type}/{id}"]["put"];
        let schema = &put["requestBody"]["content"]["application/fhir+json"]["schema"];
        assert_eq!(schema["required"], json!(["resourceType"]));
        assert_eq!(put["responses"]["400"]["description"], "Mine");
        assert_eq!(
            put["responses"]["422"]["content"]["application/fhir+json"]["schema"]["$ref"],
            "#/components/schemas/OperationOutcome"
        );
        assert!(put["responses"].get("401").is_none());
        assert_eq!(
            d["components"]["schemas"]["OperationOutcome"]["required"],
            json!(["resourceType", "issue"])
        );
    }

    /// What the `agent` pattern lets through is what the ledger's parser takes: each value of a
    /// comma-separated list, trimmed as Rust trims. (A schema-valid `User/,…` was refused
    /// with 400: the pattern had let an id hold the comma the parser splits on.)
    #[test]
    fn the_agent_pattern_says_what_the_ledger_parses() {
        let schema = json!({"type": "string", "pattern": agent_pattern()});
        let valid = |v: &str| jsonschema::is_valid(&schema, &json!(v));
        for taken in [
            "",
            "u1",
            "User/u2",
            "Practitioner/p1",
            "Practitioner/p1,u1",
            " u1 , User/x ",
            "Practitioner",
            "\u{1e}abc",
        ] {
            assert!(valid(taken), "{taken:?}");
        }
        for refused in [
            "User/",
            "User/,y",
            "u1,",
            ",u1",
            "a/b",
            "a|b",
            "Practitioner/",
            "   ",
            "\n",
            "u1\n,",
            // U+001E is whitespace to Python's `\s`, not to Rust's `trim`.
            "\u{1e}Practitioner/p1",
        ] {
            assert!(!valid(refused), "{refused:?}");
        }
    }

    /// Patterns are read by other engines than the servers' (schemathesis draws values with
    /// Python's, where `$` also matches before a final newline and closes only as a whole
    /// pattern's last `$`, and `\s` is wider than Rust's `trim`): every pattern of the
    /// published document is one anchored whole and names its whitespace.
    #[test]
    fn published_patterns_read_the_same_in_every_engine() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi/openapi.json");
        let text = std::fs::read_to_string(path).expect("the published OpenAPI document");
        let document: Value = serde_json::from_str(&text).expect("JSON");
        fn patterns(value: &Value, out: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    for (key, v) in map {
                        match (key.as_str(), v) {
                            ("pattern", Value::String(p)) => out.push(p.clone()),
                            _ => patterns(v, out),
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| patterns(v, out)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        patterns(&document, &mut found);
        assert!(found.len() > 10, "{} patterns", found.len());
        for p in found {
            assert!(p.starts_with('^') && p.ends_with('$'), "{p}");
            assert!(!p.contains("$|"), "alternatives each anchored: {p}");
            assert!(!p.contains("\\s"), "`\\s` differs between engines: {p}");
        }
    }
}
