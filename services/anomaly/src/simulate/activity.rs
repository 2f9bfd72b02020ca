//! Honest work: shifts and login sessions, the ward census, and the care around it (ward
//! rounds, admissions, the emergency department with its legitimate break-the-glass, consults,
//! covering colleagues, radiology, pharmacy, coding, case management, research, the partners,
//! patients reading their own record, and the backend services).

use custodian_events::{AccessAction, AccessOutcome, Actor, Source};
use rand::{seq::SliceRandom, Rng};
use rand_chacha::ChaCha8Rng;

use super::{
    emit::{self, Access, Ctx, Ms, Sink, DAY, HOUR, MIN, SEC},
    world::{public_ip, vpn_ip, wifi_ip, Conf, DeptKind, StaffKind, World, AGENTS, RESOURCE_TYPES},
    Params,
};

use AccessAction::{Create, Read, Search, Update};

/// Reasons practitioners type when they break the glass (the attackers type the same).
pub const BREAK_GLASS_REASONS: &[&str] = &[
    "unconscious, no consent on file",
    "trauma call, patient unable to consent",
    "chest pain, history needed urgently",
    "emergency admission, transferred from partner hospital",
    "suspected overdose, medication history needed",
    "patient confused, cannot give history",
    "urgent review",
    "emergency",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftKind {
    Onsite,
    /// At home, reachable: sessions only when paged.
    OnCall,
    /// Working from home.
    Remote,
}

#[derive(Debug, Clone)]
pub struct Shift {
    pub staff: usize,
    pub start: Ms,
    pub end: Ms,
    /// Where they work this shift (another ward's when covering).
    pub dept: usize,
    pub kind: ShiftKind,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub start: Ms,
    pub end: Ms,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub struct Stay {
    pub patient: usize,
    pub dept: usize,
    pub start: Ms,
    pub end: Ms,
    pub attending: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct EdVisit {
    pub patient: usize,
    pub start: Ms,
    pub end: Ms,
}

/// How an access to a patient is decided for an actor.
#[derive(Debug, Clone)]
pub enum Grant {
    Custodian,
    Consent(String),
    Own,
    BreakGlass(&'static str),
    Denied(&'static str),
}

/// The state of a run: the world, the calendar, and where events go.
pub struct Sim<'a> {
    pub rng: ChaCha8Rng,
    pub world: &'a World,
    pub params: &'a Params,
    pub sink: Sink,
    pub shifts: Vec<Shift>,
    /// Shifts of each staff member, in `shifts`.
    pub shifts_of: Vec<Vec<usize>>,
    pub sessions: Vec<Vec<Session>>,
    pub stays: Vec<Stay>,
    pub ed_visits: Vec<EdVisit>,
    /// Consults: (patient, consultant, when asked).
    pub consults: Vec<(usize, usize, Ms)>,
    /// Outpatient clinic visits: (patient, physician, when the chart was opened). The visit's
    /// Encounter exists from check-in, before the physician opens the chart.
    pub clinic_visits: Vec<(usize, usize, Ms)>,
    /// The partner hospital's inpatients by day: (patient, department, day).
    pub partner_caseload: std::collections::BTreeSet<(usize, usize, i64)>,
    busy_until: Vec<Ms>,
    /// Sessions of the services (token per hour): (service, hour) already logged in.
    service_hours: std::collections::HashSet<(usize, i64)>,
    pub horizon: Ms,
}

fn steps(s: &[(AccessAction, &'static str)]) -> Vec<(AccessAction, &'static str)> {
    s.to_vec()
}

impl<'a> Sim<'a> {
    pub fn new(world: &'a World, params: &'a Params, rng: ChaCha8Rng, sink: Sink) -> Self {
        Self {
            rng,
            world,
            params,
            sink,
            shifts: Vec::new(),
            shifts_of: vec![Vec::new(); world.staff.len()],
            sessions: vec![Vec::new(); world.staff.len()],
            stays: Vec::new(),
            ed_visits: Vec::new(),
            consults: Vec::new(),
            clinic_visits: Vec::new(),
            partner_caseload: std::collections::BTreeSet::new(),
            busy_until: vec![i64::MIN; world.patients.len()],
            service_hours: Default::default(),
            horizon: params.days as i64 * DAY,
        }
    }

    /// A time in `[lo, hi)`, or `lo` when the range is empty (shifts cut at the period's ends).
    pub fn uniform(&mut self, lo: Ms, hi: Ms) -> Ms {
        if hi <= lo {
            lo
        } else {
            self.rng.gen_range(lo..hi)
        }
    }

    fn exp(&mut self, mean: f64) -> f64 {
        let u: f64 = self.rng.gen_range(1e-9..1.0);
        -mean * u.ln()
    }

    fn poisson(&mut self, mean: f64) -> usize {
        // Knuth's method; means here are small.
        let limit = (-mean).exp();
        let mut k = 0;
        let mut p = 1.0;
        loop {
            p *= self.rng.gen::<f64>();
            if p <= limit || k > 1000 {
                return k;
            }
            k += 1;
        }
    }

    pub fn weekend(day: i64) -> bool {
        // Day 0 is a Monday.
        day.rem_euclid(7) >= 5
    }

    // ---- shifts and sessions -------------------------------------------------------------

    fn add_shift(&mut self, staff: usize, start: Ms, end: Ms, dept: usize, kind: ShiftKind) {
        let start = start.max(0);
        let end = end.min(self.horizon);
        if end <= start {
            return;
        }
        self.shifts_of[staff].push(self.shifts.len());
        self.shifts.push(Shift {
            staff,
            start,
            end,
            dept,
            kind,
        });
    }

    pub fn build_shifts(&mut self) {
        let world = self.world;
        let wards: Vec<usize> = (0..world.depts.len())
            .filter(|&d| world.depts[d].kind == DeptKind::Ward)
            .collect();
        for day in -1..self.params.days as i64 {
            let d0 = day * DAY;
            let weekend = Self::weekend(day);
            for (s, member) in world.staff.iter().enumerate() {
                let dept = &world.depts[member.dept];
                let jitter = member.start_offset * MIN;
                let j = self.uniform(-15 * MIN, 15 * MIN);
                match (member.kind, dept.kind) {
                    (StaffKind::Nurse, DeptKind::Ward | DeptKind::Emergency) => {
                        if !self.rng.gen_bool(if weekend { 0.38 } else { 0.45 }) {
                            continue;
                        }
                        let night = if member.night {
                            self.rng.gen_bool(0.85)
                        } else {
                            self.rng.gen_bool(0.08)
                        };
                        let start = d0 + if night { 19 * HOUR } else { 7 * HOUR } + j / 3;
                        let end = start + 12 * HOUR + 30 * MIN + self.uniform(0, 40 * MIN);
                        // Floated to another ward for the shift, now and then.
                        let at = if dept.kind == DeptKind::Ward && self.rng.gen_bool(0.07) {
                            wards.choose(&mut self.rng).copied().unwrap_or(member.dept)
                        } else {
                            member.dept
                        };
                        self.add_shift(s, start, end, at, ShiftKind::Onsite);
                    }
                    (StaffKind::Nurse, _) => {
                        if weekend || !self.rng.gen_bool(0.7) {
                            continue;
                        }
                        let start = d0 + 7 * HOUR + 30 * MIN + j;
                        self.add_shift(s, start, start + 9 * HOUR, member.dept, ShiftKind::Onsite);
                    }
                    (StaffKind::Physician, DeptKind::Emergency) => {
                        if !self.rng.gen_bool(0.55) {
                            continue;
                        }
                        let slot = if member.night {
                            23
                        } else {
                            *[7, 7, 15, 15, 23].choose(&mut self.rng).unwrap_or(&7)
                        };
                        let start = d0 + slot * HOUR + j / 3;
                        let end = start + 8 * HOUR + self.uniform(10 * MIN, 60 * MIN);
                        self.add_shift(s, start, end, member.dept, ShiftKind::Onsite);
                    }
                    (StaffKind::Physician, DeptKind::Ward) => {
                        if weekend {
                            if self.rng.gen_bool(0.28) {
                                let start = d0 + 8 * HOUR + 30 * MIN + jitter + j;
                                let end = start + 4 * HOUR + self.uniform(0, 2 * HOUR);
                                self.add_shift(s, start, end, member.dept, ShiftKind::Onsite);
                            }
                        } else if self.rng.gen_bool(0.88) {
                            let start = d0 + 8 * HOUR + jitter + j;
                            let end = d0 + 17 * HOUR + self.uniform(0, 150 * MIN) + jitter / 2;
                            self.add_shift(s, start, end, member.dept, ShiftKind::Onsite);
                        }
                    }
                    (StaffKind::Physician, _) => {
                        // The partners' physicians and the GPs keep office hours.
                        if !weekend && self.rng.gen_bool(0.85) {
                            let start = d0 + 8 * HOUR + jitter + j;
                            let end = d0 + 17 * HOUR + self.uniform(0, 90 * MIN);
                            self.add_shift(s, start, end, member.dept, ShiftKind::Onsite);
                        }
                    }
                    (StaffKind::Radiologist, _) => {
                        if !weekend && self.rng.gen_bool(0.9) {
                            let start = d0 + 8 * HOUR + jitter + j;
                            let end = d0 + 17 * HOUR + self.uniform(0, 60 * MIN);
                            self.add_shift(s, start, end, member.dept, ShiftKind::Onsite);
                        }
                    }
                    (StaffKind::Therapist, _) => {
                        if !weekend && self.rng.gen_bool(0.85) {
                            let start = d0 + 8 * HOUR + jitter + j;
                            self.add_shift(
                                s,
                                start,
                                start + 8 * HOUR + 30 * MIN,
                                member.dept,
                                ShiftKind::Onsite,
                            );
                        }
                    }
                    (StaffKind::Pharmacist, _) => {
                        let p = if weekend { 0.35 } else { 0.9 };
                        if self.rng.gen_bool(p) {
                            let start = d0 + 8 * HOUR + jitter + j;
                            self.add_shift(
                                s,
                                start,
                                start + 8 * HOUR + 30 * MIN,
                                member.dept,
                                ShiftKind::Onsite,
                            );
                        }
                    }
                    (StaffKind::Coder | StaffKind::Researcher | StaffKind::CaseManager, _) => {
                        if weekend || !self.rng.gen_bool(0.85) {
                            continue;
                        }
                        let remote = self.rng.gen_bool(member.remote_days);
                        let start = d0 + 8 * HOUR + jitter + j;
                        let end = start + 8 * HOUR + self.uniform(0, 60 * MIN);
                        let kind = if remote {
                            ShiftKind::Remote
                        } else {
                            ShiftKind::Onsite
                        };
                        self.add_shift(s, start, end, member.dept, kind);
                    }
                    (StaffKind::Clerk, _) => {
                        if !self.rng.gen_bool(0.6) {
                            continue;
                        }
                        let start = d0 + if self.rng.gen_bool(0.6) { 7 } else { 14 } * HOUR + j;
                        self.add_shift(s, start, start + 8 * HOUR, member.dept, ShiftKind::Onsite);
                    }
                    (StaffKind::Admin | StaffKind::Auditor, _) => {
                        if !weekend && self.rng.gen_bool(0.88) {
                            let start = d0 + 8 * HOUR + 30 * MIN + jitter + j;
                            self.add_shift(
                                s,
                                start,
                                start + 8 * HOUR + 30 * MIN,
                                member.dept,
                                ShiftKind::Onsite,
                            );
                        }
                    }
                }
            }
            // One physician of each ward on call from home each night; a radiologist reads
            // urgent images from home some evenings.
            for dept in 0..world.depts.len() {
                let kind = world.depts[dept].kind;
                if kind != DeptKind::Ward && kind != DeptKind::Radiology {
                    continue;
                }
                let pool: Vec<usize> = (0..world.staff.len())
                    .filter(|&s| {
                        world.staff[s].dept == dept
                            && matches!(
                                world.staff[s].kind,
                                StaffKind::Physician | StaffKind::Radiologist
                            )
                    })
                    .collect();
                if let Some(&s) = pool.choose(&mut self.rng) {
                    let (start, end) = if kind == DeptKind::Radiology {
                        (d0 + 18 * HOUR, d0 + 23 * HOUR)
                    } else {
                        (d0 + 18 * HOUR, d0 + 32 * HOUR)
                    };
                    self.add_shift(s, start, end, dept, ShiftKind::OnCall);
                }
            }
        }
    }

    /// The shift of `staff` at `t`.
    pub fn shift_at(&self, staff: usize, t: Ms) -> Option<&Shift> {
        self.shifts_of[staff]
            .iter()
            .map(|&i| &self.shifts[i])
            .find(|s| s.start <= t && t < s.end)
    }

    /// Staff of `kinds` working in `dept` at `t` (on site, remote, or on call if `on_call`).
    pub fn on_shift(&self, dept: usize, kinds: &[StaffKind], t: Ms, on_call: bool) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .shifts
            .iter()
            .filter(|s| {
                s.dept == dept
                    && s.start <= t
                    && t < s.end
                    && (on_call || s.kind != ShiftKind::OnCall)
                    && kinds.contains(&self.world.staff[s.staff].kind)
            })
            .map(|s| s.staff)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn pick_on_shift(
        &mut self,
        dept: usize,
        kinds: &[StaffKind],
        t: Ms,
        on_call: bool,
    ) -> Option<usize> {
        let pool = self.on_shift(dept, kinds, t, on_call);
        pool.choose(&mut self.rng).copied()
    }

    /// The agent the hospital's workstations run in `dept` at `t` (one fleet update mid-run).
    fn fleet_agent(&self, dept: usize, t: Ms) -> usize {
        let edge = dept % 4 == 1;
        let updated = t >= self.world.browser_update_day * DAY + 6 * HOUR;
        match (updated, edge) {
            (false, false) => 0,
            (false, true) => 1,
            (true, false) => 13,
            (true, true) => 14,
        }
    }

    /// The actor fields of `staff`, as identity puts them in the token.
    pub fn ctx_actor(&self, staff: usize) -> Actor {
        let member = &self.world.staff[staff];
        let department =
            (member.role == "practitioner").then(|| self.world.depts[member.dept].name.to_string());
        Actor {
            id: member.id.clone(),
            role: member.role.to_string(),
            organization: Some(self.world.orgs[member.org].reference.clone()),
            department,
            practitioner: None,
        }
    }

    /// Where `staff` connects from for a new session at `t` on `shift`.
    fn new_source(&mut self, staff: usize, t: Ms, shift: Option<&Shift>) -> Source {
        let member = &self.world.staff[staff];
        let kind = shift.map(|s| s.kind).unwrap_or(ShiftKind::Remote);
        let dept = shift.map(|s| s.dept).unwrap_or(member.dept);
        let (ip, agent) = if member.org != 0 {
            let nat = &self.world.orgs[member.org].nat;
            let ip = nat.choose(&mut self.rng).cloned().unwrap_or_default();
            (
                ip,
                if member.org == 1 {
                    1
                } else {
                    member.devices[0]
                },
            )
        } else if kind == ShiftKind::Onsite {
            if member.tablet && self.rng.gen_bool(0.3) {
                (wifi_ip(&mut self.rng), 4)
            } else {
                let ws = &self.world.depts[dept].workstations;
                let ip = ws.choose(&mut self.rng).cloned().unwrap_or_default();
                (ip, self.fleet_agent(dept, t))
            }
        } else {
            let mut agent = member.devices.choose(&mut self.rng).copied().unwrap_or(3);
            if let Some((day, new)) = member.new_device {
                if t >= day * DAY && self.rng.gen_bool(0.7) {
                    agent = new;
                }
            }
            // Now and then from somewhere else: travelling, a phone's hotspot, a new router.
            let ip = if member.vpn {
                vpn_ip(&mut self.rng)
            } else if self.rng.gen_bool(0.1) {
                public_ip(&mut self.rng)
            } else {
                member.home_ip.clone()
            };
            (ip, agent)
        };
        Source {
            ip: Some(ip),
            user_agent: AGENTS.get(agent).map(|a| a.to_string()),
        }
    }

    /// The login session of `staff` covering `t`, opened (with its login) when there is none.
    pub fn ctx(&mut self, staff: usize, t: Ms) -> Ctx {
        let actor = self.ctx_actor(staff);
        if let Some(s) = self.sessions[staff]
            .iter()
            .find(|s| s.start <= t && t < s.end)
        {
            return Ctx {
                actor,
                source: s.source.clone(),
                own_patient: None,
            };
        }
        let shift = self.shift_at(staff, t).cloned();
        let source = self.new_source(staff, t, shift.as_ref());
        let start = t - self.uniform(5 * SEC, 90 * SEC);
        let length = match shift.as_ref().map(|s| s.kind) {
            Some(ShiftKind::Onsite) => self.uniform(40 * MIN, 200 * MIN),
            _ => self.uniform(20 * MIN, 70 * MIN),
        };
        let next = self.sessions[staff]
            .iter()
            .map(|s| s.start)
            .filter(|&s| s > t)
            .min()
            .unwrap_or(i64::MAX);
        let end = (t + length).min(next).max(t + SEC);
        let ctx = Ctx {
            actor,
            source: source.clone(),
            own_patient: None,
        };
        self.open(&ctx, start);
        self.sessions[staff].push(Session { start, end, source });
        ctx
    }

    /// A login, after a mistyped password now and then.
    pub fn open(&mut self, ctx: &Ctx, t: Ms) {
        let t = if self.rng.gen_bool(0.002) {
            // A forgotten password after a holiday: locked out, then unlocked a while later.
            let mut at = t - self.uniform(3 * MIN, 6 * MIN);
            for i in 0..6 {
                let basis = if i == 5 {
                    "locked-out"
                } else {
                    "bad-credentials"
                };
                emit::login(
                    &mut self.sink,
                    &mut self.rng,
                    at,
                    ctx,
                    true,
                    AccessOutcome::Deny,
                    basis,
                );
                at += self.uniform(10 * SEC, 40 * SEC);
            }
            t + self.uniform(10 * MIN, 30 * MIN)
        } else {
            t
        };
        if self.rng.gen_bool(0.03) {
            let typo = t - self.uniform(8 * SEC, 40 * SEC);
            emit::login(
                &mut self.sink,
                &mut self.rng,
                typo,
                ctx,
                true,
                AccessOutcome::Deny,
                "bad-credentials",
            );
            if self.rng.gen_bool(0.15) {
                let typo = typo - self.uniform(5 * SEC, 20 * SEC);
                emit::login(
                    &mut self.sink,
                    &mut self.rng,
                    typo,
                    ctx,
                    true,
                    AccessOutcome::Deny,
                    "bad-credentials",
                );
            }
        }
        let basis = if ctx.actor.role == "service" {
            "client-credentials"
        } else {
            "password"
        };
        emit::login(
            &mut self.sink,
            &mut self.rng,
            t,
            ctx,
            true,
            AccessOutcome::Permit,
            basis,
        );
    }

    // ---- deciding and emitting ------------------------------------------------------------

    /// How `org`'s staff get at `patient` for treatment.
    pub fn grant(&self, org: usize, patient: usize) -> Grant {
        if self.world.patients[patient].custodian == org {
            Grant::Custodian
        } else if let Some(c) = self.world.consent_for(patient, org) {
            Grant::Consent(c.to_string())
        } else {
            Grant::Denied("no-permit")
        }
    }

    /// One access of `patient` under `grant`; the count follows the action.
    pub fn touch(
        &mut self,
        ctx: &Ctx,
        t: Ms,
        patient: usize,
        (action, rt): (AccessAction, &'static str),
        grant: &Grant,
        purpose: &'static str,
    ) {
        let count = match action {
            Search => self.world.patients[patient].size(rt).min(50),
            _ => 1,
        };
        let mut access = Access::permit(action, rt, Some(patient), count).purpose(purpose);
        access = match grant {
            Grant::Custodian => access,
            Grant::Own => access.basis("own-record"),
            Grant::Consent(c) => access.basis("consent").consents(vec![c.clone()]),
            Grant::BreakGlass(reason) => access.break_glass(reason),
            Grant::Denied(basis) => access.deny(basis),
        };
        let request = emit::request_id(&mut self.rng);
        emit::access(
            &mut self.sink,
            &mut self.rng,
            self.world,
            t,
            ctx,
            &access,
            &request,
        );
    }

    /// A visit to one chart: `steps` a few seconds apart. Returns when it ended.
    pub fn chart(
        &mut self,
        ctx: &Ctx,
        t: Ms,
        patient: usize,
        steps: &[(AccessAction, &'static str)],
        grant: &Grant,
        purpose: &'static str,
    ) -> Ms {
        let mut now = t;
        if self.rng.gen_bool(0.004) {
            // A stale link or a mistyped id: nothing there, nothing decided.
            let rt = steps.first().map_or("Observation", |s| s.1);
            let access = Access::absent(Read, rt).purpose(purpose);
            let request = emit::request_id(&mut self.rng);
            emit::access(
                &mut self.sink,
                &mut self.rng,
                self.world,
                now,
                ctx,
                &access,
                &request,
            );
            now += self.uniform(5 * SEC, 40 * SEC);
        }
        for &step in steps {
            self.touch(ctx, now, patient, step, grant, purpose);
            now += self.uniform(3 * SEC, 45 * SEC);
        }
        now
    }

    /// `$everything` of one patient: one search event per type with data, one request.
    pub fn everything(
        &mut self,
        ctx: &Ctx,
        t: Ms,
        patient: usize,
        grant: &Grant,
        purpose: &'static str,
    ) {
        let request = emit::request_id(&mut self.rng);
        let types = RESOURCE_TYPES
            .iter()
            .map(|(rt, _, _)| *rt)
            .chain(["Patient"]);
        for (i, rt) in types.enumerate() {
            let count = self.world.patients[patient]
                .sizes
                .get(i)
                .copied()
                .unwrap_or(1);
            if count == 0 {
                continue;
            }
            let mut access = Access::permit(Search, rt, Some(patient), count).purpose(purpose);
            access = match grant {
                Grant::Own => access.basis("own-record"),
                Grant::Consent(c) => access.basis("consent").consents(vec![c.clone()]),
                _ => access,
            };
            emit::access(
                &mut self.sink,
                &mut self.rng,
                self.world,
                t,
                ctx,
                &access,
                &request,
            );
        }
    }

    /// A broad search returning `patients`: one event per patient, one request.
    pub fn broad_search(
        &mut self,
        ctx: &Ctx,
        t: Ms,
        rt: &'static str,
        patients: &[usize],
        grants: &dyn Fn(usize) -> Grant,
        purpose: &'static str,
    ) {
        let request = emit::request_id(&mut self.rng);
        if patients.is_empty() {
            let access = Access::permit(Search, rt, None, 0)
                .purpose(purpose)
                .basis("search");
            emit::access(
                &mut self.sink,
                &mut self.rng,
                self.world,
                t,
                ctx,
                &access,
                &request,
            );
            return;
        }
        for &p in patients {
            let count = if rt == "Patient" || rt == "Encounter" {
                1
            } else {
                self.rng.gen_range(1..4)
            };
            let mut access = Access::permit(Search, rt, Some(p), count).purpose(purpose);
            access = match grants(p) {
                Grant::Consent(c) => access.basis("consent").consents(vec![c]),
                _ => access,
            };
            emit::access(
                &mut self.sink,
                &mut self.rng,
                self.world,
                t,
                ctx,
                &access,
                &request,
            );
        }
    }

    // ---- the census -----------------------------------------------------------------------

    /// A patient of the hospital free over `[start, end)`, drawn with `want` preferred.
    fn free_patient(&mut self, start: Ms, end: Ms, want: &dyn Fn(usize) -> bool) -> Option<usize> {
        let main: Vec<usize> = self.world.mrn_order.clone();
        for attempt in 0..200 {
            let &p = main.choose(&mut self.rng)?;
            if self.busy_until[p] > start {
                continue;
            }
            if attempt < 150 && !want(p) {
                continue;
            }
            self.busy_until[p] = end;
            return Some(p);
        }
        None
    }

    fn los(&mut self, dept: usize) -> Ms {
        let icu = self.world.depts[dept].name == "Intensive Care";
        let mean = if icu { 1.6 } else { 3.2 };
        ((0.6 + self.exp(mean)) * DAY as f64) as Ms
    }

    fn attending(&mut self, dept: usize) -> Option<usize> {
        let pool: Vec<usize> = (0..self.world.staff.len())
            .filter(|&s| {
                self.world.staff[s].dept == dept && self.world.staff[s].kind == StaffKind::Physician
            })
            .collect();
        pool.choose(&mut self.rng).copied()
    }

    fn admit(&mut self, patient: usize, dept: usize, start: Ms, end: Ms) {
        let attending = self.attending(dept);
        self.stays.push(Stay {
            patient,
            dept,
            start,
            end,
            attending,
        });
    }

    pub fn build_census(&mut self) {
        let world = self.world;
        let wards: Vec<usize> = (0..world.depts.len())
            .filter(|&d| world.depts[d].kind == DeptKind::Ward)
            .collect();
        let psych = |p: usize| {
            world.patients[p].conf == Conf::Restricted && world.patients[p].staff.is_none()
        };
        let ordinary =
            |p: usize| world.patients[p].conf == Conf::Normal || world.patients[p].staff.is_some();
        for &dept in &wards {
            let beds = world.depts[dept].beds;
            let is_psych = world.depts[dept].name == "Psychiatry";
            let want: &dyn Fn(usize) -> bool = if is_psych { &psych } else { &ordinary };
            // Already in bed when the run starts.
            for _ in 0..(beds * 4 / 5) {
                let los = self.los(dept);
                let start = -self.uniform(0, los.max(HOUR));
                let end = start + los;
                if let Some(p) = self.free_patient(start, end, want) {
                    self.admit(p, dept, start, end);
                }
            }
            // Planned admissions on weekdays; emergencies come through the ED below.
            for day in 0..self.params.days as i64 {
                if Self::weekend(day) {
                    continue;
                }
                let n = self.poisson(beds as f64 * 0.5 / 4.0);
                for _ in 0..n {
                    let start = day * DAY + self.uniform(9 * HOUR, 15 * HOUR);
                    let los = self.los(dept);
                    if let Some(p) = self.free_patient(start, start + los, want) {
                        self.admit(p, dept, start, start + los);
                    }
                }
            }
        }
        // The emergency department: arrivals around the clock, busier by day.
        let total_beds: usize = wards.iter().map(|&d| world.depts[d].beds).sum();
        let others: Vec<usize> = (0..world.patients.len())
            .filter(|&p| world.patients[p].custodian != 0)
            .collect();
        for day in 0..self.params.days as i64 {
            let n = self.poisson(total_beds as f64 * 0.28);
            for _ in 0..n {
                let hour = loop {
                    let h = self.rng.gen_range(0..24);
                    let weight = if (9..21).contains(&h) { 1.0 } else { 0.45 };
                    if self.rng.gen_bool(weight) {
                        break h;
                    }
                };
                let start = day * DAY + hour * HOUR + self.uniform(0, HOUR);
                let end = start + self.uniform(2 * HOUR, 7 * HOUR);
                let patient = if self.rng.gen_bool(0.09) {
                    others.choose(&mut self.rng).copied()
                } else {
                    self.free_patient(start, end, &ordinary)
                };
                let Some(patient) = patient else { continue };
                self.ed_visits.push(EdVisit {
                    patient,
                    start,
                    end,
                });
                if world.patients[patient].custodian == 0 && self.rng.gen_bool(0.28) {
                    let dept = wards.choose(&mut self.rng).copied().unwrap_or(0);
                    let los = self.los(dept);
                    self.busy_until[patient] = end + los;
                    self.admit(patient, dept, end, end + los);
                }
            }
        }
        // The VIPs and the staff are patients too: some are admitted, and their care team
        // reads their (restricted) records legitimately.
        let specials: Vec<usize> = world
            .main_patients()
            .filter(|&p| world.patients[p].vip || world.patients[p].staff.is_some())
            .collect();
        for &p in &specials {
            if !self.rng.gen_bool(0.25) {
                continue;
            }
            let Some(&dept) = wards.choose(&mut self.rng) else {
                continue;
            };
            let start = self.uniform(0, self.horizon);
            let los = self.los(dept);
            if self.busy_until[p] <= start {
                self.busy_until[p] = start + los;
                self.admit(p, dept, start, start + los);
            }
        }
        self.stays.sort_by_key(|s| s.start);
        self.ed_visits.sort_by_key(|v| v.start);
    }

    /// Patients in `dept` at `t`.
    pub fn census(&self, dept: usize, t: Ms) -> Vec<usize> {
        self.stays
            .iter()
            .filter(|s| s.dept == dept && s.start <= t && t < s.end)
            .map(|s| s.patient)
            .collect()
    }

    fn ed_board(&self, t: Ms) -> Vec<usize> {
        self.ed_visits
            .iter()
            .filter(|v| v.start <= t && t < v.end && self.world.patients[v.patient].custodian == 0)
            .map(|v| v.patient)
            .collect()
    }

    /// Whether `patient` is in the hospital (a bed or the ED) around `t`.
    pub fn in_care(&self, patient: usize, t: Ms) -> bool {
        self.stays
            .iter()
            .any(|s| s.patient == patient && s.start - DAY <= t && t < s.end + DAY)
            || self
                .ed_visits
                .iter()
                .any(|v| v.patient == patient && v.start - HOUR <= t && t < v.end + DAY)
    }

    // ---- care ------------------------------------------------------------------------------

    pub fn run_care(&mut self) {
        let shifts = self.shifts.clone();
        for shift in &shifts {
            let member = &self.world.staff[shift.staff];
            let dept_kind = self.world.depts[shift.dept].kind;
            match (member.kind, dept_kind, shift.kind) {
                (StaffKind::Nurse, DeptKind::Ward, _) => self.nurse_shift(shift),
                (StaffKind::Nurse | StaffKind::Physician, DeptKind::Emergency, _) => {
                    self.ed_board_checks(shift)
                }
                (StaffKind::Physician, DeptKind::Ward, ShiftKind::Onsite) => {
                    self.physician_shift(shift)
                }
                (StaffKind::Physician | StaffKind::Radiologist, _, ShiftKind::OnCall) => {
                    self.on_call(shift)
                }
                (_, DeptKind::Partner, _) => self.partner_shift(shift),
                (StaffKind::Researcher, _, _) => self.research_shift(shift),
                (StaffKind::Admin | StaffKind::Auditor, _, _) => self.office_shift(shift),
                _ => {}
            }
        }
        let visits = self.ed_visits.clone();
        for visit in &visits {
            self.ed_visit(visit);
        }
        let stays = self.stays.clone();
        for stay in &stays {
            self.stay_services(stay);
        }
        self.services();
        self.patient_portal();
    }

    fn ward_list(&mut self, staff: usize, t: Ms, dept: usize) {
        let ctx = self.ctx(staff, t);
        let census = self.census(dept, t);
        self.broad_search(
            &ctx,
            t,
            "Encounter",
            &census,
            &|_| Grant::Custodian,
            "TREAT",
        );
    }

    fn nurse_shift(&mut self, shift: &Shift) {
        let s = shift.staff;
        let mut t = shift.start + self.uniform(5 * MIN, 25 * MIN);
        self.ward_list(s, t, shift.dept);
        let census = self.census(shift.dept, t);
        let k = ((self.rng.gen_range(5..11) as f64) * self.world.staff[s].volume).round() as usize;
        let mut mine: Vec<usize> = census
            .choose_multiple(&mut self.rng, k.max(2))
            .copied()
            .collect();
        mine.sort_unstable();
        let round_every = 2 * HOUR;
        let mut round_start = t + self.uniform(10 * MIN, 40 * MIN);
        while round_start < shift.end - 30 * MIN {
            t = round_start;
            let night = (t.rem_euclid(DAY)) >= 22 * HOUR || (t.rem_euclid(DAY)) < 6 * HOUR;
            for &p in &mine.clone() {
                if !self.census(shift.dept, t).contains(&p) {
                    continue;
                }
                if night && self.rng.gen_bool(0.3) {
                    continue;
                }
                let ctx = self.ctx(s, t);
                let mut st = steps(&[(Create, "Observation"), (Search, "Observation")]);
                if self.rng.gen_bool(0.5) {
                    st.push((Search, "MedicationRequest"));
                    st.push((Create, "MedicationAdministration"));
                }
                if self.rng.gen_bool(0.2) {
                    st.push((Read, "CarePlan"));
                }
                for _ in 0..self.rng.gen_range(0..3) {
                    st.push((Read, "Observation"));
                }
                if self.rng.gen_bool(0.1) {
                    st.push((Read, "DocumentReference"));
                }
                if self.rng.gen_bool(0.25) {
                    st.push((Create, "DocumentReference"));
                }
                if self.rng.gen_bool(0.1) {
                    st.push((Update, "CarePlan"));
                }
                if self.rng.gen_bool(0.15) {
                    st.push((Search, "AllergyIntolerance"));
                }
                if self.rng.gen_bool(0.3) {
                    st.insert(0, (Create, "Observation"));
                }
                t = self.chart(&ctx, t, p, &st, &Grant::Custodian, "TREAT");
                t += self.uniform(2 * MIN, 9 * MIN);
            }
            if self.rng.gen_bool(0.7) && t < shift.end {
                self.ward_list(s, t, shift.dept);
            }
            round_start += round_every + self.uniform(-30 * MIN, 30 * MIN);
        }
        // The ward board: the nurse's patient list refreshes all shift long, each refresh a
        // search returning the ward's patients.
        let mut t = shift.start + self.uniform(20 * MIN, 40 * MIN);
        while t < shift.end - 10 * MIN {
            if self.rng.gen_bool(0.8) {
                self.ward_list(s, t, shift.dept);
            }
            t += self.uniform(25 * MIN, 45 * MIN);
        }
        // Admissions during the shift: the nurse on duty takes the admission vitals.
        let arrivals: Vec<(usize, Ms)> = self
            .stays
            .iter()
            .filter(|st| st.dept == shift.dept && shift.start <= st.start && st.start < shift.end)
            .map(|st| (st.patient, st.start))
            .collect();
        for (p, at) in arrivals {
            if !self.rng.gen_bool(0.5) {
                continue;
            }
            let t = at + self.uniform(10 * MIN, 50 * MIN);
            let ctx = self.ctx(s, t);
            let st = steps(&[
                (Read, "Patient"),
                (Search, "AllergyIntolerance"),
                (Create, "Observation"),
                (Create, "Observation"),
                (Search, "MedicationStatement"),
            ]);
            let t = self.chart(&ctx, t, p, &st, &Grant::Custodian, "TREAT");
            if self.rng.gen_bool(0.3) {
                // Next of kin.
                self.touch(
                    &ctx,
                    t,
                    p,
                    (Search, "RelatedPerson"),
                    &Grant::Custodian,
                    "TREAT",
                );
            }
        }
    }

    fn review_steps(&mut self) -> Vec<(AccessAction, &'static str)> {
        let mut st = steps(&[(Search, "Observation")]);
        for _ in 0..self.rng.gen_range(0..4) {
            st.push((Read, "Observation"));
        }
        for _ in 0..self.rng.gen_range(0..3) {
            st.push((Read, "DiagnosticReport"));
        }
        if self.rng.gen_bool(0.4) {
            st.push((Search, "DocumentReference"));
            st.push((Read, "DocumentReference"));
        }
        if self.rng.gen_bool(0.3) {
            st.push((Read, "Encounter"));
        }
        st.push((Search, "MedicationRequest"));
        if self.rng.gen_bool(0.5) {
            st.push((Read, "Condition"));
        }
        if self.rng.gen_bool(0.25) {
            st.push((Search, "ImagingStudy"));
        }
        if self.rng.gen_bool(0.45) {
            st.push((Create, "DocumentReference"));
        }
        if self.rng.gen_bool(0.3) {
            st.push((Create, "MedicationRequest"));
        }
        if self.rng.gen_bool(0.1) {
            st.push((Update, "Encounter"));
        }
        st
    }

    fn physician_shift(&mut self, shift: &Shift) {
        let s = shift.staff;
        let mut t = shift.start + self.uniform(2 * MIN, 30 * MIN);
        self.ward_list(s, t, shift.dept);
        t += self.uniform(2 * MIN, 10 * MIN);
        let census = self.census(shift.dept, t);
        let volume = self.world.staff[s].volume;
        let mine: Vec<usize> = census
            .iter()
            .copied()
            .filter(|&p| {
                self.stays.iter().any(|st| {
                    st.patient == p
                        && st.dept == shift.dept
                        && st.attending == Some(s)
                        && st.start <= t
                        && t < st.end
                })
            })
            .collect();
        let mut round: Vec<usize> = mine.clone();
        for &p in &census {
            if !round.contains(&p) && self.rng.gen_bool((0.5 * volume).min(0.95)) {
                round.push(p);
            }
        }
        for &p in &round {
            let ctx = self.ctx(s, t);
            let st = self.review_steps();
            t = self.chart(&ctx, t, p, &st, &Grant::Custodian, "TREAT");
            t += self.uniform(MIN, 8 * MIN);
        }
        // Admissions: the admitting physician's work-up.
        let arrivals: Vec<(usize, Ms)> = self
            .stays
            .iter()
            .filter(|st| {
                st.dept == shift.dept
                    && shift.start <= st.start
                    && st.start < shift.end - HOUR
                    && st.attending == Some(s)
            })
            .map(|st| (st.patient, st.start))
            .collect();
        for (p, at) in arrivals {
            let t = at + self.uniform(20 * MIN, 90 * MIN);
            let ctx = self.ctx(s, t);
            let st = steps(&[
                (Read, "Patient"),
                (Search, "Condition"),
                (Search, "AllergyIntolerance"),
                (Search, "MedicationStatement"),
                (Search, "Observation"),
                (Search, "Encounter"),
                (Create, "Condition"),
                (Create, "MedicationRequest"),
                (Create, "DocumentReference"),
            ]);
            self.chart(&ctx, t, p, &st, &Grant::Custodian, "TREAT");
        }
        // Discharges the attending signs off.
        let leaving: Vec<(usize, Ms)> = self
            .stays
            .iter()
            .filter(|st| {
                st.dept == shift.dept
                    && shift.start + HOUR <= st.end
                    && st.end < shift.end + 6 * HOUR
                    && st.attending == Some(s)
            })
            .map(|st| (st.patient, st.end))
            .collect();
        for (p, at) in leaving {
            let t = (at - self.uniform(30 * MIN, 3 * HOUR))
                .clamp(shift.start + HOUR, shift.end - 10 * MIN);
            let ctx = self.ctx(s, t);
            let st = steps(&[
                (Search, "Observation"),
                (Search, "MedicationRequest"),
                (Create, "DocumentReference"),
                (Update, "Encounter"),
            ]);
            self.chart(&ctx, t, p, &st, &Grant::Custodian, "TREAT");
        }
        // Midday: their own patients again.
        let mut t = (shift.start + 4 * HOUR).max(t);
        for &p in &mine {
            if t >= shift.end - HOUR || !self.rng.gen_bool(0.7) {
                continue;
            }
            let ctx = self.ctx(s, t);
            let st = self.review_steps();
            t = self.chart(&ctx, t, p, &st, &Grant::Custodian, "TREAT")
                + self.uniform(2 * MIN, 10 * MIN);
        }
        // Afternoon: new results on some patients, and an outpatient clinic some days.
        let mut t = (shift.start + 6 * HOUR).max(t);
        for &p in &round {
            if t >= shift.end - 20 * MIN || !self.rng.gen_bool(0.5) {
                continue;
            }
            let ctx = self.ctx(s, t);
            let st = steps(&[(Search, "Observation"), (Read, "DiagnosticReport")]);
            t = self.chart(&ctx, t, p, &st, &Grant::Custodian, "TREAT")
                + self.uniform(3 * MIN, 20 * MIN);
        }
        if self.rng.gen_bool(0.35) && t < shift.end - HOUR {
            let n = self.rng.gen_range(2..6);
            for _ in 0..n {
                // Follow-ups of former inpatients, or new referrals seen for the first time.
                let former: Vec<usize> = self
                    .stays
                    .iter()
                    .filter(|st| st.dept == shift.dept && st.end < t)
                    .map(|st| st.patient)
                    .collect();
                let p = if !former.is_empty() && self.rng.gen_bool(0.5) {
                    former.choose(&mut self.rng).copied()
                } else {
                    self.world.mrn_order.choose(&mut self.rng).copied()
                };
                let Some(p) = p else { continue };
                self.clinic_visits.push((p, s, t));
                let ctx = self.ctx(s, t);
                let st = steps(&[
                    (Read, "Patient"),
                    (Search, "Condition"),
                    (Search, "Observation"),
                    (Search, "DocumentReference"),
                    (Create, "Encounter"),
                    (Create, "DocumentReference"),
                ]);
                t = self.chart(&ctx, t, p, &st, &Grant::Custodian, "TREAT")
                    + self.uniform(10 * MIN, 25 * MIN);
            }
        }
        // Notes finished from home in the evening, now and then.
        if self.rng.gen_bool(0.15) && !round.is_empty() {
            let mut t = shift.start.div_euclid(DAY) * DAY + self.uniform(20 * HOUR, 23 * HOUR);
            if self.shift_at(s, t).is_none() {
                let k = self.rng.gen_range(1..4);
                for p in round
                    .choose_multiple(&mut self.rng, k)
                    .copied()
                    .collect::<Vec<_>>()
                {
                    let ctx = self.ctx(s, t);
                    let st = steps(&[
                        (Search, "Observation"),
                        (Search, "DocumentReference"),
                        (Create, "DocumentReference"),
                    ]);
                    t = self.chart(&ctx, t, p, &st, &Grant::Custodian, "TREAT")
                        + self.uniform(2 * MIN, 10 * MIN);
                }
            }
        }
        // Consults asked of this physician's department by other wards.
        if self.world.depts[shift.dept].consults {
            let asked: Vec<usize> = self
                .stays
                .iter()
                .filter(|st| {
                    st.dept != shift.dept && st.start < shift.start && shift.start < st.end
                })
                .map(|st| st.patient)
                .collect();
            let n = self.poisson(1.2);
            let mut t = shift.start + self.uniform(2 * HOUR, 6 * HOUR);
            for p in asked
                .choose_multiple(&mut self.rng, n)
                .copied()
                .collect::<Vec<_>>()
            {
                // The consult is asked (the consultant named on the encounter) before the look.
                let asked_at = t - 30 * MIN;
                self.consults.push((p, s, asked_at));
                let ctx = self.ctx(s, t);
                let st = steps(&[
                    (Read, "Patient"),
                    (Search, "Condition"),
                    (Search, "Observation"),
                    (Read, "DiagnosticReport"),
                    (Search, "MedicationRequest"),
                    (Create, "DocumentReference"),
                ]);
                t = self.chart(&ctx, t, p, &st, &Grant::Custodian, "TREAT")
                    + self.uniform(20 * MIN, 90 * MIN);
                if self.rng.gen_bool(0.4) {
                    // The follow-up look the next day.
                    let t2 = t + DAY + self.uniform(-2 * HOUR, 2 * HOUR);
                    if self.shift_at(s, t2).is_some() {
                        let ctx = self.ctx(s, t2);
                        let st = steps(&[(Search, "Observation"), (Create, "DocumentReference")]);
                        self.chart(&ctx, t2, p, &st, &Grant::Custodian, "TREAT");
                    }
                }
            }
        }
    }

    /// Paged at night from home: a few patients of the ward (or, for radiology, urgent images
    /// anywhere in the hospital).
    fn on_call(&mut self, shift: &Shift) {
        let s = shift.staff;
        let radiology = self.world.staff[s].kind == StaffKind::Radiologist;
        let pages = self.poisson(if radiology { 2.0 } else { 1.3 });
        for _ in 0..pages {
            let t = self.uniform(shift.start, shift.end);
            let pool = if radiology {
                self.ed_board(t)
            } else {
                self.census(shift.dept, t)
            };
            let Some(&p) = pool.choose(&mut self.rng) else {
                continue;
            };
            let ctx = self.ctx(s, t);
            let st = if radiology {
                steps(&[
                    (Read, "ServiceRequest"),
                    (Search, "ImagingStudy"),
                    (Create, "DiagnosticReport"),
                ])
            } else {
                steps(&[
                    (Search, "Observation"),
                    (Search, "MedicationRequest"),
                    (Create, "MedicationRequest"),
                ])
            };
            self.chart(&ctx, t, p, &st, &Grant::Custodian, "TREAT");
        }
    }

    fn ed_board_checks(&mut self, shift: &Shift) {
        let mut t = shift.start + self.uniform(5 * MIN, 20 * MIN);
        while t < shift.end {
            let board = self.ed_board(t);
            let ctx = self.ctx(shift.staff, t);
            self.broad_search(&ctx, t, "Encounter", &board, &|_| Grant::Custodian, "TREAT");
            t += self.uniform(25 * MIN, 80 * MIN);
        }
    }

    fn ed_visit(&mut self, visit: &EdVisit) {
        let ed = self
            .world
            .depts
            .iter()
            .position(|d| d.kind == DeptKind::Emergency)
            .unwrap_or(0);
        let p = visit.patient;
        // Registration at the front desk: a name search shows a few namesakes.
        if let Some(clerk) =
            self.pick_on_shift(self.admissions(), &[StaffKind::Clerk], visit.start, false)
        {
            let t = visit.start + self.uniform(MIN, 8 * MIN);
            let ctx = self.ctx(clerk, t);
            if self.world.patients[p].custodian == 0 {
                let k = self.rng.gen_range(0..6);
                let mut found: Vec<usize> = self
                    .world
                    .mrn_order
                    .choose_multiple(&mut self.rng, k)
                    .copied()
                    .collect();
                found.push(p);
                found.sort_unstable();
                found.dedup();
                self.broad_search(&ctx, t, "Patient", &found, &|_| Grant::Custodian, "TREAT");
                let t = t + self.uniform(20 * SEC, 2 * MIN);
                self.chart(
                    &ctx,
                    t,
                    p,
                    &steps(&[(Read, "Patient"), (Create, "Encounter")]),
                    &Grant::Custodian,
                    "TREAT",
                );
            } else {
                // Not on our books: nothing found, a new registration.
                self.broad_search(&ctx, t, "Patient", &[], &|_| Grant::Custodian, "TREAT");
            }
        }
        let grant = match self.grant(0, p) {
            Grant::Denied(_) => Grant::BreakGlass(
                BREAK_GLASS_REASONS
                    .choose(&mut self.rng)
                    .copied()
                    .unwrap_or("emergency"),
            ),
            g => g,
        };
        // Triage by a nurse.
        if let Some(nurse) =
            self.pick_on_shift(ed, &[StaffKind::Nurse], visit.start + 10 * MIN, false)
        {
            let t = visit.start + self.uniform(5 * MIN, 25 * MIN);
            let ctx = self.ctx(nurse, t);
            if matches!(grant, Grant::BreakGlass(_)) {
                // Writes cannot break the glass: the nurse only looks for allergies.
                if self.rng.gen_bool(0.4) {
                    let first = self.first_look();
                    self.touch(&ctx, t, p, first, &Grant::Denied("no-permit"), "TREAT");
                    let t = t + self.uniform(20 * SEC, 2 * MIN);
                    self.touch(&ctx, t, p, (Search, "AllergyIntolerance"), &grant, "TREAT");
                }
            } else {
                let st = steps(&[
                    (Read, "Patient"),
                    (Create, "Observation"),
                    (Create, "Observation"),
                    (Search, "AllergyIntolerance"),
                ]);
                self.chart(&ctx, t, p, &st, &grant, "TREAT");
            }
        }
        // The physician: for a patient held elsewhere without a consent for us, the first look
        // is refused and the glass is broken for the record's essentials.
        if let Some(doc) =
            self.pick_on_shift(ed, &[StaffKind::Physician], visit.start + 30 * MIN, false)
        {
            let t = visit.start + self.uniform(15 * MIN, 80 * MIN);
            let ctx = self.ctx(doc, t);
            let mut t = t;
            if matches!(grant, Grant::BreakGlass(_)) {
                let first = self.first_look();
                self.touch(&ctx, t, p, first, &Grant::Denied("no-permit"), "TREAT");
                t += self.uniform(30 * SEC, 3 * MIN);
            }
            let mut st = steps(&[
                (Read, "Patient"),
                (Search, "Condition"),
                (Search, "MedicationStatement"),
                (Search, "AllergyIntolerance"),
                (Search, "Observation"),
            ]);
            if self.rng.gen_bool(0.5) {
                st.push((Search, "DocumentReference"));
            }
            t = self.chart(&ctx, t, p, &st, &grant, "TREAT");
            // Orders and notes are written into our own encounter.
            let own = steps(&[
                (Create, "Encounter"),
                (Create, "MedicationRequest"),
                (Create, "DocumentReference"),
            ]);
            if !matches!(grant, Grant::BreakGlass(_)) {
                t = self.chart(&ctx, t, p, &own, &Grant::Custodian, "TREAT");
            }
            // Results an hour or two later.
            let t2 = t + self.uniform(45 * MIN, 150 * MIN);
            if t2 < visit.end && self.shift_at(doc, t2).is_some() {
                let ctx = self.ctx(doc, t2);
                let st = steps(&[(Search, "Observation"), (Read, "DiagnosticReport")]);
                self.chart(&ctx, t2, p, &st, &grant.clone(), "TREAT");
            }
        }
        // The intensivist or the medical registrar called down to the ED breaks the glass too.
        if matches!(grant, Grant::BreakGlass(_)) && self.rng.gen_bool(0.4) {
            let t = visit.start + self.uniform(HOUR, 3 * HOUR);
            let depts: Vec<usize> = [
                "Intensive Care",
                "Internal Medicine",
                "Cardiology",
                "Neurology",
            ]
            .iter()
            .filter_map(|n| self.world.depts.iter().position(|d| d.name == *n))
            .collect();
            if let Some(&dept) = depts.choose(&mut self.rng) {
                if let Some(doc) = self.pick_on_shift(dept, &[StaffKind::Physician], t, true) {
                    let ctx = self.ctx(doc, t);
                    let first = self.first_look();
                    self.touch(&ctx, t, p, first, &Grant::Denied("no-permit"), "TREAT");
                    let why = BREAK_GLASS_REASONS
                        .choose(&mut self.rng)
                        .copied()
                        .unwrap_or("emergency");
                    let st = steps(&[
                        (Read, "Patient"),
                        (Search, "Condition"),
                        (Search, "Observation"),
                        (Search, "MedicationStatement"),
                    ]);
                    let t = t + self.uniform(20 * SEC, 2 * MIN);
                    self.chart(&ctx, t, p, &st, &Grant::BreakGlass(why), "TREAT");
                }
            }
        }
        // Imaging for some.
        if self.rng.gen_bool(0.3) {
            let t = visit.start + self.uniform(HOUR, 3 * HOUR);
            self.radiology(p, t);
        }
    }

    /// What a clinician opens first of a patient's record.
    pub fn first_look(&mut self) -> (AccessAction, &'static str) {
        *[
            (Search, "Condition"),
            (Read, "Patient"),
            (Search, "Observation"),
            (Search, "MedicationStatement"),
            (Search, "DocumentReference"),
        ]
        .choose(&mut self.rng)
        .unwrap_or(&(Read, "Patient"))
    }

    fn admissions(&self) -> usize {
        self.world
            .depts
            .iter()
            .position(|d| d.kind == DeptKind::Admissions)
            .unwrap_or(0)
    }

    fn dept_of(&self, kind: DeptKind) -> usize {
        self.world
            .depts
            .iter()
            .position(|d| d.kind == kind)
            .unwrap_or(0)
    }

    fn radiology(&mut self, p: usize, t: Ms) {
        let grant = match self.grant(0, p) {
            // Imaging of a patient held elsewhere waits for her consent.
            Grant::Denied(_) => return,
            g => g,
        };
        let dept = self.dept_of(DeptKind::Radiology);
        let Some(r) = self.pick_on_shift(dept, &[StaffKind::Radiologist], t, true) else {
            return;
        };
        let t = t + self.uniform(5 * MIN, 60 * MIN);
        if self.shift_at(r, t).is_none() {
            return;
        }
        let ctx = self.ctx(r, t);
        let mut st = steps(&[
            (Read, "ServiceRequest"),
            (Search, "ImagingStudy"),
            (Create, "DiagnosticReport"),
        ]);
        if self.rng.gen_bool(0.6) {
            st.insert(1, (Search, "DiagnosticReport"));
            st.insert(2, (Read, "DiagnosticReport"));
        }
        self.chart(&ctx, t, p, &st, &grant, "TREAT");
    }

    /// Everything around one stay besides the ward's own staff: registration of planned
    /// admissions, consults, imaging, pharmacy, case management, coding after discharge.
    fn stay_services(&mut self, stay: &Stay) {
        let p = stay.patient;
        if stay.start >= 0 {
            if let Some(clerk) = self.pick_on_shift(
                self.admissions(),
                &[StaffKind::Clerk],
                stay.start - 20 * MIN,
                false,
            ) {
                let t = stay.start - self.uniform(5 * MIN, 40 * MIN);
                let ctx = self.ctx(clerk, t);
                let st = steps(&[
                    (Read, "Patient"),
                    (Search, "Coverage"),
                    (Create, "Encounter"),
                ]);
                self.chart(&ctx, t, p, &st, &Grant::Custodian, "TREAT");
            }
        }
        if self.rng.gen_bool(0.6) {
            let t = stay.start.max(0) + self.uniform(2 * HOUR, 30 * HOUR);
            if t < stay.end {
                self.radiology(p, t);
            }
        }
        // Pharmacy verifies the medication each day of the stay.
        let pharmacy = self.dept_of(DeptKind::Pharmacy);
        let mut day = stay.start.max(0).div_euclid(DAY);
        while day * DAY < stay.end.min(self.horizon) {
            for _ in 0..self.rng.gen_range(1..3) {
                let t = day * DAY + self.uniform(9 * HOUR, 16 * HOUR);
                if t >= stay.start && t < stay.end {
                    if let Some(ph) =
                        self.pick_on_shift(pharmacy, &[StaffKind::Pharmacist], t, false)
                    {
                        let ctx = self.ctx(ph, t);
                        let mut st = steps(&[(Search, "MedicationRequest")]);
                        if self.rng.gen_bool(0.5) {
                            st.push((Search, "AllergyIntolerance"));
                        }
                        if self.rng.gen_bool(0.4) {
                            st.push((Search, "Observation"));
                        }
                        self.chart(&ctx, t, p, &st, &Grant::Custodian, "TREAT");
                    }
                }
            }
            day += 1;
        }
        // Referred to physiotherapy, nutrition or social work: seen most weekdays of the stay.
        if self.rng.gen_bool(0.35) {
            let allied = self.dept_of(DeptKind::AlliedHealth);
            let therapists: Vec<usize> = (0..self.world.staff.len())
                .filter(|&s| self.world.staff[s].dept == allied)
                .collect();
            if let Some(&th) = therapists.choose(&mut self.rng) {
                let mut day = stay.start.max(0).div_euclid(DAY) + 1;
                while day * DAY < stay.end.min(self.horizon) {
                    let t = day * DAY + self.uniform(9 * HOUR, 16 * HOUR);
                    if t < stay.end && self.rng.gen_bool(0.7) && self.shift_at(th, t).is_some() {
                        let ctx = self.ctx(th, t);
                        let mut st = steps(&[
                            (Read, "Patient"),
                            (Search, "Condition"),
                            (Search, "Observation"),
                            (Search, "CarePlan"),
                        ]);
                        if self.rng.gen_bool(0.6) {
                            st.push((Create, "DocumentReference"));
                        }
                        if self.rng.gen_bool(0.3) {
                            st.push((Create, "Observation"));
                        }
                        if self.rng.gen_bool(0.2) {
                            st.push((Search, "RelatedPerson"));
                        }
                        self.chart(&ctx, t, p, &st, &Grant::Custodian, "TREAT");
                    }
                    day += 1;
                }
            }
        }
        // Case management for longer stays.
        if stay.end - stay.start > 3 * DAY {
            let cm = self.dept_of(DeptKind::CaseManagement);
            let t = stay.start.max(0) + 2 * DAY + self.uniform(-4 * HOUR, 4 * HOUR);
            if let Some(c) = self.pick_on_shift(cm, &[StaffKind::CaseManager], t, false) {
                let ctx = self.ctx(c, t);
                let mut st = steps(&[
                    (Read, "Patient"),
                    (Read, "Encounter"),
                    (Search, "Coverage"),
                    (Search, "CarePlan"),
                    (Create, "CarePlan"),
                ]);
                if self.rng.gen_bool(0.5) {
                    st.insert(1, (Search, "RelatedPerson"));
                }
                self.chart(&ctx, t, p, &st, &Grant::Custodian, "CAREMGT");
            }
        }
        // Coding after discharge.
        if stay.end < self.horizon {
            let him = self.dept_of(DeptKind::HealthInformation);
            let t = stay.end + self.uniform(DAY, 5 * DAY);
            let t = (t.div_euclid(DAY)) * DAY + self.uniform(8 * HOUR, 16 * HOUR);
            if let Some(c) = self.pick_on_shift(him, &[StaffKind::Coder], t, false) {
                let ctx = self.ctx(c, t);
                let mut st = steps(&[
                    (Read, "Encounter"),
                    (Search, "Condition"),
                    (Search, "Procedure"),
                    (Search, "DocumentReference"),
                ]);
                if self.rng.gen_bool(0.5) {
                    st.push((Update, "Encounter"));
                }
                self.chart(&ctx, t, p, &st, &Grant::Custodian, "HOPERAT");
            }
            // The GP or the partner hospital reads the discharge letter, where she consented.
            for org in 1..self.world.orgs.len() {
                if let Some(consent) = self.world.consent_for(p, org).map(str::to_string) {
                    if !self.rng.gen_bool(0.6) {
                        continue;
                    }
                    let dept = self
                        .world
                        .depts
                        .iter()
                        .position(|d| d.org == org)
                        .unwrap_or(0);
                    let t = stay.end + self.uniform(DAY, 6 * DAY);
                    let Some(doc) = self.pick_on_shift(dept, &[StaffKind::Physician], t, false)
                    else {
                        continue;
                    };
                    let ctx = self.ctx(doc, t);
                    let grant = Grant::Consent(consent);
                    if self.rng.gen_bool(0.3) {
                        // The practice system imports the whole record.
                        self.everything(&ctx, t, p, &grant, "TREAT");
                    } else {
                        let st = steps(&[
                            (Search, "DocumentReference"),
                            (Read, "DocumentReference"),
                            (Search, "MedicationRequest"),
                        ]);
                        self.chart(&ctx, t, p, &st, &grant, "TREAT");
                    }
                }
            }
        }
    }

    fn partner_shift(&mut self, shift: &Shift) {
        let s = shift.staff;
        let org = self.world.staff[s].org;
        let mut own: Vec<usize> = (0..self.world.patients.len())
            .filter(|&p| self.world.patients[p].custodian == org)
            .collect();
        if self.world.depts[shift.dept].name == "Partner Hospital" && !own.is_empty() {
            // The partner hospital's inpatients: a caseload of about 25 that turns over in
            // about three days (the GPs see whoever booked).
            let day = shift.start.div_euclid(DAY).max(0) as usize;
            let len = own.len();
            own = (0..25.min(len)).map(|i| own[(day * 8 + i) % len]).collect();
            for &p in &own {
                self.partner_caseload.insert((p, shift.dept, day as i64));
            }
        }
        let n = ((self.rng.gen_range(8..20) as f64) * self.world.staff[s].volume) as usize;
        let mut t = shift.start + self.uniform(5 * MIN, 30 * MIN);
        for _ in 0..n {
            if t >= shift.end {
                break;
            }
            let Some(&p) = own.choose(&mut self.rng) else {
                break;
            };
            let ctx = self.ctx(s, t);
            let st = self.review_steps();
            t = self.chart(&ctx, t, p, &st, &Grant::Custodian, "TREAT")
                + self.uniform(5 * MIN, 40 * MIN);
        }
        // A referral letter names a hospital patient: readable only where she consented, and
        // honestly refused otherwise.
        if self.rng.gen_bool(0.3) {
            let t = self.uniform(shift.start, shift.end);
            if let Some(p) = self.world.mrn_order.choose(&mut self.rng).copied() {
                let grant = self.grant(org, p);
                let ctx = self.ctx(s, t);
                let st = steps(&[(Search, "DocumentReference"), (Search, "Condition")]);
                match grant {
                    Grant::Denied(_) => {
                        let first = self.first_look();
                        self.touch(&ctx, t, p, first, &grant, "TREAT");
                        // A transfer in from the hospital arrives before its consent does.
                        if self.rng.gen_bool(0.15)
                            && self.world.staff[s].kind == StaffKind::Physician
                        {
                            let why = BREAK_GLASS_REASONS
                                .choose(&mut self.rng)
                                .copied()
                                .unwrap_or("emergency");
                            let t = t + self.uniform(30 * SEC, 3 * MIN);
                            let st = steps(&[
                                (Read, "Patient"),
                                (Search, "Condition"),
                                (Search, "MedicationRequest"),
                            ]);
                            self.chart(&ctx, t, p, &st, &Grant::BreakGlass(why), "TREAT");
                        }
                    }
                    g => {
                        self.chart(&ctx, t, p, &st, &g, "TREAT");
                    }
                }
            }
        }
    }

    fn research_shift(&mut self, shift: &Shift) {
        let s = shift.staff;
        let consenting: Vec<usize> = self
            .world
            .main_patients()
            .filter(|&p| self.world.patients[p].research_consent.is_some())
            .collect();
        let queries = self.rng.gen_range(1..4);
        let mut t = shift.start + self.uniform(20 * MIN, 2 * HOUR);
        for _ in 0..queries {
            if t >= shift.end {
                break;
            }
            let n = self.rng.gen_range(15..(consenting.len().clamp(16, 160)));
            let mut cohort: Vec<usize> = consenting
                .choose_multiple(&mut self.rng, n)
                .copied()
                .collect();
            cohort.sort_unstable();
            let rt = *["Condition", "Observation", "MedicationRequest"]
                .choose(&mut self.rng)
                .unwrap_or(&"Condition");
            let ctx = self.ctx(s, t);
            let world = self.world;
            let grants = |p: usize| match &world.patients[p].research_consent {
                Some(c) => Grant::Consent(c.clone()),
                None => Grant::Denied("no-permit"),
            };
            self.broad_search(&ctx, t, rt, &cohort, &grants, "HRESCH");
            t += self.uniform(3 * MIN, 20 * MIN);
            let k = self.rng.gen_range(0..5);
            for &p in cohort.choose_multiple(&mut self.rng, k).collect::<Vec<_>>() {
                let ctx = self.ctx(s, t);
                self.touch(&ctx, t, p, (Search, "Observation"), &grants(p), "HRESCH");
                t += self.uniform(30 * SEC, 5 * MIN);
            }
            t += self.uniform(30 * MIN, 2 * HOUR);
        }
        // An id from an old study list whose patient never consented: refused.
        if self.rng.gen_bool(0.12) {
            let t = self.uniform(shift.start, shift.end);
            if let Some(p) = self.world.mrn_order.choose(&mut self.rng).copied() {
                if self.world.patients[p].research_consent.is_none() {
                    let ctx = self.ctx(s, t);
                    self.touch(
                        &ctx,
                        t,
                        p,
                        (Read, "Condition"),
                        &Grant::Denied("no-permit"),
                        "HRESCH",
                    );
                }
            }
        }
    }

    /// Administrators and auditors: logins and the shared resources; now and then a click on
    /// a clinical link, refused by role.
    fn office_shift(&mut self, shift: &Shift) {
        let s = shift.staff;
        let admin = self.world.staff[s].kind == StaffKind::Admin;
        let mut t = shift.start + self.uniform(2 * MIN, 20 * MIN);
        let n = self.rng.gen_range(1..5);
        for _ in 0..n {
            if t >= shift.end {
                break;
            }
            let ctx = self.ctx(s, t);
            if admin {
                for _ in 0..self.rng.gen_range(1..5) {
                    let rt = *[
                        "Organization",
                        "Practitioner",
                        "PractitionerRole",
                        "Location",
                    ]
                    .choose(&mut self.rng)
                    .unwrap_or(&"Practitioner");
                    let action = if self.rng.gen_bool(0.2) { Create } else { Read };
                    let access = Access::permit(action, rt, None, 1)
                        .purpose("HOPERAT")
                        .basis("unowned");
                    let request = emit::request_id(&mut self.rng);
                    emit::access(
                        &mut self.sink,
                        &mut self.rng,
                        self.world,
                        t,
                        &ctx,
                        &access,
                        &request,
                    );
                    t += self.uniform(10 * SEC, 3 * MIN);
                }
            }
            if self.rng.gen_bool(0.12) {
                let p = self.world.mrn_order.choose(&mut self.rng).copied();
                let rt = *["Patient", "Observation", "Encounter"]
                    .choose(&mut self.rng)
                    .unwrap_or(&"Patient");
                let action = if p.is_some() && self.rng.gen_bool(0.5) {
                    Read
                } else {
                    Search
                };
                let patient = if action == Read { p } else { None };
                let access = Access::permit(action, rt, patient, 0)
                    .purpose("HOPERAT")
                    .deny("role");
                let request = emit::request_id(&mut self.rng);
                emit::access(
                    &mut self.sink,
                    &mut self.rng,
                    self.world,
                    t,
                    &ctx,
                    &access,
                    &request,
                );
            }
            t += self.uniform(40 * MIN, 3 * HOUR);
        }
    }

    /// The backend clients: the lab interface posts results for patients in care, the
    /// pharmacy system reads new orders, the quality job runs its nightly registry queries.
    fn services(&mut self) {
        let lab = 0;
        let stays = self.stays.clone();
        for stay in &stays {
            let mut day = stay.start.max(0).div_euclid(DAY);
            while day * DAY < stay.end.min(self.horizon) {
                for _ in 0..self.rng.gen_range(1..4) {
                    let t = day * DAY
                        + if self.rng.gen_bool(0.5) {
                            6 * HOUR
                        } else {
                            self.uniform(8 * HOUR, 20 * HOUR)
                        }
                        + self.uniform(0, HOUR);
                    if t < stay.start || t >= stay.end || t >= self.horizon {
                        continue;
                    }
                    let ctx = self.service_ctx(lab, t);
                    for _ in 0..self.rng.gen_range(1..5) {
                        let at = t + self.uniform(0, 20 * SEC);
                        self.touch(
                            &ctx,
                            at,
                            stay.patient,
                            (Create, "Observation"),
                            &Grant::Custodian,
                            "TREAT",
                        );
                    }
                    if self.rng.gen_bool(0.3) {
                        self.touch(
                            &ctx,
                            t + 30 * SEC,
                            stay.patient,
                            (Create, "DiagnosticReport"),
                            &Grant::Custodian,
                            "TREAT",
                        );
                    }
                    // The pharmacy system checks the orders against the new results.
                    if self.rng.gen_bool(0.4) {
                        let t2 = t + self.uniform(20 * SEC, 5 * MIN);
                        let ctx = self.service_ctx(1, t2);
                        self.touch(
                            &ctx,
                            t2,
                            stay.patient,
                            (Search, "MedicationRequest"),
                            &Grant::Custodian,
                            "TREAT",
                        );
                    }
                }
                day += 1;
            }
        }
        let visits = self.ed_visits.clone();
        for v in &visits {
            if self.world.patients[v.patient].custodian != 0 {
                continue;
            }
            let t = v.start + self.uniform(40 * MIN, 2 * HOUR);
            if t < self.horizon {
                let ctx = self.service_ctx(lab, t);
                for _ in 0..self.rng.gen_range(2..6) {
                    let at = t + self.uniform(0, 30 * SEC);
                    self.touch(
                        &ctx,
                        at,
                        v.patient,
                        (Create, "Observation"),
                        &Grant::Custodian,
                        "TREAT",
                    );
                }
            }
        }
        // The nightly registry job: large result sets under POPHLTH, every night.
        let main: Vec<usize> = self.world.mrn_order.clone();
        for day in 0..self.params.days as i64 {
            let mut t = day * DAY + 2 * HOUR + self.uniform(0, 15 * MIN);
            for _ in 0..self.rng.gen_range(1..4) {
                let n = self.rng.gen_range(main.len() / 25..=main.len() / 8).max(1);
                let mut found: Vec<usize> =
                    main.choose_multiple(&mut self.rng, n).copied().collect();
                found.sort_unstable();
                let rt = *["Condition", "Observation", "Encounter"]
                    .choose(&mut self.rng)
                    .unwrap_or(&"Condition");
                let ctx = self.service_ctx(2, t);
                // Paged by 100: one request per page.
                for page in found.chunks(100) {
                    self.broad_search(&ctx, t, rt, page, &|_| Grant::Custodian, "POPHLTH");
                    t += self.uniform(2 * SEC, 10 * SEC);
                }
                t += self.uniform(MIN, 6 * MIN);
            }
        }
    }

    fn service_ctx(&mut self, service: usize, t: Ms) -> Ctx {
        let svc = &self.world.services[service];
        let ctx = Ctx {
            actor: Actor {
                id: svc.client_id.to_string(),
                role: "service".into(),
                organization: Some(self.world.orgs[0].reference.clone()),
                department: None,
                practitioner: None,
            },
            source: Source {
                ip: Some(svc.ip.clone()),
                user_agent: AGENTS.get(svc.agent).map(|a| a.to_string()),
            },
            own_patient: None,
        };
        let hour = t.div_euclid(HOUR);
        if self.service_hours.insert((service, hour)) {
            let at = (hour * HOUR).max(t - 2 * MIN);
            emit::login(
                &mut self.sink,
                &mut self.rng,
                at,
                &ctx,
                true,
                AccessOutcome::Permit,
                "client-credentials",
            );
        }
        ctx
    }

    /// Patients with an account read their own record, mostly in the evening, more often
    /// just after a stay.
    fn patient_portal(&mut self) {
        let world = self.world;
        for p in 0..world.patients.len() {
            let Some(user) = &world.patients[p].user else {
                continue;
            };
            let ctx = Ctx {
                actor: Actor {
                    id: user.id.clone(),
                    role: "patient".into(),
                    organization: None,
                    department: None,
                    practitioner: None,
                },
                source: Source {
                    ip: Some(user.ip.clone()),
                    user_agent: AGENTS.get(user.agent).map(|a| a.to_string()),
                },
                own_patient: Some(world.patients[p].reference.clone()),
            };
            for day in 0..self.params.days as i64 {
                let recent = self
                    .stays
                    .iter()
                    .any(|s| s.patient == p && s.end <= day * DAY && day * DAY < s.end + 4 * DAY);
                if !self.rng.gen_bool(if recent { 0.35 } else { 0.04 }) {
                    continue;
                }
                let hour = *[7, 8, 12, 13, 17, 18, 19, 20, 20, 21, 21, 22, 23]
                    .choose(&mut self.rng)
                    .unwrap_or(&20);
                let mut t = day * DAY + hour * HOUR + self.uniform(0, HOUR);
                let mut ctx = ctx.clone();
                if self.rng.gen_bool(0.15) {
                    // On the phone's network instead of home.
                    ctx.source.ip = Some(public_ip(&mut self.rng));
                }
                self.open(&ctx, t);
                t += self.uniform(5 * SEC, 30 * SEC);
                let mut st = steps(&[(Read, "Patient"), (Search, "Observation")]);
                if self.rng.gen_bool(0.5) {
                    st.push((Search, "DocumentReference"));
                }
                if self.rng.gen_bool(0.3) {
                    st.push((Search, "MedicationRequest"));
                }
                if self.rng.gen_bool(0.1) {
                    st.push((Read, "Consent"));
                }
                let t = self.chart(&ctx, t, p, &st, &Grant::Own, "PATRQT");
                if self.rng.gen_bool(0.08) {
                    // "Download my record".
                    self.everything(&ctx, t, p, &Grant::Own, "PATRQT");
                }
            }
        }
        // Unknown usernames now and then: a patient who forgot hers.
        for day in 0..self.params.days as i64 {
            for _ in 0..self.poisson(1.5) {
                let t = day * DAY + self.uniform(7 * HOUR, 23 * HOUR);
                let ctx = Ctx {
                    actor: Actor {
                        id: "unknown".into(),
                        role: "patient".into(),
                        organization: None,
                        department: None,
                        practitioner: None,
                    },
                    source: Source {
                        ip: Some(public_ip(&mut self.rng)),
                        user_agent: AGENTS
                            .get(
                                *crate::simulate::world::PATIENT_AGENTS
                                    .choose(&mut self.rng)
                                    .unwrap_or(&5),
                            )
                            .map(|a| a.to_string()),
                    },
                    own_patient: None,
                };
                emit::login(
                    &mut self.sink,
                    &mut self.rng,
                    t,
                    &ctx,
                    false,
                    AccessOutcome::Deny,
                    "bad-credentials",
                );
            }
        }
    }
}
