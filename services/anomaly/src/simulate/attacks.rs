//! Abuse, as insiders and intruders actually do it, each incident by a real member of staff
//! (or their stolen account) on a real day. Every event an incident causes is labelled with it;
//! nothing in the events themselves says so: the attackers use the same sessions, addresses,
//! agents, purposes, reasons and request shapes as everyone else (a stolen account's new
//! address and agent come from the same pools honest staff at home use).

use std::collections::HashMap;

use custodian_events::{AccessAction, AccessOutcome, Source};
use rand::{seq::SliceRandom, Rng};

use super::{
    activity::{Grant, ShiftKind, Sim, BREAK_GLASS_REASONS},
    emit::{self, Access, Ctx, Ms, DAY, HOUR, MIN, SEC},
    world::{public_ip, DeptKind, StaffKind, AGENTS, PERSONAL_AGENTS},
    Kind,
};

use AccessAction::{Read, Search};

/// One incident: its kind and who did it.
#[derive(Debug, Clone)]
pub struct Incident {
    pub id: String,
    pub kind: Kind,
}

const CHART_LOOKS: &[(AccessAction, &str)] = &[
    (Read, "Patient"),
    (Search, "Condition"),
    (Search, "Observation"),
    (Search, "DocumentReference"),
    (Read, "DocumentReference"),
    (Search, "MedicationRequest"),
    (Search, "Encounter"),
];

