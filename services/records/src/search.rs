//! Records' searches: the one FHIR search engine ([`custodian_fhir_search`]) over records'
//! `resources` and `search_index`, restricted to what the access kernel lets the caller see.
//!
//! What the caller may see becomes SQL over `r` (a row of `resources`): the compartments of
//! the kernel's [`PatientScope`] (her own, the custodian's, those her consents open), resources
//! in no compartment when the scope says so, and compartments whose consents answer by the
//! data itself as conditions over each resource's access facts ([`crate::facts`]), so that a
//! search shows exactly what reads by id would.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use custodian_access::{Condition, ConditionalCompartment, Confidentiality, Fact, PatientScope};
use custodian_fhir_search::{
    query::{Bind, Builder},
    Registry,
};
use custodian_policy::{model::CONFIDENTIALITY_SYSTEM, CONFIDENTIALITY_LEVELS};

pub use custodian_fhir_search::{
    page,
    query::{
        cursor_of, Cursor, Include, Match, TotalMode, MAX_CHAIN, MAX_INCLUDES, MAX_ITERATIONS,
    },
    Handling, SearchQuery, Store,
};

use crate::{domain::served_elsewhere, facts};

/// What records' searches search: every R4 type but those another service serves.
pub fn store(registry: &'static Registry) -> Store {
    Store {
        registry,
        holds: |t| served_elsewhere(t).is_none(),
    }
}

/// Access, put into a search.
pub trait Restrict {
    /// Limits the search to what the caller may see: compartments in `scope`, and resources
    /// in none when the scope says so. Everything after (counts, pages) is over visible data.
    fn restrict(&mut self, scope: &PatientScope);
    /// Limits the resources of `resource_type` a chain or `_has` links through to what the
    /// caller may see of that type (`None`: nothing, as when the kernel denies the type).
    fn restrict_linked(&mut self, resource_type: &str, scope: Option<&PatientScope>);
}

impl Restrict for SearchQuery {
    fn restrict(&mut self, scope: &PatientScope) {
        self.restrict_with(|b| visible_sql(b, scope));
    }

    fn restrict_linked(&mut self, resource_type: &str, scope: Option<&PatientScope>) {
        self.restrict_linked_with(
            resource_type,
            scope.map(|scope| move |b: &mut Builder| visible_sql(b, scope)),
        );
    }
}

/// What the caller may see, as SQL over `r`: compartments in `scope`, and resources in none
/// when the scope says so.
fn visible_sql(b: &mut Builder, scope: &PatientScope) -> String {
    let mut visible = Vec::new();
    if scope.unowned {
        visible.push("r.patient_ref IS NULL".to_string());
    }
    if !scope.included.is_empty() {
        let p = b.bind(Bind::Texts(
            scope
                .included
                .iter()
                .map(|p| p.as_str().to_string())
                .collect(),
        ));
        visible.push(format!("r.patient_ref = ANY({p})"));
    }
    let org = scope.custodian.as_ref().map(|c| b.text(c.as_str()));
    if let Some(org) = &org {
        let excluded = b.bind(Bind::Texts(
            scope
                .excluded
                .iter()
                .map(|p| p.as_str().to_string())
                .collect(),
        ));
        // A primary-key probe per candidate row, so a search costs what it matches, not what
        // the custodian holds. Inside this OR PostgreSQL cannot make the subquery a join; an
        // `IN (SELECT ...)` (as before) or a plain EXISTS may become a hash of every
        // compartment of the custodian, built per query: 216 ms at 138,000 patients for a
        // search matching one. `OFFSET 0` keeps the EXISTS from being hashed (PostgreSQL
        // leaves such a subquery as it is).
        visible.push(format!(
            "(EXISTS (SELECT 1 FROM compartments c WHERE c.patient_ref = r.patient_ref \
             AND c.custodian = {org} OFFSET 0) AND NOT (r.patient_ref = ANY({excluded})))"
        ));
    }
    visible.extend(conditional_sql(b, &scope.conditional, org.as_deref()));
    if visible.is_empty() {
        "false".into()
    } else {
        format!("({})", visible.join(" OR "))
    }
}

