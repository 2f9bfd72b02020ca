#!/usr/bin/env python3
"""Synthetic, labelled access log of an academic medical center.

Writes access events (shared/events/access-event.schema.json) for a US-style
teaching hospital system, plus labels for the insider-threat incidents hidden
in it.  Standard library only; deterministic per --seed.

    python3 scripts/detect-eval/academic_center.py --seed 1 \
        --out-events /tmp/ac.jsonl --out-labels /tmp/ac.labels.jsonl

THE WORLD
  Organizations: Organization/amc-hospital (the hospital: inpatient units, ED,
  OR, pharmacy, HIM, revenue cycle, call center), Organization/amc-physicians
  (faculty practice: clinics at four sites, telehealth), Organization/amc-
  research (research office) and Organization/lakes-aco (an affiliated ACO whose
  care managers log in from the partner's own network).
  Inpatient: MICU, two medicine units (teaching teams: attending, resident,
  intern, medical student), surgery, oncology/BMT, an inpatient psychiatric unit
  whose clinical records are confidentiality "R".  Nurses work 12-hour day or
  night shifts on a 3-4 shifts/week pattern from shared nursing-station
  workstations and handheld scanners; charge nurses glance at every patient on
  the unit; a float pool covers short units; travel nurses start mid-period with
  an orientation day.  Residents, interns and students rotate: a new block starts
  mid-period and most trainees meet a new unit and new patients at once; a night
  float resident cross-covers all medicine patients; hospitalists run the
  non-teaching surgery co-management.  Consults (cardiology, ID, nephrology,
  psychiatry, palliative) are ordered by the team (ServiceRequest create), then
  the consultant reads and writes a note, with daily follow-ups.  A rapid
  response team reads patients anywhere.  The ED has triage, physicians,
  registration, a surge day, and break-glass for sealed behavioural-health /
  substance-use / HIV records.  OR: anesthesia and OR nurses review tomorrow's
  list the evening before; surgeons write op notes.  Weekly tumour board and
  transplant selection committee: many attendees open many charts from one
  conference-room workstation within an hour.  Infusion center and dialysis
  (recurring outpatients).  Pharmacists verify every new order (incl. "R"
  patients).  Lab, radiology and dispensing-cabinet interfaces write results
  as service accounts; a nightly warehouse export runs at 02:00.
  Outpatient: clinic sessions at four sites (distinct address ranges, one of
  them an acquired practice on 172.22/16), MAs room patients, physicians chart-
  prep the evening before and finish notes from home via the Citrix gateway
  (many users behind few addresses) or VPN; telehealth visits from home
  addresses.  A call center books appointments for every clinic (many patients,
  briefly); registration, prior authorization, coding (stays discharged days to
  weeks ago), billing/denials (older stays), release of information (exports
  for lawyers and insurers), HIM (late-entry scanning, corrections, deletes,
  duplicate merges), quality abstractors (registry cohorts), infection
  prevention (patients with positive cultures), research coordinators
  (consented cohorts, purpose HRESCH, basis consent), utilization review, case
  management, employee health (staff are patients too), the privacy office
  (auditor role, reads AuditEvent) and identity admins (unlocks/suspensions,
  `account`).  Patients and proxies (parents, adult children) use a portal.
  Nuisances: Citrix/VDI gateway, shared workstations, per-device clock skew of
  a few seconds, desktop-client upgrade mid-period (all user agents change),
  an EHR downtime of some hours followed by a burst of late entries and queued
  interface results, a holiday (thin staffing, clinics closed) followed by a
  backlog, an ED surge day, failed sign-ins (typos, lock-outs), sporadic errors
  and policy denials (sealed records, expired consents).

INCIDENT KINDS (labelled; mix, variants and counts vary by seed)
  snooping              curious reads: VIP, colleague, neighbour, ex-partner,
                        family; often a few reads in normal hours, sometimes
                        by someone who works on the target's unit
  stolen_credentials    sign-in from an unusual address/agent/time (some via
                        the normal Citrix gateway), failed attempts, reading
  exfiltration          departing physician exporting a panel, large searches,
                        slow bulk reads over evenings
  enumeration           sweeping many records (searches, Patient reads, some
                        unknown-patient denials)
  break_glass_abuse     emergency access to sealed records without emergency
  role_misuse           a role reading what it never reads (call-center agent
                        reading notes, IT admin reading charts, ...)
  identity_harvest      registration/billing clerk slowly reading Patient +
                        Coverage of people with no visit
  lingering_resident    trainee keeps reading former patients after rotating
  departed_account      account of someone who left, used before HR's
                        termination reached identity (then lock-outs)
  service_compromise    interface/API client credentials used from elsewhere
  research_overreach    coordinator reads outside the consented cohort
                        (denials under HRESCH, then TREAT)
  record_tampering      updates/deletes of own entries after an adverse event
  care_mgmt_overreach   ACO care manager reads non-attributed patients
  media_snooping        many staff read a newsworthy patient within two days
                        while the patient is really being treated
  proxy_abuse           portal proxy reading after revocation or reading
                        sealed items of an estranged family member

KNOWN LIMITS (honest)
  * Clinical content is absent: resource types, counts and timing only.  The
    "why" of an access is only visible through patterns (writes, orders,
    schedules) and is drawn from simple stochastic rules, not real workflows.
  * Staff count is a sample: ~200 users run a small hospital (~70 beds), so
    nurse ratios, clinic volumes and census are scaled and approximate.
  * No DST; a fixed --tz-offset.  Shifts, rotations, the holiday and downtime
    follow one calendar; no sick calls, no overtime chaining beyond simple rules.
  * Addresses are plausible but invented; public ranges are drawn from common
    ISP/mobile first octets, not real geolocation.  User agents are a short
    list.  Clock skew is per device and constant.
  * Policy decisions (decision.basis) follow a simplified kernel: care team ->
    custodian, research/proxy -> consent, portal -> own-record, services and
    business roles -> role, sealed records outside the care team -> no-permit
    unless break-glass.  No consent resources exist behind the Consent ids.
  * Incident actors are drawn from the same simulated staff, so their "normal"
    behaviour is as regular as the simulator makes it; real people are messier.
    Targets are chosen uniformly within the variant's pool; real motives
    (neighbours, families) have no trace in the events and cannot be shown.
  * Labels cover attack events only; benign activity of an attacker outside
    the incident is unlabelled, as in a real investigation's findings.
  * Volume is far below a real EHR audit trail (which logs every screen and
    list refresh, often thousands of rows per patient-day); one event here
    stands for a meaningful action.  Patients never transfer between units,
    there are no pediatric or obstetric inpatients, each patient has at most
    one portal account, and service accounts are perfectly regular.
  * A departed employee's benign events after the departure date are simply
    removed, so the shifts they would have worked leave small coverage gaps.
  * Some incident variants carry a strong single cue by construction (an
    export by a clinician, a lab interface that searches, HSYSADMIN reads by
    an IT admin); others (neighbour, lingering trainee, tampering, slow
    identity harvesting) are close to invisible in access events alone.
"""

import argparse
import datetime as dt
import json
import random
import sys
import time as _time
import uuid
from collections import Counter, defaultdict

# --------------------------------------------------------------------------
# constants
# --------------------------------------------------------------------------

HOSP = "Organization/amc-hospital"
FPP = "Organization/amc-physicians"
RES = "Organization/amc-research"
ACO = "Organization/lakes-aco"

START_DATES = ["2025-02-03", "2025-03-03", "2025-04-07", "2025-05-12",
               "2025-06-02", "2025-09-08", "2025-10-06", "2025-11-03"]

# inpatient units: (code, department label, nurse weight, patients per nurse,
# teaching, sealed)
UNITS = [
    ("MICU", "Medical Intensive Care Unit", 10, 2.0, True, False),
    ("MED4", "Medicine 4 West", 13, 4.5, True, False),
    ("MED5", "Medicine 5 East", 12, 4.5, True, False),
    ("SURG6", "General Surgery 6 North", 11, 4.5, False, False),
    ("ONC7", "Oncology and BMT 7", 9, 3.5, True, False),
    ("PSY3", "Inpatient Psychiatry 3", 7, 5.0, False, True),
]
UNIT_SUBNET = {"MICU": 21, "MED4": 24, "MED5": 25, "SURG6": 26, "ONC7": 27,
               "PSY3": 23, "ED": 30, "OR": 40, "INF": 50, "DIAL": 51,
               "PHARM": 60, "LAB": 61, "HIM": 70, "REV": 71, "CALL": 72,
               "REG": 73, "QUAL": 74, "IP": 75, "RSCH": 76, "CM": 77,
               "EH": 78, "PRIV": 79, "IT": 80, "CONF": 200, "ADMIN": 81}

SITES = {  # outpatient sites: name, address prefix
    "NP": ("North Pavilion", "10.41"),
    "LK": ("Lakeside Specialty Center", "10.42"),
    "RV": ("Riverside Family Medicine", "172.22"),
    "WG": ("Westgate Cancer Center", "10.44"),
}
CLINICS = [  # specialty, site, confidentiality-sensitive?
    ("Primary Care", "RV"), ("Internal Medicine", "NP"),
    ("Cardiology", "NP"), ("Endocrinology", "LK"), ("Neurology", "LK"),
    ("Orthopedics", "LK"), ("Medical Oncology", "WG"),
    ("Infectious Disease", "NP"), ("Behavioral Health", "RV"),
    ("Transplant Clinic", "NP"), ("Pediatrics", "RV"), ("OB/GYN", "NP"),
]
CONSULT_SERVICES = ["Cardiology", "Infectious Disease", "Nephrology",
                    "Consult-Liaison Psychiatry", "Palliative Care"]

CITRIX = ["10.9.8.11", "10.9.8.12", "10.9.8.13", "10.9.8.14"]
RESIDENTIAL_A = [24, 47, 50, 66, 67, 68, 69, 70, 71, 72, 73, 75, 76, 96, 97,
                 98, 99, 108, 173, 174, 184]
MOBILE_NETS = [(172, 56), (172, 58), (107, 77), (166, 137), (174, 205)]
HOSTING_NETS = [(45, 83), (104, 28), (185, 220), (89, 187), (138, 199),
                (146, 70), (193, 32)]

DESKTOP_UA = "CustodianDesktop/{} (Windows NT 10.0; Win64; x64) CLR/4.8"
HANDHELD_UA = "CustodianRover/5.2.1 (Android 11; Zebra TC52)"
CHROME_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/{}.0.0.0 Safari/537.36")
EDGE_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.66")
SAFARI_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
              "(KHTML, like Gecko) Version/17.3 Safari/605.1.15")
FIREFOX_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) "
               "Gecko/20100101 Firefox/123.0")
IPHONE_SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) "
                 "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 "
                 "Mobile/15E148 Safari/604.1")
ANDROID_CHROME = ("Mozilla/5.0 (Linux; Android 14; SM-S911U) AppleWebKit/537.36 "
                  "(KHTML, like Gecko) Chrome/122.0.6261.119 Mobile Safari/537.36")
PORTAL_IOS = "MyCustodian/9.4.2 (iPhone; iOS 17.3.1; Scale/3.00)"
PORTAL_ANDROID = "MyCustodian/9.4.1 (Android 14; Pixel 7)"
MOBILE_CLIN = "CustodianHaiku/11.3 (iPhone; iOS 17.3.1)"
BROWSERS = [CHROME_WIN.format(122), CHROME_WIN.format(121), EDGE_WIN,
            SAFARI_MAC, FIREFOX_WIN]
PORTAL_UAS = [PORTAL_IOS, PORTAL_ANDROID, IPHONE_SAFARI, ANDROID_CHROME,
              CHROME_WIN.format(122), SAFARI_MAC, EDGE_WIN]

CLINICAL_TYPES = {"Observation", "Condition", "DocumentReference",
                  "DiagnosticReport", "MedicationRequest", "Procedure",
                  "CarePlan", "MedicationAdministration", "Communication",
                  "QuestionnaireResponse", "ServiceRequest", "Composition"}

BG_REASONS = ["Emergency treatment", "Patient unresponsive in ED, need history",
              "Rapid response - medication history", "Suicide risk assessment",
              "Overdose - prior SUD treatment", "Covering for primary team",
              "Transfer from outside hospital", "Code blue"]
BG_REASONS_BAD = ["Continuity of care", "Patient care", "Follow up",
                  "Reviewing results", "asked by patient", "care coordination"]

KINDS = ["snooping", "stolen_credentials", "exfiltration", "enumeration",
         "break_glass_abuse", "role_misuse", "identity_harvest",
         "lingering_resident", "departed_account", "service_compromise",
         "research_overreach", "record_tampering", "care_mgmt_overreach",
         "media_snooping", "proxy_abuse"]

# --------------------------------------------------------------------------
# core objects
# --------------------------------------------------------------------------


class User:
    __slots__ = ("uid", "role", "org", "dept", "prac", "job", "unit", "ws",
                 "home_ip", "home_ua", "ua_kind", "skew", "shift", "days",
                 "remote", "charge", "extra", "start_day", "end_day", "site",
                 "name", "panel")

    def __init__(self, uid, role, org, dept, prac, job):
        self.uid, self.role, self.org, self.dept = uid, role, org, dept
        self.prac, self.job = prac, job
        self.unit = None          # home unit / clinic
        self.ws = []              # usual workstation addresses
        self.home_ip = None
        self.home_ua = None
        self.ua_kind = "desktop"
        self.skew = 0.0
        self.shift = "D"
        self.days = set()
        self.remote = False
        self.charge = False
        self.extra = {}
        self.start_day = 0
        self.end_day = 10 ** 6
        self.site = None
        self.panel = []


class Patient:
    __slots__ = ("ref", "sens", "vip", "employee", "portal", "proxies", "age",
                 "aco", "studies", "onc", "dialysis", "txp", "clinic",
                 "pcp", "news", "consents")

    def __init__(self, ref):
        self.ref = ref
        self.sens = None      # None, "psych", "sud", "hiv"
        self.vip = False
        self.employee = None  # User who is this patient
        self.portal = None    # (uid, ip, ua)
        self.proxies = []     # [(uid, ip, ua, consent)]
        self.age = 50
        self.aco = False
        self.studies = []
        self.onc = self.dialysis = self.txp = False
        self.clinic = None
        self.pcp = None
        self.news = False
        self.consents = {}


class Stay:
    __slots__ = ("p", "unit", "admit", "disch", "team", "consults", "via_ed",
                 "or_day", "surgeon", "events")

    def __init__(self, p, unit, admit, disch):
        self.p, self.unit, self.admit, self.disch = p, unit, admit, disch
        self.team = {}
        self.consults = []
        self.via_ed = False
        self.or_day = None
        self.surgeon = None
        self.events = []


