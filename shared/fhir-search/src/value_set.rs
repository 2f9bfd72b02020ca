//! The codes of a `ValueSet`, for the `:in` and `:not-in` token modifiers: exactly what the
//! ValueSet lists, or an error naming why it cannot be listed exactly (never a guess).
//!
//! From its `expansion` when it has one (`contains`, nested, without the `abstract` entries,
//! which are there for navigation and are not values, as `$validate-code` treats them); else from
//! `compose`: `include`s with explicit `concept` lists, whole code systems (`system` alone), and
//! imported ValueSets (`valueSet`, intersected with each other and with `system`), minus the
//! `exclude`s. Filters (`is-a`, `regex` ...) need the code system's content, which is not
//! here: an error. Coding versions are not compared (token search does not compare them).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Most ValueSets one expansion reads (itself and its imports).
pub const MAX_VALUE_SETS: usize = 16;

/// Why a ValueSet's codes cannot be listed exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueSetError {
    #[error("ValueSet {0} is not known here (or not visible to you)")]
    Unknown(String),
    #[error("ValueSet {0}: several ValueSets have this url; name one with url|version")]
    Ambiguous(String),
    #[error("ValueSet {value_set}: {reason}, so its codes cannot be listed exactly here")]
    NotExact { value_set: String, reason: String },
    #[error("ValueSet {0} imports itself")]
    Cycle(String),
    #[error("at most {MAX_VALUE_SETS} ValueSets are read for one search")]
    TooMany,
}

/// A set of codes: some listed one by one, and whole code systems (each but some codes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeSet {
    codes: BTreeSet<(String, String)>,
    /// System -> codes excluded from it.
    systems: BTreeMap<String, BTreeSet<String>>,
}

impl CodeSet {
    /// `(system, code)` pairs listed one by one (none of them in [`CodeSet::systems`]).
    pub fn codes(&self) -> &BTreeSet<(String, String)> {
        &self.codes
    }

    /// Whole code systems, each with the codes it does not include.
    pub fn systems(&self) -> &BTreeMap<String, BTreeSet<String>> {
        &self.systems
    }

    pub fn contains(&self, system: &str, code: &str) -> bool {
        self.systems
            .get(system)
            .is_some_and(|excluded| !excluded.contains(code))
            || self.codes.contains(&(system.to_string(), code.to_string()))
    }

    fn whole(system: &str) -> Self {
        let mut set = Self::default();
        set.systems.insert(system.to_string(), BTreeSet::new());
        set
    }

    /// Each pair once: listed codes a whole system already holds are dropped, and codes
    /// excluded from a system but listed are no longer excluded.
    fn normalized(mut self) -> Self {
        for (system, excluded) in self.systems.iter_mut() {
            excluded.retain(|c| !self.codes.contains(&(system.clone(), c.clone())));
        }
        let systems = &self.systems;
        self.codes
            .retain(|(s, c)| systems.get(s).is_none_or(|excluded| excluded.contains(c)));
        self
    }

    pub fn union(mut self, other: Self) -> Self {
        for (system, excluded) in other.systems {
            match self.systems.get_mut(&system) {
                // Out of the union only what both leave out.
                Some(mine) => mine.retain(|c| excluded.contains(c)),
                None => {
                    self.systems.insert(system, excluded);
                }
            }
        }
        self.codes.extend(other.codes);
        self.normalized()
    }

    pub fn intersect(self, other: &Self) -> Self {
        let mut out = Self::default();
        for (s, c) in &self.codes {
            if other.contains(s, c) {
                out.codes.insert((s.clone(), c.clone()));
            }
        }
        for (s, c) in &other.codes {
            if self.contains(s, c) {
                out.codes.insert((s.clone(), c.clone()));
            }
        }
        for (system, excluded) in &self.systems {
            if let Some(theirs) = other.systems.get(system) {
                out.systems
                    .insert(system.clone(), excluded.union(theirs).cloned().collect());
            }
        }
        out.normalized()
    }

