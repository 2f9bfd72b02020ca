//! Per-actor and per-group (role, department) baselines: hours of work, volume per hour,
//! patients per hour, resource types, actions, purposes, sources (address and user agent) and
//! break-glass habits. Each answers "how unusual is this event for this actor / for this role"
//! as a value in `[0, 1]`, and says nothing (0) until it has seen enough to judge.

use custodian_events::AccessAction;

use super::cache::KeyMap;

pub const DAY: i64 = 86_400;
pub const HOUR: i64 = 3_600;
/// [`super::action_index`] of an update and of a delete: amendments.
const AMEND_UPDATE: usize = super::action_index(AccessAction::Update);
const AMEND_DELETE: usize = super::action_index(AccessAction::Delete);

/// An actor's baselines are judged only after this much history (event time) and events.
pub const ACTOR_MATURE_AGE: i64 = 2 * DAY;
pub const ACTOR_MATURE_EVENTS: u32 = 60;
/// A young account's own sources judge its sign-ins from this much history and this many
/// events ([`ActorSignals::sign_in_source`]); what it used in its first this-much is its normal.
pub const YOUNG_SOURCES_AGE: i64 = 12 * HOUR;
pub const YOUNG_SOURCES_EVENTS: u32 = 20;
/// How much of the busiest hour remains after each further active hour (about a day's).
pub const PEAK_FADE: f32 = 0.97;
/// The share of the (faded) busiest hour an hour may reach as usual.
pub const PEAK_SHARE: f32 = 0.4;
/// How much of an hour of the day's busiest remains each time that hour of the day is active
/// again (a daily job's hour is usual for about a week after it last ran clean).
pub const DAILY_PEAK_FADE: f32 = 0.9;
/// The share of the hour of the day's (faded) busiest an hour may reach as usual.
pub const DAILY_PEAK_SHARE: f32 = 0.5;
/// The most of its usual hour an actor's suspicious hour teaches its mean volume and patients.
pub const SUSPICIOUS_HOUR_LEARNED: f32 = 3.0;

/// Members of a department remembered as at work ([`Presence`]).
pub const PRESENCE_MEMBERS: usize = 64;
/// The most an actor's usual hour is stretched to cover absent colleagues.
pub const MAX_COVER: f64 = 4.0;
/// How fast an hour of the day's usual number of members at work follows each day's.
pub const PRESENCE_ALPHA: f32 = 0.2;

/// Who of a department is at work and how much it does: its members seen in the last hour,
/// and per hour of the day how many usually are and how many new patients they usually see
/// together. The one pharmacist of a weekend morning reviews every ward's patients: far more
/// than her own usual hour, no more than her department's.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Presence {
    /// (actor key, last event time), at most [`PRESENCE_MEMBERS`].
    recent: Vec<(u64, i64)>,
    /// Per hour of the day, how many members usually work in it (EWMA over the days, α
    /// [`PRESENCE_ALPHA`]).
    usual: [f32; 24],
    /// Per hour of the day, the most new patients its members saw in one such hour (summed
    /// over members; hours with suspicious events do not count), fading likewise.
    patients: [f32; 24],
    /// The hour (Unix hours) being counted, its members' new patients so far, and whether any
    /// of its events was suspicious.
    slot: i64,
    slot_patients: u32,
    slot_suspicious: bool,
}

/// What a department's presence says of one hour for one member ([`Presence::cover`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cover {
    /// How far a member's usual hour stretches, in `[1, MAX_COVER]`: the members usually at
    /// work at this hour of the day over those at work now, less 2.
    pub factor: f64,
    /// The most new patients the department usually sees in this hour of the day.
    pub department_usual: f64,
    /// New patients its members saw so far this hour (the member's own included).
    pub department_now: f64,
}

impl Cover {
    /// No department to cover for.
    pub const NONE: Self = Self {
        factor: 1.0,
        department_usual: 0.0,
        department_now: 0.0,
    };
}

impl Presence {
    /// Members at work at `t` (within the last hour), counting `actor` whether seen or not.
    fn at_work(&self, actor: u64, t: i64) -> usize {
        1 + self
            .recent
            .iter()
            .filter(|(a, last)| *a != actor && t - last < HOUR)
            .count()
    }

    /// How far `actor`'s usual hour may stretch at `t`, and within what: only a department
    /// down to a third of its usual members or less is covering (shift changes and quiet
    /// evenings vary the count by half and more).
    pub fn cover(&self, actor: u64, t: i64) -> Cover {
        let h = hour_of_day(t);
        let thin = f64::from(self.usual[h]) / self.at_work(actor, t) as f64;
        Cover {
            factor: (thin - 2.0).clamp(1.0, MAX_COVER),
            department_usual: f64::from(self.patients[h]),
            department_now: if t.div_euclid(HOUR) == self.slot {
                f64::from(self.slot_patients)
            } else {
                0.0
            },
        }
    }

    /// Learns that `actor` is at work at `t`, seeing a patient new to her this hour or not.
    pub fn see(&mut self, actor: u64, k: &EventKeys, suspicious: bool) {
        let t = k.time;
        let slot = t.div_euclid(HOUR);
        if slot > self.slot {
            let closed = hour_of_day(self.slot * HOUR);
            if !self.slot_suspicious {
                self.patients[closed] = self.patients[closed].max(self.slot_patients as f32);
            }
            let start = self.slot * HOUR;
            let worked = self
                .recent
                .iter()
                .filter(|(_, last)| *last >= start)
                .count() as f32;
            let usual = &mut self.usual[closed];
            *usual = if *usual == 0.0 {
                worked
            } else {
                (1.0 - PRESENCE_ALPHA) * *usual + PRESENCE_ALPHA * worked
            };
            self.patients[hour_of_day(t)] *= DAILY_PEAK_FADE;
            self.slot = slot;
            self.slot_patients = 0;
            self.slot_suspicious = false;
        }
        if slot == self.slot {
            self.slot_suspicious |= suspicious;
            if k.reading && k.new_patient_this_hour {
                self.slot_patients += 1;
            }
        }
        if let Some(seen) = self.recent.iter_mut().find(|(a, _)| *a == actor) {
            seen.1 = seen.1.max(t);
        } else if self.recent.len() < PRESENCE_MEMBERS {
            self.recent.push((actor, t));
        } else if let Some(oldest) = self.recent.iter_mut().min_by_key(|(_, last)| *last) {
            *oldest = (actor, t);
        }
    }
}

/// A source (address or user agent) an actor used: when first and last, how often.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct Seen {
    key: u64,
    prefix: u64,
    first: i64,
    last: i64,
    count: u32,
}

/// Events after which an account with one address and one agent is a machine's
/// ([`ActorBaseline::fixed_source`]).
pub const FIXED_SOURCE_EVENTS: u32 = 300;
/// ... and over this long (a nightly job's first nights are not yet all of its work).
pub const FIXED_SOURCE_AGE: i64 = 3 * DAY;
/// The share of its events a fixed-source account made from its one address and agent.
pub const FIXED_SOURCE_SHARE: f64 = 0.9;
/// The share of a fixed-source account's events a resource type must hold to be its work.
pub const OWN_TYPE_SHARE: f64 = 0.01;

/// Events from an address over a day or more that make it one of the actor's own places.
pub const ESTABLISHED_EVENTS: u32 = 20;

/// Events before a group's hours of work say which hours it rarely works.
pub const GROUP_HOURS_KNOWN: f32 = 500.0;

/// How new an upgraded client (a known kind, a new version) is at an address the actor uses.
pub const UPGRADE_NOVELTY: f64 = 0.1;
/// How much of an address's novelty counts when the actor's department uses it every day.
pub const GROUP_ADDRESS_NOVELTY: f64 = 0.3;
/// Unsuspicious events of a group from an address that make it one of the group's.
pub const GROUP_ADDRESS_SEEN: u32 = 20;
/// Distinct addresses of one /24 among a group's recent everyday ones that make the /24 one of
/// its networks (a VPN or Wi-Fi pool hands out a new address each session; a ward has its
/// workstations).
pub const GROUP_NETWORK_ADDRESSES: usize = 8;

/// A small set of sources, least recently used out when full.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Sources<const N: usize> {
    seen: Vec<Seen>,
}

impl<const N: usize> Sources<N> {
    /// How new `key` is for an actor whose history starts at `since`: 1 for never seen, fading
    /// to 0 over the day after it first appeared; 0 for sources learned in the actor's first
    /// `normal` seconds (that is the actor's normal). A new address in a known prefix counts
    /// half.
    fn novelty(&self, key: u64, prefix: u64, t: i64, since: i64, normal: i64) -> f64 {
        match self.seen.iter().find(|s| s.key == key) {
            Some(s) if s.first <= since + normal => 0.0,
            Some(s) => clamp01(1.0 - (t - s.first) as f64 / DAY as f64),
            None if prefix != 0 && self.seen.iter().any(|s| s.prefix == prefix) => 0.5,
            None => 1.0,
        }
    }

