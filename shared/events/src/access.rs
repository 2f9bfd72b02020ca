//! The access event. Its JSON form is the contract between producers (records, consent,
//! identity) and consumers (ledger, anomaly, offline replay); `access-event.schema.json` beside
//! this crate documents it, and a test checks the two agree.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessAction {
    Read,
    Search,
    Create,
    Update,
    Delete,
    Export,
    Login,
    BreakGlass,
}

impl AccessAction {
    /// Every action, in declaration order.
    pub const ALL: [Self; 8] = [
        Self::Read,
        Self::Search,
        Self::Create,
        Self::Update,
        Self::Delete,
        Self::Export,
        Self::Login,
        Self::BreakGlass,
    ];

    /// The action as the event's JSON spells it (what consumers store in their columns).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Search => "search",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Export => "export",
            Self::Login => "login",
            Self::BreakGlass => "break-glass",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessOutcome {
    Permit,
    Deny,
    Error,
}

impl AccessOutcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Self; 3] = [Self::Permit, Self::Deny, Self::Error];

    /// The outcome as the event's JSON spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Permit => "permit",
            Self::Deny => "deny",
            Self::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The user's id in identity (the token's `sub`).
    pub id: String,
    pub role: String,
    /// `Organization/<id>` the user acts for, when any.
    pub organization: Option<String>,
    /// From the practitioner's role, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// `Practitioner/<id>` the user is, when the token names one: the reference consents and
    /// care facts (Encounter participants, CareTeam members) name people by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practitioner: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Why the access kernel decided as it did; the ledger keeps it with every access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// A stable code: `custodian`, `consent`, `own-record`, `break-glass`, `unowned`, `role`
    /// for permits; `consent-deny`, `no-permit`, `scope`, `role`, `break-glass-refused`,
    /// `undetermined`, `unknown-patient`, `locked-out`, `bad-credentials` for denials.
    pub basis: String,
    /// `Consent/<id>` that decided, when consents did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consents: Vec<String>,
    /// The practitioner's stated reason, for break-glass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEvent {
    pub id: Uuid,
    pub time: DateTime<Utc>,
    pub actor: Actor,
    /// `Patient/<id>` whose data was touched, or null (a search that returned nothing).
    pub patient: Option<String>,
    pub action: AccessAction,
    pub resource_type: Option<String>,
    /// Resources returned (reads and searches) or written.
    pub count: u32,
    /// HL7 v3 PurposeOfUse code (TREAT, ETREAT, HPAYMT, HOPERAT, PATRQT, ...).
    pub purpose: String,
    pub outcome: AccessOutcome,
    pub break_glass: bool,
    /// The record's confidentiality code from `meta.security` (N, R, V ...), when known.
    pub confidentiality: Option<String>,
    pub source: Source,
    /// What decided (absent in events written before the access kernel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionRecord>,
    /// The request's `X-Request-Id`, to join the ledger with service logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The account an administrative action was about (`User/<id>` or `Client/<id>`): the one
    /// unlocked, suspended or reinstated; the actor is who did it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl AccessEvent {
    /// Parses one event, checking the fields' formats (uuid, RFC 3339 time, enums).
    pub fn parse(json: &str) -> Result<Self, crate::EventError> {
        serde_json::from_str(json).map_err(|e| crate::EventError::Malformed(e.to_string()))
    }

    /// Parses an event from a log another system wrote (offline replay and evaluation): what
    /// identifies the access (`id`, `time`, `actor.id` and `role`, `action`, `outcome`) is still
    /// required, but fields that only add detail take their empty value when missing
    /// (`source`, `count` 0, `purpose` empty, `break_glass` false, `resource_type`,
    /// `confidentiality`, `patient` null; a `decision` without a `basis` is left out), a time
    /// without an offset is taken as UTC (also with a space for the `T`, or Unix seconds or
    /// milliseconds), and other logs' words for an action or an outcome (`view`, `query`,
    /// `download`, `denied` ...) are ours. An `id` that is not a UUID is read as
    /// [`foreign_event_id`] of it. The error is the strict parse's.
    pub fn parse_lenient(json: &str) -> Result<Self, crate::EventError> {
        Self::parse_foreign(json).map(|(event, _)| event)
    }

    /// [`Self::parse_lenient`], with the `id` as the log wrote it when that was not a UUID in
    /// this crate's form (`"evt-000123"`, `42`, capitals), for answers about the event to name
    /// it as its log did.
    pub fn parse_foreign(
        json: &str,
    ) -> Result<(Self, Option<serde_json::Value>), crate::EventError> {
        let strict = match Self::parse(json) {
            // Written as this crate writes it (lowercase, hyphens): nothing to keep.
            Ok(event)
                if json.contains(
                    &*event
                        .id
                        .hyphenated()
                        .encode_lower(&mut Uuid::encode_buffer()),
                ) =>
            {
                return Ok((event, None))
            }
            Ok(event) => {
                let written = serde_json::from_str::<serde_json::Value>(json)
                    .ok()
                    .and_then(|v| v.get("id").cloned());
                return Ok((event, written));
            }
            Err(e) => e,
        };
        let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_str(json) else {
            return Err(strict);
        };
        let original = match fields.get("id") {
            Some(serde_json::Value::String(id))
                if !id.is_empty()
                    && Uuid::parse_str(id).map_or(true, |u| u.hyphenated().to_string() != *id) =>
            {
                Some((id.clone(), serde_json::Value::String(id.clone())))
            }
            Some(serde_json::Value::Number(id)) => {
                Some((id.to_string(), serde_json::Value::Number(id.clone())))
            }
            _ => None,
        };
        if let Some((id, _)) = &original {
            fields.insert(
                "id".to_string(),
                serde_json::Value::String(foreign_event_id(id).to_string()),
            );
        }
        let original = original.map(|(_, written)| written);
        let defaults = [
            (
                "source",
                serde_json::json!({"ip": null, "user_agent": null}),
            ),
            ("count", serde_json::json!(0)),
            ("purpose", serde_json::json!("")),
            ("break_glass", serde_json::json!(false)),
        ];
        for (name, value) in defaults {
            match fields.get(name) {
                None | Some(serde_json::Value::Null) => {
                    fields.insert(name.to_string(), value);
                }
                Some(_) => {}
            }
        }
        // What decided only adds detail: one that does not say its basis is left out.
        if fields
            .get("decision")
            .is_some_and(|d| !d.get("basis").is_some_and(serde_json::Value::is_string))
        {
            fields.remove("decision");
        }
        if let Some(time) = fields.get("time").and_then(lenient_time) {
            fields.insert("time".to_string(), serde_json::Value::String(time));
        }
        for (name, words) in [("action", ACTION_WORDS), ("outcome", OUTCOME_WORDS)] {
            if let Some(serde_json::Value::String(word)) = fields.get_mut(name) {
                let lower = word.trim().to_ascii_lowercase();
                if let Some((_, ours)) = words.iter().find(|(theirs, _)| *theirs == lower) {
                    *word = (*ours).to_string();
                }
            }
        }
        serde_json::from_value(serde_json::Value::Object(fields))
            .map(|event| (event, original))
            .map_err(|_| strict)
    }
}