class Ctx:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.idrng = random.Random(args.seed * 7919 + 17)
        self.days = args.days
        self.tz = args.tz_offset
        self.start_date = self.rng.choice(START_DATES)
        d0 = dt.datetime.strptime(self.start_date, "%Y-%m-%d").replace(
            tzinfo=dt.timezone.utc) + dt.timedelta(days=self.rng.choice([0, 0, 1, 2, 3, 4, 6]))
        self.start_date = d0.strftime("%Y-%m-%d")
        self.base = d0.timestamp() - self.tz * 3600.0   # local midnight, UTC
        self.events = []
        self.labels = {}
        self.incidents = []
        self.users = []
        self.by_job = defaultdict(list)
        self.patients = []
        self.stays = []
        self.ed_visits = []
        self.clinic_visits = []
        self.or_cases = defaultdict(list)
        self.pos_cultures = defaultdict(list)
        self.ws_skew = {}
        self.used_uids = set()
        self.departed = {}
        self.departed_susp = {}
        self.extra = {}
        r = self.rng
        # calendar events
        self.weekday0 = d0.weekday()
        self.rotation_day = max(1, min(self.days - 1, self.days // 2 + r.choice([-1, 0, 0, 1])))
        # holiday: a weekday in the period, not the rotation day
        cands = [d for d in range(1, self.days - 1)
                 if self.weekday(d) < 5 and d != self.rotation_day]
        self.holiday = r.choice(cands) if cands else None
        self.downtime_day = r.choice([d for d in range(2, max(3, self.days - 1))
                                      if d != self.holiday] or [1])
        st = r.choice([1.0, 2.0, 22.0, 14.0, 9.5])
        self.downtime = (self.T(self.downtime_day, st),
                         self.T(self.downtime_day, st + r.uniform(2.5, 5.5)))
        self.surge_day = r.choice([d for d in range(self.days) if d not in
                                   (self.holiday, self.downtime_day)] or [0])
        self.upgrade_day = r.randint(2, max(2, self.days - 2))
        self.upgrade_t = self.T(self.upgrade_day, 5.0)

    # ---- time
    def T(self, day, hour):
        return self.base + day * 86400.0 + hour * 3600.0

    def weekday(self, day):
        return (self.weekday0 + day) % 7

    def is_weekend(self, day):
        return self.weekday(day) >= 5

    def workday(self, day):
        return not self.is_weekend(day) and day != self.holiday

    def day_of(self, t):
        return int((t - self.base) // 86400)

    def in_downtime(self, t):
        return self.downtime[0] <= t < self.downtime[1]

    def end(self):
        return self.T(self.days, 0.0)

    # ---- identities
    def new_uid(self, prefix="u"):
        while True:
            uid = "%s%06d" % (prefix, self.rng.randint(100000, 999999))
            if uid not in self.used_uids:
                self.used_uids.add(uid)
                return uid

    def new_id(self):
        return str(uuid.UUID(int=self.idrng.getrandbits(128), version=4))

    # ---- addresses / agents
    def public_ip(self, kind="res"):
        r = self.rng
        if kind == "mobile":
            a, b = r.choice(MOBILE_NETS)
        elif kind == "hosting":
            a, b = r.choice(HOSTING_NETS)
        else:
            a, b = r.choice(RESIDENTIAL_A), r.randint(1, 254)
        return "%d.%d.%d.%d" % (a, b, r.randint(0, 255), r.randint(2, 254))

    def desktop_ua(self, t):
        return DESKTOP_UA.format("24.2.0.118" if t >= self.upgrade_t
                                 else "24.1.3.402")

    def ua_for(self, u, t, loc):
        if loc == "home":
            return u.home_ua
        if loc == "handheld":
            return HANDHELD_UA
        if loc == "mobile":
            return MOBILE_CLIN
        if u.ua_kind == "browser":
            return u.home_ua
        return self.desktop_ua(t)

    def ip_for(self, u, loc):
        r = self.rng
        if loc == "citrix":
            return r.choice(CITRIX)
        if loc == "vpn":
            return "10.250.%d.%d" % (r.randint(0, 3), r.randint(2, 254))
        if loc == "home":
            return u.home_ip
        if loc == "mobile":
            return "10.13.%d.%d" % (r.randint(0, 15), r.randint(2, 254))
        if loc == "handheld":
            return "10.12.%d.%d" % (UNIT_SUBNET.get(u.unit, 99), r.randint(10, 90))
        if isinstance(loc, str) and loc[0].isdigit():
            return loc
        return r.choice(u.ws) if u.ws else "10.10.99.%d" % r.randint(2, 254)

    # ---- emission
    def emit(self, t, u, p, action, rtype, count=1, purpose=None,
             outcome="permit", bg=False, basis=None, ip=None, ua=None,
             label=None, reason=None, consents=None, account=None, conf=-1):
        if self.in_downtime(t):
            if label is None:
                return
            t = self.downtime[1] + (t - self.downtime[0]) * 0.2
        if t >= self.end() or t < self.base:
            return
        skew = self.ws_skew.get(ip)
        if skew is None:
            skew = self.rng.gauss(0, 2.5) if self.rng.random() < 0.3 else 0.0
            self.ws_skew[ip] = skew
        if conf == -1:
            conf = confidentiality(p, rtype)
        if basis is None:
            basis = default_basis(u, outcome)
        dec = {"basis": basis}
        if consents:
            dec["consents"] = consents
        if reason:
            dec["break_glass_reason"] = reason
        ev = (t + skew, u.uid, u.role, u.org, u.dept, u.prac,
              p.ref if p is not None else None, action, rtype, count,
              purpose or u.extra.get("purpose", "TREAT"), outcome, bg, conf,
              ip, ua, dec, account, label)
        self.events.append(ev)

    def login(self, u, t, loc, label=None, fail_p=0.025):
        ip, ua = self.ip_for(u, loc), self.ua_for(u, t, loc)
        r = self.rng
        if label is None and r.random() < fail_p:
            n = 1 if r.random() < 0.8 else r.randint(2, 5)
            for i in range(n):
                self.emit(t - 20 * (n - i), u, None, "login", None, 0,
                          outcome="deny", basis="bad-credentials" if i < 4
                          else "locked-out", ip=ip, ua=ua, conf=None)
            if n >= 5:
                unlock(self, u, t + r.uniform(300, 1800))
                t += 1900
        self.emit(t, u, None, "login", None, 0, ip=ip, ua=ua, conf=None,
                  label=label)
        return ip, ua


def confidentiality(p, rtype):
    if p is None:
        return None
    if p.vip:
        return "V"
    if p.sens and rtype in CLINICAL_TYPES:
        return "R"
    return "N"


def default_basis(u, outcome):
    if outcome != "permit":
        return "no-permit"
    if u.role == "patient":
        return "own-record"
    if u.role in ("service", "admin", "auditor"):
        return "role"
    return u.extra.get("basis", "custodian")


def unlock(ctx, u, t):
    admins = ctx.by_job.get("it_admin")
    if not admins:
        return
    a = ctx.rng.choice(admins)
    ctx.emit(t, a, None, "update", "User", 1, purpose="HSYSADMIN",
             ip=ctx.ip_for(a, "ws"), ua=ctx.desktop_ua(t), conf=None,
             account="User/" + u.uid)


# --------------------------------------------------------------------------
# chart sessions
# --------------------------------------------------------------------------

PROF = {
    "nurse": [("search", "Observation", 3), ("create", "Observation", 4),
              ("search", "MedicationRequest", 2),
              ("create", "MedicationAdministration", 3), ("read", "CarePlan", 1),
              ("create", "DocumentReference", 0.8),
              ("search", "DocumentReference", 0.6), ("read", "AllergyIntolerance", 0.3)],
    "md": [("search", "Observation", 3), ("read", "DiagnosticReport", 2),
           ("search", "DocumentReference", 2), ("read", "DocumentReference", 2),
           ("create", "MedicationRequest", 1.3), ("create", "ServiceRequest", 0.8),
           ("search", "MedicationRequest", 1), ("read", "ImagingStudy", 0.5),
           ("update", "MedicationRequest", 0.3), ("search", "Condition", 0.5)],
    "student": [("search", "Observation", 3), ("read", "DocumentReference", 3),
                ("search", "DocumentReference", 2), ("read", "DiagnosticReport", 2),
                ("search", "MedicationRequest", 1), ("read", "ImagingStudy", 0.4)],
    "review": [("search", "DocumentReference", 2), ("read", "DocumentReference", 2),
               ("read", "DiagnosticReport", 2), ("search", "Observation", 1.5),
               ("read", "ImagingStudy", 1), ("search", "Procedure", 0.6),
               ("search", "Condition", 0.6)],
    "coder": [("read", "Encounter", 2), ("search", "DocumentReference", 2),
              ("read", "DocumentReference", 3), ("search", "Procedure", 1),
              ("search", "Condition", 1), ("create", "Claim", 0.5)],
    "billing": [("read", "Claim", 2), ("read", "ExplanationOfBenefit", 2),
                ("read", "Coverage", 1), ("update", "Claim", 1),
                ("read", "Encounter", 1), ("search", "DocumentReference", 0.7)],
    "call": [("search", "Appointment", 2), ("create", "Appointment", 1),
             ("update", "Appointment", 0.6), ("read", "Coverage", 0.3),
             ("read", "Schedule", 0.5)],
    "reg": [("update", "Patient", 1), ("read", "Coverage", 1.5),
            ("update", "Coverage", 0.7), ("create", "Encounter", 0.5),
            ("create", "Consent", 0.2)],
    "pharm": [("search", "MedicationRequest", 2), ("read", "MedicationRequest", 2),
              ("update", "MedicationRequest", 2), ("search", "Observation", 1),
              ("read", "AllergyIntolerance", 1)],
    "cm": [("read", "Encounter", 1), ("search", "DocumentReference", 1),
           ("read", "DocumentReference", 1), ("create", "CarePlan", 0.6),
           ("create", "Task", 0.5), ("read", "Coverage", 0.5),
           ("search", "Condition", 0.5)],
    "portal": [("read", "Observation", 3), ("search", "Observation", 2),
               ("read", "DiagnosticReport", 2), ("search", "Appointment", 2),
               ("create", "Communication", 0.6), ("read", "MedicationRequest", 1),
               ("read", "DocumentReference", 0.7), ("read", "Immunization", 0.3)],
    "abstract": [("read", "Encounter", 1), ("search", "Procedure", 1),
                 ("search", "Observation", 2), ("read", "DocumentReference", 2),
                 ("search", "Condition", 1), ("create", "QuestionnaireResponse", 0.4)],
    "research": [("search", "Observation", 2), ("read", "DocumentReference", 1),
                 ("search", "Condition", 1), ("search", "MedicationRequest", 1),
                 ("create", "QuestionnaireResponse", 0.5)],
    "ipc": [("search", "Observation", 2), ("read", "DiagnosticReport", 2),
            ("read", "Encounter", 1), ("search", "MedicationRequest", 1)],
    "ma": [("read", "Appointment", 1), ("create", "Observation", 3),
           ("update", "AllergyIntolerance", 0.3), ("search", "MedicationRequest", 1),
           ("create", "QuestionnaireResponse", 0.5)],
    "snoop": [("search", "DocumentReference", 2), ("read", "DocumentReference", 2),
              ("search", "Observation", 1), ("read", "DiagnosticReport", 1),
              ("search", "Encounter", 1), ("read", "Condition", 0.6)],
    "priorauth": [("read", "ServiceRequest", 2), ("read", "Coverage", 2),
                  ("search", "Condition", 1), ("create", "Claim", 1),
                  ("read", "DocumentReference", 0.6)],
}
PROF_CUM = {}
for _k, _v in PROF.items():
    _c, _acc = [], 0.0
    for _a, _r, _w in _v:
        _acc += _w
        _c.append(_acc)
    PROF_CUM[_k] = ([(a, r) for a, r, _ in _v], _c)


def search_count(r, rtype):
    if rtype in ("Observation", "DocumentReference", "MedicationRequest",
                 "MedicationAdministration", "DiagnosticReport"):
        return max(0, int(r.expovariate(1 / 14.0)))
    return r.randint(0, 6)


def session(ctx, u, p, t, prof, n=None, loc="ws", purpose=None, basis=None,
            bg=False, label=None, consents=None, open_chart=True, ip=None,
            ua=None, gap=(4, 50)):
    """One chart session: open the chart, then n actions. Returns end time."""
    r = ctx.rng
    if ip is None:
        ip = ctx.ip_for(u, loc)
    if ua is None:
        ua = ctx.ua_for(u, t, loc)
    if n is None:
        n = r.randint(2, 6)
    kw = dict(purpose=purpose, basis=basis, bg=bg, ip=ip, ua=ua, label=label,
              consents=consents)
    if open_chart:
        ctx.emit(t, u, p, "read", "Patient", 1, **kw)
        t += r.uniform(*gap)
    pop, cum = PROF_CUM[prof]
    for (a, rt) in r.choices(pop, cum_weights=cum, k=n):
        cnt = search_count(r, rt) if a == "search" else 1
        ctx.emit(t, u, p, a, rt, cnt, **kw)
        t += r.uniform(*gap)
    return t


def pick_hour(r, lo, hi):
    return r.uniform(lo, hi)


# --------------------------------------------------------------------------
# world: staff
# --------------------------------------------------------------------------

# job: (fraction, role, org, department, has practitioner, purpose, profile)
JOBS = {
    "rn": (0.0, "practitioner", HOSP, None, True, "TREAT"),
    "float_rn": (0.03, "practitioner", HOSP, "Float Pool Nursing", True, "TREAT"),
    "travel_rn": (0.02, "practitioner", HOSP, None, True, "TREAT"),
    "rrt_rn": (0.01, "practitioner", HOSP, "Rapid Response", True, "TREAT"),
    "ed_rn": (0.05, "practitioner", HOSP, "Emergency Department", True, "TREAT"),
    "ed_md": (0.03, "practitioner", HOSP, "Emergency Medicine", True, "TREAT"),
    "ed_reg": (0.015, "practitioner", HOSP, "ED Registration", False, "PATADMIN"),
    "attending": (0.04, "practitioner", FPP, "Internal Medicine", True, "TREAT"),
    "hospitalist": (0.02, "practitioner", HOSP, "Hospital Medicine", True, "TREAT"),
    "psychiatrist": (0.01, "practitioner", FPP, "Psychiatry", True, "TREAT"),
    "surgeon": (0.02, "practitioner", FPP, "Surgery", True, "TREAT"),
    "resident": (0.05, "practitioner", HOSP, "Graduate Medical Education", True, "TREAT"),
    "intern": (0.05, "practitioner", HOSP, "Graduate Medical Education", True, "TREAT"),
    "student": (0.03, "practitioner", HOSP, "Medical Education", False, "TREAT"),
    "consultant": (0.03, "practitioner", FPP, None, True, "TREAT"),
    "anesthesia": (0.02, "practitioner", FPP, "Anesthesiology", True, "TREAT"),
    "or_rn": (0.02, "practitioner", HOSP, "Perioperative Services", True, "TREAT"),
    "clinic_md": (0.06, "practitioner", FPP, None, True, "TREAT"),
    "clinic_ma": (0.04, "practitioner", FPP, None, False, "TREAT"),
    "infusion_rn": (0.01, "practitioner", HOSP, "Infusion Center", True, "TREAT"),
    "dialysis_rn": (0.01, "practitioner", HOSP, "Dialysis Unit", True, "TREAT"),
    "pharmacist": (0.02, "practitioner", HOSP, "Pharmacy", True, "TREAT"),
    "call": (0.03, "practitioner", FPP, "Patient Access Call Center", False, "PATADMIN"),
    "reg": (0.015, "practitioner", FPP, "Clinic Front Desk", False, "PATADMIN"),
    "prior_auth": (0.01, "practitioner", FPP, "Prior Authorization", False, "HPAYMT"),
    "coder": (0.02, "practitioner", HOSP, "HIM Coding", False, "HPAYMT"),
    "billing": (0.015, "practitioner", HOSP, "Patient Financial Services", False, "HPAYMT"),
    "roi": (0.01, "practitioner", HOSP, "Release of Information", False, "HLEGAL"),
    "him": (0.01, "practitioner", HOSP, "Health Information Management", False, "RECORDMGT"),
    "quality": (0.01, "practitioner", HOSP, "Quality and Registries", False, "HQUALIMP"),
    "infection": (0.005, "practitioner", HOSP, "Infection Prevention", True, "HOPERAT"),
    "research": (0.015, "practitioner", RES, "Clinical Research Office", False, "HRESCH"),
    "aco_cm": (0.015, "practitioner", ACO, "Care Management", True, "CAREMGT"),
    "case_mgr": (0.015, "practitioner", HOSP, "Case Management", True, "TREAT"),
    "ur": (0.01, "practitioner", HOSP, "Utilization Review", True, "HPAYMT"),
    "emp_health": (0.005, "practitioner", HOSP, "Employee Health", True, "TREAT"),
    "privacy": (0.005, "auditor", HOSP, "Privacy Office", False, "HOPERAT"),
    "it_admin": (0.01, "admin", HOSP, "Identity and Access", False, "HSYSADMIN"),
}
OFFICE_SUBNET = {"ed_reg": "ED", "pharmacist": "PHARM", "call": "CALL",
                 "prior_auth": "REV", "coder": "HIM", "billing": "REV",
                 "roi": "HIM", "him": "HIM", "quality": "QUAL",
                 "infection": "IP", "research": "RSCH", "case_mgr": "CM",
                 "ur": "CM", "emp_health": "EH", "privacy": "PRIV",
                 "it_admin": "IT", "rrt_rn": "MICU", "anesthesia": "OR",
                 "or_rn": "OR", "infusion_rn": "INF", "dialysis_rn": "DIAL",
                 "ed_rn": "ED", "ed_md": "ED", "surgeon": "OR",
                 "hospitalist": "ADMIN", "attending": "ADMIN",
                 "psychiatrist": "PSY3", "consultant": "ADMIN",
                 "resident": "ADMIN", "intern": "ADMIN", "student": "ADMIN"}


def unit_ws(ctx, unit, n=6):
    key = ("ws", unit)
    if key not in ctx.extra:
        sub = UNIT_SUBNET.get(unit, 90)
        hosts = ctx.rng.sample(range(10, 250), n)
        ctx.extra[key] = ["10.10.%d.%d" % (sub, h) for h in hosts]
    return ctx.extra[key]


def shift_days(ctx, per_week, weekend_bias=0.0):
    r = ctx.rng
    days = set()
    for w0 in range(0, ctx.days, 7):
        wk = [d for d in range(w0, min(ctx.days, w0 + 7))]
        k = min(len(wk), per_week + (1 if r.random() < 0.2 else 0))
        wts = [1.0 + (weekend_bias if ctx.is_weekend(d) else 0.0) for d in wk]
        chosen = set()
        while len(chosen) < k:
            chosen.add(r.choices(wk, weights=wts)[0])
        days |= chosen
    return days


def make_user(ctx, job, unit=None):
    frac, role, org, dept, has_prac, purpose = JOBS[job]
    r = ctx.rng
    uid = ctx.new_uid("svc" if role == "service" else "u")
    prac = ("Practitioner/%d" % r.randint(10000, 99999)) if has_prac else None
    u = User(uid, role, org, dept, prac, job)
    u.extra["purpose"] = purpose
    if org == ACO:
        u.extra["basis"] = "role"
    elif org == RES:
        u.extra["basis"] = "consent"
    elif job in ("call", "reg", "prior_auth", "coder", "billing", "roi", "him",
                 "quality", "ur", "ed_reg"):
        u.extra["basis"] = "role"
    u.unit = unit
    u.home_ip = ctx.public_ip("res")
    u.home_ua = r.choice(BROWSERS)
    u.skew = 0.0
    ctx.users.append(u)
    ctx.by_job[job].append(u)
    return u


def build_staff(ctx):
    r = ctx.rng
    n = ctx.args.staff
    ctx.extra = {}
    counts = {j: max(1, int(round(v[0] * n))) for j, v in JOBS.items()
              if j != "rn"}
    counts["consultant"] = max(counts["consultant"], len(CONSULT_SERVICES))
    counts["clinic_md"] = max(counts["clinic_md"], 6)
    rn_total = max(len(UNITS) * 3, n - sum(counts.values()))
    wsum = sum(x[2] for x in UNITS)
    for code, label, w, ratio, teach, sealed in UNITS:
        k = max(4, int(round(rn_total * w / wsum)))
        ws = unit_ws(ctx, code)
        for i in range(k):
            u = make_user(ctx, "rn", code)
            u.dept = label
            u.shift = "D" if i % 2 == 0 else "N"
            u.charge = i < 2
            u.days = shift_days(ctx, 3, 0.0)
            u.ws = ws
        ctx.extra[("beds", code)] = max(4, int(round(k / 4.2 * ratio)))
    for job, k in counts.items():
        for i in range(k):
            u = make_user(ctx, job)
            sub = OFFICE_SUBNET.get(job)
            if sub:
                if job in ("ed_rn", "ed_md", "anesthesia", "or_rn", "infusion_rn",
                           "dialysis_rn", "pharmacist", "ed_reg", "psychiatrist",
                           "rrt_rn"):
                    u.ws = unit_ws(ctx, sub, 8)
                else:
                    u.ws = ["10.10.%d.%d" % (UNIT_SUBNET[sub], r.randint(10, 250))]
            u.unit = sub
            setup_job(ctx, u, i)
    # service accounts
    for name, dept, ip, ua in [
            ("lab", "Laboratory Interface", "10.5.1.21", "Mirth Connect/4.4.1 (LIS HL7v2 bridge)"),
            ("rad", "Radiology Interface", "10.5.1.22", "Mirth Connect/4.4.1 (RIS/PACS bridge)"),
            ("adc", "Dispensing Cabinets", "10.5.1.30", "OmniLink/2.8.4 (ADC sync)"),
            ("dw", "Enterprise Data Warehouse", "10.5.2.10", "spark-fhir-exporter/3.1.0 (Java/17.0.9)"),
            ("acoapi", "Lakes ACO Data Feed", "64.40.17.35", "python-requests/2.31.0"),
            ("hie", "State HIE Gateway", "10.5.1.40", "HAPI-FHIR-Client/6.10.2")]:
        u = User("svc-" + name, "service", ACO if name == "acoapi" else HOSP,
                 dept, None, "svc_" + name)
        u.extra["purpose"] = {"lab": "TREAT", "rad": "TREAT", "adc": "TREAT",
                              "dw": "HOPERAT", "acoapi": "CAREMGT",
                              "hie": "TREAT"}[name]
        u.ws, u.home_ua = [ip], ua
        u.ua_kind = "browser"
        ctx.users.append(u)
        ctx.by_job["svc_" + name].append(u)


def setup_job(ctx, u, i):
    r = ctx.rng
    j = u.job
    u.days = set(d for d in range(ctx.days) if ctx.workday(d))
    if j in ("float_rn", "ed_rn", "or_rn", "rrt_rn"):
        u.shift = "D" if (i % 3 != 2 or j == "or_rn") else "N"
        u.days = shift_days(ctx, 3, 0.2)
    elif j == "travel_rn":
        u.start_day = min(ctx.days - 1, ctx.rotation_day + r.randint(-2, 2))
        u.unit = r.choice([x[0] for x in UNITS if x[0] != "PSY3"])
        u.dept = "Contract Nursing"
        u.shift = r.choice("DN")
        u.days = set(d for d in shift_days(ctx, 4, 0.0) if d >= u.start_day)
        u.days.add(u.start_day)
        u.ws = unit_ws(ctx, u.unit)
    elif j == "ed_md":
        u.shift = "D" if i % 3 != 2 else "N"
        u.days = shift_days(ctx, 4, 0.3)
    elif j in ("consultant",):
        u.dept = CONSULT_SERVICES[i % len(CONSULT_SERVICES)]
        u.extra["service"] = u.dept
        u.ws = ["10.10.%d.%d" % (UNIT_SUBNET["ADMIN"], r.randint(10, 250))]
    elif j in ("clinic_md", "clinic_ma", "reg"):
        spec, site = CLINICS[i % len(CLINICS)]
        u.dept, u.site = spec, site
        pre = SITES[site][1]
        u.ws = ["%s.%d.%d" % (pre, 10 + i % 12, r.randint(10, 250))]
        if j == "clinic_md":
            u.remote = r.random() < 0.6
            u.days = set(d for d in range(ctx.days) if ctx.workday(d)
                         and r.random() < 0.85)
    elif j in ("coder", "billing", "prior_auth", "quality", "roi"):
        u.remote = r.random() < (0.6 if j in ("coder", "billing") else 0.3)
        u.ua_kind = "desktop"
    elif j == "call":
        u.remote = r.random() < 0.3
        u.days = set(d for d in range(ctx.days)
                     if (ctx.workday(d) or (ctx.weekday(d) == 5 and r.random() < 0.4)))
    elif j == "aco_cm":
        u.ws = ["64.40.17.%d" % r.randint(60, 120)]
        u.ua_kind = "browser"
        u.remote = r.random() < 0.4
    elif j == "research":
        u.ua_kind = "browser" if r.random() < 0.5 else "desktop"
    elif j in ("attending", "hospitalist", "surgeon", "psychiatrist",
               "resident", "intern", "student", "anesthesia"):
        u.days = set(range(ctx.days))
    if j in ("call", "coder", "billing", "prior_auth", "roi", "him", "quality", "ur",
             "case_mgr") and r.random() < 0.5:
        # thin client on site: every session goes through the Citrix gateway
        u.ws = list(CITRIX)
    if u.remote and u.ws:
        u.extra["remote_loc"] = "citrix" if r.random() < 0.7 else "vpn"


# --------------------------------------------------------------------------
# world: patients, stays, visits
# --------------------------------------------------------------------------

STUDIES = [("ONC-IO-301", "onc", 45), ("HF-REG-12", "card", 70),
           ("T1D-TECH-7", "endo", 50), ("TXP-IMMUNO-4", "txp", 30)]


def build_patients(ctx):
    r = ctx.rng
    N = ctx.args.patients
    ids = r.sample(range(1000000, 9999999), N)
    clinic_w = [14, 8, 8, 5, 5, 6, 4, 3, 4, 2, 6, 5]
    ctx.by_clinic = defaultdict(list)
    for i in range(N):
        p = Patient("Patient/%d" % ids[i])
        p.age = max(0, min(99, int(r.gauss(52, 22))))
        x = r.random()
        if x < 0.012:
            p.sens = "psych"
        elif x < 0.02:
            p.sens = "sud"
        elif x < 0.026:
            p.sens = "hiv"
        p.onc = r.random() < 0.05
        p.txp = r.random() < 0.012
        p.dialysis = r.random() < 0.008 and p.age > 30
        p.aco = r.random() < 0.2 and p.age > 18
        ci = r.choices(range(len(CLINICS)), weights=clinic_w)[0]
        if p.age < 18:
            ci = 10
        elif p.onc and r.random() < 0.7:
            ci = 6
        elif p.txp:
            ci = 9
        elif p.sens == "psych" and r.random() < 0.6:
            ci = 8
        p.clinic = ci
        ctx.by_clinic[ci].append(p)
        if r.random() < 0.45 and p.age >= 13:
            p.portal = (ctx.new_uid("pt"), ctx.public_ip(
                "mobile" if r.random() < 0.3 else "res"), r.choice(PORTAL_UAS))
        if (p.age < 13 and r.random() < 0.5) or (p.age > 78 and r.random() < 0.15):
            p.proxies.append((ctx.new_uid("pt"), ctx.public_ip("res"),
                              r.choice(PORTAL_UAS),
                              "Consent/prx-%d" % r.randint(100000, 999999)))
        ctx.patients.append(p)
    # VIPs
    nv = max(5, N // 300)
    for p in r.sample(ctx.patients, nv):
        p.vip = True
    # staff are patients too
    adults = [p for p in ctx.patients if 20 < p.age < 70 and not p.vip]
    staff = [u for u in ctx.users if u.role != "service"]
    for u, p in zip([u for u in staff if r.random() < 0.35],
                    r.sample(adults, len(adults))):
        p.employee = u
        u.extra["as_patient"] = p
    # ACO panels
    aco = [p for p in ctx.patients if p.aco]
    cms = ctx.by_job["aco_cm"]
    for k, p in enumerate(aco):
        cms[k % len(cms)].panel.append(p)
    # research cohorts
    ctx.studies = {}
    pools = {"onc": [p for p in ctx.patients if p.onc],
             "card": ctx.by_clinic[2], "endo": ctx.by_clinic[3],
             "txp": [p for p in ctx.patients if p.txp]}
    for name, pool, k in STUDIES:
        pool = [p for p in pools[pool] if p.age >= 18] or ctx.patients
        coh = r.sample(pool, min(len(pool), k))
        for p in coh:
            p.studies.append(name)
            p.consents[name] = "Consent/rs-%s-%d" % (name.lower(), r.randint(10000, 99999))
        ctx.studies[name] = coh
    rcs = ctx.by_job["research"]
    for k, u in enumerate(rcs):
        u.extra["studies"] = [STUDIES[k % len(STUDIES)][0]]
        if r.random() < 0.5:
            u.extra["studies"].append(STUDIES[(k + 1) % len(STUDIES)][0])
    for k, (name, _, _) in enumerate(STUDIES):
        if not any(name in u.extra["studies"] for u in rcs):
            rcs[k % len(rcs)].extra["studies"].append(name)


LOS = {"MICU": 3.5, "MED4": 4.2, "MED5": 4.2, "SURG6": 4.5, "ONC7": 6.0,
       "PSY3": 8.5}


def build_stays(ctx):
    r = ctx.rng
    busy_until = {}
    adults = [p for p in ctx.patients if p.age >= 18]
    onc = [p for p in adults if p.onc] or adults
    t_end = ctx.end()
    for code, label, w, ratio, teach, sealed in UNITS:
        beds = ctx.extra[("beds", code)]
        for b in range(beds):
            t = ctx.base - 40 * 86400 + r.uniform(0, LOS[code] * 86400)
            while t < t_end:
                for _ in range(30):
                    if code == "ONC7" and r.random() < 0.8:
                        p = r.choice(onc)
                    else:
                        p = r.choice(adults)
                    if busy_until.get(p.ref, 0) < t - 86400 * 2 and not (
                            code != "PSY3" and p.sens == "psych" and r.random() < 0.5):
                        break
                los = r.lognormvariate(0, 0.6) * LOS[code] * 86400
                los = max(18 * 3600, min(40 * 86400, los))
                disch = t + los
                dday = ctx.day_of(disch)
                disch = ctx.T(dday, r.uniform(10.5, 16.5))
                if disch <= t + 12 * 3600:
                    disch = t + r.uniform(20, 30) * 3600
                s = Stay(p, code, t, disch)
                if code == "PSY3":
                    p.sens = "psych"
                s.via_ed = r.random() < (0.75 if code != "SURG6" else 0.35)
                if code == "SURG6" or (code == "ONC7" and r.random() < 0.15):
                    s.or_day = ctx.day_of(t) + (0 if not s.via_ed else r.randint(0, 1))
                ctx.stays.append(s)
                busy_until[p.ref] = disch
                gap = r.uniform(2, 14) * 3600
                nt = disch + gap
                # admissions cluster in afternoon/evening/night
                nd = ctx.day_of(nt)
                hour = (nt - ctx.T(nd, 0)) / 3600.0
                if 6 < hour < 12:
                    nt = ctx.T(nd, r.uniform(12, 23.5))
                t = nt
    ctx.stays.sort(key=lambda s: s.admit)


def census(ctx, unit, t):
    return [s for s in ctx.stays_by_unit[unit] if s.admit <= t < s.disch]


def index_stays(ctx):
    ctx.stays_by_unit = defaultdict(list)
    for s in ctx.stays:
        ctx.stays_by_unit[s.unit].append(s)


# --------------------------------------------------------------------------
# teams and rotations
# --------------------------------------------------------------------------

TEACH = [u[0] for u in UNITS if u[4]]


def assign_rotations(ctx):
    r = ctx.rng
    ctx.team = {}
    att = list(ctx.by_job["attending"])
    res = list(ctx.by_job["resident"])
    ints = list(ctx.by_job["intern"])
    stud = list(ctx.by_job["student"])
    hosp = list(ctx.by_job["hospitalist"])
    psy = list(ctx.by_job["psychiatrist"])
    for lst in (att, res, ints, stud):
        r.shuffle(lst)
    ctx.night_float = {}
    prev = {}
    for block in (0, 1):
        if block == 1:
            # rotate: shift every list so that most trainees change unit
            att = att[len(TEACH):] + att[:len(TEACH)]
            res = res[1:] + res[:1]
            ints = ints[2:] + ints[:2]
            stud = stud[1:] + stud[:1]
        for k, unit in enumerate(TEACH):
            team = {"att": att[k % len(att)],
                    "res": res[k % len(res)],
                    "ints": [ints[(2 * k) % len(ints)], ints[(2 * k + 1) % len(ints)]],
                    "stud": stud[k % len(stud)] if k < len(stud) else None}
            ctx.team[(unit, block)] = team
        nf_r = res[len(TEACH) % len(res)]
        nf_i = ints[(2 * len(TEACH)) % len(ints)]
        ctx.night_float[block] = (nf_r, nf_i)
        for k, unit in enumerate(["SURG6", "PSY3"]):
            ctx.team[(unit, block)] = {"att": psy[block % len(psy)] if unit == "PSY3"
                                       else hosp[(block + k) % len(hosp)],
                                       "res": None, "ints": [], "stud": None,
                                       "hosp": hosp[(block + 1) % len(hosp)]}
    # the ICU resident runs rapid responses
    for block in (0, 1):
        for u in [ctx.team[(un, block)]["res"] for un in TEACH] + \
                 [x for x in ctx.team[(TEACH[0], block)]["ints"]]:
            prev.setdefault(u.uid, set()).add(block)
    ctx.surgeons = ctx.by_job["surgeon"]


def block_of(ctx, day):
    return 0 if day < ctx.rotation_day else 1


def team_for(ctx, unit, day):
    return ctx.team[(unit, block_of(ctx, day))]


# --------------------------------------------------------------------------
# inpatient nursing
# --------------------------------------------------------------------------

def shift_window(ctx, day, sh):
    return (ctx.T(day, 7.0), ctx.T(day, 19.0)) if sh == "D" else \
        (ctx.T(day, 19.0), ctx.T(day + 1, 7.0))


def gen_nursing(ctx):
    r = ctx.rng
    floats = ctx.by_job["float_rn"]
    travel = ctx.by_job["travel_rn"]
    ctx.nurse_of = {}   # (stay id, day, shift) -> nurse
    for day in range(-1, ctx.days):
        for sh in "DN":
            t0, t1 = shift_window(ctx, day, sh)
            used_float = set()
            for code, label, w, ratio, teach, sealed in UNITS:
                nurses = [u for u in ctx.by_job["rn"] if u.unit == code
                          and u.shift == sh and day in u.days]
                nurses += [u for u in travel if u.unit == code and u.shift == sh
                           and day in u.days]
                pts = [s for s in ctx.stays_by_unit[code]
                       if s.admit < t1 and s.disch > t0]
                need = int(len(pts) / ratio + 0.7)
                for f in floats:
                    if len(nurses) >= need:
                        break
                    if f.shift == sh and day in f.days and f.uid not in used_float:
                        used_float.add(f.uid)
                        nurses.append(f)
                if not nurses:
                    nurses = [r.choice([u for u in ctx.by_job["rn"] if u.unit == code])]
                for k, s in enumerate(pts):
                    ctx.nurse_of[(id(s), day, sh)] = nurses[k % len(nurses)]
                for n in nurses:
                    ws = unit_ws(ctx, code)
                    loc = r.choice(ws)
                    ctx.login(n, t0 - r.uniform(300, 1500), loc)
                    my = [s for k, s in enumerate(pts) if nurses[k % len(nurses)] is n]
                    if n.charge or (n.job == "travel_rn" and day == n.start_day):
                        # charge nurse / orientation: a look at every patient
                        t = t0 + r.uniform(0, 1800)
                        for s in pts:
                            if s.admit < t < s.disch:
                                t = session(ctx, n, s.p, t, "nurse", n=r.randint(0, 2),
                                            loc=loc) + r.uniform(10, 120)
                    for s in my:
                        a, b = max(t0, s.admit), min(t1, s.disch)
                        t = a + r.uniform(300, 3600)
                        step = 3600 if sh == "D" else 6000
                        while t < b:
                            hh = r.random() < 0.35
                            if not hh and r.random() < 0.15:
                                # badge tap-in on a shared workstation
                                ctx.emit(t - r.uniform(5, 30), n, None, "login", None, 0,
                                         ip=loc, ua=ctx.desktop_ua(t), conf=None)
                            session(ctx, n, s.p, t, "nurse", n=r.randint(2, 7),
                                    loc="handheld" if hh else loc,
                                    open_chart=not hh or r.random() < 0.5)
                            t += r.uniform(0.5, 1.5) * step
                        if s.disch <= t1 and s.disch >= t0:
                            ctx.emit(s.disch - r.uniform(600, 3600), n, s.p, "create",
                                     "DocumentReference", 1, ip=loc,
                                     ua=ctx.desktop_ua(s.disch))
                    # occasional look at a neighbouring patient (covering a break)
                    others = [s for s in pts if s not in my]
                    for _ in range(r.randint(0, 2)):
                        if others:
                            s = r.choice(others)
                            t = r.uniform(max(t0, s.admit), min(t1, s.disch))
                            session(ctx, n, s.p, t, "nurse", n=r.randint(1, 3), loc=loc)


# --------------------------------------------------------------------------
# inpatient physicians
# --------------------------------------------------------------------------

def physician_loc(ctx, u, t):
    return r_choice(ctx, u.ws) if u.ws else "ws"


def r_choice(ctx, lst):
    return ctx.rng.choice(lst)


def gen_physicians(ctx):
    r = ctx.rng
    for day in range(ctx.days):
        blk = block_of(ctx, day)
        wknd = ctx.is_weekend(day)
        for code in [u[0] for u in UNITS]:
            team = ctx.team[(code, blk)]
            ws = unit_ws(ctx, code)
            dt0, dt1 = ctx.T(day, 6.0), ctx.T(day, 18.0)
            pts = [s for s in ctx.stays_by_unit[code]
                   if s.admit < dt1 and s.disch > dt0]
            members = [m for m in [team["att"], team["res"]] + team["ints"] +
                       [team["stud"], team.get("hosp")] if m is not None]
            for m in members:
                start = ctx.T(day, r.uniform(5.3, 6.5) if m.job in ("intern", "resident", "student")
                              else r.uniform(7.0, 8.5))
                if wknd and m.job in ("student",) and r.random() < 0.7:
                    continue
                ctx.login(m, start - 60, r.choice(ws))
            if not pts:
                continue
            ints = team["ints"]
            for k, s in enumerate(pts):
                p = s.p
                new = s.admit >= ctx.T(day, 7.0) and s.admit < ctx.T(day, 19.0)
                if code in TEACH:
                    intern = ints[k % len(ints)]
                    if s.admit < dt0:
                        # pre-rounds, rounds, notes, orders
                        t = ctx.T(day, r.uniform(5.5, 7.0))
                        session(ctx, intern, p, t, "md", n=r.randint(4, 10), loc=r.choice(ws))
                        session(ctx, team["res"], p, t + r.uniform(600, 3600), "md",
                                n=r.randint(2, 4), loc=r.choice(ws))
                        session(ctx, team["att"], p, ctx.T(day, r.uniform(8.5, 11.5)),
                                "review", n=r.randint(1, 3), loc=r.choice(ws))
                        tn = ctx.T(day, r.uniform(11.5, 16.5))
                        ctx.emit(tn, intern, p, "create", "DocumentReference", 1,
                                 ip=r.choice(ws), ua=ctx.desktop_ua(tn))
                        ta = tn + r.uniform(1800, 5 * 3600)
                        ctx.emit(ta, team["att"], p, "update", "DocumentReference", 1,
                                 ip=r.choice(team["att"].ws or ws), ua=ctx.desktop_ua(ta))
                        for _ in range(r.randint(0, 3)):
                            session(ctx, intern, p, ctx.T(day, r.uniform(9, 18)), "md",
                                    n=r.randint(1, 3), loc=r.choice(ws), open_chart=False)
                        st = team["stud"]
                        if st is not None and k % 3 == 0 and not (wknd and r.random() < 0.7):
                            session(ctx, st, p, ctx.T(day, r.uniform(5.5, 7.0)), "student",
                                    n=r.randint(3, 8), loc=r.choice(ws))
                            if r.random() < 0.5:
                                ctx.emit(ctx.T(day, r.uniform(12, 17)), st, p, "create",
                                         "DocumentReference", 1, ip=r.choice(ws),
                                         ua=ctx.desktop_ua(dt0))
                    elif new:
                        admitter = r.choice([team["res"]] + ints)
                        t = s.admit + r.uniform(600, 5400)
                        session(ctx, admitter, p, t, "md", n=r.randint(8, 14), loc=r.choice(ws))
                        ctx.emit(t + 2400, admitter, p, "create", "DocumentReference", 1,
                                 ip=r.choice(ws), ua=ctx.desktop_ua(t))
                        ctx.emit(t + 600, admitter, p, "create", "MedicationRequest", 1,
                                 ip=r.choice(ws), ua=ctx.desktop_ua(t))
                else:
                    att = team["att"]
                    if s.admit < dt1:
                        t = ctx.T(day, r.uniform(7.5, 12.0)) if s.admit < dt0 else \
                            s.admit + r.uniform(1800, 7200)
                        session(ctx, att, p, t, "md", n=r.randint(3, 7), loc=r.choice(ws))
                        ctx.emit(t + r.uniform(900, 4 * 3600), att, p, "create",
                                 "DocumentReference", 1, ip=r.choice(ws),
                                 ua=ctx.desktop_ua(t))
                    if code == "SURG6" and s.surgeon is not None and s.admit < dt0:
                        session(ctx, s.surgeon, p, ctx.T(day, r.uniform(5.7, 6.8)), "md",
                                n=r.randint(2, 4), loc=r.choice(ws))
                    if team.get("hosp") and r.random() < (0.5 if code == "PSY3" else 0.9):
                        session(ctx, team["hosp"], p, ctx.T(day, r.uniform(9, 16)), "md",
                                n=r.randint(2, 5), loc=r.choice(ws))
                # discharge work
                if ctx.day_of(s.disch) == day:
                    who = ints[k % len(ints)] if code in TEACH else team["att"]
                    t = s.disch - r.uniform(1800, 3 * 3600)
                    session(ctx, who, p, t, "md", n=r.randint(2, 4), loc=r.choice(ws))
                    for rt in ("DocumentReference", "MedicationRequest", "MedicationRequest"):
                        ctx.emit(t + r.uniform(300, 1500), who, p, "create", rt, 1,
                                 ip=r.choice(ws), ua=ctx.desktop_ua(t))
            # attending looks at results from home in the evening (mobile app)
            att = team["att"]
            if r.random() < 0.5:
                for s in r.sample(pts, min(len(pts), r.randint(1, 3))):
                    t = ctx.T(day, r.uniform(20.5, 23.5))
                    session(ctx, att, s.p, t, "review", n=r.randint(1, 3),
                            ip=att.home_ip, ua=MOBILE_CLIN, open_chart=False)


def gen_nights(ctx):
    """Night float admissions and cross-cover of the teaching units."""
    r = ctx.rng
    for day in range(-1, ctx.days):
        blk = block_of(ctx, max(0, day))
        nf_r, nf_i = ctx.night_float[blk]
        n0, n1 = ctx.T(day, 19.0), ctx.T(day + 1, 7.0)
        for m in (nf_r, nf_i):
            ctx.login(m, n0 - r.uniform(300, 1200), r.choice(unit_ws(ctx, "MED4")))
        for code in TEACH:
            ws = unit_ws(ctx, code)
            for s in ctx.stays_by_unit[code]:
                if n0 <= s.admit < n1:
                    adm = nf_i if r.random() < 0.6 else nf_r
                    t = s.admit + r.uniform(600, 4800)
                    session(ctx, adm, s.p, t, "md", n=r.randint(8, 14), loc=r.choice(ws))
                    ctx.emit(t + r.uniform(1800, 3600), adm, s.p, "create",
                             "DocumentReference", 1, ip=r.choice(ws), ua=ctx.desktop_ua(t))
                    # the day team picks the new patient up in the morning
            pts = [s for s in ctx.stays_by_unit[code] if s.admit < n0 and s.disch > n1]
            for s in r.sample(pts, min(len(pts), r.randint(1, 4))):
                t = r.uniform(n0 + 1800, n1 - 1800)
                who = nf_i if r.random() < 0.5 else nf_r
                session(ctx, who, s.p, t, "md", n=r.randint(1, 4), loc=r.choice(ws))


def gen_consults(ctx):
    r = ctx.rng
    cons = defaultdict(list)
    for u in ctx.by_job["consultant"]:
        cons[u.extra["service"]].append(u)
    for s in ctx.stays:
        if s.disch < ctx.base or r.random() > 0.35:
            continue
        svc = r.choice(CONSULT_SERVICES)
        if s.unit == "PSY3":
            svc = r.choice(["Cardiology", "Nephrology", "Infectious Disease"])
        if s.p.sens in ("sud", "psych") and r.random() < 0.5:
            svc = "Consult-Liaison Psychiatry"
        if s.p.sens == "hiv" and r.random() < 0.6:
            svc = "Infectious Disease"
        day = ctx.day_of(s.admit) + r.randint(0, 2)
        t = ctx.T(day, r.uniform(8, 16))
        if t >= s.disch - 3 * 3600:
            continue
        team = team_for(ctx, s.unit, max(0, day))
        req = team["ints"][0] if team["ints"] else team["att"]
        ws = unit_ws(ctx, s.unit)
        ctx.emit(t, req, s.p, "create", "ServiceRequest", 1, ip=r.choice(ws),
                 ua=ctx.desktop_ua(t))
        c = r.choice(cons[svc])
        tc = t + r.uniform(1, 6) * 3600
        loc = r.choice(ws + c.ws)
        tc = session(ctx, c, s.p, tc, "md", n=r.randint(5, 10), loc=loc)
        ctx.emit(tc + r.uniform(600, 3600), c, s.p, "create", "DocumentReference", 1,
                 ip=loc, ua=ctx.desktop_ua(tc))
        s.consults.append((svc, c, tc))
        fd = day + 1
        while ctx.T(fd, 10) < s.disch and fd < day + 5 and r.random() < 0.65:
            # follow-up, sometimes by the partner covering the service
            cc = c if r.random() < 0.8 else r.choice(cons[svc])
            tf = ctx.T(fd, r.uniform(8, 17))
            session(ctx, cc, s.p, tf, "md", n=r.randint(2, 5), loc=r.choice(ws + cc.ws))
            ctx.emit(tf + 1200, cc, s.p, "create", "DocumentReference", 1,
                     ip=r.choice(ws), ua=ctx.desktop_ua(tf))
            fd += 1


def gen_rrt(ctx):
    r = ctx.rng
    rrts = ctx.by_job["rrt_rn"]
    for day in range(ctx.days):
        for _ in range(r.randint(1, 4)):
            t = ctx.T(day, r.uniform(0, 24))
            unit = r.choice(["MED4", "MED5", "SURG6", "ONC7", "PSY3"])
            pts = census(ctx, unit, t)
            if not pts:
                continue
            s = r.choice(pts)
            rn = r.choice(rrts)
            icu_res = ctx.team[("MICU", block_of(ctx, day))]["res"]
            ws = unit_ws(ctx, unit)
            session(ctx, rn, s.p, t, "nurse", n=r.randint(3, 6), loc=r.choice(ws))
            session(ctx, icu_res, s.p, t + r.uniform(60, 600), "md", n=r.randint(3, 7),
                    loc=r.choice(ws))
            if s.p.sens and r.random() < 0.5:
                # sealed history needed in a hurry: legitimate break-glass
                emit_break_glass(ctx, icu_res, s.p, t + 400, r.choice(ws),
                                 r.choice(BG_REASONS[:4]))
            ctx.emit(t + 1800, rn, s.p, "create", "DocumentReference", 1,
                     ip=r.choice(ws), ua=ctx.desktop_ua(t))


def emit_break_glass(ctx, u, p, t, ip, reason, label=None, reads=None,
                     ua=None, refused=False):
    r = ctx.rng
    ua = ua or ctx.desktop_ua(t)
    # the denied attempt that makes the prompt appear
    ctx.emit(t, u, p, "read", "DocumentReference", 0, outcome="deny",
             basis="no-permit", ip=ip, ua=ua, label=label)
    t += r.uniform(8, 40)
    if refused:
        ctx.emit(t, u, p, "break-glass", None, 0, purpose="ETREAT",
                 outcome="deny", bg=True, basis="break-glass-refused",
                 ip=ip, ua=ua, label=label, reason=reason, conf=confidentiality(p, "DocumentReference"))
        return t
    ctx.emit(t, u, p, "break-glass", None, 0, purpose="ETREAT", bg=True,
             basis="break-glass", ip=ip, ua=ua, label=label, reason=reason,
             conf=confidentiality(p, "DocumentReference"))
    n = reads if reads is not None else r.randint(2, 6)
    t = session(ctx, u, p, t + r.uniform(5, 30), "review", n=n, ip=ip, ua=ua,
                purpose="ETREAT", basis="break-glass", bg=True, label=label,
                open_chart=False)
    return t


def gen_pharmacy(ctx):
    r = ctx.rng
    phs = ctx.by_job["pharmacist"]
    for day in range(ctx.days):
        for sh, (h0, h1) in (("D", (7, 15.5)), ("E", (15, 23.5)), ("N", (23, 31))):
            on = [u for k, u in enumerate(phs) if (k + day) % 3 == "DEN".index(sh)] or [r.choice(phs)]
            for u in on:
                ctx.login(u, ctx.T(day, h0) - 300, "ws")
            t0, t1 = ctx.T(day, h0), ctx.T(day, h1)
            pts = [s for s in ctx.stays if s.admit < t1 and s.disch > t0]
            k = int(len(pts) * (0.9 if sh != "N" else 0.4))
            for s in r.sample(pts, min(k, len(pts))):
                u = r.choice(on)
                t = r.uniform(max(t0, s.admit), min(t1, s.disch))
                session(ctx, u, s.p, t, "pharm", n=r.randint(1, 4), open_chart=False)


def gen_interfaces(ctx):
    r = ctx.rng
    lab, rad, adc = (ctx.by_job["svc_lab"][0], ctx.by_job["svc_rad"][0],
                     ctx.by_job["svc_adc"][0])
    for s in ctx.stays:
        a, b = max(s.admit, ctx.base), min(s.disch, ctx.end())
        if a >= b:
            continue
        t = a + r.uniform(1800, 3 * 3600)
        while t < b:
            n = r.randint(1, 6)
            ctx.emit(t, lab, s.p, "create", "Observation", n, ip=lab.ws[0], ua=lab.home_ua)
            if r.random() < 0.4:
                ctx.emit(t + 2, lab, s.p, "create", "DiagnosticReport", 1,
                         ip=lab.ws[0], ua=lab.home_ua)
            if r.random() < 0.25:
                ctx.emit(t + r.uniform(600, 7200), rad, s.p, "create", "ImagingStudy", 1,
                         ip=rad.ws[0], ua=rad.home_ua)
                ctx.emit(t + r.uniform(7200, 20000), rad, s.p, "create",
                         "DiagnosticReport", 1, ip=rad.ws[0], ua=rad.home_ua)
            if r.random() < 0.5:
                ctx.emit(t + r.uniform(0, 3600), adc, s.p, "update",
                         "MedicationDispense" if r.random() < 0.7 else "MedicationRequest",
                         1, ip=adc.ws[0], ua=adc.home_ua)
            t += r.uniform(3, 9) * 3600
        # one in twelve stays grows a positive culture; infection prevention follows
        if r.random() < 0.08:
            tc = r.uniform(a, b)
            ctx.emit(tc, lab, s.p, "create", "Observation", 1, ip=lab.ws[0], ua=lab.home_ua)
            ctx.pos_cultures[ctx.day_of(tc)].append(s.p)


# --------------------------------------------------------------------------
# ED, OR, boards, infusion, dialysis
# --------------------------------------------------------------------------

def on_shift(ctx, users, day, t):
    h = (t - ctx.T(day, 0)) / 3600.0
    sh = "D" if 7 <= h < 19 else "N"
    d = day if h >= 7 else day - 1
    out = [u for u in users if u.shift == sh and d in u.days]
    return out or users


def gen_ed(ctx):
    r = ctx.rng
    rns, mds, regs = ctx.by_job["ed_rn"], ctx.by_job["ed_md"], ctx.by_job["ed_reg"]
    ws = unit_ws(ctx, "ED", 8)
    lab = ctx.by_job["svc_lab"][0]
    visits = []
    for s in ctx.stays:
        if s.via_ed and ctx.base <= s.admit < ctx.end():
            visits.append((s.admit - r.uniform(2, 7) * 3600, s.p, s.admit))
    base_rate = max(8, int(len(rns) * 3.5))
    adults = ctx.patients
    for day in range(ctx.days):
        k = base_rate * (1.8 if day == ctx.surge_day else 1.0) * \
            (1.1 if ctx.is_weekend(day) or day == ctx.holiday else 1.0)
        for _ in range(int(r.gauss(k, k ** 0.5))):
            h = r.triangular(0, 24, 14)
            t = ctx.T(day, h)
            visits.append((t, r.choice(adults), t + r.uniform(2, 6) * 3600))
    ctx.ed_visits = visits
    # shift logins
    for day in range(ctx.days):
        for u in rns + mds + regs:
            for sh, h in (("D", 7), ("N", 19)):
                if u.shift == sh and day in u.days:
                    ctx.login(u, ctx.T(day, h) - r.uniform(120, 900), r.choice(ws))
    for (t, p, t_out) in visits:
        day = ctx.day_of(t)
        basis = None
        if r.random() < 0.02:
            # unidentified trauma patient: a temporary record nobody owns yet
            p = Patient("Patient/%d" % r.randint(20000000, 29999999))
            basis = "unowned"
        reg = r.choice(on_shift(ctx, regs, day, t))
        rn = r.choice(on_shift(ctx, rns, day, t))
        md = r.choice(on_shift(ctx, mds, day, t))
        # registration: look up, then create the encounter
        ctx.emit(t, reg, None, "search", "Patient", r.randint(0, 9), ip=r.choice(ws),
                 ua=ctx.desktop_ua(t), conf=None)
        if basis:
            ctx.emit(t + 20, reg, p, "create", "Patient", 1, basis=basis, ip=r.choice(ws),
                     ua=ctx.desktop_ua(t))
        ti = session(ctx, reg, p, t + 30, "reg", n=r.randint(2, 4), loc=r.choice(ws),
                     basis=basis)
        session(ctx, rn, p, ti + r.uniform(60, 900), "nurse", n=r.randint(3, 6),
                loc=r.choice(ws), basis=basis)
        tm = t + r.uniform(900, 5400)
        tm = session(ctx, md, p, tm, "md", n=r.randint(6, 13), loc=r.choice(ws),
                     basis=basis)
        if (p.sens or p.vip) and r.random() < 0.5:
            emit_break_glass(ctx, md, p, tm + 60, r.choice(ws), r.choice(BG_REASONS))
        ctx.emit(tm + r.uniform(300, 2400), lab, p, "create", "Observation",
                 r.randint(3, 20), ip=lab.ws[0], ua=lab.home_ua)
        tt = tm + 1800
        while tt < t_out:
            session(ctx, rn, p, tt, "nurse", n=r.randint(1, 3), loc=r.choice(ws),
                    open_chart=False)
            tt += r.uniform(2400, 4800)
        session(ctx, md, p, t_out - r.uniform(600, 1800), "md", n=r.randint(2, 4),
                loc=r.choice(ws), open_chart=False)
        ctx.emit(t_out - r.uniform(0, 600), md, p, "create", "DocumentReference", 1,
                 ip=r.choice(ws), ua=ctx.desktop_ua(t_out))


def gen_or(ctx):
    r = ctx.rng
    anes, orrn, surg = ctx.by_job["anesthesia"], ctx.by_job["or_rn"], ctx.by_job["surgeon"]
    ws = unit_ws(ctx, "OR", 8)
    for s in ctx.stays:
        if s.or_day is not None or s.unit == "SURG6":
            s.surgeon = r.choice(surg)
        if s.or_day is not None and 0 <= s.or_day < ctx.days and ctx.workday(s.or_day):
            ctx.or_cases[s.or_day].append((s.p, s.surgeon))
    for day in range(ctx.days):
        if not ctx.workday(day):
            continue
        for _ in range(r.randint(3, 8)):   # ambulatory surgery
            ctx.or_cases[day].append((r.choice(ctx.patients), r.choice(surg)))
    for day, cases in ctx.or_cases.items():
        # evening before: anesthesia pre-op review (often from home), pre-op call nurse
        prev = day - 1
        while prev >= 0 and not ctx.workday(prev) and prev > day - 4:
            prev -= 1
        rv = r.choice(anes)
        loc = rv.extra.setdefault("remote_loc", r.choice(["citrix", "vpn", "ws"]))
        t = ctx.T(prev, r.uniform(16.5, 20.5))
        if prev >= 0:
            ctx.login(rv, t - 60, loc)
        ip = ctx.ip_for(rv, loc)
        pren = r.choice(orrn)
        for (p, sg) in cases:
            t = session(ctx, rv, p, t, "review", n=r.randint(2, 5), ip=ip,
                        ua=ctx.ua_for(rv, t, loc)) + r.uniform(60, 400)
            tp = ctx.T(prev, r.uniform(13, 16))
            session(ctx, pren, p, tp, "nurse", n=r.randint(1, 3), loc=r.choice(ws))
            if r.random() < 0.6:
                session(ctx, sg, p, ctx.T(prev, r.uniform(17, 22)), "review",
                        n=r.randint(1, 3), loc=sg.extra.get("remote_loc", "citrix"))
        # day of surgery
        tcase = ctx.T(day, 7.5)
        rooms = [[] for _ in range(3)]
        for k, c in enumerate(cases):
            rooms[k % 3].append(c)
        for room in rooms:
            tc = ctx.T(day, 7.5)
            a = r.choice(anes)
            rn = r.choice(orrn)
            for (p, sg) in room:
                session(ctx, a, p, tc - 1800, "md", n=r.randint(2, 4), loc=r.choice(ws))
                ctx.emit(tc, rn, p, "create", "Observation", 1, ip=r.choice(ws),
                         ua=ctx.desktop_ua(tc))
                for _ in range(r.randint(2, 5)):
                    ctx.emit(tc + r.uniform(300, 5400), a, p, "create",
                             r.choice(["MedicationAdministration", "Observation"]), 1,
                             ip=r.choice(ws), ua=ctx.desktop_ua(tc))
                dur = r.uniform(1.0, 3.5) * 3600
                ctx.emit(tc + dur, sg, p, "create", "Procedure", 1, ip=r.choice(ws),
                         ua=ctx.desktop_ua(tc))
                ctx.emit(tc + dur + r.uniform(300, 5 * 3600), sg, p, "create",
                         "DocumentReference", 1, ip=r.choice(ws + sg.ws),
                         ua=ctx.desktop_ua(tc))
                tc += dur + r.uniform(1800, 3600)


def gen_boards(ctx):
    """Tumour board (Wed 07:00) and transplant selection (Thu 14:00)."""
    r = ctx.rng
    conf_ip = "10.10.200.15"
    onc_mds = [u for u in ctx.by_job["clinic_md"] if u.dept == "Medical Oncology"]
    txp_mds = [u for u in ctx.by_job["clinic_md"] if u.dept == "Transplant Clinic"]
    onc_p = [p for p in ctx.patients if p.onc]
    txp_p = [p for p in ctx.patients if p.txp or p.dialysis]
    cons = ctx.by_job["consultant"]
    for day in range(ctx.days):
        wd = ctx.weekday(day)
        if day == ctx.holiday:
            continue
        if wd == 2:
            pts, hour = r.sample(onc_p, min(len(onc_p), r.randint(9, 15))), 7.0
            att = onc_mds + r.sample(ctx.surgeons, min(2, len(ctx.surgeons))) + \
                [ctx.team[("ONC7", block_of(ctx, day))]["att"]] + \
                r.sample(ctx.by_job["research"], 1)
        elif wd == 3:
            pts, hour = r.sample(txp_p, min(len(txp_p), r.randint(5, 9))), 14.0
            att = txp_mds + [c for c in cons if c.extra["service"] in
                             ("Nephrology", "Infectious Disease")] + \
                r.sample(ctx.by_job["case_mgr"], 1) + r.sample(ctx.by_job["pharmacist"], 1)
        else:
            continue
        presenter = att[0]
        t = ctx.T(day, hour)
        ctx.login(presenter, t - 120, conf_ip)
        for p in pts:
            t = session(ctx, presenter, p, t, "review", n=r.randint(3, 6),
                        ip=conf_ip, ua=ctx.desktop_ua(t)) + r.uniform(60, 300)
            for a in att[1:]:
                if r.random() < 0.4:
                    purpose = "HRESCH" if a.job == "research" else None
                    basis = "role" if a.job == "research" else None
                    session(ctx, a, p, t - r.uniform(0, 300), "review",
                            n=r.randint(1, 3), purpose=purpose, basis=basis,
                            loc=a.extra.get("remote_loc", "ws") if r.random() < 0.3 else "ws")
        # preparation the day before: nurse navigator / presenter pulls the list
        for p in pts:
            session(ctx, presenter, p, ctx.T(day - 1, r.uniform(15, 19)), "review",
                    n=r.randint(1, 3), loc="ws")


def gen_infusion_dialysis(ctx):
    r = ctx.rng
    inf_rn, dial_rn = ctx.by_job["infusion_rn"], ctx.by_job["dialysis_rn"]
    phs = ctx.by_job["pharmacist"]
    onc = [p for p in ctx.patients if p.onc]
    chairs = r.sample(onc, min(len(onc), 60))
    dial = [p for p in ctx.patients if p.dialysis]
    wsi, wsd = unit_ws(ctx, "INF", 6), unit_ws(ctx, "DIAL", 6)
    for day in range(ctx.days):
        if ctx.workday(day):
            todays = r.sample(chairs, min(len(chairs), r.randint(8, 16)))
            for u in inf_rn:
                ctx.login(u, ctx.T(day, 7.2), r.choice(wsi))
            for p in todays:
                t = ctx.T(day, r.uniform(7.5, 15))
                session(ctx, r.choice(phs), p, t - r.uniform(1800, 7200), "pharm",
                        n=r.randint(2, 4))
                rn = r.choice(inf_rn)
                for _ in range(r.randint(3, 6)):
                    session(ctx, rn, p, t, "nurse", n=r.randint(1, 3), loc=r.choice(wsi),
                            open_chart=False)
                    t += r.uniform(1200, 3600)
        if ctx.weekday(day) == 6:
            continue
        grp = [p for k, p in enumerate(dial) if k % 2 == ctx.weekday(day) % 2]
        for u in dial_rn:
            ctx.login(u, ctx.T(day, 5.5), r.choice(wsd))
        for p in grp:
            t = ctx.T(day, r.choice([6.0, 10.5, 15.0]) + r.uniform(0, 1))
            rn = r.choice(dial_rn)
            for _ in range(r.randint(3, 5)):
                session(ctx, rn, p, t, "nurse", n=r.randint(1, 2), loc=r.choice(wsd),
                        open_chart=False)
                t += r.uniform(2400, 4000)


# --------------------------------------------------------------------------
# outpatient: clinics, telehealth, call center, prior auth
# --------------------------------------------------------------------------

def remote_loc(u):
    return u.extra.get("remote_loc", "citrix")


def gen_clinics(ctx):
    r = ctx.rng
    mas = ctx.by_job["clinic_ma"]
    regs = ctx.by_job["reg"]
    lab = ctx.by_job["svc_lab"][0]
    visits = ctx.clinic_visits
    for md in ctx.by_job["clinic_md"]:
        ci = [c[0] for c in CLINICS].index(md.dept)
        pool = ctx.by_clinic[ci] or ctx.patients
        my_ma = [m for m in mas if m.dept == md.dept] or [r.choice(mas)]
        my_reg = [g for g in regs if g.site == md.site] or regs
        tele_share = 0.6 if md.dept == "Behavioral Health" else 0.18
        for day in sorted(md.days):
            if not ctx.workday(day):
                continue
            for (h0, h1) in ((8.0, 12.0), (13.0, 17.0)):
                if r.random() < 0.1:
                    continue
                nslots = r.randint(7, 11)
                tele = r.random() < tele_share
                loc = "home" if (tele and md.remote and r.random() < 0.5) else "ws"
                ctx.login(md, ctx.T(day, h0) - r.uniform(300, 1200), loc)
                for k in range(nslots):
                    p = r.choice(pool)
                    if r.random() < 0.15:
                        p = r.choice(ctx.patients)   # new patient / referral
                    t = ctx.T(day, h0 + (h1 - h0) * k / nslots + r.uniform(-0.05, 0.1))
                    visits.append((t, p, md, tele))
                    if r.random() < 0.55 and day > 0:
                        # chart prep the evening before, often from home
                        tp = ctx.T(day - 1, r.uniform(18.5, 22.5))
                        session(ctx, md, p, tp, "review", n=r.randint(1, 4),
                                loc=remote_loc(md) if md.remote else "ws")
                    if not tele:
                        g = r.choice(my_reg)
                        ctx.emit(t - 900, g, None, "search", "Patient", r.randint(1, 6),
                                 ip=ctx.ip_for(g, "ws"), ua=ctx.desktop_ua(t), conf=None)
                        session(ctx, g, p, t - 880, "reg", n=r.randint(1, 3))
                        session(ctx, r.choice(my_ma), p, t - 400, "ma", n=r.randint(2, 4))
                    elif p.portal and r.random() < 0.8:
                        uid, ip, ua = p.portal
                        pu = portal_user(ctx, p, uid)
                        ctx.emit(t - 300, pu, None, "login", None, 0, purpose="PATRQT",
                                 ip=ip, ua=ua, conf=None)
                        ctx.emit(t - 240, pu, p, "read", "Appointment", 1,
                                 purpose="PATRQT", ip=ip, ua=ua)
                    te = session(ctx, md, p, t, "md", n=r.randint(4, 11), loc=loc)
                    if r.random() < 0.3:
                        ctx.emit(te + r.uniform(60, 3600), lab, p, "create",
                                 "Observation", r.randint(1, 12), ip=lab.ws[0], ua=lab.home_ua)
                    if md.remote and r.random() < 0.35:
                        # "pajama time": notes finished at home in the evening
                        tn = ctx.T(day, r.uniform(19.5, 23.8))
                        lc = remote_loc(md)
                        session(ctx, md, p, tn, "review", n=1, loc=lc, open_chart=False)
                        ctx.emit(tn + 240, md, p, "create", "DocumentReference", 1,
                                 ip=ctx.ip_for(md, lc), ua=ctx.ua_for(md, tn, lc))
                    else:
                        ctx.emit(te + r.uniform(60, 1800), md, p, "create",
                                 "DocumentReference", 1, ip=ctx.ip_for(md, loc),
                                 ua=ctx.ua_for(md, te, loc))
            # in-basket: results and messages of earlier patients
            for _ in range(r.randint(1, 5)):
                p = r.choice(pool)
                session(ctx, md, p, ctx.T(day, r.uniform(12.0, 13.0)), "review",
                        n=r.randint(1, 2), open_chart=False, loc="ws")
    # MAs and front desk sign in each morning
    for u in mas + regs:
        for day in u.days:
            if ctx.workday(day):
                ctx.login(u, ctx.T(day, r.uniform(7.3, 7.9)), "ws")


_portal_users = {}


def portal_user(ctx, p, uid, proxy=None):
    u = _portal_users.get(uid)
    if u is None:
        u = User(uid, "patient", None, None, None, "portal")
        u.extra["purpose"] = "PATRQT"
        u.extra["of"] = p
        _portal_users[uid] = u
    return u


def gen_call_center(ctx):
    r = ctx.rng
    upcoming = defaultdict(list)
    for (t, p, md, tele) in ctx.clinic_visits:
        upcoming[ctx.day_of(t)].append(p)
    for u in ctx.by_job["call"]:
        for day in sorted(u.days):
            if day == ctx.holiday:
                continue
            sat = ctx.weekday(day) == 5
            h0, h1 = (9.0, 13.0) if sat else (8.0, 17.0)
            loc = remote_loc(u) if u.remote else "ws"
            ctx.login(u, ctx.T(day, h0) - 300, loc)
            ip, ua = ctx.ip_for(u, loc), ctx.ua_for(u, ctx.T(day, h0), loc)
            mult = 1.6 if ctx.holiday is not None and day == ctx.holiday + 1 else 1.0
            calls = int(r.randint(28, 45) * mult * (0.5 if sat else 1.0))
            t = ctx.T(day, h0) + r.uniform(0, 600)
            step = (h1 - h0) * 3600 / max(1, calls)
            for _ in range(calls):
                fut = [upcoming[d2] for d2 in range(day, min(ctx.days, day + 14))]
                fut = [x for x in fut if x]
                p = r.choice(r.choice(fut)) if fut and r.random() < 0.6 else r.choice(ctx.patients)
                ctx.emit(t, u, None, "search", "Patient", r.randint(1, 8), ip=ip, ua=ua,
                         conf=None)
                session(ctx, u, p, t + r.uniform(10, 40), "call", n=r.randint(1, 3),
                        ip=ip, ua=ua)
                t += step * r.uniform(0.6, 1.4)


def gen_prior_auth(ctx):
    r = ctx.rng
    for u in ctx.by_job["prior_auth"]:
        for day in sorted(u.days):
            if not ctx.workday(day):
                continue
            loc = remote_loc(u) if u.remote else "ws"
            ctx.login(u, ctx.T(day, 8.0), loc)
            pool = []
            for d2 in range(day + 2, day + 12):
                pool += [p for (p, s) in ctx.or_cases.get(d2, [])]
            pool += [p for p in ctx.patients if p.onc][:40]
            for _ in range(r.randint(10, 20)):
                p = r.choice(pool) if pool else r.choice(ctx.patients)
                session(ctx, u, p, ctx.T(day, r.uniform(8.2, 16.5)), "priorauth",
                        n=r.randint(2, 5), loc=loc)


# --------------------------------------------------------------------------
# back office: revenue cycle, ROI, HIM, quality, infection prevention
# --------------------------------------------------------------------------

def office_day(ctx, u, day, h0=8.0):
    loc = remote_loc(u) if u.remote and ctx.rng.random() < 0.8 else "ws"
    ctx.login(u, ctx.T(day, h0 + ctx.rng.uniform(-0.5, 0.7)), loc)
    return loc


def discharged_between(ctx, t, lo_days, hi_days):
    return [s for s in ctx.stays if t - hi_days * 86400 <= s.disch <= t - lo_days * 86400]


def gen_revenue(ctx):
    r = ctx.rng
    for u in ctx.by_job["coder"] + ctx.by_job["billing"]:
        coder = u.job == "coder"
        for day in sorted(u.days):
            if not ctx.workday(day):
                continue
            loc = office_day(ctx, u, day, 7.5 if coder else 8.0)
            t_now = ctx.T(day, 8.0)
            pool = discharged_between(ctx, t_now, 1, 30) if coder else \
                discharged_between(ctx, t_now, 20, 40)
            if not pool:
                continue
            mult = 1.5 if ctx.holiday is not None and day == ctx.holiday + 1 else 1.0
            k = int(r.randint(10, 18) * mult)
            t = ctx.T(day, r.uniform(7.6, 8.5))
            for s in r.sample(pool, min(k, len(pool))):
                t = session(ctx, u, s.p, t, "coder" if coder else "billing",
                            n=r.randint(4, 10) if coder else r.randint(2, 6),
                            loc=loc, gap=(10, 120)) + r.uniform(120, 900)
            if not coder:
                # denials work on ED and clinic visits too
                for _ in range(r.randint(3, 8)):
                    p = r.choice(ctx.patients)
                    session(ctx, u, p, ctx.T(day, r.uniform(13, 16.5)), "billing",
                            n=r.randint(2, 4), loc=loc)


ROI_PURPOSES = [("HLEGAL", 0.35), ("COVERAGE", 0.25), ("PATRQT", 0.25), ("HPAYMT", 0.15)]


def gen_roi_him(ctx):
    r = ctx.rng
    for u in ctx.by_job["roi"]:
        for day in sorted(u.days):
            if not ctx.workday(day):
                continue
            loc = office_day(ctx, u, day)
            for _ in range(r.randint(3, 8)):
                pool = discharged_between(ctx, ctx.T(day, 8), 5, 40)
                p = r.choice(pool).p if pool and r.random() < 0.6 else r.choice(ctx.patients)
                purpose = r.choices([x[0] for x in ROI_PURPOSES],
                                    weights=[x[1] for x in ROI_PURPOSES])[0]
                t = ctx.T(day, r.uniform(8.3, 16.5))
                ip, ua = ctx.ip_for(u, loc), ctx.ua_for(u, t, loc)
                ctx.emit(t, u, None, "search", "Patient", r.randint(1, 3), purpose=purpose,
                         ip=ip, ua=ua, conf=None)
                t = session(ctx, u, p, t + 30, "review", n=r.randint(2, 6), purpose=purpose,
                            ip=ip, ua=ua)
                ctx.emit(t + r.uniform(60, 900), u, p, "export", "Bundle",
                         int(r.lognormvariate(5, 1.0)) + 5, purpose=purpose, ip=ip, ua=ua)
    for u in ctx.by_job["him"]:
        for day in sorted(u.days):
            if not ctx.workday(day):
                continue
            loc = office_day(ctx, u, day)
            t0 = ctx.T(day, 8.0)
            recent = discharged_between(ctx, t0, 0, 10)
            # scanning of paper forms (consents, outside records) as late entries
            for s in r.sample(recent, min(len(recent), r.randint(8, 25))):
                t = ctx.T(day, r.uniform(8, 16.5))
                ctx.emit(t, u, s.p, "create", "DocumentReference", 1, ip=ctx.ip_for(u, loc),
                         ua=ctx.ua_for(u, t, loc))
            # corrections: misfiled documents, amended entries
            for _ in range(r.randint(1, 5)):
                s = r.choice(recent) if recent else None
                if s is None:
                    break
                t = ctx.T(day, r.uniform(8, 16.5))
                t = session(ctx, u, s.p, t, "review", n=r.randint(1, 3), loc=loc)
                ctx.emit(t, u, s.p, "update" if r.random() < 0.6 else "delete",
                         "DocumentReference", 1, ip=ctx.ip_for(u, loc), ua=ctx.desktop_ua(t))
                if r.random() < 0.4:
                    other = r.choice(ctx.patients)
                    ctx.emit(t + 60, u, other, "create", "DocumentReference", 1,
                             ip=ctx.ip_for(u, loc), ua=ctx.desktop_ua(t))
            # duplicate registrations merged
            for _ in range(r.randint(0, 2)):
                keep = r.choice(ctx.patients)
                dup = Patient("Patient/%d" % r.randint(10000000, 19999999))
                t = ctx.T(day, r.uniform(9, 16))
                ip, ua = ctx.ip_for(u, loc), ctx.desktop_ua(t)
                ctx.emit(t, u, None, "search", "Patient", 2, ip=ip, ua=ua, conf=None)
                ctx.emit(t + 40, u, keep, "read", "Patient", 1, ip=ip, ua=ua)
                ctx.emit(t + 70, u, dup, "read", "Patient", 1, ip=ip, ua=ua)
                ctx.emit(t + 300, u, keep, "update", "Patient", 1, ip=ip, ua=ua)
                ctx.emit(t + 320, u, dup, "delete", "Patient", 1, ip=ip, ua=ua)


def gen_quality_ipc(ctx):
    r = ctx.rng
    for u in ctx.by_job["quality"]:
        registry = r.choice(["NSQIP", "GWTG-HF", "Tumor Registry", "Sepsis SEP-1"])
        u.extra["registry"] = registry
        for day in sorted(u.days):
            if not ctx.workday(day):
                continue
            loc = office_day(ctx, u, day)
            pool = [s for s in discharged_between(ctx, ctx.T(day, 8), 3, 60)
                    if (registry == "NSQIP" and s.unit == "SURG6")
                    or (registry == "GWTG-HF" and s.unit in ("MED4", "MED5", "MICU"))
                    or (registry == "Tumor Registry" and s.p.onc)
                    or (registry == "Sepsis SEP-1" and s.unit in ("MICU", "MED4", "MED5"))]
            t = ctx.T(day, r.uniform(8, 9))
            for s in r.sample(pool, min(len(pool), r.randint(5, 10))):
                t = session(ctx, u, s.p, t, "abstract", n=r.randint(6, 14), loc=loc,
                            gap=(15, 150)) + r.uniform(300, 1500)
    for u in ctx.by_job["infection"]:
        for day in sorted(u.days):
            if not ctx.workday(day):
                continue
            loc = office_day(ctx, u, day, 7.5)
            todo = ctx.pos_cultures.get(day - 1, []) + ctx.pos_cultures.get(day, [])[:2]
            if ctx.is_weekend(day - 1):
                todo += ctx.pos_cultures.get(day - 2, []) + ctx.pos_cultures.get(day - 3, [])
            for p in todo:
                session(ctx, u, p, ctx.T(day, r.uniform(8, 12)), "ipc", n=r.randint(2, 6),
                        loc=loc)
            if ctx.weekday(day) == 4:
                # weekly NHSN submission
                ctx.emit(ctx.T(day, 15.5), u, None, "export", "Bundle",
                         r.randint(20, 90), purpose="PUBHLTH", ip=ctx.ip_for(u, loc),
                         ua=ctx.desktop_ua(ctx.T(day, 15)), conf=None)


# --------------------------------------------------------------------------
# research, services, care management, portal, admin
# --------------------------------------------------------------------------

def gen_research(ctx):
    r = ctx.rng
    for u in ctx.by_job["research"]:
        for day in sorted(u.days):
            if not ctx.workday(day):
                continue
            loc = office_day(ctx, u, day)
            for st in u.extra["studies"]:
                coh = ctx.studies[st]
                for p in r.sample(coh, min(len(coh), r.randint(3, 8))):
                    session(ctx, u, p, ctx.T(day, r.uniform(8.5, 16.5)), "research",
                            n=r.randint(2, 7), loc=loc, consents=[p.consents[st]])
            if r.random() < 0.1:
                # cohort data pull for the study database
                st = r.choice(u.extra["studies"])
                ctx.emit(ctx.T(day, r.uniform(13, 16)), u, None, "export", "Bundle",
                         len(ctx.studies[st]) * r.randint(20, 60), ip=ctx.ip_for(u, loc),
                         ua=ctx.ua_for(u, ctx.T(day, 13), loc), conf=None)


def gen_services(ctx):
    r = ctx.rng
    dw, hie, aco = (ctx.by_job["svc_dw"][0], ctx.by_job["svc_hie"][0],
                    ctx.by_job["svc_acoapi"][0])
    rtypes = ["Patient", "Encounter", "Observation", "Condition", "MedicationRequest",
              "Procedure", "DocumentReference", "DiagnosticReport", "Claim", "Coverage"]
    for day in range(ctx.days):
        t = ctx.T(day, 2.0 + r.uniform(0, 0.1))
        ctx.emit(t - 5, dw, None, "login", None, 0, ip=dw.ws[0], ua=dw.home_ua, conf=None)
        for rt in rtypes:
            n = int(r.lognormvariate(7.5, 0.5))
            if ctx.holiday is not None and day == ctx.holiday + 1:
                n *= 2
            ctx.emit(t, dw, None, "export", rt, n, ip=dw.ws[0], ua=dw.home_ua, conf=None)
            t += r.uniform(60, 400)
        # ACO nightly attribution feed
        t = ctx.T(day, 3.25 + r.uniform(0, 0.1))
        ctx.emit(t, aco, None, "login", None, 0, ip=aco.ws[0], ua=aco.home_ua, conf=None)
        ctx.emit(t + 3, aco, None, "export", "Bundle",
                 int(sum(1 for p in ctx.patients if p.aco) * r.uniform(0.05, 0.12)),
                 basis="role", ip=aco.ws[0], ua=aco.home_ua, conf=None)
        # HIE queries from outside hospitals treating our patients
        for _ in range(r.randint(5, 25)):
            p = r.choice(ctx.patients)
            tq = ctx.T(day, r.uniform(0, 24))
            ctx.emit(tq, hie, p, "search", "DocumentReference", r.randint(0, 30),
                     ip=hie.ws[0], ua=hie.home_ua)
            if r.random() < 0.7:
                ctx.emit(tq + 3, hie, p, "read", "Composition", 1, ip=hie.ws[0],
                         ua=hie.home_ua)


def gen_care_mgmt(ctx):
    r = ctx.rng
    for u in ctx.by_job["aco_cm"]:
        for day in sorted(u.days):
            if not ctx.workday(day):
                continue
            loc = "home" if u.remote and r.random() < 0.6 else "ws"
            ctx.login(u, ctx.T(day, 8.3), loc)
            ip, ua = ctx.ip_for(u, loc), u.home_ua
            panel = u.panel or ctx.patients[:10]
            # post-discharge follow-up for attributed patients, then panel work
            todo = [s.p for s in discharged_between(ctx, ctx.T(day, 8), 0, 2) if s.p in panel]
            todo += r.sample(panel, min(len(panel), r.randint(8, 18)))
            t = ctx.T(day, r.uniform(8.5, 9.5))
            for p in todo:
                t = session(ctx, u, p, t, "cm", n=r.randint(1, 5), ip=ip, ua=ua) + \
                    r.uniform(300, 1500)
    cms, urs = ctx.by_job["case_mgr"], ctx.by_job["ur"]
    for day in range(ctx.days):
        if ctx.is_weekend(day):
            continue
        t0 = ctx.T(day, 8.0)
        for u in cms + urs:
            ctx.login(u, t0 - 600, "ws")
        for k, (code, *_rest) in enumerate(UNITS):
            pts = census(ctx, code, ctx.T(day, 9))
            cm = cms[k % len(cms)]
            for s in pts:
                session(ctx, cm, s.p, ctx.T(day, r.uniform(8.5, 16)), "cm",
                        n=r.randint(1, 4), loc=r.choice(unit_ws(ctx, code) + cm.ws))
                ur = r.choice(urs)
                if r.random() < 0.8:
                    session(ctx, ur, s.p, ctx.T(day, r.uniform(8, 12)), "billing",
                            n=r.randint(1, 3))


def gen_employee_privacy_admin(ctx):
    r = ctx.rng
    emps = [p for p in ctx.patients if p.employee is not None]
    for u in ctx.by_job["emp_health"]:
        for day in sorted(u.days):
            if not ctx.workday(day):
                continue
            loc = office_day(ctx, u, day)
            for p in r.sample(emps, min(len(emps), r.randint(2, 8))):
                t = session(ctx, u, p, ctx.T(day, r.uniform(8, 16)), "review",
                            n=r.randint(1, 3), loc=loc)
                ctx.emit(t, u, p, "create", r.choice(["Immunization", "Observation"]), 1,
                         ip=ctx.ip_for(u, loc), ua=ctx.desktop_ua(t))
    vips = [p for p in ctx.patients if p.vip]
    for u in ctx.by_job["privacy"]:
        for day in sorted(u.days):
            if not ctx.workday(day):
                continue
            loc = office_day(ctx, u, day)
            for p in vips + r.sample(ctx.patients, r.randint(1, 4)):
                if p.vip and r.random() < 0.5:
                    continue
                ctx.emit(ctx.T(day, r.uniform(8.5, 16)), u, p, "search", "AuditEvent",
                         r.randint(5, 400), ip=ctx.ip_for(u, loc),
                         ua=ctx.desktop_ua(ctx.T(day, 9)), conf=None)
    admins = ctx.by_job["it_admin"]
    for day in range(ctx.days):
        for u in admins:
            if day in u.days:
                ctx.login(u, ctx.T(day, 7.8), "ws")
    # provisioning of travel nurses, role changes at the rotation
    for u in ctx.by_job["travel_rn"]:
        a = r.choice(admins)
        t = ctx.T(u.start_day - 1, r.uniform(10, 16))
        ctx.emit(t, a, None, "create", "User", 1, purpose="HSYSADMIN",
                 ip=ctx.ip_for(a, "ws"), ua=ctx.desktop_ua(t), conf=None,
                 account="User/" + u.uid)
    for u in ctx.by_job["resident"] + ctx.by_job["intern"] + ctx.by_job["student"]:
        a = r.choice(admins)
        t = ctx.T(ctx.rotation_day - 1, r.uniform(13, 17))
        ctx.emit(t, a, None, "update", "User", 1, purpose="HSYSADMIN",
                 ip=ctx.ip_for(a, "ws"), ua=ctx.desktop_ua(t), conf=None,
                 account="User/" + u.uid)


def gen_portal(ctx):
    r = ctx.rng
    visit_days = defaultdict(list)
    for (t, p, md, tele) in ctx.clinic_visits:
        visit_days[p.ref].append(ctx.day_of(t))
    for s in ctx.stays:
        if ctx.base < s.disch < ctx.end():
            visit_days[s.p.ref].append(ctx.day_of(s.disch))
    for p in ctx.patients:
        accts = []
        if p.portal:
            accts.append((p.portal, "own"))
        for px in p.proxies:
            accts.append(((px[0], px[1], px[2]), px[3]))
        for (uid, ip0, ua), how in accts:
            u = portal_user(ctx, p, uid)
            days = [d for d in range(ctx.days) if r.random() < 0.04]
            for vd in visit_days.get(p.ref, []):
                if r.random() < 0.6:
                    days.append(min(ctx.days - 1, vd + r.randint(0, 2)))
            for day in days:
                t = ctx.T(day, r.triangular(6, 23.9, 20))
                ip = ip0 if r.random() < 0.75 else ctx.public_ip("mobile")
                ua2 = ua if r.random() < 0.9 else r.choice(PORTAL_UAS)
                if r.random() < 0.06:
                    ctx.emit(t - 40, u, None, "login", None, 0, purpose="PATRQT",
                             outcome="deny", basis="bad-credentials", ip=ip, ua=ua2, conf=None)
                ctx.emit(t, u, None, "login", None, 0, purpose="PATRQT", ip=ip, ua=ua2,
                         conf=None)
                if r.random() < 0.04:
                    # results not yet released to the portal
                    ctx.emit(t + 5, u, p, "read", "DiagnosticReport", 0, purpose="PATRQT",
                             outcome="deny", basis="scope", ip=ip, ua=ua2)
                if how == "own":
                    session(ctx, u, p, t + 10, "portal", n=r.randint(2, 7), ip=ip, ua=ua2,
                            purpose="PATRQT", basis="own-record", open_chart=False)
                else:
                    session(ctx, u, p, t + 10, "portal", n=r.randint(1, 5), ip=ip, ua=ua2,
                            purpose="PWATRNY" if p.age > 60 else "FAMRQT",
                            basis="consent", consents=[how], open_chart=False)


# --------------------------------------------------------------------------
# downtime backfill, policy denials, errors
# --------------------------------------------------------------------------

def gen_downtime(ctx):
    r = ctx.rng
    d0, d1 = ctx.downtime
    day = ctx.day_of(d0)
    lab = ctx.by_job["svc_lab"][0]
    # requests failing as the system goes down
    active = [u for u in ctx.users if u.role == "practitioner" and u.ws]
    for u in r.sample(active, min(len(active), 25)):
        t = d0 - r.uniform(0, 90)
        ctx.emit(t, u, None, "search", "Patient", 0, outcome="error",
                 basis="undetermined", ip=r.choice(u.ws), ua=ctx.desktop_ua(t), conf=None)
    # late entries from paper downtime forms, in the hours after recovery
    for code, label, w, ratio, teach, sealed in UNITS:
        pts = [s for s in ctx.stays_by_unit[code] if s.admit < d1 and s.disch > d0]
        hour = (d0 - ctx.T(day, 0)) / 3600.0
        sh = "D" if 7 <= hour < 19 else "N"
        sday = day if hour >= 7 else day - 1
        ws = unit_ws(ctx, code)
        for s in pts:
            n = ctx.nurse_of.get((id(s), sday, sh))
            if n is None:
                continue
            t = d1 + r.uniform(300, 2.5 * 3600)
            ctx.emit(t, n, s.p, "read", "Patient", 1, ip=r.choice(ws), ua=ctx.desktop_ua(t))
            for _ in range(r.randint(3, 9)):
                t += r.uniform(20, 120)
                ctx.emit(t, n, s.p, "create", r.choice(["Observation", "Observation",
                                                          "MedicationAdministration"]),
                         1, ip=r.choice(ws), ua=ctx.desktop_ua(t))
            if code in TEACH:
                team = team_for(ctx, code, day)
                m = r.choice(team["ints"])
                t = d1 + r.uniform(600, 4 * 3600)
                ctx.emit(t, m, s.p, "create", "DocumentReference", 1, ip=r.choice(ws),
                         ua=ctx.desktop_ua(t))
            # queued interface messages flushed within minutes
            ctx.emit(d1 + r.uniform(30, 900), lab, s.p, "create", "Observation",
                     r.randint(1, 15), ip=lab.ws[0], ua=lab.home_ua)


def gen_noise(ctx):
    r = ctx.rng
    prac = [u for u in ctx.users if u.role == "practitioner" and u.org != ACO and u.ws]
    sealed = [p for p in ctx.patients if p.sens]
    for day in range(ctx.days):
        # sporadic server errors
        for _ in range(r.randint(5, 20)):
            u = r.choice(prac)
            t = ctx.T(day, r.uniform(7, 19))
            ctx.emit(t, u, r.choice(ctx.patients), "read", r.choice(
                ["Observation", "DocumentReference", "Patient"]), 0, outcome="error",
                basis="undetermined", ip=r.choice(u.ws), ua=ctx.desktop_ua(t))
        # students cannot sign orders
        for st in r.sample(ctx.by_job["student"], min(2, len(ctx.by_job["student"]))):
            if r.random() < 0.3:
                t = ctx.T(day, r.uniform(8, 17))
                s = r.choice(ctx.stays)
                ctx.emit(t, st, s.p, "create", "MedicationRequest", 0, outcome="deny",
                         basis="role", ip=r.choice(st.ws), ua=ctx.desktop_ua(t))
        # clinicians bumping into sealed sections of their own clinic's patients
        for _ in range(r.randint(0, 3)):
            md = r.choice(ctx.by_job["clinic_md"])
            p = r.choice(sealed)
            t = ctx.T(day, r.uniform(8, 17))
            ctx.emit(t, md, p, "read", "DocumentReference", 0, outcome="deny",
                     basis=r.choice(["consent-deny", "no-permit"]), ip=r.choice(md.ws),
                     ua=ctx.desktop_ua(t))
        # a restricted (VIP) chart picked by mistake from a same-name search list
        vips = [p for p in ctx.patients if p.vip]
        for _ in range(r.choice([0, 0, 1, 1, 2])):
            u = r.choice(prac)
            t = ctx.T(day, r.uniform(7, 20))
            ip = r.choice(u.ws)
            ctx.emit(t - 15, u, None, "search", "Patient", r.randint(2, 9), ip=ip,
                     ua=ctx.desktop_ua(t), conf=None)
            ctx.emit(t, u, r.choice(vips), "read", "Patient", 0, outcome="deny",
                     basis="no-permit", ip=ip, ua=ctx.desktop_ua(t))
        # ACO users hitting patients who opted out of data sharing
        for _ in range(r.randint(0, 2)):
            u = r.choice(ctx.by_job["aco_cm"])
            p = r.choice(u.panel or ctx.patients)
            t = ctx.T(day, r.uniform(9, 16))
            ctx.emit(t, u, p, "read", "Encounter", 0, outcome="deny",
                     basis="consent-deny", ip=u.ws[0], ua=u.home_ua)


# --------------------------------------------------------------------------
# incidents
# --------------------------------------------------------------------------

SHIFT_JOBS = ("rn", "float_rn", "travel_rn", "ed_rn", "ed_md", "rrt_rn", "or_rn")


def work_days(ctx, u, lo=0, hi=None):
    hi = ctx.days if hi is None else hi
    ds = [d for d in sorted(u.days) if lo <= d < hi and not
          (u.job not in SHIFT_JOBS and not ctx.workday(d))]
    return ds or [d for d in range(lo, hi) if ctx.workday(d)] or [max(0, hi - 1)]


def work_time(ctx, u, day, late=False):
    r = ctx.rng
    if u.job in SHIFT_JOBS:
        if u.shift == "N":
            return ctx.T(day, r.uniform(19.5, 30.5))
        return ctx.T(day, r.uniform(7.5, 18.5))
    if late:
        return ctx.T(day, r.uniform(16.0, 18.5))
    return ctx.T(day, r.uniform(8.3, 16.8))


def usual_ip(ctx, u):
    if u.remote and ctx.rng.random() < 0.5:
        return ctx.ip_for(u, remote_loc(u))
    return ctx.rng.choice(u.ws) if u.ws else ctx.ip_for(u, "citrix")


def insider_pool(ctx, jobs=None):
    out = []
    for u in ctx.users:
        if u.role != "practitioner" or u.org == ACO or not u.ws:
            continue
        if jobs and u.job not in jobs:
            continue
        if u.job == "travel_rn" and ctx.rng.random() < 0.7:
            continue
        out.append(u)
    return out


def treated_in_period(ctx):
    out = [s.p for s in ctx.stays if s.admit < ctx.end() and s.disch > ctx.base]
    out += [p for (t, p, md, tele) in ctx.clinic_visits[::7]]
    return out


def snoop_reads(ctx, u, p, t, label, n=None, ip=None, ua=None, purpose=None):
    """A curious look: chart open and a few clicks; sealed charts get denied."""
    r = ctx.rng
    ip = ip or usual_ip(ctx, u)
    ua = ua or ctx.desktop_ua(t)
    if (p.vip or p.sens) and not u.extra.get("care_team_of") == p.ref:
        ctx.emit(t, u, p, "read", "Patient", 1, ip=ip, ua=ua, label=label, purpose=purpose)
        ctx.emit(t + r.uniform(5, 40), u, p, "read", "DocumentReference", 0,
                 outcome="deny", basis="no-permit", ip=ip, ua=ua, label=label,
                 purpose=purpose)
        return t + 60
    return session(ctx, u, p, t, "snoop", n=n if n is not None else r.randint(1, 4),
                   ip=ip, ua=ua, label=label, purpose=purpose)


def inc_snooping(ctx, label):
    r = ctx.rng
    variant = r.choice(["vip", "colleague", "neighbour", "ex_partner", "family"])
    u = r.choice(insider_pool(ctx))
    if variant == "vip":
        vips = [p for p in ctx.patients if p.vip]
        in_house = [s for s in ctx.stays if s.p.vip and s.admit < ctx.end() - 86400
                    and s.disch > ctx.base + 86400]
        if in_house and r.random() < 0.6:
            s = r.choice(in_house)
            p = s.p
            nurses = [n for n in ctx.by_job["rn"] if n.unit == s.unit]
            if nurses and r.random() < 0.6:
                u = r.choice(nurses)          # works on the VIP's own unit
                u.extra["care_team_of"] = p.ref
            days = [d for d in work_days(ctx, u) if s.admit - 86400 < ctx.T(d, 12) < s.disch + 86400]
        else:
            p = r.choice(vips)
            days = work_days(ctx, u)
        days = days or work_days(ctx, u)
        for d in r.sample(days, min(len(days), r.randint(1, 3))):
            snoop_reads(ctx, u, p, work_time(ctx, u, d), label)
        u.extra.pop("care_team_of", None)
    elif variant == "colleague":
        same = [p for p in ctx.patients if p.employee is not None and p.employee is not u
                and (p.employee.dept == u.dept or p.employee.unit == u.unit)]
        pool = same or [p for p in ctx.patients if p.employee is not None and p.employee is not u]
        p = r.choice(pool)
        for d in r.sample(work_days(ctx, u), r.randint(1, 2)):
            snoop_reads(ctx, u, p, work_time(ctx, u, d), label)
    elif variant == "neighbour":
        p = r.choice(treated_in_period(ctx) if r.random() < 0.5 else ctx.patients)
        d = r.choice(work_days(ctx, u))
        snoop_reads(ctx, u, p, work_time(ctx, u, d), label, n=r.randint(1, 3))
    elif variant == "ex_partner":
        p = r.choice([q for q in ctx.patients if 20 < q.age < 60])
        days = work_days(ctx, u)
        for d in sorted(r.sample(days, min(len(days), r.randint(3, 7)))):
            snoop_reads(ctx, u, p, work_time(ctx, u, d), label, n=r.randint(1, 3))
    else:
        p = r.choice(treated_in_period(ctx))
        days = work_days(ctx, u)
        for d in sorted(r.sample(days, min(len(days), r.randint(2, 5)))):
            t = work_time(ctx, u, d)
            if r.random() < 0.3:
                ctx.emit(t - 30, u, None, "search", "Patient", r.randint(1, 4),
                         ip=usual_ip(ctx, u), ua=ctx.desktop_ua(t), label=label, conf=None)
            snoop_reads(ctx, u, p, t, label)
    return variant


def inc_stolen(ctx, label):
    r = ctx.rng
    variant = r.choice(["foreign_ip", "citrix_offhours", "mobile", "foreign_ip"])
    u = r.choice(insider_pool(ctx))
    off = [d for d in range(1, ctx.days) if d not in u.days] or list(range(1, ctx.days))
    day = r.choice(off if r.random() < 0.6 else list(range(1, ctx.days)))
    if variant == "foreign_ip":
        ip = ctx.public_ip(r.choice(["hosting", "res", "hosting"]))
        ua = r.choice([CHROME_WIN.format(r.randint(118, 123)), FIREFOX_WIN, SAFARI_MAC])
        t = ctx.T(day, r.choice([r.uniform(0.5, 5), r.uniform(9, 17), r.uniform(20, 23.5)]))
    elif variant == "citrix_offhours":
        ip, ua = r.choice(CITRIX), ctx.desktop_ua(ctx.T(day, 0))
        t = ctx.T(day, r.uniform(19, 23.5))
    else:
        ip, ua = ctx.public_ip("mobile"), MOBILE_CLIN
        t = ctx.T(day, r.uniform(6, 23))
    for i in range(r.randint(0, 4)):
        ctx.emit(t - 60 * (i + 1), u, None, "login", None, 0, outcome="deny",
                 basis="bad-credentials", ip=ip, ua=ua, label=label, conf=None)
    ctx.emit(t, u, None, "login", None, 0, ip=ip, ua=ua, label=label, conf=None)
    t += r.uniform(20, 120)
    for _ in range(r.randint(3, 20)):
        if r.random() < 0.3:
            ctx.emit(t, u, None, "search", "Patient", r.randint(1, 40), ip=ip, ua=ua,
                     label=label, conf=None)
            t += r.uniform(5, 30)
        p = r.choice(ctx.patients)
        t = snoop_reads(ctx, u, p, t, label, n=r.randint(0, 3), ip=ip, ua=ua) + r.uniform(10, 200)
    if r.random() < 0.3:
        ctx.emit(t + 30, u, None, "export", "Bundle", r.randint(50, 900), ip=ip, ua=ua,
                 label=label, conf=None)
    return variant


def inc_exfil(ctx, label):
    r = ctx.rng
    variant = r.choice(["departing_physician", "bulk_search", "slow_bulk"])
    if variant == "departing_physician":
        u = r.choice(ctx.by_job["clinic_md"])
        mine = list({p.ref: p for (t, p, md, tele) in ctx.clinic_visits if md is u}.values())
        ci = [c[0] for c in CLINICS].index(u.dept)
        mine += r.sample(ctx.by_clinic[ci], min(len(ctx.by_clinic[ci]), 40))
        day = r.randint(max(1, ctx.days - 6), ctx.days - 1)
        loc = remote_loc(u)
        for d in (day - 1, day):
            t = ctx.T(d, r.uniform(19, 22.5))
            ip, ua = ctx.ip_for(u, loc), ctx.ua_for(u, t, loc)
            ctx.login(u, t - 100, loc, label=label)
            for p in r.sample(mine, min(len(mine), r.randint(10, 35))):
                ctx.emit(t, u, p, "read", "Patient", 1, ip=ip, ua=ua, label=label)
                ctx.emit(t + r.uniform(3, 15), u, p, "export", "Bundle",
                         r.randint(15, 400), ip=ip, ua=ua, label=label)
                t += r.uniform(20, 120)
        return variant
    u = r.choice(insider_pool(ctx, ("coder", "billing", "quality", "him", "roi",
                                    "call", "case_mgr", "ur")))
    if variant == "bulk_search":
        day = r.choice(work_days(ctx, u, 1))
        t = work_time(ctx, u, day, late=True)
        ip = usual_ip(ctx, u)
        ua = ctx.desktop_ua(t)
        for rt in r.sample(["Patient", "Coverage", "Encounter", "Condition"], r.randint(1, 4)):
            ctx.emit(t, u, None, "search", rt, r.randint(800, 20000), ip=ip, ua=ua,
                     label=label, conf=None)
            t += r.uniform(30, 400)
        if r.random() < 0.6:
            ctx.emit(t, u, None, "export", "Bundle", r.randint(2000, 30000), ip=ip, ua=ua,
                     label=label, conf=None)
        return variant
    days = work_days(ctx, u, 1)
    for d in sorted(r.sample(days, min(len(days), r.randint(3, 5)))):
        t = work_time(ctx, u, d, late=True)
        ip = usual_ip(ctx, u)
        for p in r.sample(ctx.patients, r.randint(30, 90)):
            ctx.emit(t, u, p, "read", "Patient", 1, ip=ip, ua=ctx.desktop_ua(t), label=label)
            if r.random() < 0.5:
                ctx.emit(t + 3, u, p, "read", "Coverage", 1, ip=ip, ua=ctx.desktop_ua(t),
                         label=label)
            t += r.uniform(4, 25)
    return variant


def inc_enum(ctx, label):
    r = ctx.rng
    variant = r.choice(["fast_sweep", "slow_sweep", "search_probe"])
    u = r.choice(insider_pool(ctx))
    ip = usual_ip(ctx, u)
    days = work_days(ctx, u, 1)
    if variant == "fast_sweep":
        t = work_time(ctx, u, r.choice(days))
        for _ in range(r.randint(40, 160)):
            if r.random() < 0.08:
                ghost = Patient("Patient/%d" % r.randint(1000000, 9999999))
                ctx.emit(t, u, ghost, "read", "Patient", 0, outcome="deny",
                         basis="unknown-patient", ip=ip, ua=ctx.desktop_ua(t), label=label,
                         conf=None)
            else:
                ctx.emit(t, u, r.choice(ctx.patients), "read", "Patient", 1, ip=ip,
                         ua=ctx.desktop_ua(t), label=label)
            t += r.uniform(1.5, 12)
    elif variant == "slow_sweep":
        for d in sorted(r.sample(days, min(len(days), r.randint(3, 6)))):
            for _ in range(r.randint(8, 20)):
                t = work_time(ctx, u, d)
                ctx.emit(t, u, r.choice(ctx.patients), "read", "Patient", 1, ip=ip,
                         ua=ctx.desktop_ua(t), label=label)
    else:
        for d in sorted(r.sample(days, min(len(days), r.randint(1, 3)))):
            t = work_time(ctx, u, d)
            for _ in range(r.randint(15, 50)):
                ctx.emit(t, u, None, "search", "Patient", r.randint(0, 25), ip=ip,
                         ua=ctx.desktop_ua(t), label=label, conf=None)
                if r.random() < 0.15:
                    ctx.emit(t + 4, u, r.choice(ctx.patients), "read", "Patient", 1,
                             ip=ip, ua=ctx.desktop_ua(t), label=label)
                t += r.uniform(5, 40)
    return variant


def inc_break_glass(ctx, label):
    r = ctx.rng
    variant = r.choice(["sealed_record", "vip", "repeat", "refused"])
    u = r.choice(insider_pool(ctx, SHIFT_JOBS + ("rn", "resident", "intern",
                                                 "hospitalist", "clinic_md", "consultant")))
    pool = [p for p in ctx.patients if p.sens] if variant != "vip" else \
        [p for p in ctx.patients if p.vip]
    pats = r.sample(pool, min(len(pool), r.randint(2, 4) if variant == "repeat" else 1))
    days = work_days(ctx, u, 0)
    for p in pats:
        d = r.choice(days)
        t = work_time(ctx, u, d)
        ip = usual_ip(ctx, u)
        ctx.emit(t - r.uniform(20, 90), u, p, "read", "Patient", 1, ip=ip,
                 ua=ctx.desktop_ua(t), label=label)
        reason = r.choice(BG_REASONS_BAD if r.random() < 0.6 else BG_REASONS)
        emit_break_glass(ctx, u, p, t, ip, reason, label=label, reads=r.randint(1, 6),
                         refused=(variant == "refused"))
    return variant


def inc_role_misuse(ctx, label):
    r = ctx.rng
    variant = r.choice(["call_center_notes", "it_admin_reads", "coder_active_stays",
                        "front_desk_results", "pharmacist_notes"])
    job = {"call_center_notes": "call", "it_admin_reads": "it_admin",
           "coder_active_stays": "coder", "front_desk_results": "reg",
           "pharmacist_notes": "pharmacist"}[variant]
    u = r.choice(ctx.by_job[job])
    days = work_days(ctx, u, 1)
    if variant == "coder_active_stays":
        pool = [s.p for s in ctx.stays if s.admit < ctx.end() and s.disch > ctx.base + 86400]
    elif variant == "call_center_notes":
        pool = [p for (t, p, md, tele) in ctx.clinic_visits] or ctx.patients
    else:
        pool = ctx.patients
    types = [("read", "DocumentReference"), ("search", "Observation"),
             ("read", "DiagnosticReport"), ("search", "DocumentReference"),
             ("read", "Condition")]
    for d in sorted(r.sample(days, min(len(days), r.randint(1, 4)))):
        for p in r.sample(pool, r.randint(1, 4)):
            t = work_time(ctx, u, d)
            ip = usual_ip(ctx, u)
            ua = ctx.ua_for(u, t, "ws")
            if variant != "it_admin_reads":
                ctx.emit(t, u, p, "read", "Patient", 1, ip=ip, ua=ua, label=label)
            for (a, rt) in r.sample(types, r.randint(1, 3)):
                t += r.uniform(5, 60)
                sealed = p.sens or p.vip
                ctx.emit(t, u, p, a, rt, 0 if sealed else (search_count(r, rt) if a == "search" else 1),
                         outcome="deny" if sealed else "permit",
                         basis="no-permit" if sealed else None, ip=ip, ua=ua, label=label,
                         purpose="HSYSADMIN" if variant == "it_admin_reads" else None)
    return variant


def inc_identity_harvest(ctx, label):
    r = ctx.rng
    variant = r.choice(["registration", "billing", "call_center"])
    u = r.choice(ctx.by_job[{"registration": r.choice(["reg", "ed_reg"]),
                             "billing": "billing", "call_center": "call"}[variant]])
    targets = [p for p in ctx.patients if p.age > 55 or r.random() < 0.2]
    days = work_days(ctx, u, 0)
    for d in sorted(r.sample(days, min(len(days), r.randint(3, 8)))):
        for _ in range(r.randint(1, 6)):
            p = r.choice(targets)
            t = work_time(ctx, u, d)
            ip = usual_ip(ctx, u)
            ua = ctx.desktop_ua(t)
            if r.random() < 0.5:
                ctx.emit(t - 20, u, None, "search", "Patient", r.randint(1, 5), ip=ip,
                         ua=ua, label=label, conf=None)
            ctx.emit(t, u, p, "read", "Patient", 1, ip=ip, ua=ua, label=label)
            ctx.emit(t + r.uniform(5, 40), u, p, "read", "Coverage", 1, ip=ip, ua=ua,
                     label=label)
            if r.random() < 0.3:
                ctx.emit(t + r.uniform(40, 90), u, p, "read", "RelatedPerson", 1,
                         ip=ip, ua=ua, label=label)
    return variant


def inc_lingering(ctx, label):
    r = ctx.rng
    if ctx.rotation_day >= ctx.days - 1:
        return None
    variant = r.choice(["still_inpatient", "after_discharge", "outcome_curiosity"])
    unit = r.choice(TEACH)
    team = ctx.team[(unit, 0)]
    u = r.choice([team["res"]] + team["ints"] + ([team["stud"]] if team["stud"] else []))
    old = [s for s in ctx.stays_by_unit[unit]
           if s.admit < ctx.T(ctx.rotation_day, 0) and s.disch > ctx.base + 86400]
    if variant == "still_inpatient":
        old = [s for s in old if s.disch > ctx.T(ctx.rotation_day, 12)] or old
    elif variant == "after_discharge":
        old = [s for s in old if s.disch < ctx.T(ctx.rotation_day, 12)] or old
    if not old:
        return None
    new_unit = [un for un in TEACH if ctx.team[(un, 1)]["res"] is u or u in
                ctx.team[(un, 1)]["ints"] or ctx.team[(un, 1)]["stud"] is u]
    ws = unit_ws(ctx, new_unit[0]) if new_unit else u.ws or unit_ws(ctx, unit)
    for s in r.sample(old, min(len(old), r.randint(1, 4))):
        for d in r.sample(range(ctx.rotation_day, ctx.days),
                          min(ctx.days - ctx.rotation_day, r.randint(1, 3))):
            t = ctx.T(d, r.uniform(7, 21))
            session(ctx, u, s.p, t, "review", n=r.randint(0, 3), ip=r.choice(ws),
                    ua=ctx.desktop_ua(t), label=label)
    return variant


def inc_departed(ctx, label):
    r = ctx.rng
    variant = r.choice(["self_from_home", "colleague_on_shared_ws", "self_from_home"])
    u = r.choice(insider_pool(ctx, ("rn", "coder", "billing", "call", "reg", "clinic_ma",
                                    "quality", "case_mgr", "pharmacist")))
    dep = r.randint(2, max(2, ctx.days - 4))
    t_leave = ctx.T(dep, 0)
    ctx.departed[u.uid] = t_leave
    t_susp = ctx.T(dep + r.randint(2, 4), r.uniform(9, 16))
    a = r.choice(ctx.by_job["it_admin"])
    ctx.emit(t_susp, a, None, "update", "User", 1, purpose="HSYSADMIN",
             ip=ctx.ip_for(a, "ws"), ua=ctx.desktop_ua(t_susp), conf=None,
             account="User/" + u.uid)
    ctx.departed_susp[u.uid] = t_susp
    n_uses = r.randint(1, 3)
    for k in range(n_uses):
        t = r.uniform(t_leave + 3600 * 8, t_susp - 600)
        if variant == "self_from_home":
            ip, ua = u.home_ip, u.home_ua
            if r.random() < 0.5:
                ip, ua = r.choice(CITRIX), ctx.desktop_ua(t)
        else:
            ip, ua = (r.choice(u.ws) if u.ws else r.choice(CITRIX)), ctx.desktop_ua(t)
        ctx.emit(t, u, None, "login", None, 0, ip=ip, ua=ua, label=label, conf=None)
        t += 30
        for p in r.sample(ctx.patients, r.randint(1, 6)):
            t = snoop_reads(ctx, u, p, t, label, n=r.randint(0, 3), ip=ip, ua=ua) + \
                r.uniform(20, 400)
    if r.random() < 0.6:
        t = t_susp + r.uniform(3600, 86400 * 2)
        ip = u.home_ip if variant == "self_from_home" else r.choice(u.ws or CITRIX)
        for i in range(r.randint(1, 3)):
            ctx.emit(t + 30 * i, u, None, "login", None, 0, outcome="deny",
                     basis="locked-out", ip=ip, ua=u.home_ua, label=label, conf=None)
    return variant


def inc_service(ctx, label):
    r = ctx.rng
    variant = r.choice(["aco_api_key_leak", "hie_client_reuse", "lab_iface_browse"])
    day = r.randint(1, ctx.days - 1)
    if variant == "aco_api_key_leak":
        u = ctx.by_job["svc_acoapi"][0]
        ip, ua = ctx.public_ip("hosting"), r.choice(["python-requests/2.32.3",
                                                     "curl/8.5.0", "Go-http-client/2.0"])
        t = ctx.T(day, r.uniform(0, 24))
        ctx.emit(t, u, None, "login", None, 0, ip=ip, ua=ua, label=label, conf=None)
        for p in r.sample(ctx.patients, r.randint(40, 250)):
            t += r.uniform(0.3, 4)
            ctx.emit(t, u, p, "search", r.choice(["Condition", "Coverage", "Patient",
                                                  "MedicationRequest"]),
                     r.randint(1, 30), ip=ip, ua=ua, label=label, basis="role")
    elif variant == "hie_client_reuse":
        u = ctx.by_job["svc_hie"][0]
        ip, ua = ctx.public_ip(r.choice(["hosting", "res"])), u.home_ua
        t = ctx.T(day, r.uniform(0, 24))
        for p in r.sample(ctx.patients, r.randint(20, 90)):
            t += r.uniform(2, 40)
            ctx.emit(t, u, p, "search", "DocumentReference", r.randint(0, 30), ip=ip,
                     ua=ua, label=label)
            ctx.emit(t + 1, u, p, "read", "Composition", 1, ip=ip, ua=ua, label=label)
    else:
        u = ctx.by_job["svc_lab"][0]
        ip, ua = u.ws[0], u.home_ua
        t = ctx.T(day, r.uniform(0, 24))
        for _ in range(r.randint(10, 60)):
            t += r.uniform(5, 120)
            if r.random() < 0.4:
                ctx.emit(t, u, None, "search", "Patient", r.randint(1, 50), ip=ip, ua=ua,
                         label=label, conf=None)
            ctx.emit(t + 2, u, r.choice(ctx.patients), "read",
                     r.choice(["Patient", "DocumentReference", "Coverage"]), 1, ip=ip,
                     ua=ua, label=label)
    return variant


def inc_research(ctx, label):
    r = ctx.rng
    variant = r.choice(["deny_then_treat", "screening_creep", "pre_consent"])
    u = r.choice(ctx.by_job["research"])
    cohort = set()
    for st in u.extra["studies"]:
        cohort |= {p.ref for p in ctx.studies[st]}
    outside = [p for p in ctx.patients if p.ref not in cohort]
    days = work_days(ctx, u, 1)
    loc_ip = usual_ip(ctx, u)
    if variant == "deny_then_treat":
        targets = r.sample(outside, r.randint(4, 15))
        d = r.choice(days)
        t = work_time(ctx, u, d)
        for p in targets[:r.randint(1, 3)]:
            ctx.emit(t, u, p, "read", "Observation", 0, outcome="deny",
                     basis="consent-deny", ip=loc_ip, ua=ctx.ua_for(u, t, "ws"), label=label)
            t += r.uniform(10, 120)
        for p in targets:
            t = session(ctx, u, p, t + r.uniform(30, 600), "research", n=r.randint(1, 4),
                        purpose="TREAT", basis="custodian", ip=loc_ip,
                        ua=ctx.ua_for(u, t, "ws"), label=label)
    elif variant == "screening_creep":
        for d in sorted(r.sample(days, min(len(days), r.randint(2, 5)))):
            for p in r.sample(outside, r.randint(4, 14)):
                t = work_time(ctx, u, d)
                session(ctx, u, p, t, "research", n=r.randint(1, 3), basis="role",
                        ip=loc_ip, ua=ctx.ua_for(u, t, "ws"), label=label)
    else:
        for p in r.sample(outside, r.randint(2, 8)):
            t = work_time(ctx, u, r.choice(days))
            session(ctx, u, p, t, "research", n=r.randint(2, 5), ip=loc_ip,
                    ua=ctx.ua_for(u, t, "ws"), label=label)
    return variant


def inc_tamper(ctx, label):
    r = ctx.rng
    variant = r.choice(["med_error", "fall", "missed_deterioration"])
    stays = [s for s in ctx.stays if s.admit > ctx.base + 86400 and
             s.disch < ctx.end() - 86400 and s.unit != "PSY3"]
    if not stays:
        return None
    s = r.choice(stays)
    tA = r.uniform(s.admit + 3600, s.disch - 3600)
    day = ctx.day_of(tA)
    h = (tA - ctx.T(day, 0)) / 3600.0
    sh = "D" if 7 <= h < 19 else "N"
    sday = day if h >= 7 else day - 1
    if variant == "missed_deterioration" and s.unit in TEACH:
        team = team_for(ctx, s.unit, max(0, day))
        u = r.choice(team["ints"] + [team["res"]])
        rts = ["DocumentReference", "Observation", "ServiceRequest"]
    else:
        u = ctx.nurse_of.get((id(s), sday, sh)) or r.choice(
            [n for n in ctx.by_job["rn"] if n.unit == s.unit])
        rts = ["MedicationAdministration", "Observation", "DocumentReference"]
    ws = unit_ws(ctx, s.unit)
    # the actor documents normally around the event (part of the cover-up)
    t = tA + r.uniform(2, 30) * 3600
    if t > ctx.end() - 600:
        t = tA + 3600
    if r.random() < 0.4:
        ip, ua = r.choice(CITRIX), ctx.desktop_ua(t)     # from home, later
    else:
        ip, ua = r.choice(ws), ctx.desktop_ua(t)
    ctx.emit(t, u, s.p, "read", "Patient", 1, ip=ip, ua=ua, label=label)
    for _ in range(r.randint(2, 6)):
        t += r.uniform(20, 200)
        ctx.emit(t, u, s.p, r.choice(["update", "update", "delete"]), r.choice(rts), 1,
                 ip=ip, ua=ua, label=label)
    if r.random() < 0.5:
        ctx.emit(t + r.uniform(60, 300), u, s.p, "create", "DocumentReference", 1,
                 ip=ip, ua=ua, label=label)
    return variant


def inc_cm_overreach(ctx, label):
    r = ctx.rng
    variant = r.choice(["metrics_padding", "personal", "colleague_panel"])
    u = r.choice(ctx.by_job["aco_cm"])
    panel = {p.ref for p in u.panel}
    if variant == "colleague_panel":
        pool = [p for p in ctx.patients if p.aco and p.ref not in panel]
    else:
        pool = [p for p in ctx.patients if not p.aco]
    days = work_days(ctx, u, 1)
    n = r.randint(1, 3) if variant == "personal" else r.randint(5, 25)
    ip = u.ws[0] if not u.remote else u.home_ip
    for p in r.sample(pool, min(len(pool), n)):
        t = work_time(ctx, u, r.choice(days))
        if not p.aco and r.random() < 0.25:
            ctx.emit(t, u, p, "read", "Encounter", 0, outcome="deny", basis="consent-deny",
                     ip=ip, ua=u.home_ua, label=label)
            continue
        session(ctx, u, p, t, "cm", n=r.randint(1, 4), ip=ip, ua=u.home_ua, label=label)
    return variant


def inc_media(ctx, label):
    r = ctx.rng
    variant = r.choice(["local_anchor", "athlete", "crime_suspect", "crash_victim"])
    cand = [s for s in ctx.stays if s.via_ed and ctx.base + 86400 < s.admit < ctx.end() - 3 * 86400
            and s.unit in ("MICU", "SURG6", "MED4", "MED5") and not s.p.sens]
    if not cand:
        return None
    s = r.choice(cand)
    p = s.p
    p.news = True
    crowd = r.sample(insider_pool(ctx), r.randint(4, 14))
    # the privacy office notices the story and starts watching the chart (benign)
    for a in ctx.by_job["privacy"]:
        for d in range(ctx.day_of(s.admit) + 1, min(ctx.days, ctx.day_of(s.admit) + 4)):
            ta = ctx.T(d, r.uniform(8.5, 16.5))
            ctx.emit(ta, a, p, "search", "AuditEvent", r.randint(20, 300),
                     ip=r.choice(a.ws), ua=ctx.desktop_ua(ta), conf=None)
    for u in crowd:
        for _ in range(r.randint(1, 3)):
            t = s.admit + r.expovariate(1 / (14 * 3600.0))
            if t > ctx.end() - 60:
                t = s.admit + r.uniform(600, 7200)
            d = ctx.day_of(t)
            if u.job not in SHIFT_JOBS and not ctx.workday(d):
                t = work_time(ctx, u, d)
            snoop_reads(ctx, u, p, t, label, n=r.randint(0, 3),
                        ip=r.choice(u.ws) if u.ws else None)
    return variant


def inc_proxy(ctx, label):
    r = ctx.rng
    variant = r.choice(["revoked_proxy", "estranged_parent", "account_takeover"])
    if variant == "account_takeover":
        pool = [p for p in ctx.patients if p.portal]
        p = r.choice(pool)
        u = portal_user(ctx, p, p.portal[0])
        ip, ua = ctx.public_ip(r.choice(["hosting", "res"])), r.choice(PORTAL_UAS)
        t = ctx.T(r.randint(1, ctx.days - 1), r.uniform(0, 24))
        for i in range(r.randint(1, 6)):
            ctx.emit(t - 30 * (i + 1), u, None, "login", None, 0, purpose="PATRQT",
                     outcome="deny", basis="bad-credentials", ip=ip, ua=ua, label=label,
                     conf=None)
        ctx.emit(t, u, None, "login", None, 0, purpose="PATRQT", ip=ip, ua=ua,
                 label=label, conf=None)
        session(ctx, u, p, t + 20, "portal", n=r.randint(1, 4), ip=ip, ua=ua,
                purpose="PATRQT", basis="own-record", label=label, open_chart=False)
        ctx.emit(t + 200, u, p, "export", "Bundle", r.randint(80, 900), purpose="PATRQT",
                 basis="own-record", ip=ip, ua=ua, label=label)
        return variant
    pool = [p for p in ctx.patients if 13 <= p.age < 25] or ctx.patients
    p = r.choice(pool)
    uid = ctx.new_uid("pt")
    ip, ua = ctx.public_ip("res"), r.choice(PORTAL_UAS)
    consent = "Consent/prx-%d" % r.randint(100000, 999999)
    u = portal_user(ctx, p, uid)
    days = sorted(r.sample(range(ctx.days), min(ctx.days, r.randint(2, 6))))
    for d in days:
        t = ctx.T(d, r.uniform(6, 24))
        ctx.emit(t, u, None, "login", None, 0, purpose="FAMRQT", ip=ip, ua=ua,
                 label=label, conf=None)
        if variant == "revoked_proxy":
            for _ in range(r.randint(1, 3)):
                t += r.uniform(5, 60)
                ctx.emit(t, u, p, "read", r.choice(["Observation", "DocumentReference",
                                                    "Appointment"]), 0, purpose="FAMRQT",
                         outcome="deny", basis="consent-deny", consents=[consent],
                         ip=ip, ua=ua, label=label)
        else:
            for _ in range(r.randint(1, 5)):
                t += r.uniform(5, 60)
                rt = r.choice(["DocumentReference", "Condition", "MedicationRequest",
                               "Appointment", "Observation"])
                ctx.emit(t, u, p, "read", rt, 1, purpose="FAMRQT", basis="consent",
                         consents=[consent], ip=ip, ua=ua, label=label,
                         conf="R" if rt in ("DocumentReference", "Condition") and
                         r.random() < 0.6 else confidentiality(p, rt))
    return variant


INCIDENT_FUNCS = {
    "snooping": inc_snooping, "stolen_credentials": inc_stolen,
    "exfiltration": inc_exfil, "enumeration": inc_enum,
    "break_glass_abuse": inc_break_glass, "role_misuse": inc_role_misuse,
    "identity_harvest": inc_identity_harvest, "lingering_resident": inc_lingering,
    "departed_account": inc_departed, "service_compromise": inc_service,
    "research_overreach": inc_research, "record_tampering": inc_tamper,
    "care_mgmt_overreach": inc_cm_overreach, "media_snooping": inc_media,
    "proxy_abuse": inc_proxy,
}

CLASSIC = KINDS[:6]


def plan_incidents(ctx):
    r = ctx.rng
    n = ctx.args.incidents
    kinds = KINDS[:]
    r.shuffle(kinds)
    k = min(len(kinds), n, max(10, r.randint(10, len(kinds))))
    chosen = kinds[:k]
    w = [r.uniform(0.3, 2.0) * (1.6 if c in CLASSIC else 1.0) for c in chosen]
    plan = chosen + (r.choices(chosen, weights=w, k=n - k) if n > k else [])
    r.shuffle(plan)
    for i, kind in enumerate(plan):
        iid = "INC-%d-%03d" % (ctx.args.seed, i + 1)
        for attempt in range(8):
            kk = kind if attempt < 6 else "snooping"
            label = (iid, kk)
            before = len(ctx.events)
            variant = INCIDENT_FUNCS[kk](ctx, label)
            got = sum(1 for e in ctx.events[before:] if e[-1] == label)
            if variant is not None and got > 0:
                ctx.incidents.append((iid, kk, variant))
                break
            # drop partial output of a failed attempt
            ctx.events[before:] = [e for e in ctx.events[before:] if e[-1] != label]


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------

def fmt_time(t):
    ms = int(round(t * 1000))
    s, ms = divmod(ms, 1000)
    d = dt.datetime.fromtimestamp(s, dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % ms


def finalize(ctx):
    ev = ctx.events
    if ctx.departed:
        ev = [e for e in ev if not (e[1] in ctx.departed and e[0] >= ctx.departed[e[1]]
                                    and e[-1] is None)]
    lo, hi = ctx.base, ctx.end()
    ev = [e for e in ev if lo <= e[0] < hi]
    ev.sort(key=lambda e: e[0])
    return ev


def write_out(ctx, ev, out_events, out_labels):
    idr = ctx.idrng
    nlab = 0
    with open(out_events, "w") as fe, open(out_labels, "w") as fl:
        for e in ev:
            (t, uid, role, org, dept, prac, pref, action, rtype, count, purpose,
             outcome, bg, conf, ip, ua, dec, account, label) = e
            eid = str(uuid.UUID(int=idr.getrandbits(128), version=4))
            rec = {
                "id": eid, "time": fmt_time(t),
                "actor": {"id": uid, "role": role, "organization": org,
                          "department": dept, "practitioner": prac},
                "patient": pref, "action": action, "resource_type": rtype,
                "count": int(count), "purpose": purpose, "outcome": outcome,
                "break_glass": bool(bg), "confidentiality": conf,
                "source": {"ip": ip, "user_agent": ua},
                "decision": dec,
                "request_id": "%016x" % idr.getrandbits(64),
            }
            if account is not None:
                rec["account"] = account
            fe.write(json.dumps(rec, separators=(",", ":")) + "\n")
            if label is not None:
                fl.write(json.dumps({"id": eid, "incident": label[0], "kind": label[1]})
                         + "\n")
                nlab += 1
    return nlab


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out-events", required=True)
    ap.add_argument("--out-labels", required=True)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--staff", type=int, default=200)
    ap.add_argument("--patients", type=int, default=5000)
    ap.add_argument("--incidents", type=int, default=25)
    ap.add_argument("--tz-offset", type=float, default=-5)
    args = ap.parse_args(argv)
    if args.days < 3:
        ap.error("--days must be at least 3")
    if args.staff < 80:
        ap.error("--staff must be at least 80")
    if args.patients < 500:
        ap.error("--patients must be at least 500")
    t_start = _time.time()
    _portal_users.clear()
    ctx = Ctx(args)
    build_staff(ctx)
    build_patients(ctx)
    build_stays(ctx)
    index_stays(ctx)
    assign_rotations(ctx)
    for gen in (gen_or, gen_nursing, gen_physicians, gen_nights, gen_consults, gen_rrt,
                gen_pharmacy, gen_interfaces, gen_ed, gen_boards, gen_infusion_dialysis,
                gen_clinics, gen_call_center, gen_prior_auth, gen_revenue, gen_roi_him,
                gen_quality_ipc, gen_research, gen_services, gen_care_mgmt,
                gen_employee_privacy_admin, gen_portal, gen_downtime, gen_noise):
        gen(ctx)
    plan_incidents(ctx)
    ev = finalize(ctx)
    nlab = write_out(ctx, ev, args.out_events, args.out_labels)
    kinds = Counter(k for _, k, _ in ctx.incidents)
    variants = Counter("%s/%s" % (k, v) for _, k, v in ctx.incidents)
    wd = "Mon Tue Wed Thu Fri Sat Sun".split()
    print("academic_center seed=%d start=%s days=%d events=%d labelled=%d "
          "incidents=%d (%.1fs)" % (args.seed, ctx.start_date, args.days, len(ev), nlab,
                                     len(ctx.incidents), _time.time() - t_start),
          file=sys.stderr)
    print("  calendar: rotation day %d, holiday day %s, downtime day %d (%.1fh), "
          "ED surge day %d, client upgrade day %d, first day %s" % (
              ctx.rotation_day, ctx.holiday, ctx.downtime_day,
              (ctx.downtime[1] - ctx.downtime[0]) / 3600, ctx.surge_day, ctx.upgrade_day,
              wd[ctx.weekday0]), file=sys.stderr)
    for k in KINDS:
        if kinds.get(k):
            vs = ", ".join("%s:%d" % (v.split("/", 1)[1], c) for v, c in sorted(variants.items())
                           if v.split("/", 1)[0] == k)
            print("  %-20s %2d  (%s)" % (k, kinds[k], vs), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