    /// Whether a source of this prefix (an address's network, an agent's kind) was seen.
    fn knows_prefix(&self, prefix: u64) -> bool {
        prefix != 0 && self.seen.iter().any(|s| s.prefix == prefix)
    }

    /// Whether `key` is an everyday source of a group (seen in at least [`GROUP_ADDRESS_SEEN`]
    /// unsuspicious events).
    fn everyday(&self, key: u64) -> bool {
        key != 0
            && self
                .seen
                .iter()
                .any(|s| s.key == key && s.count >= GROUP_ADDRESS_SEEN)
    }

    /// Events from the most used source.
    fn most_used(&self) -> u32 {
        self.seen.iter().map(|s| s.count).max().unwrap_or(0)
    }

    /// Whether `key` is the most used source.
    fn is_most_used(&self, key: u64) -> bool {
        let most = self.most_used();
        most > 0 && self.seen.iter().any(|s| s.key == key && s.count == most)
    }

    fn record(&mut self, key: u64, prefix: u64, t: i64) {
        if let Some(s) = self.seen.iter_mut().find(|s| s.key == key) {
            s.last = s.last.max(t);
            s.count = s.count.saturating_add(1);
            return;
        }
        let fresh = Seen {
            key,
            prefix,
            first: t,
            last: t,
            count: 1,
        };
        if self.seen.len() < N {
            self.seen.push(fresh);
        } else if let Some(stalest) = self.seen.iter_mut().min_by_key(|s| s.last) {
            *stalest = fresh;
        }
    }
}

/// Small counted set (resource types an actor reads), least used out when full.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Counts<const N: usize> {
    items: Vec<(u64, u32)>,
}

impl<const N: usize> Counts<N> {
    fn get(&self, key: u64) -> u32 {
        self.items
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(0, |(_, n)| *n)
    }

    fn add(&mut self, key: u64) {
        if let Some(item) = self.items.iter_mut().find(|(k, _)| *k == key) {
            item.1 = item.1.saturating_add(1);
        } else if self.items.len() < N {
            self.items.push((key, 1));
        } else if let Some(least) = self.items.iter_mut().min_by_key(|(_, n)| *n) {
            *least = (key, 1);
        }
    }
}

/// What one event brings to the baselines.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventKeys {
    pub time: i64,
    pub hour: usize,
    pub ip: u64,
    /// The address's /16 (an actor's own networks).
    pub ip_prefix: u64,
    /// The address's /24 (a group's networks: [`GroupBaseline::knows_network`]).
    pub ip_network: u64,
    pub agent: u64,
    /// The agent without its version numbers ([`super::places::client_kind`]).
    pub agent_kind: u64,
    pub resource: u64,
    /// Index of the action (see [`super::action_index`]).
    pub action: usize,
    pub purpose: u64,
    pub break_glass: bool,
    pub export: bool,
    pub research: bool,
    pub count: u32,
    /// The actor, as a group knows its members (a truncated hash; 0 for none).
    pub member: u32,
    /// The event opens a patient not seen by this actor in the current hour.
    pub new_patient_this_hour: bool,
    /// The event reads data (read, search, export, break-glass): what volume counts. Writes
    /// and logins are not reading (a lab system's batch of results is not curiosity).
    pub reading: bool,
}

/// One actor's habits.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ActorBaseline {
    pub first: i64,
    pub events: u32,
    hours: [f32; 24],
    hour_total: f32,
    /// The hour (Unix hours) being counted, its events and new patients so far.
    slot: i64,
    slot_events: u32,
    slot_patients: u32,
    /// EWMA of events and of distinct patients per active hour; hours folded in.
    volume: f32,
    patients: f32,
    closed_hours: u32,
    /// The busiest hour's new patients, fading by [`PEAK_FADE`] per active hour: an actor
    /// whose day starts with a ward list has such hours daily, however small the mean.
    #[serde(default)]
    patients_peak: f32,
    /// Per hour of the day (UTC), its busiest new patients, fading by [`DAILY_PEAK_FADE`] each
    /// time that hour is active: a service's daily batch (a pharmacy's morning review) is that
    /// hour's usual, however long the account runs round the clock (the busiest hour of all
    /// fades within a day of active hours).
    #[serde(default)]
    daily_peaks: [f32; 24],
    /// Whether the hour being counted had suspicious events (then it does not become a peak:
    /// an exfiltration must not make the next one look usual).
    #[serde(default)]
    slot_suspicious: bool,
    types: Counts<16>,
    /// Purposes of use the actor declares ([`ActorBaseline::knows_purpose`]).
    #[serde(default)]
    purposes: Counts<4>,
    ips: Sources<8>,
    agents: Sources<4>,
    pub break_glass: u32,
    pub exports: u32,
    /// Whole records pulled in one request ([`super::WHOLE_RECORD`]) that raised no suspicion.
    #[serde(default)]
    pub whole_records: u32,
    research: u32,
    /// EWMA of log10(result count) of reads and searches.
    log_count: f32,
    /// The largest clean responses per kind of data at the account's own place
    /// ([`ActorBaseline::scheduled`]).
    #[serde(default)]
    largest: Vec<Largest>,
}

/// The largest response of one kind of data an account had at its own place that raised no
/// suspicion: log10 of its count, and when.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Largest {
    resource: u64,
    log_count: f32,
    time: i64,
}

/// Events a job's account needs before its place is known as its own (a nightly extract runs
/// a dozen a night).
pub const SCHEDULE_EVENTS: u32 = 20;
/// Kinds of data whose largest response an account remembers (a warehouse's full export is a
/// dozen).
const LARGEST_KINDS: usize = 16;
/// How much of a remembered largest response remains each day (a weekly full export is still
/// usual a week on: 0.97^7 ≈ 0.81 of its count).
pub const LARGEST_FADE: f64 = 0.97;

/// What the actor baseline says about one event (each in `[0, 1]`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ActorSignals {
    /// Hours the actor (or, while the actor is new, the role) rarely works.
    pub odd_hour: f64,
    /// Events this hour against the usual per active hour.
    pub volume: f64,
    /// New patients this hour against the usual per active hour.
    pub patients: f64,
    /// New address and/or user agent.
    pub new_source: f64,
    pub new_address: bool,
    pub new_agent: bool,
    /// The address's and the agent's novelty, each in `[0, 1]`.
    pub address: f64,
    pub agent: f64,
    /// While the actor is not mature, its address's and agent's novelty against what it used so
    /// far (once [`ActorBaseline::knows_own_sources`]): for its sign-ins only.
    pub young_address: f64,
    pub young_agent: f64,
    /// A result count far above what the actor usually gets.
    pub large_result: f64,
    pub mature: bool,
    pub volume_now: u32,
    pub patients_now: u32,
}

impl ActorSignals {
    /// The address is new to the actor but an everyday one of the actor's department (a
    /// partner's second egress address, another ward's workstations): it counts for less.
    pub fn address_known_to_group(&mut self) {
        self.address *= GROUP_ADDRESS_NOVELTY;
        self.young_address *= GROUP_ADDRESS_NOVELTY;
        self.new_address = self.address >= 0.5;
        self.new_source = combined_novelty(self.address, self.agent);
    }

    /// The user agent is new to the actor but an everyday one of the actor's department (its
    /// workstations' browser after an upgrade): it counts for less.
    pub fn agent_known_to_group(&mut self) {
        self.agent *= GROUP_ADDRESS_NOVELTY;
        self.young_agent *= GROUP_ADDRESS_NOVELTY;
        self.new_agent = self.agent >= 0.5;
        self.new_source = combined_novelty(self.address, self.agent);
    }

    /// The address's novelty and the source's (address and agent) for judging a sign-in: the
    /// mature actor's, or a young one's against the places of its first day (a password stolen
    /// on its second day signs in from a phone at home at night like any other). Only sign-ins:
    /// a young account's first sessions from a new workstation are no one's hands but hers.
    pub fn sign_in_source(&self) -> (f64, f64) {
        if self.mature {
            (self.address, self.new_source)
        } else {
            (
                self.young_address,
                combined_novelty(self.young_address, self.young_agent),
            )
        }
    }
}

/// A source's novelty from its address's and its agent's: half each.
fn combined_novelty(address: f64, agent: f64) -> f64 {
    0.5 * address.max(agent) + 0.5 * address.min(agent)
}

/// The hour of the day (UTC) of a time in Unix seconds.
fn hour_of_day(t: i64) -> usize {
    usize::try_from(t.div_euclid(HOUR).rem_euclid(24)).unwrap_or(0)
}

impl ActorBaseline {
    pub fn new(first: i64) -> Self {
        Self {
            first,
            slot: first.div_euclid(HOUR),
            ..Self::default()
        }
    }

    pub fn mature(&self, t: i64) -> bool {
        t - self.first >= ACTOR_MATURE_AGE && self.events >= ACTOR_MATURE_EVENTS
    }