    pub fn minus(self, other: &Self) -> Self {
        let mut out = Self::default();
        for (s, c) in &self.codes {
            if !other.contains(s, c) {
                out.codes.insert((s.clone(), c.clone()));
            }
        }
        for (system, excluded) in &self.systems {
            match other.systems.get(system) {
                // What is left of a whole system without another: the codes the other leaves
                // out and this one does not.
                Some(theirs) => {
                    for c in theirs.difference(excluded) {
                        out.codes.insert((system.clone(), c.clone()));
                    }
                }
                None => {
                    let mut excluded = excluded.clone();
                    excluded.extend(
                        other
                            .codes
                            .iter()
                            .filter(|(s, _)| s == system)
                            .map(|(_, c)| c.clone()),
                    );
                    out.systems.insert(system.clone(), excluded);
                }
            }
        }
        out.normalized()
    }
}

/// The canonical URLs (`url` or `url|version`) a ValueSet's `compose` imports, when its codes
/// come from its `compose` (it has no expansion).
pub fn imports(value_set: &Value) -> Vec<String> {
    if value_set.get("expansion").is_some() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for part in ["include", "exclude"] {
        for item in array(&value_set["compose"], part) {
            for v in array(item, "valueSet") {
                if let Some(v) = v.as_str() {
                    out.push(v.to_string());
                }
            }
        }
    }
    out
}

fn array<'v>(node: &'v Value, key: &str) -> &'v [Value] {
    node.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The codes of `value_set` (named `name` in errors); `resolve` finds an imported ValueSet by
/// its canonical URL (`url` or `url|version`).
pub fn expand<'v>(
    name: &str,
    value_set: &Value,
    resolve: &dyn Fn(&str) -> Option<&'v Value>,
) -> Result<CodeSet, ValueSetError> {
    Expander {
        resolve,
        stack: Vec::new(),
    }
    .expand(name, value_set)
}

struct Expander<'r, 'v> {
    resolve: &'r dyn Fn(&str) -> Option<&'v Value>,
    /// The ValueSets being expanded (an import of one of them is a cycle).
    stack: Vec<String>,
}

impl Expander<'_, '_> {
    fn expand(&mut self, name: &str, value_set: &Value) -> Result<CodeSet, ValueSetError> {
        if self.stack.iter().any(|n| n == name) {
            return Err(ValueSetError::Cycle(name.to_string()));
        }
        if self.stack.len() >= MAX_VALUE_SETS {
            return Err(ValueSetError::TooMany);
        }
        self.stack.push(name.to_string());
        let set = match value_set.get("expansion") {
            Some(expansion) => from_expansion(name, expansion),
            None => self.compose(name, value_set),
        };
        self.stack.pop();
        set
    }

    fn compose(&mut self, name: &str, value_set: &Value) -> Result<CodeSet, ValueSetError> {
        let not_exact = |reason: String| ValueSetError::NotExact {
            value_set: name.to_string(),
            reason,
        };
        let Some(compose) = value_set.get("compose") else {
            return Err(not_exact(
                "it has neither an expansion nor a compose".into(),
            ));
        };
        // Inactive codes are in a ValueSet unless it says otherwise; which codes are inactive
        // only the code system knows.
        if compose.get("inactive") == Some(&Value::Bool(false)) {
            return Err(not_exact(
                "it leaves out inactive codes, which only the code system knows".into(),
            ));
        }
        let mut included = CodeSet::default();
        for item in array(compose, "include") {
            included = included.union(self.part(name, item)?);
        }
        let mut excluded = CodeSet::default();
        for item in array(compose, "exclude") {
            excluded = excluded.union(self.part(name, item)?);
        }
        Ok(included.minus(&excluded))
    }

