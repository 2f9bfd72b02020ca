//! `MembershipStore`: the replica of who is in which container (CareTeam, Group,
//! PractitionerRole), as records reads it from clinical data, so consents naming a container
//! reach exactly its members.
//!
//! - A caller is its actor references (`Organization/o`, `Practitioner/p`) and every container
//!   it is in at the time asked, found upwards and transitively: a practitioner is in the
//!   PractitionerRoles naming it (only while acting for the role's organisation, when the role
//!   names one), a CareTeam holds its practitioners, roles, organisations (every caller of
//!   one) and nested CareTeams, a Group with `actual = true` its members and nested Groups.
//!   Cycles are harmless: each container is visited once.
//! - A container records has never seen, or whose members cannot be known (a Group with
//!   `actual = false`), is *unknown*; so is a known container that holds an unknown one (while
//!   that membership is in its period). A caller not known to be in a container named by a
//!   consent "might" be in it exactly when it is unknown: a deny then answers Undetermined
//!   (which the kernel treats as a deny) and a permit admits no one.
//! - A RelatedPerson is a person, not a container: it matches only a caller who is that
//!   RelatedPerson, and no caller is one today (roles practitioner, patient, service, admin,
//!   auditor), so consents naming one reach no caller, exactly.
//!
//! Until the snapshot is loaded ([`MembershipStore::mark_loaded`]) the kernel decides nothing
//! that depends on consents (503): without memberships a deny naming a care team would miss
//! its members.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, RwLock, RwLockReadGuard,
    },
};

use chrono::{DateTime, Utc};
use custodian_events::{
    consumer::{Handler, HandlerError},
    Member, MembershipChange, RelationshipEvent,
};
use custodian_policy::{is_container, Membership};
use custodian_telemetry::health::{ProbeFuture, ReadinessProbe};

struct Container {
    version: i64,
    known: bool,
    members: Vec<Member>,
}

#[derive(Default)]
struct State {
    /// Every container seen, by reference.
    containers: HashMap<String, Container>,
    /// Member reference -> the containers listing it.
    by_member: HashMap<String, HashSet<String>>,
}

impl State {
    fn unindex(&mut self, container: &str, members: &[Member]) {
        for m in members {
            if let Some(set) = self.by_member.get_mut(&m.member) {
                set.remove(container);
                if set.is_empty() {
                    self.by_member.remove(&m.member);
                }
            }
        }
    }

    fn index(&mut self, container: &str, members: &[Member]) {
        for m in members {
            self.by_member
                .entry(m.member.clone())
                .or_default()
                .insert(container.to_string());
        }
    }

    /// Whether `container`'s members are not all known at `at` (it, or a container nested in
    /// it during `at`, is unknown).
    fn unknown(&self, container: &str, at: DateTime<Utc>) -> bool {
        let mut visited: HashSet<&str> = HashSet::new();
        let mut stack = vec![container];
        while let Some(next) = stack.pop() {
            if !visited.insert(next) {
                continue;
            }
            match self.containers.get(next) {
                None => return true,
                Some(c) if !c.known => return true,
                Some(c) => stack.extend(
                    c.members
                        .iter()
                        .filter(|m| is_container(&m.member) && during(m, at))
                        .map(|m| m.member.as_str()),
                ),
            }
        }
        false
    }
}

/// Is the membership in force at `at`?
fn during(member: &Member, at: DateTime<Utc>) -> bool {
    member.start.is_none_or(|s| at >= s) && member.end.is_none_or(|e| at <= e)
}

/// The replica of every container's members. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct MembershipStore {
    state: Arc<RwLock<State>>,
    loaded: Arc<AtomicBool>,
}