    /// Hours since the actor's last event before `t` (its first, for a new one).
    pub fn silent_hours(&self, t: i64) -> i64 {
        t.div_euclid(HOUR) - self.slot
    }

    /// Whether a young account has worked long enough, on an earlier day, for a source it
    /// never used to say something (a stolen password on its second day).
    fn knows_own_sources(&self, t: i64) -> bool {
        t - self.first >= YOUNG_SOURCES_AGE && self.events >= YOUNG_SOURCES_EVENTS
    }

    /// Whether address `ip` is new to the actor (never used, or first used in the last hour),
    /// whatever her age: her first days too.
    pub fn fresh_address(&self, ip: u64, t: i64) -> bool {
        ip != 0
            && self
                .ips
                .seen
                .iter()
                .find(|s| s.key == ip)
                .is_none_or(|s| t - s.first < HOUR)
    }

    /// When the actor first used `ip`, if it is among the addresses remembered.
    pub fn address_first_used(&self, ip: u64) -> Option<i64> {
        self.ips.seen.iter().find(|s| s.key == ip).map(|s| s.first)
    }

    /// Whether `ip` is one of the actor's own places: first used a day or more before `t`, in
    /// [`ESTABLISHED_EVENTS`] events at least.
    pub fn established_address(&self, ip: u64, t: i64) -> bool {
        ip != 0
            && self
                .ips
                .seen
                .iter()
                .any(|s| s.key == ip && t - s.first >= DAY && s.count >= ESTABLISHED_EVENTS)
    }

    /// Whether the actor read this resource type before (at least twice).
    pub fn knows_type(&self, resource: u64) -> bool {
        self.types.get(resource) >= 2
    }

    /// Whether the account always ran from one place with one client, as an interface engine
    /// or a reporting job does and no person does (staff move between workstations, phones and
    /// home, and their browsers update): [`FIXED_SOURCE_EVENTS`] events or more over
    /// [`FIXED_SOURCE_AGE`], nearly all
    /// ([`FIXED_SOURCE_SHARE`]) from one address and one user agent.
    pub fn fixed_source(&self, t: i64) -> bool {
        self.one_place(FIXED_SOURCE_EVENTS, t)
    }

    /// `events` or more over [`FIXED_SOURCE_AGE`], nearly all ([`FIXED_SOURCE_SHARE`]) from one
    /// address and one user agent.
    fn one_place(&self, events: u32, t: i64) -> bool {
        let most = |n: u32| f64::from(n) >= FIXED_SOURCE_SHARE * f64::from(self.events);
        self.events >= events
            && t - self.first >= FIXED_SOURCE_AGE
            && most(self.ips.most_used())
            && most(self.agents.most_used())
    }

    /// Whether the resource type is part of the actor's own work: at least
    /// [`OWN_TYPE_SHARE`] of its events (a handful of reads by someone at the account's
    /// keyboard are not).
    pub fn works_with_type(&self, resource: u64) -> bool {
        f64::from(self.types.get(resource)) >= OWN_TYPE_SHARE * f64::from(self.events)
    }

    /// Whether the actor declared this purpose of use before (at least twice).
    pub fn knows_purpose(&self, purpose: u64) -> bool {
        self.purposes.get(purpose) >= 2
    }

    /// Share of the actor's events under purpose HRESCH.
    pub fn research_share(&self) -> f64 {
        f64::from(self.research) / f64::from(self.events.max(1))
    }

    /// `cover` stretches the usual hour's volume and patients ([`Presence::cover`]).
    pub fn signals(
        &self,
        k: &EventKeys,
        group_hours: &[f32; 24],
        group_total: f32,
        cover: Cover,
    ) -> ActorSignals {
        let mature = self.mature(k.time);
        let odd_hour = if mature && self.hour_total >= 50.0 {
            hour_rarity(&self.hours, self.hour_total, k.hour)
        } else if group_total >= GROUP_HOURS_KNOWN {
            // Not yet the actor's own habits: the role's, counted for less.
            0.6 * hour_rarity(group_hours, group_total, k.hour)
        } else {
            0.0
        };
        let novelty = |normal: i64| {
            let address = if k.ip == 0 {
                0.0
            } else {
                self.ips
                    .novelty(k.ip, k.ip_prefix, k.time, self.first, normal)
            };
            let agent = if k.agent == 0 {
                0.0
            } else {
                self.agents.novelty(k.agent, 0, k.time, self.first, normal)
            };
            // A new version of a kind of client the actor uses, at an address she uses: her
            // browser upgraded, not another device (from elsewhere, the version counts: a
            // thief's browser is seldom hers to the digit).
            let upgraded = address == 0.0 && self.agents.knows_prefix(k.agent_kind);
            (
                address,
                if upgraded {
                    agent.min(UPGRADE_NOVELTY)
                } else {
                    agent
                },
            )
        };
        let (address, agent) = if mature {
            novelty(ACTOR_MATURE_AGE)
        } else {
            (0.0, 0.0)
        };
        let (young_address, young_agent) = if !mature && self.knows_own_sources(k.time) {
            novelty(YOUNG_SOURCES_AGE)
        } else {
            (0.0, 0.0)
        };
        let new_source = combined_novelty(address, agent);
        // Covering for absent colleagues, at her usual hours from her usual places (a session
        // from home in the evening covers for nobody), and only for what the department usually
        // sees in this hour beyond what the others saw so far.
        let stretch = 1.0 + (cover.factor.max(1.0) - 1.0) * (1.0 - odd_hour) * (1.0 - new_source);
        let (volume_now, patients_now) = if !k.reading {
            (0, 0)
        } else if k.time.div_euclid(HOUR) == self.slot {
            (
                self.slot_events + 1,
                self.slot_patients + u32::from(k.new_patient_this_hour),
            )
        } else {
            (1, u32::from(k.new_patient_this_hour))
        };
        // Volume needs only enough active hours, not the two days the habits of hours and
        // sources need: an insider copying records on his second day is still copying.
        let (volume, patients) =
            if k.reading && self.closed_hours >= 8 && self.events >= ACTOR_MATURE_EVENTS {
                let own = f64::from(
                    self.patients
                        .max(PEAK_SHARE * self.patients_peak)
                        .max(DAILY_PEAK_SHARE * self.daily_peaks[hour_of_day(k.time)]),
                )
                .max(6.0);
                // The department's count so far has the member's earlier patients, not this one.
                let mine_before =
                    f64::from(patients_now.saturating_sub(u32::from(k.new_patient_this_hour)));
                let others = (cover.department_now - mine_before).max(0.0);
                let room = (cover.department_usual - others).max(0.0);
                let usual = own.max((own * stretch).min(room));
                let stretch = usual / own;
                (
                    clamp01(
                        (f64::from(volume_now) / (f64::from(self.volume).max(20.0) * stretch)
                            - 2.5)
                            / 5.0,
                    ),
                    clamp01((f64::from(patients_now) / usual - 2.0) / 4.0),
                )
            } else {
                (0.0, 0.0)
            };
        let large_result = if k.count >= 50 {
            let usual = f64::from(self.log_count)
                .max(20f64.log10())
                .max(self.scheduled(k));
            clamp01(f64::from(k.count).log10() - usual - 0.3)
        } else {
            0.0
        };
        ActorSignals {
            odd_hour,
            volume,
            patients,
            new_source,
            new_address: address >= 0.5,
            new_agent: agent >= 0.5,
            address,
            agent,
            young_address,
            young_agent,
            large_result,
            mature,
            volume_now,
            patients_now,
        }
    }