    /// One `include` or `exclude`.
    fn part(&mut self, name: &str, item: &Value) -> Result<CodeSet, ValueSetError> {
        let not_exact = |reason: String| ValueSetError::NotExact {
            value_set: name.to_string(),
            reason,
        };
        let system = item.get("system").and_then(Value::as_str);
        if !array(item, "filter").is_empty() {
            return Err(not_exact(format!(
                "it selects codes of {} by a filter",
                system.unwrap_or("a code system")
            )));
        }
        let concepts = array(item, "concept");
        let mut set = match system {
            Some(system) if concepts.is_empty() => Some(CodeSet::whole(system)),
            Some(system) => {
                let mut set = CodeSet::default();
                for concept in concepts {
                    let Some(code) = concept.get("code").and_then(Value::as_str) else {
                        return Err(not_exact("a concept has no code".into()));
                    };
                    set.codes.insert((system.to_string(), code.to_string()));
                }
                Some(set)
            }
            None if !concepts.is_empty() => {
                return Err(not_exact("it lists concepts without a system".into()))
            }
            None => None,
        };
        for import in array(item, "valueSet") {
            let Some(canonical) = import.as_str() else {
                continue;
            };
            let Some(imported) = (self.resolve)(canonical) else {
                return Err(not_exact(format!(
                    "it imports ValueSet {canonical}, which is not known here"
                )));
            };
            let imported = self.expand(canonical, imported)?;
            set = Some(match set {
                Some(set) => set.intersect(&imported),
                None => imported,
            });
        }
        set.ok_or_else(|| {
            not_exact("an include or exclude names neither a system nor a ValueSet".into())
        })
    }
}