impl Sim<'_> {
    /// Injects `per_kind` incidents of every kind.
    pub fn inject(&mut self, per_kind: usize) -> Vec<Incident> {
        let mut incidents = Vec::new();
        for round in 0..per_kind {
            for kind in Kind::ALL {
                let index = incidents.len();
                incidents.push(Incident {
                    id: format!("inc-{:03}", index + 1),
                    kind,
                });
                // Retry with other actors and days when a draw finds nothing to do.
                let mut done = false;
                for attempt in 0..20 {
                    if self.incident(kind, index, round + attempt) {
                        done = true;
                        break;
                    }
                }
                self.sink.incident = None;
                if !done {
                    incidents.pop();
                }
            }
        }
        incidents
    }

    fn incident(&mut self, kind: Kind, index: usize, variant: usize) -> bool {
        match kind {
            Kind::SnoopVip => self.snoop(index, true),
            Kind::SnoopColleague => self.snoop(index, false),
            Kind::SnoopNeighbour => self.snoop_neighbour(index),
            Kind::StolenCredentials => self.stolen(index),
            Kind::Exfiltration => self.exfiltrate(index, variant),
            Kind::Enumeration => self.enumerate(index, variant),
            Kind::BreakGlassAbuse => self.break_glass_abuse(index, variant),
            Kind::RoleMisuse => self.role_misuse(index, variant),
            Kind::DeniedBurst => self.denied_burst(index, variant),
        }
    }

    /// The first time incidents may start: after a day of history when there is one.
    fn earliest(&self) -> Ms {
        if self.horizon >= 3 * DAY {
            DAY
        } else {
            6 * HOUR
        }
    }

    /// A random on-site shift of a hospital practitioner of `kinds` and a moment in it.
    fn moment(&mut self, kinds: &[StaffKind], org: usize) -> Option<(usize, Ms)> {
        let earliest = self.earliest();
        let candidates: Vec<usize> = (0..self.shifts.len())
            .filter(|&i| {
                let s = &self.shifts[i];
                let m = &self.world.staff[s.staff];
                s.kind == ShiftKind::Onsite
                    && m.org == org
                    && kinds.contains(&m.kind)
                    && s.start >= earliest
                    && s.end - s.start > 2 * HOUR
            })
            .collect();
        let &i = candidates.choose(&mut self.rng)?;
        let shift = self.shifts[i].clone();
        let t = self
            .rng
            .gen_range(shift.start + 40 * MIN..shift.end - 40 * MIN);
        Some((shift.staff, t))
    }

    fn label(&mut self, index: usize) {
        self.sink.incident = Some(index);
    }

    /// A few looks at one chart at an ordinary pace, inside the actor's own session.
    fn looks(&mut self, ctx: &Ctx, mut t: Ms, patient: usize, n: usize, grant: &Grant) -> Ms {
        let mut steps: Vec<(AccessAction, &'static str)> = CHART_LOOKS.to_vec();
        steps.shuffle(&mut self.rng);
        for &step in steps.iter().take(n) {
            self.touch(ctx, t, patient, step, grant, "TREAT");
            t += self.rng.gen_range(8 * SEC..150 * SEC);
        }
        t
    }

    /// Curiosity about a VIP's or a colleague's record: one to four looks during an ordinary
    /// shift, by someone with no part in her care.
    fn snoop(&mut self, index: usize, vip: bool) -> bool {
        let world = self.world;
        let targets: Vec<usize> = world
            .main_patients()
            .filter(|&p| {
                if vip {
                    world.patients[p].vip
                } else {
                    world.patients[p].staff.is_some()
                }
            })
            .collect();
        let Some(&target) = targets.choose(&mut self.rng) else {
            return false;
        };
        let kinds = [
            StaffKind::Nurse,
            StaffKind::Physician,
            StaffKind::Clerk,
            StaffKind::Pharmacist,
        ];
        // A VIP in the hospital draws the curious while she is there.
        let stay = self
            .stays
            .iter()
            .find(|s| s.patient == target && s.end > self.earliest())
            .cloned();
        let (actor, t) = if let (Some(stay), true) = (stay.as_ref(), self.rng.gen_bool(0.7)) {
            let at = stay.start.max(self.earliest())
                + self
                    .rng
                    .gen_range(0..(stay.end - stay.start).clamp(HOUR, 2 * DAY));
            let pool: Vec<usize> = (0..world.staff.len())
                .filter(|&s| {
                    world.staff[s].org == 0
                        && kinds.contains(&world.staff[s].kind)
                        && world.staff[s].dept != stay.dept
                        && self
                            .shift_at(s, at)
                            .is_some_and(|sh| sh.kind == ShiftKind::Onsite && sh.dept != stay.dept)
                })
                .collect();
            match pool.choose(&mut self.rng) {
                Some(&s) => (s, at),
                None => return false,
            }
        } else if !vip && self.rng.gen_bool(0.6) {
            // A colleague from the same department.
            let colleague = world.patients[target].staff.unwrap_or(0);
            let dept = world.staff[colleague].dept;
            let shifts: Vec<usize> = (0..self.shifts.len())
                .filter(|&i| {
                    let sh = &self.shifts[i];
                    sh.staff != colleague
                        && world.staff[sh.staff].dept == dept
                        && sh.kind == ShiftKind::Onsite
                        && sh.start >= self.earliest()
                })
                .collect();
            let Some(&i) = shifts.choose(&mut self.rng) else {
                return false;
            };
            let sh = self.shifts[i].clone();
            (sh.staff, self.uniform(sh.start + 30 * MIN, sh.end - MIN))
        } else {
            match self.moment(&kinds, 0) {
                Some(m) => m,
                None => return false,
            }
        };
        if world.patients[target].staff == Some(actor) {
            return false;
        }
        let ctx = self.ctx(actor, t);
        self.label(index);
        let n = self.rng.gen_range(1..=4);
        self.looks(&ctx, t, target, n, &Grant::Custodian);
        true
    }

    /// A neighbour's or a relative's record: no care, a few looks, sometimes again a day later.
    fn snoop_neighbour(&mut self, index: usize) -> bool {
        let kinds = [
            StaffKind::Nurse,
            StaffKind::Physician,
            StaffKind::Clerk,
            StaffKind::Coder,
        ];
        let Some((actor, t)) = self.moment(&kinds, 0) else {
            return false;
        };
        let world = self.world;
        let Some(target) = world.mrn_order.choose(&mut self.rng).copied() else {
            return false;
        };
        if self.in_care(target, t)
            || world.patients[target].staff.is_some()
            || world.patients[target].vip
        {
            return false;
        }
        let ctx = self.ctx(actor, t);
        self.label(index);
        let n = self.rng.gen_range(2..=5);
        self.looks(&ctx, t, target, n, &Grant::Custodian);
        if self.rng.gen_bool(0.4) {
            let later = t + DAY + self.rng.gen_range(-3 * HOUR..3 * HOUR);
            if self
                .shift_at(actor, later)
                .is_some_and(|s| s.kind == ShiftKind::Onsite)
            {
                self.sink.incident = None;
                let ctx = self.ctx(actor, later);
                self.label(index);
                let n = self.rng.gen_range(1..=2);
                self.looks(&ctx, later, target, n, &Grant::Custodian);
            }
        }
        true
    }

    /// Someone else with a member of staff's password: a new address and device for that
    /// account, at night or on a day off, harvesting demographics and coverage.
    fn stolen(&mut self, index: usize) -> bool {
        let world = self.world;
        let victims: Vec<usize> = (0..world.staff.len())
            .filter(|&s| {
                world.staff[s].org == 0
                    && matches!(
                        world.staff[s].kind,
                        StaffKind::Physician
                            | StaffKind::Nurse
                            | StaffKind::Clerk
                            | StaffKind::Coder
                    )
            })
            .collect();
        let Some(&victim) = victims.choose(&mut self.rng) else {
            return false;
        };
        let first = self.earliest().div_euclid(DAY);
        let day = self.rng.gen_range(first..self.params.days.max(1) as i64);
        let t = if self.rng.gen_bool(0.7) {
            day * DAY + self.rng.gen_range(30 * MIN..5 * HOUR)
        } else {
            day * DAY + self.rng.gen_range(13 * HOUR..22 * HOUR)
        };
        if t >= self.horizon || self.shift_at(victim, t).is_some() {
            return false;
        }
        let member = &world.staff[victim];
        let agents: Vec<usize> = PERSONAL_AGENTS
            .iter()
            .copied()
            .filter(|a| !member.devices.contains(a))
            .collect();
        let agent = agents.choose(&mut self.rng).copied().unwrap_or(8);
        let ctx = Ctx {
            actor: self.ctx_actor(victim),
            source: Source {
                ip: Some(public_ip(&mut self.rng)),
                user_agent: AGENTS.get(agent).map(|a| a.to_string()),
            },
            own_patient: None,
        };
        self.label(index);
        let mut t = t;
        // The password did not always work at once.
        if self.rng.gen_bool(0.5) {
            for _ in 0..self.rng.gen_range(1..4) {
                emit::login(
                    &mut self.sink,
                    &mut self.rng,
                    t,
                    &ctx,
                    true,
                    AccessOutcome::Deny,
                    "bad-credentials",
                );
                t += self.rng.gen_range(15 * SEC..90 * SEC);
            }
        }
        emit::login(
            &mut self.sink,
            &mut self.rng,
            t,
            &ctx,
            true,
            AccessOutcome::Permit,
            "password",
        );
        t += self.rng.gen_range(20 * SEC..3 * MIN);
        let searches = self.rng.gen_range(2..7);
        for _ in 0..searches {
            let n = self.rng.gen_range(8..40);
            let mut found: Vec<usize> = world
                .mrn_order
                .choose_multiple(&mut self.rng, n)
                .copied()
                .collect();
            found.sort_unstable();
            self.broad_search(&ctx, t, "Patient", &found, &|_| Grant::Custodian, "TREAT");
            t += self.rng.gen_range(20 * SEC..2 * MIN);
            let k = self.rng.gen_range(2..8);
            for p in found
                .choose_multiple(&mut self.rng, k)
                .copied()
                .collect::<Vec<_>>()
            {
                self.touch(&ctx, t, p, (Read, "Patient"), &Grant::Custodian, "TREAT");
                t += self.rng.gen_range(5 * SEC..40 * SEC);
                if self.rng.gen_bool(0.6) {
                    self.touch(&ctx, t, p, (Search, "Coverage"), &Grant::Custodian, "TREAT");
                    t += self.rng.gen_range(5 * SEC..30 * SEC);
                }
                if self.rng.gen_bool(0.2) {
                    self.touch(
                        &ctx,
                        t,
                        p,
                        (Search, "RelatedPerson"),
                        &Grant::Custodian,
                        "TREAT",
                    );
                    t += self.rng.gen_range(5 * SEC..30 * SEC);
                }
            }
        }
        true
    }

    /// Copying records out: whole charts (`$everything`) or long paged lists, in one to three
    /// sessions, at work or from home in the evening; some quick, some slow.
    fn exfiltrate(&mut self, index: usize, variant: usize) -> bool {
        let kinds = [
            StaffKind::Physician,
            StaffKind::Coder,
            StaffKind::Researcher,
            StaffKind::Clerk,
            StaffKind::Nurse,
        ];
        let Some((actor, t0)) = self.moment(&kinds, 0) else {
            return false;
        };
        let sessions = self.rng.gen_range(1..4);
        let world = self.world;
        let mut t = t0;
        for session in 0..sessions {
            if t >= self.horizon {
                break;
            }
            self.sink.incident = None;
            let home = session > 0 && self.rng.gen_bool(0.5);
            let ctx = if home {
                // That day's evening, through the VPN, on one of their own devices.
                t = t.div_euclid(DAY) * DAY + self.rng.gen_range(19 * HOUR..23 * HOUR);
                let member = &world.staff[actor];
                let agent = member.devices.choose(&mut self.rng).copied().unwrap_or(3);
                let ctx = Ctx {
                    actor: self.ctx_actor(actor),
                    source: Source {
                        // Clinical data is reachable from home only through the VPN.
                        ip: Some(super::world::vpn_ip(&mut self.rng)),
                        user_agent: AGENTS.get(agent).map(|a| a.to_string()),
                    },
                    own_patient: None,
                };
                self.label(index);
                self.open(&ctx, t - 30 * SEC);
                ctx
            } else {
                let ctx = self.ctx(actor, t);
                self.label(index);
                ctx
            };
            let slow = (variant + session) % 2 == 1;
            if self.rng.gen_bool(0.5) {
                let n = if slow {
                    self.rng.gen_range(8..20)
                } else {
                    self.rng.gen_range(20..60)
                };
                let chosen: Vec<usize> = world
                    .mrn_order
                    .choose_multiple(&mut self.rng, n)
                    .copied()
                    .collect();
                for p in chosen {
                    self.everything(&ctx, t, p, &Grant::Custodian, "TREAT");
                    t += if slow {
                        self.rng.gen_range(40 * SEC..4 * MIN)
                    } else {
                        self.rng.gen_range(4 * SEC..25 * SEC)
                    };
                }
            } else {
                let pages = if slow {
                    self.rng.gen_range(2..5)
                } else {
                    self.rng.gen_range(4..12)
                };
                let rt = *["Patient", "Condition", "Observation"]
                    .choose(&mut self.rng)
                    .unwrap_or(&"Patient");
                let start = self.rng.gen_range(0..world.mrn_order.len().max(1));
                for page in 0..pages {
                    let from = (start + page * 100) % world.mrn_order.len().max(1);
                    let chunk: Vec<usize> = world
                        .mrn_order
                        .iter()
                        .cycle()
                        .skip(from)
                        .take(100)
                        .copied()
                        .collect();
                    self.broad_search(&ctx, t, rt, &chunk, &|_| Grant::Custodian, "TREAT");
                    t += if slow {
                        self.rng.gen_range(2 * MIN..10 * MIN)
                    } else {
                        self.rng.gen_range(5 * SEC..40 * SEC)
                    };
                }
            }
            t += self.rng.gen_range(6 * HOUR..30 * HOUR);
            if self.shift_at(actor, t).is_none() && session + 1 < sessions {
                // Back at work on their next shift.
                if let Some(next) = self.shifts_of[actor]
                    .iter()
                    .map(|&i| self.shifts[i].clone())
                    .find(|s| s.start > t && s.kind == ShiftKind::Onsite)
                {
                    t = next.start
                        + self
                            .rng
                            .gen_range(HOUR..3 * HOUR)
                            .min((next.end - next.start) / 2);
                }
            }
        }
        true
    }

    /// Sweeping the patient list: record numbers one after another (the gaps answer "not
    /// found"), or name searches letter by letter with hardly a chart opened.
    fn enumerate(&mut self, index: usize, variant: usize) -> bool {
        let kinds = [
            StaffKind::Clerk,
            StaffKind::Nurse,
            StaffKind::Physician,
            StaffKind::Coder,
        ];
        let Some((actor, mut t)) = self.moment(&kinds, 0) else {
            return false;
        };
        let world = self.world;
        let ctx = self.ctx(actor, t);
        self.label(index);
        if variant.is_multiple_of(2) {
            let by_number: HashMap<u64, usize> = world
                .main_patients()
                .filter_map(|p| {
                    world.patients[p]
                        .reference
                        .strip_prefix("Patient/")?
                        .parse()
                        .ok()
                        .map(|n| (n, p))
                })
                .collect();
            let Some(&first) = world.mrn_order.choose(&mut self.rng) else {
                return false;
            };
            let Some(mut number) = world.patients[first]
                .reference
                .strip_prefix("Patient/")
                .and_then(|n| n.parse::<u64>().ok())
            else {
                return false;
            };
            let n = self.rng.gen_range(30..120);
            let pace = if self.rng.gen_bool(0.5) {
                (3 * SEC, 15 * SEC)
            } else {
                (20 * SEC, 90 * SEC)
            };
            for _ in 0..n {
                match by_number.get(&number) {
                    Some(&p) => {
                        self.touch(&ctx, t, p, (Read, "Patient"), &Grant::Custodian, "TREAT")
                    }
                    None => {
                        let access = Access::absent(Read, "Patient");
                        let request = emit::request_id(&mut self.rng);
                        emit::access(
                            &mut self.sink,
                            &mut self.rng,
                            world,
                            t,
                            &ctx,
                            &access,
                            &request,
                        );
                    }
                }
                number += 1;
                t += self.rng.gen_range(pace.0..pace.1);
            }
        } else {
            let searches = self.rng.gen_range(12..40);
            for _ in 0..searches {
                let n = self.rng.gen_range(3..30);
                let mut found: Vec<usize> = world
                    .mrn_order
                    .choose_multiple(&mut self.rng, n)
                    .copied()
                    .collect();
                found.sort_unstable();
                self.broad_search(&ctx, t, "Patient", &found, &|_| Grant::Custodian, "TREAT");
                t += self.rng.gen_range(15 * SEC..3 * MIN);
                if self.rng.gen_bool(0.15) {
                    if let Some(&p) = found.choose(&mut self.rng) {
                        self.touch(&ctx, t, p, (Read, "Patient"), &Grant::Custodian, "TREAT");
                        t += self.rng.gen_range(10 * SEC..60 * SEC);
                    }
                }
            }
        }
        true
    }

    /// Breaking the glass with no emergency: a ward practitioner on a record held elsewhere,
    /// a partner's physician on one of ours, or an ED physician who breaks it on patients
    /// never seen in the ED, again and again.
    fn break_glass_abuse(&mut self, index: usize, variant: usize) -> bool {
        let world = self.world;
        let reason = |sim: &mut Sim<'_>| {
            BREAK_GLASS_REASONS
                .choose(&mut sim.rng)
                .copied()
                .unwrap_or("urgent review")
        };
        match variant % 3 {
            0 | 1 => {
                let partner = variant % 3 == 1;
                let org = if partner { 1 } else { 0 };
                let (actor, t) = if partner {
                    let pool: Vec<usize> = (0..self.shifts.len())
                        .filter(|&i| {
                            world.staff[self.shifts[i].staff].org == 1
                                && world.staff[self.shifts[i].staff].kind == StaffKind::Physician
                                && self.shifts[i].start >= self.earliest()
                        })
                        .collect();
                    let Some(&i) = pool.choose(&mut self.rng) else {
                        return false;
                    };
                    let sh = self.shifts[i].clone();
                    (
                        sh.staff,
                        self.uniform(sh.start + 30 * MIN, sh.end - 30 * MIN),
                    )
                } else {
                    match self.moment(&[StaffKind::Physician, StaffKind::Nurse], 0) {
                        Some(m) => m,
                        None => return false,
                    }
                };
                if !partner && world.depts[world.staff[actor].dept].kind == DeptKind::Emergency {
                    return false;
                }
                let targets: Vec<usize> = (0..world.patients.len())
                    .filter(|&p| !world.visible_to(p, org) && !self.in_care(p, t))
                    .collect();
                let vips: Vec<usize> = targets
                    .iter()
                    .copied()
                    .filter(|&p| world.patients[p].vip)
                    .collect();
                let target = if !vips.is_empty() && self.rng.gen_bool(0.4) {
                    vips.choose(&mut self.rng)
                } else {
                    targets.choose(&mut self.rng)
                };
                let Some(&target) = target else { return false };
                let ctx = self.ctx(actor, t);
                self.label(index);
                let mut t = t;
                self.touch(
                    &ctx,
                    t,
                    target,
                    (Search, "Condition"),
                    &Grant::Denied("no-permit"),
                    "TREAT",
                );
                t += self.rng.gen_range(30 * SEC..4 * MIN);
                let why = reason(self);
                let n = self.rng.gen_range(2..6);
                self.looks(&ctx, t, target, n, &Grant::BreakGlass(why));
                true
            }
            _ => {
                let ed = world
                    .depts
                    .iter()
                    .position(|d| d.kind == DeptKind::Emergency)
                    .unwrap_or(0);
                let docs: Vec<usize> = (0..world.staff.len())
                    .filter(|&s| {
                        world.staff[s].dept == ed && world.staff[s].kind == StaffKind::Physician
                    })
                    .collect();
                let Some(&actor) = docs.choose(&mut self.rng) else {
                    return false;
                };
                let shifts: Vec<_> = self.shifts_of[actor]
                    .iter()
                    .map(|&i| self.shifts[i].clone())
                    .filter(|s| s.start >= self.earliest())
                    .collect();
                if shifts.len() < 2 {
                    return false;
                }
                let times = self.rng.gen_range(3..7);
                let mut any = false;
                for _ in 0..times {
                    let Some(sh) = shifts.choose(&mut self.rng).cloned() else {
                        break;
                    };
                    let t = self.uniform(sh.start + 20 * MIN, sh.end - 20 * MIN);
                    let targets: Vec<usize> = (0..world.patients.len())
                        .filter(|&p| {
                            world.patients[p].custodian != 0
                                && !world.visible_to(p, 0)
                                && !self.in_care(p, t)
                        })
                        .collect();
                    let Some(&target) = targets.choose(&mut self.rng) else {
                        continue;
                    };
                    self.sink.incident = None;
                    let ctx = self.ctx(actor, t);
                    self.label(index);
                    self.touch(
                        &ctx,
                        t,
                        target,
                        (Search, "Condition"),
                        &Grant::Denied("no-permit"),
                        "TREAT",
                    );
                    let why = reason(self);
                    let n = self.rng.gen_range(2..5);
                    let at = t + self.rng.gen_range(20 * SEC..2 * MIN);
                    self.looks(&ctx, at, target, n, &Grant::BreakGlass(why));
                    any = true;
                }
                any
            }
        }
    }

    /// Reading what the role never reads: an administrator opening charts (refused by role),
    /// a service's credentials used from a desk to read notes, a pharmacist or clerk reading
    /// clinical notes.
    fn role_misuse(&mut self, index: usize, variant: usize) -> bool {
        let world = self.world;
        match variant % 3 {
            0 => {
                let Some((actor, mut t)) = self.moment(&[StaffKind::Admin], 0) else {
                    return false;
                };
                let ctx = self.ctx(actor, t);
                self.label(index);
                let n = self.rng.gen_range(3..10);
                for _ in 0..n {
                    let p = world.mrn_order.choose(&mut self.rng).copied();
                    let rt = *["Patient", "Observation", "Condition", "DocumentReference"]
                        .choose(&mut self.rng)
                        .unwrap_or(&"Patient");
                    let access = Access::permit(Read, rt, p, 0)
                        .purpose("HOPERAT")
                        .deny("role");
                    let request = emit::request_id(&mut self.rng);
                    emit::access(
                        &mut self.sink,
                        &mut self.rng,
                        world,
                        t,
                        &ctx,
                        &access,
                        &request,
                    );
                    t += self.rng.gen_range(20 * SEC..4 * MIN);
                }
                true
            }
            1 => {
                // The pharmacy system's client secret, used from a workstation by a script.
                let Some((_, mut t)) = self.moment(&[StaffKind::Pharmacist, StaffKind::Nurse], 0)
                else {
                    return false;
                };
                let svc = &world.services[1];
                let depts: Vec<_> = world
                    .depts
                    .iter()
                    .filter(|d| d.org == 0 && !d.workstations.is_empty())
                    .collect();
                let Some(dept) = depts.choose(&mut self.rng) else {
                    return false;
                };
                let ip = dept.workstations.choose(&mut self.rng).cloned();
                let ctx = Ctx {
                    actor: custodian_events::Actor {
                        id: svc.client_id.to_string(),
                        role: "service".into(),
                        organization: Some(world.orgs[0].reference.clone()),
                        department: None,
                        practitioner: None,
                    },
                    source: Source {
                        ip,
                        user_agent: AGENTS.get(10).map(|a| a.to_string()),
                    },
                    own_patient: None,
                };
                self.label(index);
                self.open(&ctx, t);
                t += self.rng.gen_range(10 * SEC..60 * SEC);
                let n = self.rng.gen_range(4..16);
                for p in world
                    .mrn_order
                    .choose_multiple(&mut self.rng, n)
                    .copied()
                    .collect::<Vec<_>>()
                {
                    let rt = *["DocumentReference", "Condition", "Patient"]
                        .choose(&mut self.rng)
                        .unwrap_or(&"DocumentReference");
                    let action = if rt == "Patient" { Read } else { Search };
                    self.touch(&ctx, t, p, (action, rt), &Grant::Custodian, "TREAT");
                    t += self.rng.gen_range(10 * SEC..2 * MIN);
                }
                true
            }
            _ => {
                let Some((actor, t)) = self.moment(
                    &[
                        StaffKind::Pharmacist,
                        StaffKind::Clerk,
                        StaffKind::Radiologist,
                    ],
                    0,
                ) else {
                    return false;
                };
                let ctx = self.ctx(actor, t);
                self.label(index);
                let n = self.rng.gen_range(2..6);
                let mut t = t;
                // Notes and diagnoses, restricted records first.
                let restricted: Vec<usize> = world
                    .main_patients()
                    .filter(|&p| world.patients[p].conf != super::world::Conf::Normal)
                    .collect();
                for _ in 0..n {
                    let p = if self.rng.gen_bool(0.5) {
                        restricted.choose(&mut self.rng)
                    } else {
                        world.mrn_order.choose(&mut self.rng)
                    };
                    let Some(&p) = p else { continue };
                    for step in [
                        (Search, "DocumentReference"),
                        (Read, "DocumentReference"),
                        (Search, "Condition"),
                    ] {
                        if self.rng.gen_bool(0.75) {
                            self.touch(&ctx, t, p, step, &Grant::Custodian, "TREAT");
                            t += self.rng.gen_range(10 * SEC..90 * SEC);
                        }
                    }
                    t += self.rng.gen_range(MIN..10 * MIN);
                }
                true
            }
        }
    }

    /// Bursts of refusals: password guessing against a few accounts from one address, or a
    /// practitioner trying record after record they may not see.
    fn denied_burst(&mut self, index: usize, variant: usize) -> bool {
        let world = self.world;
        if variant.is_multiple_of(2) {
            let first = self.earliest().div_euclid(DAY);
            let day = self.rng.gen_range(first..self.params.days.max(1) as i64);
            let mut t = day * DAY + self.rng.gen_range(0..DAY);
            let ip = public_ip(&mut self.rng);
            let agent = *PERSONAL_AGENTS.choose(&mut self.rng).unwrap_or(&8);
            let accounts = self.rng.gen_range(1..5);
            self.label(index);
            for _ in 0..accounts {
                let Some(victim) = (0..world.staff.len())
                    .collect::<Vec<_>>()
                    .choose(&mut self.rng)
                    .copied()
                else {
                    return false;
                };
                let known = self.rng.gen_bool(0.8);
                let ctx = Ctx {
                    actor: self.ctx_actor(victim),
                    source: Source {
                        ip: Some(ip.clone()),
                        user_agent: AGENTS.get(agent).map(|a| a.to_string()),
                    },
                    own_patient: None,
                };
                let tries = self.rng.gen_range(4..12);
                for i in 0..tries {
                    let basis = if known && i >= 5 {
                        "locked-out"
                    } else {
                        "bad-credentials"
                    };
                    emit::login(
                        &mut self.sink,
                        &mut self.rng,
                        t,
                        &ctx,
                        known,
                        AccessOutcome::Deny,
                        basis,
                    );
                    t += self.rng.gen_range(2 * SEC..40 * SEC);
                }
            }
            true
        } else {
            let Some((actor, mut t)) = self.moment(
                &[StaffKind::Physician, StaffKind::Nurse, StaffKind::Clerk],
                0,
            ) else {
                return false;
            };
            let ctx = self.ctx(actor, t);
            self.label(index);
            let hidden: Vec<usize> = (0..world.patients.len())
                .filter(|&p| !world.visible_to(p, 0))
                .collect();
            let n = self.rng.gen_range(6..16);
            for p in hidden
                .choose_multiple(&mut self.rng, n)
                .copied()
                .collect::<Vec<_>>()
            {
                let step = *[
                    (Read, "Patient"),
                    (Search, "Condition"),
                    (Search, "Observation"),
                ]
                .choose(&mut self.rng)
                .unwrap_or(&(Read, "Patient"));
                self.touch(&ctx, t, p, step, &Grant::Denied("no-permit"), "TREAT");
                t += self.rng.gen_range(10 * SEC..2 * MIN);
            }
            true
        }
    }
}