    /// Learns one event; `suspicious` when it alerted or came during an open incident.
    pub fn record(&mut self, k: &EventKeys, suspicious: bool) {
        self.events = self.events.saturating_add(1);
        self.hours[k.hour] += 1.0;
        self.hour_total += 1.0;
        if self.hour_total > 4096.0 {
            // Halving keeps the histogram bounded and lets habits change (shift rota).
            for h in &mut self.hours {
                *h /= 2.0;
            }
            self.hour_total /= 2.0;
        }
        let slot = k.time.div_euclid(HOUR);
        if slot > self.slot {
            let alpha = if self.closed_hours < 20 { 0.2 } else { 0.05 };
            self.patients_peak *= PEAK_FADE;
            // The mean learns suspicious hours too (a false alert must not recur every busy
            // hour), but at most a few usual hours' worth; the peak does not learn them at all
            // (an exfiltration of a thousand records must not make the next hundred usual).
            let (mut events, mut patients) = (self.slot_events as f32, self.slot_patients as f32);
            if self.slot_suspicious {
                let usual = self.patients.max(PEAK_SHARE * self.patients_peak).max(6.0);
                events = events.min(SUSPICIOUS_HOUR_LEARNED * self.volume.max(20.0));
                patients = patients.min(SUSPICIOUS_HOUR_LEARNED * usual);
            }
            self.volume = (1.0 - alpha) * self.volume + alpha * events;
            self.patients = (1.0 - alpha) * self.patients + alpha * patients;
            let daily = &mut self.daily_peaks[hour_of_day(self.slot * HOUR)];
            *daily *= DAILY_PEAK_FADE;
            if !self.slot_suspicious {
                self.patients_peak = self.patients_peak.max(self.slot_patients as f32);
                *daily = daily.max(self.slot_patients as f32);
            }
            self.slot_suspicious = false;
            self.closed_hours = self.closed_hours.saturating_add(1);
            self.slot = slot;
            self.slot_events = 0;
            self.slot_patients = 0;
        }
        if slot == self.slot && k.reading {
            self.slot_suspicious |= suspicious;
            self.slot_events += 1;
            self.slot_patients += u32::from(k.new_patient_this_hour);
        }
        if k.resource != 0 {
            self.types.add(k.resource);
        }
        if k.purpose != 0 {
            self.purposes.add(k.purpose);
        }
        if k.ip != 0 {
            self.ips.record(k.ip, k.ip_prefix, k.time);
        }
        if k.agent != 0 {
            self.agents.record(k.agent, k.agent_kind, k.time);
        }
        self.break_glass += u32::from(k.break_glass);
        self.exports += u32::from(k.export);
        self.research += u32::from(k.research);
        if k.count > 1 {
            let l = f64::from(k.count).log10() as f32;
            self.log_count = 0.95 * self.log_count + 0.05 * l;
        }
        if !suspicious && k.count >= 50 && k.resource != 0 {
            self.learn_largest(k);
        }
    }

    /// For an account at its own place (90% of its events, [`SCHEDULE_EVENTS`] or more over
    /// [`FIXED_SOURCE_AGE`], from one address with one client, and this event from them: a
    /// job's account, which [`ActorBaseline::fixed_source`] would count only from 300 events;
    /// a person who never left one desk too), log10 of the largest response of this kind of
    /// data it had there without suspicion, fading by [`LARGEST_FADE`] a day; 0 for anyone
    /// else or anywhere else. A scheduled job repeats its sizes: a data
    /// warehouse's weekly full export (16,000 conditions, 240,000 observations from its own
    /// server at two on Sunday) is what it was the week before. Measured on the regional
    /// networks written apart from the model: the second week's export alerted for its size
    /// in four of five logs (the fifth's first was before its stream began), 12 false alerts
    /// each; the fifteen logs 7,245 → 7,190, two attack events more, no incident lost; our 51
    /// unchanged (its jobs run daily). From anywhere else the same export is judged as any
    /// large response (a stolen service credential: the networks' warehouse exfiltrations
    /// come from another address with another client).
    pub fn scheduled(&self, k: &EventKeys) -> f64 {
        if self.at_own_place(k) {
            self.largest_here(k)
        } else {
            0.0
        }
    }

    /// [`ActorBaseline::scheduled`] for an event already known to be at the account's own place.
    fn largest_here(&self, k: &EventKeys) -> f64 {
        self.largest
            .iter()
            .find(|l| l.resource == k.resource)
            .map_or(0.0, |l| {
                let days = (k.time - l.time).max(0) as f64 / DAY as f64;
                f64::from(l.log_count) + days * LARGEST_FADE.log10()
            })
    }

    fn at_own_place(&self, k: &EventKeys) -> bool {
        k.ip != 0
            && k.agent != 0
            && self.one_place(SCHEDULE_EVENTS, k.time)
            && self.ips.is_most_used(k.ip)
            && self.agents.is_most_used(k.agent)
    }

    fn learn_largest(&mut self, k: &EventKeys) {
        let log_count = f64::from(k.count).log10();
        if !self.at_own_place(k) || self.largest_here(k) >= log_count {
            return;
        }
        let entry = Largest {
            resource: k.resource,
            log_count: log_count as f32,
            time: k.time,
        };
        if let Some(l) = self.largest.iter_mut().find(|l| l.resource == k.resource) {
            *l = entry;
        } else if self.largest.len() < LARGEST_KINDS {
            self.largest.push(entry);
        } else if let Some(oldest) = self.largest.iter_mut().min_by_key(|l| l.time) {
            *oldest = entry;
        }
    }
}

/// How much of the longest list remains each day (a weekly report's page is still usual a
/// month on; a list made once a quarter is forgotten).
pub const LIST_FADE: f64 = 0.97;

/// The longest list (patients in one search request) an actor or a department made that
/// raised no suspicion, fading by [`LIST_FADE`] a day. A ward list is ten or twenty patients,
/// a coder's page a hundred, a research cohort more: what one of them lists is no measure of
/// another, and a clinician's page of a hundred strangers is not her work.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LongestList {
    patients: f32,
    /// The day (event time) `patients` was last set.
    day: i64,
}

impl LongestList {
    /// The longest list, faded to `t`.
    pub fn usual(&self, t: i64) -> f64 {
        let days = (t.div_euclid(DAY) - self.day).clamp(0, 3_650);
        f64::from(self.patients) * LIST_FADE.powi(days as i32)
    }

    pub fn learn(&mut self, patients: u32, t: i64) {
        let longest = self.usual(t).max(f64::from(patients));
        self.patients = longest as f32;
        self.day = t.div_euclid(DAY);
    }
}

/// The longest counted list (a search that names no patient and reports how many it found)
/// an actor or a department made without suspicion on earlier days, fading by [`LIST_FADE`]
/// a day. Today's lists count from tomorrow: a wide name search repeated all afternoon would
/// otherwise make itself usual by its second page (a call centre's searches for one caller
/// find a handful; a district nurse's caseload search, every day, a hundred).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CountedLists {
    /// The longest of earlier days, as of `day`.
    earlier: f32,
    /// The longest of `day`.
    today: f32,
    day: i64,
}

impl CountedLists {
    /// The longest counted list of the days before `t`'s, faded to `t`.
    pub fn usual(&self, t: i64) -> f64 {
        let days = (t.div_euclid(DAY) - self.day).clamp(0, 3_650);
        if days == 0 {
            return f64::from(self.earlier);
        }
        let faded = |patients: f32, days: i64| f64::from(patients) * LIST_FADE.powi(days as i32);
        faded(self.earlier, days).max(faded(self.today, days - 1))
    }

    pub fn learn(&mut self, patients: u32, t: i64) {
        let day = t.div_euclid(DAY);
        if day > self.day {
            self.earlier = self.usual(t) as f32;
            self.today = 0.0;
            self.day = day;
        }
        self.today = self.today.max(patients as f32);
    }
}

/// The patients an actor opened for the first time in the clock hour being counted (and the
/// hour before), and whether anything in that hour was suspicious (then it is not learned as
/// a busy hour).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FirstLooks {
    hour: i64,
    count: u32,
    previous: u32,
    suspicious: bool,
}

impl FirstLooks {
    /// Counts an event at `t`, a first look if `first`; returns the first looks of the last
    /// 60 minutes (the hour before counted for the part still within them) and, when `t`
    /// begins a new hour, the previous one's if it was clean.
    pub fn see(&mut self, t: i64, first: bool) -> (f64, Option<u32>) {
        let hour = t.div_euclid(HOUR);
        let mut finished = None;
        if hour > self.hour {
            if !self.suspicious && self.count > 0 {
                finished = Some(self.count);
            }
            let previous = if hour == self.hour + 1 { self.count } else { 0 };
            *self = Self {
                hour,
                previous,
                ..Self::default()
            };
        }
        if first && hour == self.hour {
            self.count = self.count.saturating_add(1);
        }
        let left = 1.0 - (t.rem_euclid(HOUR) as f64) / (HOUR as f64);
        (
            f64::from(self.count) + f64::from(self.previous) * left,
            finished,
        )
    }

    /// The hour being counted had a suspicious event.
    pub fn taint(&mut self) {
        self.suspicious = true;
    }
}

/// The most search requests an actor made within 10 minutes in the clock hour being counted,
/// and whether anything in that hour was suspicious (then it is not learned as a busy hour).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SearchPeaks {
    hour: i64,
    most: u32,
    suspicious: bool,
}

impl SearchPeaks {
    /// Counts `searches` in the 10 minutes up to `t`; when `t` begins a new hour, returns the
    /// previous one's most if it was clean.
    pub fn see(&mut self, t: i64, searches: u32) -> Option<u32> {
        let hour = t.div_euclid(HOUR);
        let mut finished = None;
        if hour > self.hour {
            if !self.suspicious && self.most > 0 {
                finished = Some(self.most);
            }
            *self = Self {
                hour,
                ..Self::default()
            };
        }
        if hour == self.hour {
            self.most = self.most.max(searches);
        }
        finished
    }

    /// The hour being counted had a suspicious event.
    pub fn taint(&mut self) {
        self.suspicious = true;
    }
}