/// The compartments whose consents answer by the data's facts, as SQL: a resource is visible
/// where its compartment's condition holds over its access facts ([`crate::facts`]), which
/// must be those of its current version (a resource without them is left out). Compartments
/// with the same conditions share one clause.
fn conditional_sql(
    b: &mut Builder,
    compartments: &[ConditionalCompartment],
    custodian: Option<&str>,
) -> Vec<String> {
    let never = Condition::False;
    let mut groups: BTreeMap<String, (&Condition, &Condition, Vec<String>)> = BTreeMap::new();
    for c in compartments {
        let held = if custodian.is_some() { &c.held } else { &never };
        if c.visible.is_false() && held.is_false() {
            continue;
        }
        // Conditions serialise deterministically: equal ones share a key.
        let key = serde_json::to_string(&(&c.visible, held)).unwrap_or_default();
        groups
            .entry(key)
            .or_insert_with(|| (&c.visible, held, Vec::new()))
            .2
            .push(c.patient.as_str().to_string());
    }
    let mut out = Vec::new();
    for (visible, held, patients) in groups.into_values() {
        let patients = b.bind(Bind::Texts(patients));
        let known = references_known(b, &[visible, held]);
        let mut when = condition_sql(b, visible);
        if let (Some(org), false) = (custodian, held.is_false()) {
            let held = condition_sql(b, held);
            when = format!(
                "({when} OR (EXISTS (SELECT 1 FROM compartments c WHERE c.patient_ref = r.patient_ref \
                 AND c.custodian = {org}) AND {held}))"
            );
        }
        out.push(format!(
            "(r.patient_ref = ANY({patients}) AND EXISTS (SELECT 1 FROM access_facts f \
             WHERE f.resource_type = r.resource_type AND f.resource_id = r.resource_id \
             AND f.version = r.version){known} AND {when})"
        ));
    }
    out
}

/// A condition over a resource's access facts as SQL over `r` (the current row): the same
/// meaning as [`Condition::holds`] over `InstanceFacts::of` the resource. Every fact is an
/// `EXISTS` or a comparison of non-null values, so `NOT` is never unknown.
fn condition_sql(b: &mut Builder, c: &Condition) -> String {
    match c {
        Condition::True => "true".into(),
        Condition::False => "false".into(),
        Condition::Not(inner) => format!("NOT ({})", condition_sql(b, inner)),
        Condition::And(items) | Condition::Or(items) => {
            let glue = if matches!(c, Condition::And(_)) {
                " AND "
            } else {
                " OR "
            };
            let parts: Vec<String> = items.iter().map(|i| condition_sql(b, i)).collect();
            format!("({})", parts.join(glue))
        }
        Condition::Fact(fact) => fact_sql(b, fact),
    }
}

fn fact_sql(b: &mut Builder, fact: &Fact) -> String {
    let codings = |kind: &str, rest: String| {
        format!(
            "EXISTS (SELECT 1 FROM access_codings a WHERE a.resource_type = r.resource_type \
             AND a.resource_id = r.resource_id AND a.kind = '{kind}' AND {rest})"
        )
    };
    // `Coding::matches`: the same code, and the same system unless either has none.
    let coding = |b: &mut Builder, kind: &str, c: &custodian_access::Coding| {
        let code = b.text(c.code.clone());
        let rest = match &c.system {
            Some(system) => format!(
                "a.code = {code} AND (a.system IS NULL OR a.system = {})",
                b.text(system.clone())
            ),
            None => format!("a.code = {code}"),
        };
        codings(kind, rest)
    };
    // Times compare as exact nanoseconds (see `facts::nanos`).
    let time = |b: &mut Builder, t: DateTime<Utc>| format!("{}::numeric", b.text(facts::nanos(t)));
    let in_facts = |rest: String| {
        format!(
            "EXISTS (SELECT 1 FROM access_facts f WHERE f.resource_type = r.resource_type \
             AND f.resource_id = r.resource_id AND f.data_from IS NOT NULL{rest})"
        )
    };
    match fact {
        Fact::Id(id) => format!("r.resource_id = {}", b.text(id.clone())),
        Fact::Code(c) => coding(b, facts::CODE, c),
        Fact::Label(c) => coding(b, facts::SECURITY, c),
        Fact::ConfidentialityAtLeast(level) => {
            // The highest v3-Confidentiality label (its system, or none), N without one.
            let system = b.text(CONFIDENTIALITY_SYSTEM);
            let confidentiality = |codes: String| {
                codings(
                    facts::SECURITY,
                    format!("(a.system IS NULL OR a.system = {system}) AND a.code = ANY({codes})"),
                )
            };
            let at_least: Vec<String> = CONFIDENTIALITY_LEVELS
                .iter()
                .filter(|l| *l >= level)
                .map(|l| l.as_str().to_string())
                .collect();
            let some = confidentiality(b.bind(Bind::Texts(at_least)));
            if *level <= Confidentiality::N {
                let all = CONFIDENTIALITY_LEVELS
                    .iter()
                    .map(|l| l.as_str().to_string())
                    .collect();
                let none = confidentiality(b.bind(Bind::Texts(all)));
                format!("({some} OR NOT {none})")
            } else {
                some
            }
        }
        Fact::HasDataTime => in_facts(String::new()),
        Fact::DataWithin(period) => {
            let mut rest = String::new();
            if let Some(start) = period.start() {
                rest.push_str(&format!(" AND f.data_from >= {}", time(b, start)));
            }
            if let Some(end) = period.end() {
                rest.push_str(&format!(" AND f.data_to <= {}", time(b, end)));
            }
            in_facts(rest)
        }
        Fact::DataTouches(period) => {
            let mut rest = String::new();
            if let Some(start) = period.start() {
                rest.push_str(&format!(" AND f.data_to >= {}", time(b, start)));
            }
            if let Some(end) = period.end() {
                rest.push_str(&format!(" AND f.data_from <= {}", time(b, end)));
            }
            in_facts(rest)
        }
        // What the row's current version refers to.
        Fact::RefersTo(target) => format!(
            "EXISTS (SELECT 1 FROM access_references ar WHERE ar.resource_type = r.resource_type \
             AND ar.resource_id = r.resource_id AND ar.version = r.version AND ar.target = {})",
            b.text(target.clone())
        ),
        // The named resource's current version (not deleted) refers to the row.
        Fact::ReferredToBy(source) => match source.split_once('/') {
            Some((kind, id)) => format!(
                "EXISTS (SELECT 1 FROM resources x JOIN access_references ar \
                 ON ar.resource_type = x.resource_type AND ar.resource_id = x.resource_id \
                 AND ar.version = x.version WHERE x.resource_type = {} AND x.resource_id = {} \
                 AND NOT x.deleted AND ar.target = r.resource_type || '/' || r.resource_id)",
                b.text(kind.to_string()),
                b.text(id.to_string())
            ),
            None => "false".into(),
        },
    }
}

