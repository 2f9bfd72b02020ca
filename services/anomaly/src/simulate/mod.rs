//! `anomaly simulate`: a synthetic hospital's access log with labelled incidents, to build and
//! tune the detector against (`anomaly evaluate` scores it).
//!
//! Deterministic per seed (ChaCha8). The installation is a main hospital with wards and their
//! bed census (admissions, stays of days, transfers through the ED, discharges), an emergency
//! department, radiology, pharmacy, coding, case management, research, admissions clerks, IT
//! and a privacy office, plus a partner hospital and a GP practice. Staff work shifts (days,
//! nights, weekends, on call from home), log in per session from ward workstations, tablets on
//! the Wi-Fi, the VPN or home, and read and write the charts of the patients in their care the
//! way records records it (one search event per patient returned, `count`, `decision.basis`,
//! confidentiality V/R on VIP and restricted records). The hard honest cases are there:
//! consults, floated nurses, on-call physicians, first visits of new referrals, pharmacists and
//! coders who touch many patients, research cohorts under consent, nightly registry queries
//! returning hundreds of patients, legitimate break-the-glass in the ED, the care of admitted
//! VIPs and staff members, honest denials, typos at login, a browser update across the fleet.
//!
//! [`attacks`] adds incidents of every [`Kind`]; the labels file lists each of their events.
//!
//! - [`world`]: organisations, departments, staff, patients, the agent and address pools.
//! - [`activity`]: shifts, sessions, census and care.
//! - [`emit`]: events as the product builds them.

pub mod activity;
pub mod attacks;
pub mod emit;
pub mod world;

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use custodian_events::AccessEvent;

use crate::{
    model::{CareActor, CareFact, CareVia},
    replay::PatientLabel,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The kinds of abuse the simulator injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Curiosity about a VIP's record.
    SnoopVip,
    /// Curiosity about a colleague's record.
    SnoopColleague,
    /// A neighbour's or relative's record.
    SnoopNeighbour,
    /// Someone else using a member of staff's password.
    StolenCredentials,
    /// Copying records out in bulk.
    Exfiltration,
    /// Sweeping the patient list.
    Enumeration,
    /// Breaking the glass with no emergency.
    BreakGlassAbuse,
    /// Reading what the role never reads.
    RoleMisuse,
    /// Bursts of failed logins or denied accesses.
    DeniedBurst,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::SnoopVip,
        Kind::SnoopColleague,
        Kind::SnoopNeighbour,
        Kind::StolenCredentials,
        Kind::Exfiltration,
        Kind::Enumeration,
        Kind::BreakGlassAbuse,
        Kind::RoleMisuse,
        Kind::DeniedBurst,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SnoopVip => "snoop-vip",
            Kind::SnoopColleague => "snoop-colleague",
            Kind::SnoopNeighbour => "snoop-neighbour",
            Kind::StolenCredentials => "stolen-credentials",
            Kind::Exfiltration => "exfiltration",
            Kind::Enumeration => "enumeration",
            Kind::BreakGlassAbuse => "break-glass-abuse",
            Kind::RoleMisuse => "role-misuse",
            Kind::DeniedBurst => "denied-burst",
        }
    }
}

/// One line of the labels file: an attack event and its incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub id: Uuid,
    pub incident: String,
    pub kind: String,
}

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub seed: u64,
    pub days: u32,
    pub staff: usize,
    pub patients: usize,
    /// Incidents of each kind.
    pub incidents_per_kind: usize,
    /// Local midnight of the first day (a Monday by default).
    pub start: NaiveDate,
    /// The hospital's offset from UTC, in hours (event times are UTC).
    pub utc_offset_hours: i32,
}

impl Params {
    /// Two weeks of a 120-staff hospital with 3,000 patients: a few hundred thousand events.
    pub fn standard(seed: u64) -> Self {
        Self {
            seed,
            days: 14,
            staff: 120,
            patients: 3_000,
            incidents_per_kind: 3,
            start: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default(),
            utc_offset_hours: 0,
        }
    }

    /// A test-sized run: three days, 40 staff, 500 patients, one incident of each kind.
    pub fn small(seed: u64) -> Self {
        Self {
            days: 3,
            staff: 40,
            patients: 500,
            incidents_per_kind: 1,
            ..Self::standard(seed)
        }
    }