/// The list an actor is making (its request, its patients so far, whether any of its events
/// was suspicious): learned as usual only once the next request begins and only if clean,
/// so that a bulk search's first pages do not make its later ones usual.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OpenList {
    request: u64,
    patients: u32,
    suspicious: bool,
}

impl OpenList {
    /// Counts the `patients`-th patient of `request`; returns how many patients the previous
    /// request listed, and whether it raised suspicion, when that one is over.
    pub fn see(&mut self, request: u64, patients: u32) -> Option<(u32, bool)> {
        if request == self.request {
            self.patients = self.patients.max(patients);
            return None;
        }
        let finished = std::mem::replace(
            self,
            Self {
                request,
                patients,
                suspicious: false,
            },
        );
        (finished.patients > 0).then_some((finished.patients, finished.suspicious))
    }

    /// The list being made raised suspicion (an event alerted, or came in an open incident).
    pub fn taint(&mut self) {
        self.suspicious = true;
    }
}

/// A role's or a department's habits, pooled over its members.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct GroupBaseline {
    pub hours: [f32; 24],
    pub total: f32,
    types: KeyMap<f32>,
    actions: [f32; 8],
    purposes: KeyMap<f32>,
    pub break_glass: f32,
    pub research: f32,
    /// Addresses the group's members use, from events that raised no suspicion.
    #[serde(default)]
    addresses: Sources<64>,
    /// User agents likewise (the department's workstations' browser, after an upgrade too).
    #[serde(default)]
    agents: Sources<16>,
    /// Whole records its members pulled in one request that raised no suspicion.
    #[serde(default)]
    pub whole_records: u32,
    /// The first [`TYPICAL_MEMBERS`] members seen doing each resource type and purpose.
    #[serde(default)]
    type_members: KeyMap<Members>,
    #[serde(default)]
    purpose_members: KeyMap<Members>,
    /// The group's first [`GROUP_OF_MEMBERS`] members.
    #[serde(default)]
    members: Members,
    /// When the group did its first thing (0 for a state saved before it was noted: long ago).
    #[serde(default)]
    since: i64,
    /// Updates and deletes per resource type ([`Rarity::amend`]), and the first members seen
    /// amending each.
    #[serde(default)]
    amended: KeyMap<f32>,
    #[serde(default)]
    amended_members: KeyMap<Members>,
}

/// Members of a group who must have done something for it to be the group's work, not one
/// member's: measured on a simulated hospital, an admissions clerk's exfiltration (700
/// searches of every kind of clinical data) made a second clerk's reading of clinical notes
/// days later ordinary for the department.
pub const TYPICAL_MEMBERS: usize = 2;
/// Members a group must have for one member's habit to be hers alone (in a team of two, one
/// is half the team).
pub const GROUP_OF_MEMBERS: usize = 3;

/// The first members seen doing something (truncated hashes).
type Members = Vec<u32>;

/// Counts that `member` did `key` (a resource type, a purpose), among at most `cap` keys.
fn count_done(
    counts: &mut KeyMap<f32>,
    members: &mut KeyMap<Members>,
    key: u64,
    member: u32,
    cap: usize,
) {
    if key == 0 || (counts.len() >= cap && !counts.contains_key(&key)) {
        return;
    }
    let count = counts.entry(key).or_default();
    *count += 1.0;
    let counted_before = *count > 1.0;
    note_member(members, key, member, cap, counted_before);
}

/// Notes that `member` did `key`; `counted_before`: the group had done it before (in a state
/// saved before members were noted, its unknown members count as enough).
fn note_member(
    members: &mut KeyMap<Members>,
    key: u64,
    member: u32,
    cap: usize,
    counted_before: bool,
) {
    if key == 0 || member == 0 || (members.len() >= cap && !members.contains_key(&key)) {
        return;
    }
    let seen = members.entry(key).or_insert_with(|| {
        if counted_before {
            vec![0; TYPICAL_MEMBERS]
        } else {
            Vec::new()
        }
    });
    if seen.len() < TYPICAL_MEMBERS && !seen.contains(&member) {
        seen.push(member);
    }
}

/// Whether only one member other than `member` ever did it (nothing known: no).
fn one_others_habit(members: &KeyMap<Members>, key: u64, member: u32) -> bool {
    members
        .get(&key)
        .is_some_and(|seen| seen.len() < TYPICAL_MEMBERS && !seen.contains(&member))
}

impl GroupBaseline {
    /// How rarely the group works at this hour of the day (as [`ActorSignals::odd_hour`]), once
    /// it has [`GROUP_HOURS_KNOWN`] events; 0 until then.
    pub fn odd_hour(&self, hour: usize) -> f64 {
        if self.total >= GROUP_HOURS_KNOWN {
            hour_rarity(&self.hours, self.total, hour)
        } else {
            0.0
        }
    }

    /// Whether `ip` is one of the group's everyday addresses (seen in at least
    /// [`GROUP_ADDRESS_SEEN`] unsuspicious events).
    pub fn knows_address(&self, ip: u64) -> bool {
        self.addresses.everyday(ip)
    }

    /// Whether `agent` is one of the group's everyday user agents (seen in at least
    /// [`GROUP_ADDRESS_SEEN`] unsuspicious events).
    pub fn knows_agent(&self, agent: u64) -> bool {
        self.agents.everyday(agent)
    }

    /// Whether `network` (an address's /24) is one of the group's everyday networks: at least
    /// [`GROUP_NETWORK_ADDRESSES`] of its recent unsuspicious addresses are in it.
    pub fn knows_network(&self, network: u64) -> bool {
        network != 0
            && self
                .addresses
                .seen
                .iter()
                .filter(|s| s.prefix == network)
                .count()
                >= GROUP_NETWORK_ADDRESSES
    }

    /// Learns the address and user agent of an event that raised no suspicion.
    pub fn record_source(&mut self, k: &EventKeys) {
        if k.agent != 0 {
            self.agents.record(k.agent, 0, k.time);
        }
        if k.ip != 0 {
            // A group remembers each address's /24 (its networks are subnets and pools).
            self.addresses.record(k.ip, k.ip_network, k.time);
        }
    }

    /// How rarely this group does what `k` does: resource type, action, purpose (0 while the
    /// group has fewer than 500 events).
    pub fn misuse(&self, k: &EventKeys) -> f64 {
        self.rarity(k).max()
    }

    /// The share of its reads, searches and writes that are writes (creates and updates), once
    /// it has done 500 things: whether its members document for the patients they open.
    pub fn write_share(&self) -> Option<f32> {
        let at = |action| self.actions[super::action_index(action)];
        let writes = at(AccessAction::Create) + at(AccessAction::Update);
        let looks = at(AccessAction::Read) + at(AccessAction::Search);
        (self.total >= 500.0 && writes + looks > 0.0).then(|| writes / (writes + looks))
    }

    /// [`GroupBaseline::misuse`] by part.
    pub fn rarity(&self, k: &EventKeys) -> Rarity {
        let total = self.total;
        let judged = total >= 500.0;
        let long_enough =
            k.time - self.since >= NEVER_DONE_AFTER && self.members.len() >= TYPICAL_MEMBERS;
        let knows_its_work = total >= NEVER_DONE_FROM && long_enough;
        let knows_its_purposes = total >= NEVER_DECLARED_FROM && long_enough;
        if !judged && !knows_its_purposes {
            return Rarity::default();
        }
        let of = |n: f32| if judged { rarity(n, total) } else { 0.0 };
        // A kind the group never did is as rare as new kinds are for it: the share of its work
        // that was a kind done once (Good–Turing's estimate of what is still unseen). A
        // department whose work is a handful of kinds, each done many times (admissions,
        // a research unit), has no new kind to expect, however few its events; one that often
        // does something once (a records office) is not surprised by another.
        let never = |counts: &KeyMap<f32>| {
            let once = counts.values().filter(|n| **n < 1.5).count();
            rarity_of_share((once as f64 + 0.1) / (f64::from(total) + 1.0))
        };
        // What one other member alone does is not the group's work, however often she did it.
        let group = self.members.len() >= GROUP_OF_MEMBERS;
        let count = |counts: &KeyMap<f32>, members: &KeyMap<Members>, key: u64| {
            if group && one_others_habit(members, key, k.member) {
                0.0
            } else {
                counts.get(&key).copied().unwrap_or(0.0)
            }
        };
        let judge = |counts: &KeyMap<f32>, members: &KeyMap<Members>, key: u64, knows: bool| {
            let n = count(counts, members, key);
            if n == 0.0 && !judged && knows {
                never(counts)
            } else {
                of(n)
            }
        };
        Rarity {
            action: of(self.actions[k.action]),
            resource: if k.resource != 0 {
                judge(&self.types, &self.type_members, k.resource, knows_its_work)
            } else {
                0.0
            },
            purpose: if k.purpose != 0 {
                judge(
                    &self.purposes,
                    &self.purpose_members,
                    k.purpose,
                    knows_its_purposes,
                )
            } else {
                0.0
            },
            amend: if k.resource != 0 && (k.action == AMEND_UPDATE || k.action == AMEND_DELETE) {
                of(count(&self.amended, &self.amended_members, k.resource))
            } else {
                0.0
            },
        }
    }