fn from_expansion(name: &str, expansion: &Value) -> Result<CodeSet, ValueSetError> {
    let not_exact = |reason: &str| ValueSetError::NotExact {
        value_set: name.to_string(),
        reason: reason.to_string(),
    };
    let paged = expansion
        .get("offset")
        .and_then(Value::as_u64)
        .is_some_and(|o| o > 0)
        || array(expansion, "parameter").iter().any(|p| {
            matches!(
                p.get("name").and_then(Value::as_str),
                Some("offset" | "count")
            )
        });
    if paged {
        return Err(not_exact("its expansion is one page of a larger one"));
    }
    let mut set = CodeSet::default();
    let mut entries = 0u64;
    let mut stack: Vec<&Value> = array(expansion, "contains").iter().collect();
    while let Some(entry) = stack.pop() {
        stack.extend(array(entry, "contains"));
        let Some(code) = entry.get("code").and_then(Value::as_str) else {
            continue;
        };
        entries += 1;
        if entry.get("abstract") == Some(&Value::Bool(true)) {
            continue;
        }
        let Some(system) = entry.get("system").and_then(Value::as_str) else {
            return Err(not_exact("its expansion has a code without a system"));
        };
        set.codes.insert((system.to_string(), code.to_string()));
    }
    if expansion
        .get("total")
        .and_then(Value::as_u64)
        .is_some_and(|total| total > entries)
    {
        return Err(not_exact("its expansion lists fewer codes than its total"));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const S: &str = "http://snomed.info/sct";
    const L: &str = "http://loinc.org";

    fn none(_: &str) -> Option<&'static Value> {
        None
    }

    fn pairs(set: &CodeSet) -> Vec<(&str, &str)> {
        set.codes()
            .iter()
            .map(|(s, c)| (s.as_str(), c.as_str()))
            .collect()
    }

    #[test]
    fn expansions_nested_without_abstract_entries() {
        let vs = json!({"resourceType": "ValueSet", "expansion": {"total": 3, "contains": [
            {"system": L, "code": "1", "contains": [{"system": L, "code": "2"}]},
            {"system": L, "code": "group", "abstract": true},
        ]}});
        let set = expand("vs", &vs, &none).unwrap();
        assert_eq!(pairs(&set), vec![(L, "1"), (L, "2")]);
        assert!(set.systems().is_empty());
        // One page of a larger expansion, or a code without a system: not exact.
        let paged = json!({"expansion": {"total": 10, "contains": [{"system": L, "code": "1"}]}});
        assert!(matches!(
            expand("vs", &paged, &none),
            Err(ValueSetError::NotExact { .. })
        ));
        let offset = json!({"expansion": {"offset": 5, "contains": []}});
        assert!(expand("vs", &offset, &none).is_err());
        let no_system = json!({"expansion": {"contains": [{"code": "1"}]}});
        assert!(expand("vs", &no_system, &none).is_err());
    }

    #[test]
    fn compose_includes_minus_excludes() {
        let vs = json!({"compose": {
            "include": [
                {"system": L, "concept": [{"code": "1"}, {"code": "2"}]},
                {"system": S},
            ],
            "exclude": [
                {"system": L, "concept": [{"code": "2"}]},
                {"system": S, "concept": [{"code": "99"}]},
            ],
        }});
        let set = expand("vs", &vs, &none).unwrap();
        assert_eq!(pairs(&set), vec![(L, "1")]);
        assert!(set.contains(S, "12345") && !set.contains(S, "99") && !set.contains(L, "2"));
        let filtered = json!({"compose": {"include": [
            {"system": S, "filter": [{"property": "concept", "op": "is-a", "value": "1"}]}
        ]}});
        let err = expand("vs", &filtered, &none).unwrap_err();
        assert!(err.to_string().contains("filter"), "{err}");
        assert!(expand("vs", &json!({"resourceType": "ValueSet"}), &none).is_err());
        let inactive = json!({"compose": {"inactive": false, "include": [{"system": S}]}});
        assert!(expand("vs", &inactive, &none).is_err());
    }

    #[test]
    fn imports_resolve_intersect_and_never_loop() {
        let a = json!({"url": "http://x/a", "compose": {"include": [{"system": L, "concept": [{"code": "1"}, {"code": "3"}]}]}});
        let b = json!({"url": "http://x/b", "compose": {"include": [{"system": L}], "exclude": [{"system": L, "concept": [{"code": "3"}]}]}});
        let both = json!({"compose": {"include": [{"valueSet": ["http://x/a", "http://x/b"]}]}});
        let resolve = |c: &str| match c {
            "http://x/a" => Some(&a),
            "http://x/b" => Some(&b),
            _ => None,
        };
        assert_eq!(imports(&both), vec!["http://x/a", "http://x/b"]);
        let set = expand("both", &both, &resolve).unwrap();
        assert_eq!(pairs(&set), vec![(L, "1")]);
        assert!(set.systems().is_empty());
        let missing = json!({"compose": {"include": [{"valueSet": ["http://x/c"]}]}});
        assert!(expand("m", &missing, &resolve).is_err());
        let selfish = json!({"compose": {"include": [{"valueSet": ["http://x/s"]}]}});
        let resolve = |c: &str| (c == "http://x/s").then_some(&selfish);
        assert_eq!(
            expand("http://x/s", &selfish, &resolve),
            Err(ValueSetError::Cycle("http://x/s".into()))
        );
    }

    #[test]
    fn set_algebra() {
        let whole = CodeSet::whole(S);
        let mut some = CodeSet::default();
        some.codes.insert((S.into(), "1".into()));
        some.codes.insert((L.into(), "2".into()));
        let without = whole.clone().minus(&some);
        assert!(!without.contains(S, "1") && without.contains(S, "5") && !without.contains(L, "2"));
        // Whole system minus (whole system but 7): just 7.
        let but_seven = whole.clone().minus(&{
            let mut s = CodeSet::default();
            s.codes.insert((S.into(), "7".into()));
            s
        });
        let seven = whole.clone().minus(&but_seven);
        assert_eq!(pairs(&seven), vec![(S, "7")]);
        assert!(seven.systems().is_empty());
        // Union gives back what one side left out.
        let back = without.clone().union(some.clone());
        assert_eq!(back.systems().get(S), Some(&BTreeSet::new()));
        assert_eq!(pairs(&back), vec![(L, "2")]);
        let meet = without.intersect(&some);
        assert!(meet.codes().is_empty() && meet.systems().is_empty());
    }
}