/// Other logs' words for an action, and ours (an unknown word stays malformed).
const ACTION_WORDS: &[(&str, &str)] = &[
    ("read", "read"),
    ("view", "read"),
    ("open", "read"),
    ("access", "read"),
    ("search", "search"),
    ("query", "search"),
    ("list", "search"),
    ("create", "create"),
    ("insert", "create"),
    ("add", "create"),
    ("update", "update"),
    ("modify", "update"),
    ("edit", "update"),
    ("delete", "delete"),
    ("remove", "delete"),
    ("export", "export"),
    ("download", "export"),
    ("print", "export"),
    ("login", "login"),
    ("log-in", "login"),
    ("logon", "login"),
    ("signin", "login"),
    ("sign-in", "login"),
    ("break-glass", "break-glass"),
    ("break_glass", "break-glass"),
    ("breakglass", "break-glass"),
    ("emergency-access", "break-glass"),
];

/// Other logs' words for an outcome, and ours.
const OUTCOME_WORDS: &[(&str, &str)] = &[
    ("permit", "permit"),
    ("allow", "permit"),
    ("allowed", "permit"),
    ("granted", "permit"),
    ("success", "permit"),
    ("deny", "deny"),
    ("denied", "deny"),
    ("forbidden", "deny"),
    ("refused", "deny"),
    ("failure", "deny"),
    ("error", "error"),
];