impl MembershipStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a change unless the store holds a newer version of that container. Returns
    /// whether it was applied.
    pub fn apply(&self, change: MembershipChange) -> bool {
        let Ok(mut state) = self.state.write() else {
            return false;
        };
        if let Some(held) = state.containers.get(&change.container) {
            if held.version > change.version {
                return false;
            }
        }
        if let Some(old) = state.containers.remove(&change.container) {
            state.unindex(&change.container, &old.members);
        }
        // The members of an unknown container are not used: it is unknown as a whole.
        let members = if change.known {
            change.members
        } else {
            Vec::new()
        };
        state.index(&change.container, &members);
        state.containers.insert(
            change.container,
            Container {
                version: change.version,
                known: change.known,
                members,
            },
        );
        true
    }

    /// Applies a snapshot and marks the store loaded.
    pub fn load(&self, changes: Vec<MembershipChange>) {
        for change in changes {
            self.apply(change);
        }
        self.mark_loaded();
    }

    pub fn mark_loaded(&self) {
        self.loaded.store(true, Ordering::SeqCst);
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::SeqCst)
    }

    /// Whether every member of `container` is known now.
    pub fn is_known(&self, container: &str) -> bool {
        self.state
            .read()
            .map(|s| !s.unknown(container, Utc::now()))
            .unwrap_or(false)
    }

    /// How many containers the store holds.
    pub fn len(&self) -> usize {
        self.state.read().map(|s| s.containers.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The caller known by `base` (its organisation and practitioner references) at `at`: its
    /// references with every container it is in, and what is unknown. Holds a read lock while
    /// it lives: use it for one decision.
    pub fn view(&self, base: Vec<String>, at: DateTime<Utc>) -> MembershipView<'_> {
        let Ok(state) = self.state.read() else {
            // A poisoned replica knows nothing: containers are all uncertain.
            return MembershipView {
                state: None,
                actors: base,
                at,
            };
        };
        let organizations: Vec<&str> = base
            .iter()
            .filter(|r| r.starts_with("Organization/"))
            .map(String::as_str)
            .collect();
        let mut actors = base.clone();
        let mut seen: HashSet<String> = base.iter().cloned().collect();
        let mut queue = base.clone();
        while let Some(reference) = queue.pop() {
            let Some(containers) = state.by_member.get(&reference) else {
                continue;
            };
            for name in containers {
                let Some(container) = state.containers.get(name) else {
                    continue;
                };
                let member = container.known
                    && container.members.iter().any(|m| {
                        m.member == reference
                            && during(m, at)
                            && m.organization
                                .as_deref()
                                .is_none_or(|o| organizations.contains(&o))
                    });
                if member && seen.insert(name.clone()) {
                    actors.push(name.clone());
                    queue.push(name.clone());
                }
            }
        }
        MembershipView {
            state: Some(state),
            actors,
            at,
        }
    }
}

/// Applies the membership messages of the relationships stream (care facts and patient labels
/// are not held).
pub struct MembershipUpdater(pub MembershipStore);

impl Handler for MembershipUpdater {
    /// Membership changes only (care facts and labels are not the replica's).
    fn acts_on(&self, payload: &str) -> bool {
        #[derive(serde::Deserialize)]
        struct Kind<'a> {
            #[serde(borrow)]
            kind: std::borrow::Cow<'a, str>,
        }
        serde_json::from_str::<Kind>(payload).map_or(true, |k| k.kind == "membership")
    }

    async fn handle(&self, payload: &str) -> Result<(), HandlerError> {
        match serde_json::from_str::<RelationshipEvent>(payload)
            .map_err(|e| HandlerError::Reject(e.to_string()))?
        {
            RelationshipEvent::Membership(change) => {
                self.0.apply(change);
            }
            RelationshipEvent::Care(_) | RelationshipEvent::Labels(_) => {}
        }
        Ok(())
    }
}

/// `/readyz` fails until the memberships are loaded.
pub struct MembershipProbe(pub MembershipStore);

impl ReadinessProbe for MembershipProbe {
    fn name(&self) -> &'static str {
        "memberships"
    }
    fn check(&self) -> ProbeFuture {
        let loaded = self.0.is_loaded();
        Box::pin(async move {
            if loaded {
                Ok(())
            } else {
                Err("membership snapshot not loaded yet".into())
            }
        })
    }
}

/// One caller's memberships at one time, for one decision.
pub struct MembershipView<'a> {
    state: Option<RwLockReadGuard<'a, State>>,
    actors: Vec<String>,
    at: DateTime<Utc>,
}

impl MembershipView<'_> {
    /// The caller's references and every container it is known to be in.
    pub fn actors(&self) -> &[String] {
        &self.actors
    }
}