    /// The group's break-glass accesses per event.
    pub fn break_glass_rate(&self) -> f64 {
        f64::from(self.break_glass) / f64::from(self.total.max(1.0))
    }

    pub fn research_share(&self) -> f64 {
        f64::from(self.research) / f64::from(self.total.max(1.0))
    }

    pub fn record(&mut self, k: &EventKeys) {
        if self.total == 0.0 {
            self.since = k.time;
        }
        self.hours[k.hour] += 1.0;
        self.total += 1.0;
        if k.member != 0
            && self.members.len() < GROUP_OF_MEMBERS
            && !self.members.contains(&k.member)
        {
            self.members.push(k.member);
        }
        self.actions[k.action] += 1.0;
        count_done(
            &mut self.types,
            &mut self.type_members,
            k.resource,
            k.member,
            256,
        );
        count_done(
            &mut self.purposes,
            &mut self.purpose_members,
            k.purpose,
            k.member,
            64,
        );
        if k.action == AMEND_UPDATE || k.action == AMEND_DELETE {
            count_done(
                &mut self.amended,
                &mut self.amended_members,
                k.resource,
                k.member,
                64,
            );
        }
        self.break_glass += f32::from(u8::from(k.break_glass));
        self.research += f32::from(u8::from(k.research));
    }
}

/// How rarely a group does each part of an event, each in `[0, 1]` (see [`rarity`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rarity {
    pub action: f64,
    pub resource: f64,
    pub purpose: f64,
    /// For an update or a delete: how rarely the group amends this kind of data (not part of
    /// [`Rarity::max`]: amendments are judged as runs, [`super::amendments`]).
    pub amend: f64,
}

impl Rarity {
    pub fn max(self) -> f64 {
        self.action.max(self.resource).max(self.purpose)
    }

    /// The rarer of two groups' views, part by part (a role's and a department's).
    pub fn rarer(self, other: Self) -> Self {
        Self {
            action: self.action.max(other.action),
            resource: self.resource.max(other.resource),
            purpose: self.purpose.max(other.purpose),
            amend: self.amend.max(other.amend),
        }
    }
}

/// 0 for something done in 1% or more of the group's events, 1 at 0.03% or less (log scale).
fn rarity(count: f32, total: f32) -> f64 {
    rarity_of_share((f64::from(count) + 0.5) / (f64::from(total) + 1.0))
}

/// [`rarity`] of a share of the group's events.
fn rarity_of_share(p: f64) -> f64 {
    clamp01((-p.log10() - 2.0) / 1.5)
}

/// Events a group of people (two members or more: one machine's work is its program's) must
/// have done, and for how long, for what it never did to count ([`GroupBaseline::rarity`]; how
/// rarely it does what it did counts from 500 events): a day's work is not all a department
/// does (the first night's reporting run).
const NEVER_DONE_FROM: f32 = 200.0;
const NEVER_DONE_AFTER: i64 = 2 * DAY;
/// Events after which a purpose the group never declared counts (with [`NEVER_DONE_AFTER`] and
/// [`TYPICAL_MEMBERS`]): a group declares few purposes, each by policy (a research unit reads
/// for research, always), so a hundred of its events show them where its kinds of work need
/// [`NEVER_DONE_FROM`].
const NEVER_DECLARED_FROM: f32 = 100.0;

/// How rarely the hour `h` (with half its neighbours) is worked: 0 at 4% of the events or
/// more, 1 at 0.3% or less (log scale).
fn hour_rarity(hours: &[f32; 24], total: f32, h: usize) -> f64 {
    let near = f64::from(hours[h])
        + 0.5 * f64::from(hours[(h + 23) % 24])
        + 0.5 * f64::from(hours[(h + 1) % 24]);
    let p = (near / 2.0 + 0.1) / f64::from(total.max(1.0));
    clamp01((-p.log10() - 1.4) / 1.1)
}