/// Every reference fact a formula mentions.
fn reference_facts<'c>(c: &'c Condition, out: &mut Vec<&'c Fact>) {
    match c {
        Condition::True | Condition::False => {}
        Condition::Not(inner) => reference_facts(inner, out),
        Condition::And(items) | Condition::Or(items) => {
            for item in items {
                reference_facts(item, out);
            }
        }
        Condition::Fact(fact @ (Fact::RefersTo(_) | Fact::ReferredToBy(_))) => {
            if !out.contains(&fact) {
                out.push(fact);
            }
        }
        Condition::Fact(_) => {}
    }
}

/// SQL that holds when the references the formulas read are recorded: the row's (for
/// `RefersTo`) and each named resource's current version's (for `ReferredToBy`; a resource
/// that does not exist or is deleted refers to nothing). Where they are not (an unreadable
/// body), the rows are left out, as a read by id answers Undetermined: never shown by guess.
fn references_known(b: &mut Builder, formulas: &[&Condition]) -> String {
    let mut facts = Vec::new();
    for f in formulas {
        reference_facts(f, &mut facts);
    }
    let mut out = String::new();
    if facts.iter().any(|f| matches!(f, Fact::RefersTo(_))) {
        out.push_str(
            " AND EXISTS (SELECT 1 FROM access_reference_sets s WHERE s.resource_type = r.resource_type \
             AND s.resource_id = r.resource_id AND s.version = r.version)",
        );
    }
    for fact in facts {
        let Fact::ReferredToBy(source) = fact else {
            continue;
        };
        let Some((kind, id)) = source.split_once('/') else {
            continue;
        };
        out.push_str(&format!(
            " AND NOT EXISTS (SELECT 1 FROM resources x WHERE x.resource_type = {} \
             AND x.resource_id = {} AND NOT x.deleted AND NOT EXISTS (SELECT 1 FROM \
             access_reference_sets s WHERE s.resource_type = x.resource_type \
             AND s.resource_id = x.resource_id AND s.version = x.version))",
            b.text(kind.to_string()),
            b.text(id.to_string())
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_compartments_compile_to_bound_sql_grouped_by_condition() {
        use custodian_access::{Coding, PatientRef};
        let not_r = Condition::negate(Condition::fact(Fact::ConfidentialityAtLeast(
            Confidentiality::R,
        )));
        let code = Condition::fact(Fact::Code(Coding::new(Some("http://x"), "sneaky' OR 1=1")));
        let compartment = |p: &str, visible: &Condition| ConditionalCompartment {
            patient: PatientRef::parse(p).unwrap(),
            visible: visible.clone(),
            held: Condition::False,
            consents: vec![],
        };
        let mut q = SearchQuery::parse(
            &store(Registry::global()),
            "Observation",
            &[],
            Handling::Strict,
        )
        .unwrap();
        q.restrict(&PatientScope {
            unowned: false,
            conditional: vec![
                compartment("Patient/a", &not_r),
                compartment("Patient/b", &not_r),
                compartment("Patient/c", &code),
                compartment("Patient/d", &Condition::False),
            ],
            ..PatientScope::default()
        });
        let sql = q.statement();
        // One clause per distinct condition; nothing visible for d.
        assert_eq!(sql.matches("r.patient_ref = ANY(").count(), 2, "{sql}");
        assert_eq!(sql.matches("f.version = r.version").count(), 2, "{sql}");
        // Values are bound, never spliced.
        assert!(
            !sql.contains("sneaky") && !sql.contains("Patient/a"),
            "{sql}"
        );
        assert!(q
            .binds()
            .iter()
            .any(|b| matches!(b, Bind::Text(t) if t == "sneaky' OR 1=1")));
    }
}