impl Membership for MembershipView<'_> {
    fn uncertain(&self, reference: &str) -> bool {
        is_container(reference)
            && !self.actors.iter().any(|a| a == reference)
            && self
                .state
                .as_ref()
                .is_none_or(|state| state.unknown(reference, self.at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replica_acts_on_membership_changes_only() {
        let updater = MembershipUpdater(MembershipStore::new());
        let membership = serde_json::to_string(&RelationshipEvent::Membership(MembershipChange {
            container: "CareTeam/ct".into(),
            version: 1,
            known: true,
            members: vec![],
        }))
        .unwrap();
        assert!(updater.acts_on(&membership));
        let care = serde_json::to_string(&RelationshipEvent::Care(custodian_events::CareChange {
            source: "Encounter/e1".into(),
            version: 1,
            facts: vec![],
        }))
        .unwrap();
        assert!(!updater.acts_on(&care));
        // What it cannot tell goes through the signature check and the handler, as before.
        assert!(updater.acts_on("not json"));
        assert!(updater.acts_on(r#"{"kind": 3}"#));
    }

    fn member(reference: &str) -> Member {
        Member {
            member: reference.into(),
            start: None,
            end: None,
            organization: None,
        }
    }

    fn change(
        container: &str,
        version: i64,
        known: bool,
        members: Vec<Member>,
    ) -> MembershipChange {
        MembershipChange {
            container: container.into(),
            version,
            known,
            members,
        }
    }

    fn base(refs: &[&str]) -> Vec<String> {
        refs.iter().map(|r| r.to_string()).collect()
    }

    fn containers_of(store: &MembershipStore, refs: &[&str]) -> Vec<String> {
        let view = store.view(base(refs), Utc::now());
        let mut out: Vec<String> = view
            .actors()
            .iter()
            .filter(|a| is_container(a))
            .cloned()
            .collect();
        out.sort();
        out
    }

    #[test]
    fn roles_need_the_organisation_and_teams_nest_without_looping() {
        let store = MembershipStore::new();
        store.apply(change(
            "PractitionerRole/r1",
            1,
            true,
            vec![Member {
                organization: Some("Organization/h2".into()),
                ..member("Practitioner/p1")
            }],
        ));
        store.apply(change(
            "CareTeam/inner",
            1,
            true,
            vec![member("PractitionerRole/r1")],
        ));
        store.apply(change(
            "CareTeam/outer",
            1,
            true,
            vec![member("CareTeam/inner"), member("CareTeam/loop")],
        ));
        store.apply(change(
            "CareTeam/loop",
            1,
            true,
            vec![member("CareTeam/outer")],
        ));
        store.apply(change(
            "CareTeam/org",
            1,
            true,
            vec![member("Organization/h1")],
        ));
        assert_eq!(
            containers_of(&store, &["Organization/h2", "Practitioner/p1"]),
            vec![
                "CareTeam/inner",
                "CareTeam/loop",
                "CareTeam/outer",
                "PractitionerRole/r1"
            ]
        );
        // The same practitioner acting for another organisation holds no role.
        assert_eq!(
            containers_of(&store, &["Organization/h1", "Practitioner/p1"]),
            vec!["CareTeam/org"]
        );
    }

    #[test]
    fn periods_versions_and_unknown_containers() {
        let store = MembershipStore::new();
        let past = Utc::now() - chrono::Duration::days(2);
        store.apply(change(
            "CareTeam/ct1",
            2,
            true,
            vec![Member {
                end: Some(past),
                ..member("Practitioner/p1")
            }],
        ));
        assert!(
            containers_of(&store, &["Practitioner/p1"]).is_empty(),
            "ended"
        );
        // A stale version changes nothing.
        assert!(!store.apply(change(
            "CareTeam/ct1",
            1,
            true,
            vec![member("Practitioner/p1")]
        )));
        assert!(containers_of(&store, &["Practitioner/p1"]).is_empty());
        store.apply(change(
            "Group/g1",
            1,
            false,
            vec![member("Practitioner/p1")],
        ));
        store.apply(change("CareTeam/ct2", 1, true, vec![member("Group/g1")]));
        let view = store.view(base(&["Practitioner/p2"]), Utc::now());
        assert!(view.uncertain("Group/g1"), "actual = false");
        assert!(view.uncertain("CareTeam/ct2"), "holds an unknown group");
        assert!(view.uncertain("CareTeam/never-seen"));
        assert!(!view.uncertain("CareTeam/ct1"), "known");
        assert!(
            !view.uncertain("RelatedPerson/rp1"),
            "a person, matched exactly"
        );
        assert!(!view.actors().contains(&"Group/g1".to_string()));
        drop(view);
        assert!(store.is_known("CareTeam/ct1") && !store.is_known("CareTeam/ct2"));
    }
}