pub fn clamp01(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(time: i64) -> EventKeys {
        EventKeys {
            time,
            hour: (time.rem_euclid(DAY) / HOUR) as usize,
            ip: 1,
            ip_prefix: 100,
            agent: 2,
            resource: 3,
            action: 0,
            purpose: 4,
            reading: true,
            ..EventKeys::default()
        }
    }

    /// A day worker: 30 events a day between 09:00 and 16:00, for 10 days.
    fn day_worker() -> ActorBaseline {
        let mut b = ActorBaseline::new(9 * HOUR);
        for day in 0..10 {
            for i in 0..30 {
                b.record(&keys(day * DAY + 9 * HOUR + i * 840), false);
            }
        }
        b
    }

    #[test]
    fn the_usual_is_quiet_the_unusual_is_not() {
        let b = day_worker();
        let none = [0.0; 24];
        let usual = b.signals(&keys(10 * DAY + 10 * HOUR), &none, 0.0, Cover::NONE);
        assert!(usual.mature);
        assert_eq!(usual.odd_hour, 0.0);
        assert_eq!(usual.new_source, 0.0);
        let night = b.signals(&keys(10 * DAY + 3 * HOUR), &none, 0.0, Cover::NONE);
        assert_eq!(night.odd_hour, 1.0);
        let mut stolen = keys(10 * DAY + 10 * HOUR);
        stolen.ip = 9;
        stolen.ip_prefix = 900;
        stolen.agent = 8;
        assert_eq!(b.signals(&stolen, &none, 0.0, Cover::NONE).new_source, 1.0);
        let mut vpn = keys(10 * DAY + 10 * HOUR);
        vpn.ip = 9;
        vpn.ip_prefix = 900;
        assert_eq!(b.signals(&vpn, &none, 0.0, Cover::NONE).new_source, 0.5);
    }

    /// A data warehouse's extract: a small export at two every night from its own server, a
    /// full one on Sundays. The second Sunday's is what the first was, from its own place; from
    /// another address (its credential stolen), or bigger than ever, it is large.
    #[test]
    fn a_jobs_weekly_export_is_as_large_as_last_weeks_from_its_own_place_only() {
        let export = |time: i64, count: u32| EventKeys {
            count,
            export: true,
            ..keys(time)
        };
        let mut b = ActorBaseline::new(2 * HOUR);
        let none = [0.0; 24];
        let large =
            |b: &ActorBaseline, k: &EventKeys| b.signals(k, &none, 0.0, Cover::NONE).large_result;
        for day in 0..14 {
            for i in 0..3 {
                b.record(&export(day * DAY + 2 * HOUR + i * 60, 1_200), false);
            }
            if day % 7 == 6 {
                let sunday = export(day * DAY + 2 * HOUR + 600, 16_000);
                let size = large(&b, &sunday);
                if day == 6 {
                    assert!(size > 0.5, "the first full export: {size}");
                } else {
                    assert_eq!(size, 0.0, "the second: as large as the first");
                    let mut elsewhere = sunday;
                    elsewhere.ip = 9;
                    elsewhere.ip_prefix = 900;
                    assert!(large(&b, &elsewhere) > 0.5);
                    let bigger = export(day * DAY + 2 * HOUR + 600, 400_000);
                    assert!(large(&b, &bigger) > 0.5);
                }
                b.record(&sunday, false);
            }
        }
        // What was suspicious teaches nothing: a person's or a job's.
        let mut once = ActorBaseline::new(2 * HOUR);
        for day in 0..7 {
            for i in 0..3 {
                once.record(&export(day * DAY + 2 * HOUR + i * 60, 1_200), false);
            }
        }
        once.record(&export(7 * DAY, 16_000), true);
        assert!(large(&once, &export(8 * DAY, 16_000)) > 0.5);
    }

    /// A department that saw `k`'s source in one event short of everyday use, among others.
    fn dept_almost_used_to(k: &EventKeys) -> GroupBaseline {
        let mut dept = GroupBaseline::default();
        for i in 0..GROUP_ADDRESS_SEEN - 1 {
            dept.record_source(&keys(i64::from(i) * HOUR));
            dept.record_source(k);
        }
        dept
    }

    /// An address new to the actor but one the department uses every day (a partner's second
    /// egress address) counts for less; one the department saw only a few times does not.
    #[test]
    fn an_address_the_department_uses_every_day_is_barely_new() {
        let b = day_worker();
        let none = [0.0; 24];
        let mut other = keys(10 * DAY + 10 * HOUR);
        other.ip = 7;
        other.ip_prefix = 700;
        let mut dept = dept_almost_used_to(&other);
        assert!(!dept.knows_address(7));
        dept.record_source(&other);
        assert!(dept.knows_address(7));
        assert!(!dept.knows_address(8) && !dept.knows_address(0));
        let mut s = b.signals(&other, &none, 0.0, Cover::NONE);
        assert_eq!(s.new_source, 0.5);
        s.address_known_to_group();
        assert!(s.new_source < 0.2 && !s.new_address, "{s:?}");
        // Agent and address both new, the address the department's: still the agent's half.
        other.agent = 99;
        let mut s = b.signals(&other, &none, 0.0, Cover::NONE);
        assert_eq!(s.new_source, 1.0);
        s.address_known_to_group();
        assert!((0.5..0.7).contains(&s.new_source), "{s:?}");
    }

    /// Six days of 8 active hours: one hour opens a 100-patient ward list, seven see 3 new
    /// patients each (`suspicious`: the list hours came during an incident). Then the list
    /// again: what the patients-per-hour signal says of its 100th patient.
    fn list_hour_again(suspicious: bool) -> f64 {
        let mut b = ActorBaseline::new(0);
        let list = |b: &mut ActorBaseline, day: i64, hour: i64, n: i64, flag: bool| {
            for i in 0..n {
                let mut k = keys(day * DAY + hour * HOUR + i * 30);
                k.new_patient_this_hour = true;
                b.record(&k, flag);
            }
        };
        for day in 0..6 {
            list(&mut b, day, 8, 100, suspicious);
            for hour in 9..16 {
                list(&mut b, day, hour, 3, false);
            }
        }
        list(&mut b, 6, 8, 99, false);
        let mut k = keys(6 * DAY + 8 * HOUR + 99 * 30);
        k.new_patient_this_hour = true;
        b.signals(&k, &[0.0; 24], 0.0, Cover::NONE).patients
    }

    #[test]
    fn the_departments_everyday_browser_is_barely_new() {
        let b = day_worker();
        let mut upgraded = keys(10 * DAY + 10 * HOUR);
        upgraded.agent = 77;
        let mut dept = dept_almost_used_to(&upgraded);
        assert!(!dept.knows_agent(77));
        dept.record_source(&upgraded);
        assert!(dept.knows_agent(77) && !dept.knows_agent(78));
        let mut s = b.signals(&upgraded, &[0.0; 24], 0.0, Cover::NONE);
        assert_eq!(s.new_source, 0.5);
        s.agent_known_to_group();
        assert!(s.new_source < 0.2 && !s.new_agent, "{s:?}");
    }

    #[test]
    fn a_subnet_many_of_the_departments_addresses_share_is_its_network() {
        let mut dept = GroupBaseline::default();
        let at = |n: u64, network: u64| EventKeys {
            ip: 1_000 + n,
            ip_network: network,
            ..keys(0)
        };
        for n in 0..GROUP_NETWORK_ADDRESSES as u64 - 1 {
            dept.record_source(&at(n, 10));
        }
        assert!(!dept.knows_network(10));
        dept.record_source(&at(99, 10));
        assert!(dept.knows_network(10));
        // Another subnet, and an event with no address, are not.
        assert!(!dept.knows_network(11) && !dept.knows_network(0));
    }

    /// A service round the clock (2 new patients an hour) whose daily batch at 11:00 opens 60,
    /// for five days. Then 60 again, at `hour`: what the patients-per-hour signal says of the
    /// 60th.
    fn batch_again_at(hour: i64) -> f64 {
        let mut b = ActorBaseline::new(0);
        let open = |b: &mut ActorBaseline, at: i64, n: i64| {
            for i in 0..n {
                let mut k = keys(at + i * 50);
                k.new_patient_this_hour = true;
                b.record(&k, false);
            }
        };
        for day in 0..5 {
            for h in 0..24 {
                open(&mut b, day * DAY + h * HOUR, if h == 11 { 60 } else { 2 });
            }
        }
        for h in 0..hour {
            open(&mut b, 5 * DAY + h * HOUR, 2);
        }
        open(&mut b, 5 * DAY + hour * HOUR, 59);
        let mut k = keys(5 * DAY + hour * HOUR + 59 * 50);
        k.new_patient_this_hour = true;
        b.signals(&k, &[0.0; 24], 0.0, Cover::NONE).patients
    }

    #[test]
    fn a_round_the_clock_services_daily_batch_is_usual_at_its_hour_only() {
        // The busiest hour of all fades within a day of active hours; the hour of the day's
        // does not.
        let at_its_hour = batch_again_at(11);
        assert!(at_its_hour < 0.1, "{at_its_hour}");
        let elsewhen = batch_again_at(15);
        assert!(elsewhen > 0.9, "{elsewhen}");
    }

    #[test]
    fn a_daily_ward_list_is_usual_unless_it_was_learned_under_suspicion() {
        let usual = list_hour_again(false);
        assert!(usual < 0.5, "{usual}");
        assert_eq!(list_hour_again(true), 1.0);
    }

    #[test]
    fn a_new_actor_is_not_judged_on_its_own_habits() {
        let mut b = ActorBaseline::new(0);
        b.record(&keys(0), false);
        let mut k = keys(3 * HOUR);
        k.ip = 77;
        let s = b.signals(&k, &[0.0; 24], 0.0, Cover::NONE);
        assert!(!s.mature);
        assert_eq!(
            s,
            ActorSignals {
                volume_now: 1,
                ..ActorSignals::default()
            }
        );
    }

    #[test]
    fn role_misuse_is_what_the_role_never_does() {
        let mut g = GroupBaseline::default();
        for i in 0..2000 {
            let mut k = keys(i);
            k.resource = if i % 2 == 0 { 3 } else { 5 };
            g.record(&k);
        }
        assert_eq!(g.misuse(&keys(0)), 0.0);
        let mut odd = keys(0);
        odd.resource = 42;
        assert_eq!(g.misuse(&odd), 1.0);
    }

    #[test]
    fn a_small_groups_never_is_as_rare_as_new_kinds_are_for_it() {
        // A small department's events over three and a half days, by three members: two kinds
        // of data, each done many times, and `one_offs` kinds done once each.
        let department = |events: i64, one_offs: i64| {
            let mut g = GroupBaseline::default();
            for i in 0..events {
                let mut k = keys(i * 1_000);
                k.member = 1 + u32::try_from(i % 3).unwrap_or(0);
                k.resource = if i < one_offs {
                    100 + i.unsigned_abs()
                } else {
                    3 + (i % 2).unsigned_abs()
                };
                g.record(&k);
            }
            g
        };
        let never_done = || {
            let mut k = keys(310_000);
            k.resource = 42;
            k
        };
        // Nothing it does is ever new: what it never did is as rare as can be.
        assert!(department(300, 0).rarity(&never_done()).resource > 0.95);
        // Three of its 300 events were something done once: one more new thing is no surprise.
        assert!(department(300, 3).rarity(&never_done()).resource < 0.3);
        // Its own work, or too few events to say: nothing (what it does is judged from 500).
        assert_eq!(department(300, 0).misuse(&keys(0)), 0.0);
        assert_eq!(department(150, 0).rarity(&never_done()).resource, 0.0);
        // Nor for one account's work (a machine's: its program's, whatever it did before).
        let mut machine = GroupBaseline::default();
        for i in 0..300 {
            let mut k = keys(i * 1_000);
            k.member = 7;
            machine.record(&k);
        }
        assert_eq!(machine.rarity(&never_done()).resource, 0.0);
        // Nor in its first two days, however busy: a day's work is not all it does.
        let mut first_days = GroupBaseline::default();
        for i in 0..300 {
            first_days.record(&keys(i * 100));
        }
        let mut early = never_done();
        early.time = 40_000;
        assert_eq!(first_days.rarity(&early).resource, 0.0);
    }

    #[test]
    fn one_members_habit_is_not_her_groups() {
        // Three clerks search patients; one of them also reads 700 clinical notes (type 9).
        let clerks = |team: u32| {
            let mut g = GroupBaseline::default();
            for i in 0..3000 {
                let mut k = keys(i);
                k.member = 1 + (i as u32 % team);
                g.record(&k);
            }
            for i in 0..700 {
                let mut k = keys(3000 + i);
                k.member = 1;
                k.resource = 9;
                g.record(&k);
            }
            g
        };
        let notes = |member: u32| {
            let mut k = keys(4000);
            k.member = member;
            k.resource = 9;
            k
        };
        let team = clerks(3);
        assert_eq!(team.misuse(&notes(2)), 1.0, "another clerk's reading");
        assert_eq!(team.misuse(&notes(1)), 0.0, "her own habit, for her group");
        // Once a second clerk reads them too, it is the team's work.
        let mut shared = clerks(3);
        for i in 0..50 {
            let mut k = keys(5000 + i);
            k.member = 2;
            k.resource = 9;
            shared.record(&k);
        }
        assert_eq!(shared.misuse(&notes(3)), 0.0);
        // In a team of two, one is half the team.
        assert_eq!(clerks(2).misuse(&notes(2)), 0.0);
    }
    #[test]
    fn a_days_counted_lists_count_from_the_next_day_and_fade() {
        let mut lists = CountedLists::default();
        lists.learn(100, 10 * HOUR);
        lists.learn(40, 15 * HOUR);
        // The day's own lists are not its usual.
        assert_eq!(lists.usual(16 * HOUR), 0.0);
        // The next day they are, fading by LIST_FADE a day.
        assert!((lists.usual(DAY + HOUR) - 100.0).abs() < 1e-3);
        let three_days_on = 100.0 * LIST_FADE.powi(2);
        assert!((lists.usual(3 * DAY + HOUR) - three_days_on).abs() < 1e-3);
        // A shorter list later does not shorten the usual; a longer one counts from tomorrow.
        lists.learn(50, 3 * DAY + 2 * HOUR);
        lists.learn(500, 3 * DAY + 3 * HOUR);
        assert!((lists.usual(3 * DAY + 4 * HOUR) - three_days_on).abs() < 1e-3);
        assert!((lists.usual(4 * DAY) - 500.0).abs() < 1e-3);
    }

    #[test]
    fn first_looks_count_the_last_hour_and_learn_only_clean_hours() {
        let mut looks = FirstLooks::default();
        for k in 0..10 {
            looks.see(9 * HOUR + k * 300, true);
        }
        // Half past ten: this hour's 2 and half the hour before's 10.
        looks.see(10 * HOUR + 60, true);
        let (now, finished) = looks.see(10 * HOUR + 1800, true);
        assert!((now - 7.0).abs() < 1e-9, "{now}");
        assert_eq!(finished, None);
        // The hour of 10 ended clean: learned when the next began; a tainted one is not.
        let (_, finished) = looks.see(11 * HOUR, false);
        assert_eq!(finished, Some(2));
        looks.see(11 * HOUR + 60, true);
        looks.taint();
        let (_, finished) = looks.see(12 * HOUR, false);
        assert_eq!(finished, None);
        // After a silent hour the hour before counts nothing.
        let (now, _) = looks.see(14 * HOUR + 60, true);
        assert!((now - 1.0).abs() < 1e-9, "{now}");
    }
}