/// A time another log wrote otherwise than RFC 3339, as RFC 3339: without an offset (UTC), with
/// a space for the `T`, or as Unix seconds or milliseconds. `None` when it is already RFC 3339
/// or cannot be read (the strict parse's error stands).
fn lenient_time(time: &serde_json::Value) -> Option<String> {
    let utc = match time {
        serde_json::Value::String(text) => {
            if DateTime::parse_from_rfc3339(text).is_ok() {
                return None;
            }
            let text = text.trim();
            if let Ok(with_offset) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z") {
                with_offset.with_timezone(&Utc)
            } else {
                ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                    .iter()
                    .find_map(|format| chrono::NaiveDateTime::parse_from_str(text, format).ok())?
                    .and_utc()
            }
        }
        serde_json::Value::Number(number) => {
            let value = number.as_f64()?;
            // Milliseconds from here up (year 5138 in seconds).
            let millis = if value.abs() >= 1e11 {
                value
            } else {
                value * 1000.0
            };
            DateTime::<Utc>::from_timestamp_millis(millis as i64)?
        }
        _ => return None,
    };
    Some(utc.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// The UUID an access event whose log names it otherwise (`"evt-000123"`) is known by: a UUID
/// as it is, any other id as a name-based UUID (version 8: the first 16 bytes of the SHA-256 of
/// `custodian-event-id:` and the id), the same for the same id wherever it is read (events,
/// labels, scores).
pub fn foreign_event_id(id: &str) -> Uuid {
    if let Ok(uuid) = Uuid::parse_str(id) {
        return uuid;
    }
    let digest = openssl::sha::sha256(format!("custodian-event-id:{id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Serde's `deserialize_with` for an event id another system wrote: a UUID, any other string, or
/// a number ([`foreign_event_id`]).
pub fn deserialize_foreign_event_id<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Uuid, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(id) if !id.is_empty() => Ok(foreign_event_id(&id)),
        serde_json::Value::Number(id) => Ok(foreign_event_id(&id.to_string())),
        other => Err(serde::de::Error::custom(format!(
            "an event id must be a string or a number, not {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lenient_parse_fills_what_only_adds_detail_and_still_needs_the_access() {
        let minimal = r#"{"id":"0bc2a1c3-cc90-4773-ba77-349ef18853fa","time":"2026-03-02T08:06:14",
            "actor":{"id":"u1","role":"practitioner"},"action":"read","outcome":"permit",
            "patient":"Patient/p1"}"#;
        assert!(AccessEvent::parse(minimal).is_err());
        let event = AccessEvent::parse_lenient(minimal).expect("lenient");
        assert_eq!(event.time.to_rfc3339(), "2026-03-02T08:06:14+00:00");
        assert_eq!(event.source, Source::default());
        assert_eq!((event.count, event.break_glass), (0, false));
        assert_eq!(event.patient.as_deref(), Some("Patient/p1"));
        for missing in ["\"action\":\"read\",", "\"outcome\":\"permit\","] {
            let without = minimal.replace(missing, "");
            assert!(AccessEvent::parse_lenient(&without).is_err(), "{without}");
        }
        for decision in [r#"{"basis":null}"#, "{}", "null", r#""permit""#] {
            let with = minimal.replace(
                "\"outcome\"",
                &format!("\"decision\":{decision},\"outcome\""),
            );
            let event = AccessEvent::parse_lenient(&with).expect(&with);
            assert_eq!(event.decision, None, "{with}");
        }
        let decided = minimal.replace("\"outcome\"", r#""decision":{"basis":"consent"},"outcome""#);
        let event = AccessEvent::parse_lenient(&decided).expect("decided");
        assert_eq!(event.decision.map(|d| d.basis), Some("consent".to_string()));
        // Another system's ids: kept beside a UUID made of them, the same each time.
        for (id, written) in [("\"evt-000123\"", "evt-000123"), ("42", "42")] {
            let with = minimal.replace("\"0bc2a1c3-cc90-4773-ba77-349ef18853fa\"", id);
            let (event, original) = AccessEvent::parse_foreign(&with).expect(&with);
            assert_eq!(original.map(|v| v.to_string()).as_deref(), Some(id));
            assert_eq!(event.id, foreign_event_id(written));
            assert_ne!(event.id, foreign_event_id("evt-000124"));
            assert_eq!(event.id.get_version_num(), 8);
        }
        // A UUID written otherwise (uppercase) is the same UUID, answered as written.
        let upper = minimal.replace(
            "0bc2a1c3-cc90-4773-ba77-349ef18853fa",
            "0BC2A1C3-CC90-4773-BA77-349EF18853FA",
        );
        let (event, original) = AccessEvent::parse_foreign(&upper).expect("upper");
        assert_eq!(event.id.to_string(), "0bc2a1c3-cc90-4773-ba77-349ef18853fa");
        assert_eq!(
            original,
            Some(serde_json::json!("0BC2A1C3-CC90-4773-BA77-349EF18853FA"))
        );
        let strict = serde_json::to_string(&sample()).expect("json");
        assert_eq!(AccessEvent::parse_foreign(&strict).expect("strict").1, None);
        let (event, original) = AccessEvent::parse_foreign(minimal).expect("uuid");
        assert_eq!(
            (event.id.to_string().as_str(), original),
            ("0bc2a1c3-cc90-4773-ba77-349ef18853fa", None)
        );
        assert!(AccessEvent::parse_foreign(
            &minimal.replace("\"0bc2a1c3-cc90-4773-ba77-349ef18853fa\"", "\"\"")
        )
        .is_err());
        // Other logs' words and clocks.
        let other = minimal
            .replace("\"read\"", "\"VIEW\"")
            .replace("\"permit\"", "\"Denied\"");
        let event = AccessEvent::parse_lenient(&other).expect("words");
        assert_eq!(
            (event.action, event.outcome),
            (AccessAction::Read, AccessOutcome::Deny)
        );
        for time in [
            "\"2026-03-02 08:06:14\"",
            "\"2026-03-02 09:06:14+01:00\"",
            "1772438774",
            "1772438774000",
        ] {
            let with = minimal.replace("\"2026-03-02T08:06:14\"", time);
            let event = AccessEvent::parse_lenient(&with).expect(&with);
            assert_eq!(
                event.time.to_rfc3339(),
                "2026-03-02T08:06:14+00:00",
                "{time}"
            );
        }
        assert!(AccessEvent::parse_lenient(&minimal.replace("read", "peek")).is_err());
        assert!(AccessEvent::parse_lenient("not json").is_err());
    }

    fn sample() -> AccessEvent {
        AccessEvent {
            id: Uuid::new_v4(),
            time: Utc::now(),
            actor: Actor {
                id: "u1".into(),
                role: "practitioner".into(),
                organization: Some("Organization/h1".into()),
                department: None,
                practitioner: None,
            },
            patient: Some("Patient/alice".into()),
            action: AccessAction::BreakGlass,
            resource_type: Some("Observation".into()),
            count: 1,
            purpose: "ETREAT".into(),
            outcome: AccessOutcome::Permit,
            break_glass: true,
            confidentiality: Some("R".into()),
            source: Source {
                ip: Some("127.0.0.1".into()),
                user_agent: None,
            },
            decision: Some(DecisionRecord {
                basis: "break-glass".into(),
                consents: vec![],
                break_glass_reason: Some("unconscious".into()),
            }),
            request_id: Some("r1".into()),
            account: None,
        }
    }

    #[test]
    fn round_trips_and_uses_schema_spelling() {
        let event = sample();
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["action"], "break-glass");
        assert_eq!(json["outcome"], "permit");
        let back = AccessEvent::parse(&json.to_string()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn rejects_unknown_actions() {
        let mut json = serde_json::to_value(sample()).unwrap();
        json["action"] = "peek".into();
        assert!(AccessEvent::parse(&json.to_string()).is_err());
    }

    #[test]
    fn schema_file_names_every_field() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../access-event.schema.json")).unwrap();
        let json = serde_json::to_value(sample()).unwrap();
        let props = schema["properties"].as_object().unwrap();
        for key in json.as_object().unwrap().keys() {
            assert!(props.contains_key(key), "schema lacks {key}");
        }
        let actions: Vec<String> = schema["properties"]["action"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        for action in AccessAction::ALL {
            let spelled = serde_json::to_value(action).unwrap();
            assert!(actions.contains(&spelled.as_str().unwrap().to_string()));
        }
        assert_eq!(actions.len(), AccessAction::ALL.len());
    }

    #[test]
    fn as_str_is_the_serde_spelling_of_every_value() {
        for action in AccessAction::ALL {
            assert_eq!(
                serde_json::to_value(action).unwrap(),
                serde_json::json!(action.as_str())
            );
            assert_eq!(
                serde_json::from_value::<AccessAction>(serde_json::json!(action.as_str())).unwrap(),
                action
            );
        }
        for outcome in AccessOutcome::ALL {
            assert_eq!(
                serde_json::to_value(outcome).unwrap(),
                serde_json::json!(outcome.as_str())
            );
            assert_eq!(
                serde_json::from_value::<AccessOutcome>(serde_json::json!(outcome.as_str()))
                    .unwrap(),
                outcome
            );
        }
    }
}