    fn base(&self) -> DateTime<Utc> {
        let midnight = self
            .start
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc();
        midnight - Duration::hours(i64::from(self.utc_offset_hours))
    }
}

/// A simulated log: events oldest first, and the labels of the attack events.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub events: Vec<AccessEvent>,
    pub labels: Vec<Label>,
    /// Incident ids and kinds, in the order they were injected.
    pub incidents: Vec<(String, Kind)>,
    /// What the clinical record says about who cares for whom (as records would publish it
    /// from Encounters), by start time: each stay's ward and attending, each ED visit, each
    /// consultant from the time the consult was asked. Not every legitimate access has one
    /// (nurses floated, pharmacy, coding, research); no attack has one.
    pub care: Vec<CareFact>,
    /// Patients' labels as their Patient resources carry them: every member of staff who is
    /// also a patient is labelled `EMP` (the employee flag an HR feed sets).
    pub patient_labels: Vec<PatientLabel>,
}

/// One line of the care facts file: a patient's labels or a care fact.
#[derive(Serialize)]
#[serde(untagged)]
enum RecordLine<'a> {
    Labels(&'a PatientLabel),
    Care(&'a CareFact),
}

/// Runs the simulation.
pub fn simulate(params: &Params) -> Simulation {
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let world = world::World::build(params, &mut rng);
    let sink = emit::Sink::new(params.base());
    let mut sim = activity::Sim::new(&world, params, rng, sink);
    sim.build_shifts();
    sim.build_census();
    sim.run_care();
    let incidents = sim.inject(params.incidents_per_kind);

    let care = care_facts(&world, &sim, params.base());
    let patient_labels = world
        .patients
        .iter()
        .filter(|p| p.staff.is_some())
        .map(|p| PatientLabel {
            patient: p.reference.clone(),
            labels: vec!["EMP".into()],
        })
        .collect();
    let emit::Sink { events, labels, .. } = sim.sink;
    let horizon = sim.horizon;
    // Keep what falls inside the simulated period (work begun the evening before is cut).
    let mut keep: Vec<Option<usize>> = vec![None; events.len()];
    let mut order: Vec<usize> = (0..events.len())
        .filter(|&i| (0..horizon).contains(&events[i].0))
        .collect();
    order.sort_by_key(|&i| (events[i].0, events[i].1));
    for (new, &old) in order.iter().enumerate() {
        keep[old] = Some(new);
    }
    let mut by_event: Vec<Option<usize>> = vec![None; order.len()];
    for (old, incident) in labels {
        if let Some(new) = keep[old] {
            by_event[new] = Some(incident);
        }
    }
    let mut slots: Vec<Option<AccessEvent>> = events.into_iter().map(|(_, _, e)| Some(e)).collect();
    let events: Vec<AccessEvent> = order.iter().filter_map(|&i| slots[i].take()).collect();
    let labels: Vec<Label> = events
        .iter()
        .zip(&by_event)
        .filter_map(|(e, incident)| {
            let incident = &incidents[(*incident)?];
            Some(Label {
                id: e.id,
                incident: incident.id.clone(),
                kind: incident.kind.as_str().to_string(),
            })
        })
        .collect();
    // An incident whose events all fell outside the period is not one.
    let labelled: std::collections::HashSet<&str> =
        labels.iter().map(|l: &Label| l.incident.as_str()).collect();
    let incidents = incidents
        .iter()
        .filter(|i| labelled.contains(i.id.as_str()))
        .map(|i| (i.id.clone(), i.kind))
        .collect();
    Simulation {
        events,
        labels,
        incidents,
        care,
        patient_labels,
    }
}

/// The care facts of the simulated period, by start time.
fn care_facts(world: &world::World, sim: &activity::Sim<'_>, base: DateTime<Utc>) -> Vec<CareFact> {
    let at = |t: i64| base + Duration::milliseconds(t);
    let horizon = sim.horizon;
    let department = |dept: usize| CareActor::Department {
        organization: Some(world.orgs[world.depts[dept].org].reference.clone()),
        department: world.depts[dept].name.to_string(),
    };
    let user = |staff: usize| CareActor::User(world.staff[staff].id.clone());
    let mut facts: Vec<(i64, CareFact)> = Vec::new();
    let mut fact = |patient: usize, actor: CareActor, via: CareVia, start: i64, end: i64| {
        if start < horizon && end > 0 {
            facts.push((
                start,
                CareFact {
                    patient: world.patients[patient].reference.clone(),
                    actor,
                    via,
                    start: at(start),
                    end: Some(at(end)),
                },
            ));
        }
    };
    for stay in &sim.stays {
        fact(
            stay.patient,
            department(stay.dept),
            CareVia::EncounterServiceProvider,
            stay.start,
            stay.end,
        );
        if let Some(attending) = stay.attending {
            fact(
                stay.patient,
                user(attending),
                CareVia::EncounterParticipant,
                stay.start,
                stay.end,
            );
        }
    }
    if let Some(ed) = world
        .depts
        .iter()
        .position(|d| d.kind == world::DeptKind::Emergency)
    {
        for visit in &sim.ed_visits {
            fact(
                visit.patient,
                department(ed),
                CareVia::EncounterServiceProvider,
                visit.start,
                visit.end,
            );
        }
    }
    for &(patient, consultant, asked) in &sim.consults {
        let end = sim
            .stays
            .iter()
            .filter(|s| s.patient == patient && s.start <= asked && asked < s.end)
            .map(|s| s.end)
            .max()
            .unwrap_or(asked + emit::DAY);
        fact(
            patient,
            user(consultant),
            CareVia::EncounterParticipant,
            asked,
            end.max(asked + emit::DAY),
        );
    }
    // The partner hospital's stays (its Encounters name it the service provider), a day at a
    // time as its caseload turns over.
    for &(patient, dept, day) in &sim.partner_caseload {
        fact(
            patient,
            department(dept),
            CareVia::EncounterServiceProvider,
            day * emit::DAY,
            (day + 1) * emit::DAY,
        );
    }
    // The family practice is its patients' general practitioner.
    for (dept, d) in world.depts.iter().enumerate() {
        if d.name != "Family Practice" {
            continue;
        }
        for (patient, p) in world.patients.iter().enumerate() {
            if p.custodian == d.org {
                fact(
                    patient,
                    department(dept),
                    CareVia::GeneralPractitioner,
                    0,
                    horizon + emit::DAY,
                );
            }
        }
    }
    for &(patient, physician, opened) in &sim.clinic_visits {
        // Checked in a quarter of an hour before; the visit's Encounter names the physician.
        fact(
            patient,
            user(physician),
            CareVia::EncounterParticipant,
            opened - 15 * emit::MIN,
            opened + emit::DAY,
        );
    }
    facts.sort_by_key(|(start, _)| *start);
    facts.into_iter().map(|(_, f)| f).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// Writes one JSON object per line.
pub fn write_jsonl<T: Serialize>(path: &Path, items: &[T]) -> Result<(), SimulateError> {
    let fail = |source: io::Error| SimulateError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut out = BufWriter::new(File::create(path).map_err(fail)?);
    for item in items {
        serde_json::to_writer(&mut out, item).map_err(|e| fail(io::Error::other(e)))?;
        out.write_all(b"\n").map_err(fail)?;
    }
    out.flush().map_err(fail)
}

const USAGE: &str = "usage: anomaly simulate [--seed N] [--days D] [--staff S] [--patients P] \
[--incidents-per-kind K] [--utc-offset H] [--small] --out-events FILE --out-labels FILE \
[--out-care FILE]
  --out-care also writes the care facts the clinical record would give (for replay --care-facts)
  defaults: --seed 1, 14 days, 120 staff, 3000 patients, 3 incidents per kind (--small: 3 days,
  40 staff, 500 patients, 1 per kind); files default to var/sim/seed<N>.{events,labels}.jsonl";

#[derive(Debug, PartialEq)]
struct Args {
    params: Params,
    events: PathBuf,
    labels: PathBuf,
    care: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut seed = 1;
    let mut small = false;
    let mut days = None;
    let mut staff = None;
    let mut patients = None;
    let mut per_kind = None;
    let mut offset = None;
    let mut events = None;
    let mut labels = None;
    let mut care = None;
    let mut it = args.iter();
    fn number<T: std::str::FromStr>(flag: &str, raw: Option<&String>) -> Result<T, String> {
        let raw = raw.ok_or(format!("{flag} needs a value"))?;
        raw.parse()
            .map_err(|_| format!("{flag} {raw:?} is not a valid number"))
    }
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seed" => seed = number("--seed", it.next())?,
            "--days" => days = Some(number::<u32>("--days", it.next())?),
            "--staff" => staff = Some(number::<usize>("--staff", it.next())?),
            "--patients" => patients = Some(number::<usize>("--patients", it.next())?),
            "--incidents-per-kind" => per_kind = Some(number("--incidents-per-kind", it.next())?),
            "--utc-offset" => offset = Some(number::<i32>("--utc-offset", it.next())?),
            "--small" => small = true,
            "--out-events" => {
                events = Some(PathBuf::from(it.next().ok_or("--out-events needs a file")?))
            }
            "--out-labels" => {
                labels = Some(PathBuf::from(it.next().ok_or("--out-labels needs a file")?))
            }
            "--out-care" => care = Some(PathBuf::from(it.next().ok_or("--out-care needs a file")?)),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let mut params = if small {
        Params::small(seed)
    } else {
        Params::standard(seed)
    };
    params.days = days.unwrap_or(params.days);
    params.staff = staff.unwrap_or(params.staff);
    params.patients = patients.unwrap_or(params.patients);
    params.incidents_per_kind = per_kind.unwrap_or(params.incidents_per_kind);
    params.utc_offset_hours = offset.unwrap_or(params.utc_offset_hours);
    if params.days == 0 || params.days > 366 {
        return Err("--days must be within 1..=366".into());
    }
    if params.staff < 20 {
        return Err("--staff must be at least 20 (every department needs someone)".into());
    }
    if params.patients < 100 {
        return Err("--patients must be at least 100".into());
    }
    if !(-12..=14).contains(&params.utc_offset_hours) {
        return Err("--utc-offset must be within -12..=14".into());
    }
    let events =
        events.unwrap_or_else(|| PathBuf::from(format!("var/sim/seed{seed}.events.jsonl")));
    let labels =
        labels.unwrap_or_else(|| PathBuf::from(format!("var/sim/seed{seed}.labels.jsonl")));
    Ok(Args {
        params,
        events,
        labels,
        care,
    })
}

/// The `simulate` subcommand; `args` are those after `simulate`.
pub fn main(args: &[String]) -> ExitCode {
    let args = match parse_args(args) {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if e.is_empty() { 0 } else { 64 });
        }
    };
    let sim = simulate(&args.params);
    let written = write_jsonl(&args.events, &sim.events)
        .and_then(|()| write_jsonl(&args.labels, &sim.labels))
        .and_then(|()| match &args.care {
            Some(care) => {
                let lines: Vec<RecordLine<'_>> = sim
                    .patient_labels
                    .iter()
                    .map(RecordLine::Labels)
                    .chain(sim.care.iter().map(RecordLine::Care))
                    .collect();
                write_jsonl(care, &lines)
            }
            None => Ok(()),
        });
    if let Err(e) = written {
        eprintln!("error: {e}");
        return ExitCode::from(73);
    }
    let mut by_kind: std::collections::BTreeMap<&str, usize> = Default::default();
    for (_, kind) in &sim.incidents {
        *by_kind.entry(kind.as_str()).or_default() += 1;
    }
    eprintln!(
        "simulated {} days: {} events, {} attack events in {} incidents ({}) -> {}, {}",
        args.params.days,
        sim.events.len(),
        sim.labels.len(),
        sim.incidents.len(),
        by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        args.events.display(),
        args.labels.display()
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &[&str]) -> Result<Args, String> {
        parse_args(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments() {
        let args = a(&["--seed", "7", "--small", "--days", "2"]).unwrap();
        assert_eq!(args.params.seed, 7);
        assert_eq!(args.params.days, 2);
        assert_eq!(args.params.staff, 40);
        assert_eq!(args.events, PathBuf::from("var/sim/seed7.events.jsonl"));
        assert!(a(&["--days", "0"]).is_err());
        assert!(a(&["--seed", "x"]).is_err());
        assert!(a(&["--bogus"]).is_err());
        assert_eq!(a(&[]).unwrap().params, Params::standard(1));
    }
}