#[cfg(test)]
mod volume_tests {
    use super::*;

    #[test]
    fn an_hour_of_far_more_reading_than_usual_stands_out() {
        let mut b = ActorBaseline::new(0);
        let mut k = EventKeys {
            reading: true,
            resource: 3,
            ..EventKeys::default()
        };
        // Four days, 20 reads in each of 8 hours a day.
        for day in 0..4 {
            for h in 8..16 {
                for i in 0..20 {
                    k.time = day * DAY + h * HOUR + i * 60;
                    k.hour = h as usize;
                    b.record(&k, false);
                }
            }
        }
        let t0 = 4 * DAY + 12 * HOUR;
        let mut last = ActorSignals::default();
        for i in 0..300 {
            k.time = t0 + i * 3;
            k.hour = 12;
            k.new_patient_this_hour = true;
            last = b.signals(&k, &[0.0; 24], 0.0, Cover::NONE);
            b.record(&k, false);
        }
        assert_eq!(last.volume, 1.0, "{last:?}");
        assert_eq!(last.patients, 1.0, "{last:?}");
    }

    /// Ten reads an hour over a day's 16 hours; in the next hour `first` patients in an hour
    /// (`suspicious` as an alerted hour is); a day's ordinary hours later, 300 patients in an
    /// hour: the 300th's patients-per-hour signal.
    fn another_big_hour_after(first: i64, suspicious: bool) -> f64 {
        let mut b = ActorBaseline::new(0);
        let read = |t: i64| EventKeys {
            time: t,
            hour: (t.rem_euclid(DAY) / HOUR) as usize,
            reading: true,
            resource: 3,
            new_patient_this_hour: true,
            ..EventKeys::default()
        };
        for h in 0..16 {
            for i in 0..10 {
                b.record(&read(h * HOUR + i * 300), false);
            }
        }
        for i in 0..first {
            b.record(&read(16 * HOUR + i * (3000 / first)), suspicious);
        }
        for h in 17..30 {
            for i in 0..10 {
                b.record(&read(h * HOUR + i * 300), false);
            }
        }
        let mut last = ActorSignals::default();
        for i in 0..300 {
            let k = read(30 * HOUR + i * 10);
            last = b.signals(&k, &[0.0; 24], 0.0, Cover::NONE);
            b.record(&k, false);
        }
        last.patients
    }

    #[test]
    fn an_exfiltration_does_not_make_the_next_one_usual() {
        // Learned as an ordinary (busy) hour, 900 patients make 300 nearly usual; learned
        // under suspicion, only a few usual hours' worth of it is.
        let unsuspected = another_big_hour_after(900, false);
        assert!(unsuspected < 0.5, "{unsuspected}");
        let suspected = another_big_hour_after(900, true);
        assert_eq!(suspected, 1.0);
    }
}

#[cfg(test)]
mod presence_tests {
    use super::*;

    /// A read at `t` of a patient new to the reader this hour.
    fn read(t: i64) -> EventKeys {
        EventKeys {
            time: t,
            hour: (t.rem_euclid(DAY) / HOUR) as usize,
            ip: 1,
            ip_prefix: 100,
            agent: 2,
            resource: 3,
            reading: true,
            new_patient_this_hour: true,
            ..EventKeys::default()
        }
    }

    /// A pharmacy of six: on each of 7 weekdays each member reviews 8 patients between 09:00
    /// and 10:00. `me` (member 0) learns her own habits; the department its presence.
    fn weekday_pharmacy() -> (ActorBaseline, Presence) {
        let mut me = ActorBaseline::new(0);
        let mut pharmacy = Presence::default();
        for day in 0..7 {
            for member in 0..6u64 {
                for i in 0..8 {
                    let k = read(day * DAY + 9 * HOUR + i * 420 + member as i64 * 30);
                    if member == 0 {
                        me.record(&k, false);
                    }
                    pharmacy.see(member, &k, false);
                }
            }
            // The afternoon, so her hours close.
            for i in 0..10 {
                let k = read(day * DAY + (11 + i) * HOUR);
                me.record(&k, false);
                pharmacy.see(0, &k, false);
            }
        }
        (me, pharmacy)
    }

    /// `me` alone reviews `n` patients in the hour from `t0`: the last read's signals.
    fn alone(me: &mut ActorBaseline, pharmacy: &mut Presence, t0: i64, n: i64) -> ActorSignals {
        let mut last = ActorSignals::default();
        for i in 0..n {
            let k = read(t0 + i * (3000 / n));
            last = me.signals(&k, &[0.0; 24], 0.0, pharmacy.cover(0, k.time));
            me.record(&k, false);
            pharmacy.see(0, &k, false);
        }
        last
    }

    #[test]
    fn a_lone_member_covering_her_absent_colleagues_is_not_reading_too_much() {
        let (mut me, mut pharmacy) = weekday_pharmacy();
        let saturday = 7 * DAY + 9 * HOUR;
        let cover = pharmacy.cover(0, saturday);
        assert_eq!(cover.factor, 4.0, "{cover:?}");
        // The whole department's 48 patients, six times her own hour: her usual stretches to
        // what the department usually sees.
        let s = alone(&mut me.clone(), &mut pharmacy.clone(), saturday, 48);
        assert_eq!(s.patients, 0.0, "{s:?}");
        // Without the department's presence the same hour is far above her usual.
        let mut lone = me.clone();
        let mut last = ActorSignals::default();
        for i in 0..48 {
            let k = read(saturday + i * 62);
            last = lone.signals(&k, &[0.0; 24], 0.0, Cover::NONE);
            lone.record(&k, false);
        }
        assert!(last.patients >= 0.5, "{last:?}");
        // Three times the department's usual hour is not covering anyone.
        let s = alone(&mut me, &mut pharmacy, saturday, 150);
        assert_eq!(s.patients, 1.0, "{s:?}");
    }

    #[test]
    fn a_department_at_usual_strength_or_a_session_from_elsewhere_covers_for_nobody() {
        let (me, pharmacy) = weekday_pharmacy();
        // Four of six at work: no cover.
        let mut four = pharmacy.clone();
        for member in 1..4u64 {
            four.see(member, &read(7 * DAY + 9 * HOUR), false);
        }
        assert_eq!(four.cover(0, 7 * DAY + 9 * HOUR + 60).factor, 1.0);
        // Alone, but from a new address and device: no stretch.
        let mut k = read(7 * DAY + 9 * HOUR + 60);
        k.ip = 99;
        k.ip_prefix = 990;
        k.agent = 77;
        let mut me = me;
        let mut last = ActorSignals::default();
        for i in 0..48 {
            k.time = 7 * DAY + 9 * HOUR + i * 62;
            last = me.signals(&k, &[0.0; 24], 0.0, pharmacy.cover(0, k.time));
            me.record(&k, false);
        }
        assert!(last.new_source > 0.5, "{last:?}");
        assert!(last.patients >= 0.5, "{last:?}");
    }
}
