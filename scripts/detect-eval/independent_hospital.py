#!/usr/bin/env python3
"""Independent synthetic hospital access log with labelled incidents (standard library only).

    python3 scripts/detect-eval/independent_hospital.py --seed N --out-events E.jsonl \
        --out-labels L.jsonl [--days 14] [--staff 120] [--patients 3000] [--incidents 25] [--tz-offset 1] [--check]

Events follow shared/events/access-event.schema.json, sorted by time; labels are {"id", "incident", "kind"}
lines, one per attack event; --check validates both files afterwards. Same seed, same files. The design
comes from how hospitals work, not from any detector:

* World: a small acute hospital (ED, ICU, seven wards incl. psychiatry, radiology, lab, pharmacy,
  registration, billing, coding, health information, research, IT, privacy office) and an affiliated
  family clinic (a second organisation, reaching hospital records through sharing consents). Local time
  is UTC+tz-offset.
* Rosters: 8 h / 12 h nurse shifts filled slot by slot (preferences, part-timers, weekly caps, float
  nurses, cover on other wards), physicians on weekdays with on-call nights from home (VPN, phone app),
  residents changing department halfway, new hires, leave, leavers (accounts suspended), remote coding.
* Patients go through planned episodes under a bed census: ED visits (new registrations, legitimate
  break-the-glass on restricted or opted-out records, one major-incident surge), admissions, transfers,
  handovers, nursing rounds, ward rounds, consults, night calls, labs, imaging, pharmacy checks,
  dispensing, discharge, coding and billing; clinic and outpatient visits with chart preparation the
  evening before; a weekly tumour board.
* Other benign variety: interface engines and nightly warehouse exports (service role), public health
  and HIE queries, release-of-information exports, researchers' large searches, billing calls about old
  stays, privacy-office reviews of VIP records, patients and parents on the portal (employees log in there
  with their staff identity), failed logins, lock-outs and unlocks, entered-in-error deletes, late notes,
  client upgrades (new user agents), home address changes, DHCP and VPN pools.
* Incidents (none in the first two days, one actor each): snooping, stolen-credentials, exfiltration,
  enumeration, break-glass-abuse, role-misuse, and two kinds of this generator's own: terminated-account
  (a leaver's never-revoked account used from home) and record-tampering (changing or deleting entries
  afterwards, including in one's own record).
"""
import argparse
import bisect
import datetime as dt
import json
import math
import os
import random
import re
import sys
import uuid
import zlib
from collections import Counter, defaultdict

MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
EPOCH = dt.datetime(2025, 3, 3, tzinfo=dt.timezone.utc)  # a Monday: local midnight of day 0
MAIN, CLINIC = "Organization/st-aldhelm-hospital", "Organization/riverside-family-clinic"
WARDS = {"icu": 6, "cardiology": 12, "surgery": 14, "oncology": 10, "maternity": 8,  # beds at 120 staff
         "paediatrics": 8, "general-medicine": 16, "psychiatry": 8}
LOS = {"icu": 2.5, "cardiology": 3.5, "surgery": 4, "oncology": 5, "maternity": 2,  # median stay, days
       "paediatrics": 2.5, "general-medicine": 4.5, "psychiatry": 9}
FROM_ED = {"icu": .7, "cardiology": .6, "surgery": .45, "oncology": .3, "maternity": 0,
           "paediatrics": .6, "general-medicine": .8, "psychiatry": .6}
SENSITIVE = {"Condition", "DocumentReference", "DiagnosticReport", "MedicationRequest",
             "MedicationAdministration", "CarePlan", "Procedure"}
CHART = ["Observation", "Condition", "MedicationRequest", "DocumentReference", "AllergyIntolerance",
         "DiagnosticReport", "Procedure", "ImagingStudy", "CarePlan"]
CLINICAL = ("physician", "resident", "nurse", "pharmacist", "labtech", "radiographer", "radiologist")
DOCS = ("physician", "resident")
R_TRUSTED = {"pharmacist", "coder", "him", "auditor"}  # may open restricted notes
T8 = [(7, 15, "day", .42), (15, 23, "evening", .33), (23, 31, "night", .25)]
T12 = [(7, 19, "day", .55), (19, 31, "night", .45)]
TED = [(8, 18, "day", .4), (14, 24, "evening", .35), (22, 32, "night", .25)]
MIX = """physician emergency 5, physician icu 2, physician cardiology 2, physician surgery 3,
    physician oncology 2, physician maternity 1, physician paediatrics 1, physician general-medicine 3,
    physician psychiatry 1, radiologist radiology 2, resident general-medicine 7, nurse emergency 8,
    nurse icu 7, nurse cardiology 5, nurse surgery 6, nurse oncology 4, nurse maternity 4,
    nurse paediatrics 4, nurse general-medicine 6, nurse psychiatry 4, nurse float-pool 4,
    pharmacist pharmacy 4, labtech laboratory 5, radiographer radiology 3, clerk admissions 3,
    clerk ed-registration 3, clerk billing 3, coder coding 4, him health-information 2,
    researcher research 2, itadmin it 2, auditor privacy-office 1,
    physician family-medicine 3, nurse family-medicine 2, clerk clinic-reception 2"""
ROTATIONS = ["emergency", "general-medicine", "surgery", "cardiology", "icu", "paediatrics", "oncology"]
PURPOSE = {"admissions": "PATADMIN", "ed-registration": "PATADMIN", "clinic-reception": "PATADMIN",
           "billing": "HPAYMT", "coding": "HPAYMT", "health-information": "RECORDMGT",
           "research": "HRESCH", "it": "HSYSADMIN", "privacy-office": "HOPERAT"}
SERVICES = {"adt": ("svc-adt-engine", "Rhapsody/7.2.1", "10.20.250.11", "TREAT"),
            "lab": ("svc-lab-interface", "Mirth Connect/4.4.1", "10.20.250.12", "TREAT"),
            "pacs": ("svc-pacs-bridge", "PACS-Bridge/2.1 (Java/17.0.9)", "10.20.250.13", "TREAT"),
            "rx": ("svc-dispensing", "Omnicell-Gateway/1.9.4", "10.20.250.14", "TREAT"),
            "dw": ("svc-dw-extract", "dw-extract/1.4 python-requests/2.31.0", "10.20.250.20", "HOPERAT"),
            "ph": ("svc-pubhealth", "ELR-Reporter/3.0.2", "10.20.250.21", "PUBHLTH"),
            "bill": ("svc-claims-engine", "ClaimsEngine/8.1", "10.20.250.22", "HPAYMT"),
            "hie": ("svc-hie-gateway", "HIE-Gateway/2.6 (XCA)", "10.20.251.5", "TREAT")}
WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%s Safari/537.36"
DESKTOP = ["CustodianDesktop/%s (Windows NT 10.0; Win64; x64) Citrix/2311" % v for v in ("5.3.2", "5.4.0")]
CHROME = [WIN % "122.0.0.0", WIN % "123.0.0.0"]
HOME_UA = ["Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
           WIN % "122.0.0.0" + " Edg/122.0.2365.66", CHROME[0],
           "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0"]
PHONE = ["CustodianMobile/{} (iPhone; iOS 17.3.1)", "CustodianMobile/{} (Android 14; SM-S911B)",
         "CustodianMobile/{} (iPhone; iOS 16.7.5)", "CustodianMobile/{} (Android 13; Pixel 7)"]
PORTAL_UA = ["MyCustodian/3.2.0 (iPhone; iOS 17.4)", "MyCustodian/3.2.0 (Android 14)", "MyCustodian/3.1.4 (Android 12)"] + HOME_UA
ATTACK_UA = ["python-requests/2.31.0", "curl/8.4.0", "Go-http-client/1.1", CHROME[0],
             "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0"]
ATTACK_NETS = ["185.220.101", "45.155.205", "193.32.162", "5.188.62", "194.26.29", "91.240.118"]
RESIDENTIAL, MOBILE = [78, 81, 82, 86, 88, 90, 92, 94, 109, 176, 212, 217], [37, 46, 80, 89, 151]
BG_LEGIT = ["Unconscious patient in resus, history needed", "Chest pain, prior ECGs needed",
            "Major trauma: allergies and anticoagulants", "Suspected overdose, previous presentations",
            "Confused patient unable to give history", "Septic shock, prior cultures needed", "Cardiac arrest"]
BG_ABUSE = ["Patient phoned asking for results", "Covering for colleague", "Urgent medication query",
            "Continuity of care", "Emergency", "Patient at desk requesting information",
            "Checking appointment details", "Family member requested update"]
KINDS = ["snooping", "stolen-credentials", "exfiltration", "enumeration", "break-glass-abuse",
         "role-misuse", "terminated-account", "record-tampering"]
KIND_WEIGHTS = [6, 3, 3, 3, 3, 3, 2, 2]
NAMES = "anna ben carla david elena farid grace hugo irene jonas kira liam maya nils olga pavel rosa".split()
SURNAMES = ("adams baker costa dubois evans fischer garcia horvat ivanova jensen kowalski lopez martin "
            "nowak okafor petrov quinn rossi silva tanaka ulrich varga weber young zimmer").split()


def crc(text, mod):
    return zlib.crc32(text.encode()) % mod


def vpn_ip(rng):
    return "10.99.%d.%d" % (rng.randint(0, 3), rng.randint(2, 254))


class Person:
    """A user: staff member, service account or portal user."""

    def __init__(self, uid, prof, dept, org, role, purpose, site="main", src=None):
        self.uid, self.prof, self.dept, self.org, self.role, self.purpose = uid, prof, dept, org, role, purpose
        self.site, self.src_fixed, self.practitioner, self.own = site, src, None, None
        self.fte, self.pref, self.start_day, self.end_day, self.unrevoked = 1.0, None, -99, 999, False
        self.leave, self.workdays, self.shifts, self.starts, self.cared = set(), set(range(5)), [], [], []
        self.dept2 = self.rotate_at = self.office_ip = self.phone_ua = self.home_ua = None
        self.home_ips, self.home_change, self.phone_update, self.last_end, self._actors = [], 1e12, 1e12, -1e9, {}

    def actor(self, t):
        dept = self.dept2 if self.rotate_at is not None and t >= self.rotate_at else self.dept
        if dept not in self._actors:
            self._actors[dept] = {"id": self.uid, "role": self.role, "organization": self.org,
                                  "department": dept, "practitioner": self.practitioner}
        return self._actors[dept]

    def works(self, day):
        return self.start_day <= day < self.end_day and day not in self.leave

    def shift_at(self, t, slack=2 * HOUR):
        i = bisect.bisect_right(self.starts, t) - 1
        return self.shifts[i] if i >= 0 and self.shifts[i][1] + slack > t else None

    def home(self, t):
        return self.home_ips[t >= self.home_change]

    def phone(self, t):
        return self.phone_ua.format("2.9.0" if t >= self.phone_update else "2.8.1")


class Patient:
    def __init__(self, pid):
        self.pid, self.ref, self.conf, self.orgs, self.share = pid, "Patient/" + pid, "N", set(), True
        self.team, self.stays, self.depts, self.busy = set(), [], set(), -1e18
        self.staff = self.portal = self.proxy = None


class Session:
    """Requests by one user from one address; `ev` emits one event and moves the clock on."""

    def __init__(self, w, st, t, src, label=None, purpose=None, pace=(4, 40)):
        self.w, self.st, self.t, self.src, self.label = w, st, t, src, label
        self.purpose, self.pace, self.bg = purpose or st.purpose, pace, None

    def ev(self, action, rtype, p=None, count=1, purpose=None, outcome=None, basis=None,
           consents=None, pause=None, account=None, reason=None, bg=False):
        w = self.w
        if self.bg and p is not None:
            bg, outcome, basis, reason, purpose = True, "permit", "break-glass", self.bg, "ETREAT"
        elif outcome is None:
            outcome, basis, consents = w.decide(self.st, p, rtype)
        if outcome == "permit" and self.st.role != "service" and action != "login" and w.rng.random() < .002:
            outcome, basis = "error", None  # a timeout now and then
        w.emit(self.t, self.st, p, action, rtype, count if outcome == "permit" else 0, purpose or self.purpose,
               outcome, basis, self.src, bg, consents, reason, self.label, account)
        self.t += w.rng.uniform(*(pause or self.pace))
        return outcome == "permit"

    def do(self, p, *steps, **kw):
        """Runs steps like "read Patient" or ".4 create Observation" (done with that probability);
        searches count what they find. Stops at the first refusal; says whether all were permitted."""
        for step in steps:
            parts = step.split()
            if len(parts) == 3 and self.w.rng.random() >= float(parts.pop(0)):
                continue
            if not self.ev(parts[0], parts[1], p, count=self.w.cnt(parts[0], parts[1]), **kw):
                return False
        return True

    def wait(self, lo, hi):
        self.t += self.w.rng.uniform(lo, hi)


class Hospital:
    def __init__(self, a):
        self.rng, self.days, self.tz, self.horizon = random.Random(a.seed), a.days, a.tz_offset, a.days * DAY
        self.scale = a.staff / 120.0
        self.beds = {w: b * self.scale for w, b in WARDS.items()}
        self.events, self.seq, self.starts, self.onduty, self.ws = [], 0, [], defaultdict(list), {}
        self.pharm, self.coding, self.portal_tasks, self.bg_log, self.lockouts = [], [], [], [], []
        self.bill_day = defaultdict(list)
        self.build_staff()
        self.build_patients(a.patients)
        self.svc = {k: Person(u, "service", "integration", MAIN, "service", pu, src=(ip, ua))
                    for k, (u, ua, ip, pu) in SERVICES.items()}

    # ------------------------------------------------------------------ the world
    def ip(self, firsts):
        r = self.rng
        return "%d.%d.%d.%d" % (r.choice(firsts), r.randint(1, 254), r.randint(0, 255), r.randint(1, 254))

    def build_staff(self):
        rng, used, self.staff, mix = self.rng, set(), [], [m.split() for m in MIX.split(",")]
        for k, dept in enumerate(sorted({m[1] for m in mix} | set(WARDS))):  # shared ward workstations
            self.ws[dept] = ["10.20.%d.%d" % (k + 1, 11 + i) for i in range(rng.randint(3, 6))]
        for prof, dept, count in mix:
            site = "clinic" if dept in ("family-medicine", "clinic-reception") else "main"
            for _ in range(max(1, round(int(count) * self.scale))):
                uid = rng.choice(NAMES)[0] + rng.choice(SURNAMES) + rng.choice(["", "", "2", "3"])
                while uid in used:
                    uid += str(rng.randint(0, 9))
                used.add(uid)
                role = {"itadmin": "admin", "auditor": "auditor"}.get(prof, "practitioner")
                s = Person(uid, prof, dept, CLINIC if site == "clinic" else MAIN, role, PURPOSE.get(dept, "TREAT"), site)
                n = len(self.staff)
                if prof in CLINICAL or rng.random() < .3:
                    s.practitioner = "Practitioner/pr-%05d" % rng.randint(10000, 99999)
                s.office_ip = "10.40.1.%d" % (20 + n % 230) if site == "clinic" else "10.21.%d.%d" % (n // 200, 10 + n % 200)
                s.home_ips, s.home_ua = [self.ip(RESIDENTIAL), self.ip(RESIDENTIAL)], rng.choice(HOME_UA)
                if rng.random() < .15:
                    s.home_change = rng.uniform(0, self.days) * DAY  # the ISP hands out a new address
                if prof in ("physician", "resident", "radiologist") and rng.random() < .7 or rng.random() < .15:
                    s.phone_ua, s.phone_update = rng.choice(PHONE), rng.uniform(2, self.days + 4) * DAY
                if rng.random() < .2 and role == "practitioner":
                    s.fte, s.workdays = .6, set(rng.sample(range(5), 3))
                s.pref = rng.choice([None, None, "day", "day", "night", "evening"])
                if rng.random() < .12:
                    d0 = rng.randint(-3, self.days)
                    s.leave = set(range(d0, d0 + rng.randint(3, 7)))
                if prof == "resident":
                    (s.dept, s.dept2), s.rotate_at = rng.sample(ROTATIONS, 2), (self.days // 2) * DAY
                self.staff.append(s)
        humans = [s for s in self.staff if s.role == "practitioner"]
        for s in rng.sample(humans, max(1, round(len(humans) * .04))):
            s.start_day = rng.randint(3, max(3, self.days // 2))  # new hires
        for s in rng.sample(humans, max(1, round(len(humans) * .02))):
            s.end_day = rng.randint(4, max(4, self.days - 2))  # leavers, suspended by IT
        self.admins = [s for s in self.staff if s.prof == "itadmin"]

    def build_patients(self, n):
        rng, mrn, self.patients = self.rng, 2000000, []
        for _ in range(n):
            mrn += rng.choice([1, 1, 1, 2, 3])  # gaps: merged and retired numbers
            p = Patient(str(mrn))
            p.child, p.female, p.conf = rng.random() < .17, rng.random() < .52, "R" if rng.random() < .06 else "N"
            r = rng.random()
            p.orgs = {MAIN} if r < .66 else {CLINIC} if r < .78 else {MAIN, CLINIC} if r < .94 else set()
            p.share = rng.random() < .88
            p.consent = "Consent/%s-%s" % ("share" if p.share else "optout", p.pid)
            p.home = self.ip(RESIDENTIAL if rng.random() < .7 else MOBILE)
            if rng.random() < (.4 if p.child else .33):  # portal user, or a parent as proxy
                q = Person("u-%010x" % rng.getrandbits(40), "patient", None, None, "patient",
                           "PWATRNY" if p.child else "PATRQT", src=(p.home, rng.choice(PORTAL_UA)))
                q.own = p
                p.proxy, p.portal = (q, None) if p.child else (None, q)
            self.patients.append(p)
        adults = [p for p in self.patients if not p.child and p.orgs]
        for p in rng.sample(adults, max(3, round(n * .004))):
            p.conf, p.portal = "V", None  # VIPs
        for s in rng.sample([s for s in self.staff if s.role == "practitioner"], round(len(self.staff) * .2)):
            p = rng.choice([p for p in adults if p.conf != "V" and p.staff is None])  # employees as patients
            p.staff, s.own, p.orgs = s, p, p.orgs | {MAIN}
            p.portal = Person(s.uid, "patient", None, None, "patient", "PATRQT", src=(s.home_ips[0], rng.choice(PORTAL_UA)))
            p.portal.own = p
        self.freq = self.patients[:]
        rng.shuffle(self.freq)  # how often someone comes is unrelated to their number
        self.by_pid = {p.pid: p for p in self.patients}
        self.unregistered = [p for p in self.patients if not p.orgs]
        self.mrns = [int(p.pid) for p in self.patients]

    # ------------------------------------------------------------------ decisions and events
    def decide(self, st, p, rtype):
        """What the access kernel answers: outcome, basis, consents."""
        if p is None:
            return "permit", "role", None
        if isinstance(p, str):
            return "deny", "unknown-patient", None
        if st.role == "patient":
            return ("permit", "own-record", None) if p is st.own else ("deny", "no-permit", None)
        if st.uid == "svc-hie-gateway" or p.orgs and st.org not in p.orgs:
            return ("permit", "consent", [p.consent]) if p.share else ("deny", "consent-deny", [p.consent])
        if not p.orgs:
            return "permit", "unowned", None
        if st.role in ("service", "auditor"):
            return "permit", "role", None
        if st.role == "admin":
            return ("deny" if rtype in SENSITIVE else "permit"), "role", None
        if (p.conf == "R" and rtype in SENSITIVE and st.uid not in p.team and st.prof not in R_TRUSTED
                and "psychiatry" not in (st.dept, st.dept2)):
            return "deny", "no-permit", None
        return "permit", "custodian", None

    def emit(self, t, st, p, action, rtype, count, purpose, outcome, basis, src, bg=False,
             consents=None, reason=None, label=None, account=None):
        if not 0 <= t < self.horizon:
            return
        if p is None or isinstance(p, str):
            ref, conf = (None if p is None else "Patient/" + p), None
        else:
            ref, conf = p.ref, "V" if p.conf == "V" else "R" if p.conf == "R" and rtype in SENSITIVE else "N"
        ev = {"actor": st.actor(t), "patient": ref, "action": action, "resource_type": rtype, "count": count,
              "purpose": purpose, "outcome": outcome, "break_glass": bg, "confidentiality": conf,
              "source": {"ip": src[0], "user_agent": src[1]}}
        if basis:
            ev["decision"] = {k: v for k, v in (("basis", basis), ("consents", consents), ("break_glass_reason", reason)) if v}
        if account:
            ev["account"] = account
        self.seq += 1
        self.events.append((int(t * 1000), self.seq, ev, label))

    def care(self, s, p, t):
        if s.uid not in p.team:
            p.team.add(s.uid)
            s.cared.append((t, p))

    def cnt(self, action, rt):
        r = self.rng
        if action == "search":
            return r.randint(3, 120) if rt == "Observation" else r.randint(1, 3) if rt == "Patient" else r.randint(0, 14)
        if action == "create" and rt in ("Observation", "MedicationRequest", "MedicationAdministration", "ServiceRequest"):
            return r.randint(1, 6 if rt == "Observation" else 3)
        return 1

    def src(self, st, t):
        """Where a user works from at time t: ward workstations, office PCs, wifi, VPN, home."""
        if st.src_fixed:
            return st.src_fixed
        rng, sh = self.rng, st.shift_at(t)
        site, r = sh[3] if sh else st.site, rng.random()
        ua = DESKTOP if st.prof in CLINICAL else CHROME
        upgraded = lambda key, d0, spread: ua[t >= (d0 + crc(key, spread) / 100) * DAY]
        if site == "remote":
            if st.phone_ua and r < .3:
                return self.ip(MOBILE), st.phone(t)
            return (vpn_ip(rng), upgraded(st.uid, 6, 400)) if r < .85 else (st.home(t), st.home_ua)
        if site == "clinic":
            return st.office_ip, upgraded(st.office_ip, 7, 300)
        if st.prof == "nurse" or sh and st.prof in DOCS and r < .55:
            pool = self.ws.get(sh[2] if sh else st.dept) or [st.office_ip]
            ip = pool[crc(st.uid + str(sh and sh[0]), len(pool))] if rng.random() < .7 else rng.choice(pool)
            return ip, upgraded(ip, 7, 300)  # the desktop client upgrade rolls out over days 7-10
        if st.phone_ua and r > .85 and site == "main":
            return "10.30.%d.%d" % (rng.randint(0, 15), rng.randint(2, 254)), st.phone(t)
        return st.office_ip, upgraded(st.office_ip if ua is DESKTOP else st.uid, 5, 500)

    def session(self, st, t, src=None, login=True, **kw):
        src = src or self.src(st, t)
        if login and st.role != "service":
            self.starts.append((t, st, src, kw.get("label")))
        return Session(self, st, t, src, **kw)

    def on(self, where, t, profs, site=None):
        c = [s for s, sh in self.onduty.get((where, int(t // HOUR)), ())
             if s.prof in profs and sh[0] <= t < sh[1] and (site is None or sh[3] == site)]
        return self.rng.choice(c) if c else None

    def svc_ev(self, key, t, action, rtype, p, count=1):
        s = self.svc[key]
        outcome, basis, consents = self.decide(s, p, rtype)
        ok = outcome == "permit"
        self.emit(t, s, p, action, rtype, count, s.purpose, "permit", basis if ok else "role", s.src_fixed,
                  consents=consents if ok else None)

    # ------------------------------------------------------------------ rosters
    def roster(self):
        rng, D, pools = self.rng, self.days, defaultdict(list)
        for s in self.staff:
            if s.prof == "nurse" and (s.dept in WARDS or s.dept == "emergency") or \
                    s.dept == "emergency" and s.prof == "physician" or s.prof in ("labtech", "radiographer") or \
                    s.dept == "ed-registration":
                pools[(s.dept, s.prof)].append(s)
        floats = [s for s in self.staff if s.dept == "float-pool"]
        nurses = [s for s in self.staff if s.prof == "nurse" and s.site == "main" and s.dept != "float-pool"]
        for day in range(-1, D + 1):  # 24/7 units: fill each slot from the pool, floats, then cover
            for (where, prof), pool in sorted(pools.items()):
                tmpl = TED if prof == "physician" else T12 if prof == "nurse" and where in ("icu", "emergency") else T8
                cands = [(s, 0) for s in pool]
                supply = sum(s.fte for s in pool) * (5 if tmpl is T8 else 3.5) / 7
                if prof == "nurse":
                    cands += [(s, .6) for s in floats] + [(s, 7) for s in nurses if s.dept != where]
                    supply += sum(s.fte for s in floats) * 5 / 7 / 9
                supply *= .85 if day % 7 >= 5 else 1
                total, extra = int(supply) + (rng.random() < supply % 1), [0] * len(tmpl)
                for _ in range(max(0, total - len(tmpl))):  # one per slot first, the rest where the work is
                    extra[rng.choices(range(len(tmpl)), [x[3] for x in tmpl])[0]] += 1
                for (h0, h1, name, _), more in zip(tmpl, extra):
                    start, ok = day * DAY + h0 * HOUR, []
                    for s, pen in cands:
                        recent = sum(1 for x in s.starts if x > start - 7 * DAY)
                        if s.works(day) and s.last_end <= start - 10 * HOUR and recent < math.ceil((5 if tmpl is T8 else 4) * s.fte):
                            ok.append((recent / s.fte + rng.random() * 1.2 + pen + (1.5 if s.pref not in (None, name) else 0), s))
                    for _, s in sorted(ok, key=lambda z: z[0])[:1 + more]:
                        self.add_shift(s, start, day * DAY + h1 * HOUR, where, "main")
        for s in self.staff:
            self.pattern(s)
        for s in self.staff:
            s.shifts.sort()
            s.starts = [sh[0] for sh in s.shifts]
            for sh in s.shifts:
                for h in range(int(sh[0] // HOUR), int(math.ceil(sh[1] / HOUR))):
                    self.onduty[(sh[2], h)].append((s, sh))

    def add_shift(self, s, start, end, where, site):
        s.shifts.append((start, end, where, site))
        s.starts.append(start)
        s.last_end = max(s.last_end, end)

    def pattern(self, s):
        """Weekday staff, on-call rotas, residents, pharmacy, clinic, back office."""
        prof, dept, idx = s.prof, s.dept, self.staff.index(s)
        peers = [x for x in self.staff if x.prof == prof and x.dept == dept]
        for day in range(-1, self.days + 1):
            wd, dow = day % 7 < 5, day % 7
            w = lambda h0, h1, where=dept, site="main": self.add_shift(s, day * DAY + h0 * HOUR, day * DAY + h1 * HOUR, where, site)
            if not s.works(day) or (wd and dow not in s.workdays and s.fte < 1):
                continue
            if prof in ("physician", "radiologist") and dept != "emergency" and s.site == "main":
                oncall = peers[(day + crc(dept, 7)) % len(peers)] is s
                if wd:
                    w(8, 17.5)
                elif oncall:
                    w(8, 12.5)  # weekend round, then on call from home
                if oncall:
                    w(17.5 if wd else 12.5, 32, site="remote")
            elif prof == "resident":
                where = s.dept2 if day * DAY >= s.rotate_at else s.dept
                if wd:
                    w(7, 19, where)
                if dow == idx % 7:
                    w(19, 31, where)
                elif not wd and (day // 7 + idx) % 2:
                    w(8, 20, where)
            elif prof == "pharmacist":
                if peers[day % len(peers)] is s:
                    w(15, 23)
                elif wd or peers[(day + 1) % len(peers)] is s:
                    w(8, 16.5)
            elif dept == "admissions" or s.site == "clinic":
                site = "clinic" if s.site == "clinic" else "main"
                if wd:
                    w(*((7.5, 18.5) if site == "clinic" else (7, 15) if (day + idx) % 2 else (10, 18)), site=site)
                elif dow == 5 and (day // 7 + idx) % 3 == 0:
                    w(9, 12.5, site=site)  # Saturday morning
            elif prof in ("clerk", "coder", "him", "itadmin", "auditor") and dept != "ed-registration" and wd:
                w(8, 16.5, site="remote" if prof == "coder" and dow == idx % 5 else "main")
                if prof == "itadmin" and dow == 2 and idx % 2:
                    w(21, 23.5, site="remote")  # maintenance window
            elif prof == "researcher" and wd and self.rng.random() < .8:
                w(9, 17)
                if self.rng.random() < .15:
                    w(20, 22, site="remote")

    # ------------------------------------------------------------------ episodes
    def pick(self, t, ok, tries=80):
        rng, n = self.rng, len(self.freq)
        for p in [self.freq[int(n * rng.random() ** 1.7)] for _ in range(tries)] + rng.sample(self.freq, min(n, 600)):
            if p.busy <= t and p.orgs and ok(p):
                return p
        return None

    def plan(self):
        """Admissions (with a bed census), ED visits and one major-incident surge, in time order."""
        rng, D, plans = self.rng, self.days, []
        los = lambda w: min(30.0, max(.3, rng.lognormvariate(math.log(LOS[w]), .6))) * DAY
        for ward, beds in self.beds.items():
            plans += [(None, "census", ward)] * round(beds * rng.uniform(.75, .9))
            t = 0.0
            while t < D * DAY:
                t += rng.expovariate(beds / LOS[ward] * .8) * DAY
                plans.append((t, "admit", ward))
        t = -DAY
        while t < D * DAY:  # ED-only visits, busier 10:00-22:00
            t += rng.expovariate(38 * self.scale * 1.6) * DAY
            if rng.random() < (1.0 if 10 <= (t % DAY) / HOUR < 22 else .35):
                plans.append((t, "ed", None))
        t = rng.randint(3, max(3, D - 1)) * DAY + rng.uniform(8, 21) * HOUR
        plans += [(t + rng.uniform(0, 45) * MIN, "surge", None) for _ in range(round(rng.randint(6, 14) * max(.5, self.scale)))]
        eps = []
        for t, kind, ward in plans:
            length, from_ed = (los(ward) if ward else 0), kind in ("ed", "surge")
            if kind == "census":
                t = -rng.uniform(0, length)  # in a bed at the start: length-biased stays
            elif kind == "admit":
                from_ed = rng.random() < FROM_ED[ward]
                if not from_ed and ward != "maternity":
                    day = math.floor(t / DAY)  # elective: weekday morning
                    day += (7 - day % 7) % 7 if day % 7 >= 5 else 0
                    t = day * DAY + rng.uniform(7, 11.5) * HOUR
            eps.append((t - rng.uniform(2, 6) * HOUR if kind == "admit" and from_ed else t, t, kind, ward, from_ed, length))
        out, occ = [], defaultdict(list)

        def full(w, t):
            occ[w] = [e for e in occ[w] if e > t]
            return len(occ[w]) >= self.beds[w] * 1.05

        for start, t, kind, ward, from_ed, length in sorted(eps, key=lambda e: e[0]):
            if kind == "admit" and full(ward, t):
                if not from_ed:
                    continue  # elective admission cancelled: no bed
                if ward not in ("paediatrics", "maternity", "icu", "psychiatry"):
                    alt = [x for x in ("general-medicine", "surgery", "cardiology") if not full(x, t)]
                    ward, length = (alt[0], los(alt[0])) if alt else (ward, length)  # an outlier elsewhere
            vip = ward in ("cardiology", "surgery", "oncology", "general-medicine") and rng.random() < .03
            ok = {"paediatrics": lambda p: p.child, "maternity": lambda p: p.female and not p.child,
                  None: lambda p: not p.child or rng.random() < .5}.get(ward, lambda p: not p.child)
            new = (kind == "surge" and rng.random() < .5 or kind == "ed" and rng.random() < .1) and bool(self.unregistered)
            p = self.unregistered.pop(rng.randrange(len(self.unregistered))) if new else \
                self.pick(start, (lambda p: p.conf == "V") if vip else ok)
            if p is None:
                continue
            segs = []
            if ward:
                p.conf = "R" if ward == "psychiatry" and p.conf == "N" else p.conf
                if ward == "icu" and rng.random() < .85:  # step down to a ward
                    nxt = rng.choice(["cardiology", "surgery", "general-medicine"])
                    segs = [("icu", t, t + length), (nxt, t + length, t + length + los(nxt))]
                elif ward in ("general-medicine", "surgery", "cardiology") and rng.random() < .05:
                    m, icu = t + length / 2, los("icu")  # deteriorates, ICU, back
                    segs = [(ward, t, m), ("icu", m, m + icu), (ward, m + icu, t + length + icu)]
                else:
                    segs = [(ward, t, t + length)]
                w_, a_, end = segs[-1]
                end = math.floor(end / DAY) * DAY + rng.uniform(10, 17) * HOUR  # discharged in daytime
                segs[-1] = (w_, a_, end if end > a_ + 4 * HOUR else end + DAY)
            ed = (start, t if kind == "admit" else t + rng.uniform(2, 8) * HOUR) if from_ed else None
            p.busy = segs[-1][2] if segs else ed[1]
            p.depts.update(x[0] for x in segs)
            for w_, a_, b_ in segs:
                occ[w_].append(b_)
            p.stays += [(a_, b_, w_) for w_, a_, b_ in segs] + ([(ed[0], ed[1], "emergency")] if ed else [])
            out.append((start, p, ed, segs, new, kind == "surge"))
        return out

    # ------------------------------------------------------------------ clinical work
    def chart(self, ses, p, depth, opened=False):
        """Opening a chart: the patient, encounters, then a few sections, reading some documents."""
        rng = self.rng
        if not opened and not ses.ev("read", "Patient", p):
            return False
        ses.do(p, ".6 search Encounter")
        for rt in rng.sample(CHART, min(depth, len(CHART))):
            if ses.do(p, "search " + rt) and rt in ("DocumentReference", "DiagnosticReport", "ImagingStudy") and rng.random() < .6:
                for _ in range(rng.randint(1, 3)):
                    ses.ev("read", rt, p, pause=(20, 150))
        return True

    def visit(self, st, p, t, depth, **kw):
        self.care(st, p, t)
        ses = self.session(st, t, **kw)
        self.chart(ses, p, depth)
        return ses

    def breakglass(self, ses, p, reason, deny=None):
        """A refused look (unless the emergency is declared at once), then the glass is broken."""
        if deny or deny is None:
            ses.ev("read", "DocumentReference", p, outcome="deny" if deny else None, basis=deny,
                   consents=[p.consent] if deny == "consent-deny" else None)
        ses.ev("break-glass", "Patient", p, purpose="ETREAT", outcome="permit", basis="break-glass", bg=True, reason=reason)
        ses.bg = reason
        self.bg_log.append((ses.t, p))

    def lab(self, p, t):
        rng = self.rng
        self.svc_ev("lab", t, "create", "Observation", p, rng.randint(4, 24))
        self.svc_ev("lab", t + rng.uniform(.2, 2), "create", "DiagnosticReport", p)
        lt = self.on("laboratory", t, ("labtech",)) if rng.random() < .3 else None
        if lt:  # verification; a critical value is phoned to the ward
            self.session(lt, t + rng.uniform(1, 20) * MIN).do(
                p, "read ServiceRequest", "update DiagnosticReport", ".08 read Patient", ".05 create Communication")

    def imaging(self, p, t):
        rng = self.rng
        rg = self.on("radiology", t, ("radiographer",))
        if rg:
            self.session(rg, t).do(p, "read ServiceRequest", "read Patient", "update ServiceRequest")
        self.svc_ev("pacs", t + rng.uniform(5, 25) * MIN, "create", "ImagingStudy", p, rng.randint(1, 3))
        t2 = t + rng.uniform(20, 180) * MIN
        rad = self.on("radiology", t2, ("radiologist",)) or self.on("radiology", t2 + 10 * HOUR, ("radiologist",))
        if rad:
            t2 = t2 if rad.shift_at(t2, 0) else t2 + 10 * HOUR
            self.care(rad, p, t2)
            self.session(rad, t2, pace=(30, 300)).do(
                p, "read ServiceRequest", "search ImagingStudy", "read ImagingStudy", "search DiagnosticReport", "create DiagnosticReport")

    def orders(self, ses, p, meds=.5, labs=.3, img=.1):
        rng = self.rng
        if rng.random() < meds:
            ses.do(p, ("create" if rng.random() < .6 else "update") + " MedicationRequest")
            self.pharm.append((ses.t, p))
        if rng.random() < labs:
            ses.do(p, "create ServiceRequest")
            self.lab(p, ses.t + rng.uniform(1, 3) * HOUR)
        if rng.random() < img:
            ses.do(p, "create ServiceRequest")
            self.imaging(p, ses.t + rng.uniform(.5, 4) * HOUR)

    def ed_visit(self, p, a, b, new, admitted, surge):
        rng = self.rng
        need_bg = ("no-permit" if p.conf == "R" and rng.random() < .4 else
                   "consent-deny" if p.orgs == {CLINIC} and not p.share else
                   False if surge and rng.random() < .7 or rng.random() < .015 else "")
        clerk = self.on("ed-registration", a, ("clerk",)) or self.on("emergency", a, ("nurse",))
        p.orgs = p.orgs | {MAIN}  # registration makes the hospital custodian of its own record
        if clerk:
            ses = self.session(clerk, a + rng.uniform(1, 8) * MIN)
            ses.ev("search", "Patient", None, count=rng.randint(0, 6))
            if new:
                ses.ev("create", "Patient", p, outcome="permit", basis="unowned")
            else:
                ses.do(p, "read Patient", ".4 update Patient", ".2 create Coverage")
        self.svc_ev("adt", a + rng.uniform(3, 12) * MIN, "create", "Encounter", p)
        t, nurse = a + rng.uniform(5, 25) * MIN, self.on("emergency", a, ("nurse",))
        while nurse and t < b:  # triage, then observations every hour or two
            self.care(nurse, p, t)
            self.session(nurse, t).do(p, "create Observation", ".4 create MedicationAdministration")
            t += rng.uniform(60, 150) * MIN
            nurse = self.on("emergency", t, ("nurse",)) or nurse
        t = a + rng.uniform(15, 90) * MIN
        doc = self.on("emergency", t, DOCS)
        if not doc:
            return
        ses = self.session(doc, t)
        if need_bg != "":
            self.breakglass(ses, p, "Major incident: unidentified trauma patient" if surge else rng.choice(BG_LEGIT), need_bg)
        self.care(doc, p, t)
        self.chart(ses, p, rng.randint(3, 6))
        self.orders(ses, p, meds=.6, labs=.85, img=.4)
        t2 = min(b - 10 * MIN, t + rng.uniform(1.5, 4) * HOUR)
        doc = self.on("emergency", t2, DOCS) or doc
        self.care(doc, p, t2)
        self.session(doc, t2).do(p, "search Observation", "read DiagnosticReport", "create DocumentReference")
        c = self.on(rng.choice(["cardiology", "surgery", "psychiatry", "general-medicine"]), t2, DOCS) if rng.random() < .1 else None
        if c:  # consult in the ED
            self.visit(c, p, t2 + rng.uniform(10, 60) * MIN, rng.randint(3, 6)).do(p, "create DocumentReference")
        if not admitted:
            self.svc_ev("adt", b, "update", "Encounter", p)
            if rng.random() < .5:
                self.coding.append((b, p))
            self.portal_tasks.append((b, p))

    def inpatient(self, p, segs, from_ed):
        rng = self.rng
        for i, (ward, a, b) in enumerate(segs):
            self.svc_ev("adt", a + rng.uniform(30, 300), "update" if i or from_ed else "create", "Encounter", p)
            attending = rng.choice([s for s in self.staff if s.dept == ward and s.prof == "physician"] or
                                   [s for s in self.staff if s.prof == "physician" and s.site == "main"])
            self.care(attending, p, a)
            t = a + rng.uniform(20, 120) * MIN
            doc = self.on(ward, t, DOCS)
            if doc:  # admission work-up
                ses = self.visit(doc, p, t, rng.randint(5, 8))
                ses.do(p, "create DocumentReference")
                self.orders(ses, p, meds=.9, labs=.8, img=.2)
            consult = rng.random() < .25
            for d in range(max(0, math.floor(a / DAY)), min(self.days, math.floor(b / DAY) + 1)):
                base = d * DAY
                for h0, h1, name, _ in (T12 if ward == "icu" else T8):
                    lo, hi = max(a, base + h0 * HOUR), min(b, base + h1 * HOUR)
                    if hi - lo > 20 * MIN:
                        self.nursing(p, ward, lo, hi, name == "night")
                tr = base + rng.uniform(8.3, 12) * HOUR
                sh = attending.shift_at(tr, 0)
                doc = attending if sh and sh[3] == "main" else self.on(ward, tr, DOCS, site="main")
                if a < tr < b and doc:  # ward round
                    ses = self.visit(doc, p, tr, rng.randint(3, 6))
                    ses.do(p, ".85 create DocumentReference")
                    self.orders(ses, p, meds=.55, labs=.3, img=.1)
                tr = base + rng.uniform(13, 17) * HOUR
                res = self.on(ward, tr, ("resident",)) if a < tr < b and rng.random() < .5 else None
                if res:
                    self.visit(res, p, tr, rng.randint(2, 4)).do(p, "create DocumentReference")
                if a < base + 6 * HOUR < b and rng.random() < .75:
                    self.lab(p, base + rng.uniform(5, 7.5) * HOUR)  # morning bloods
                for hh in (8, 12, 18, 22):
                    if a < base + hh * HOUR < b and rng.random() < .55:
                        self.svc_ev("rx", base + hh * HOUR + rng.uniform(-20, 40) * MIN, "create", "MedicationDispense", p, rng.randint(1, 4))
                tn = base + rng.uniform(21, 29) * HOUR
                oc = (self.on(ward, tn, ("physician",), site="remote") or self.on(ward, tn, ("resident",))) \
                    if a < tn < b and rng.random() < .12 else None
                if oc:  # the on-call doctor is called about the patient
                    ses = self.session(oc, tn)
                    if p.conf == "R" and oc.uid not in p.team:
                        self.breakglass(ses, p, "Acute deterioration on call, medication history needed")
                    self.care(oc, p, tn)
                    self.chart(ses, p, 2)
                    self.orders(ses, p, meds=.5, labs=.2, img=0)
                if consult and rng.random() < .4:
                    consult, tc = False, base + rng.uniform(10, 16) * HOUR
                    cd = rng.choice([x for x in ("cardiology", "surgery", "psychiatry", "oncology", "general-medicine") if x != ward])
                    c = self.on(cd, tc, ("physician",), site="main") if a < tc < b else None
                    if c:
                        self.visit(c, p, tc, rng.randint(4, 7)).do(p, "create DocumentReference")
                if rng.random() < .12 and a < base + 9 * HOUR < b:
                    self.imaging(p, base + rng.uniform(9, 16) * HOUR)
        ward, a, b = segs[-1]
        t = b - rng.uniform(1, 4) * HOUR
        doc = self.on(ward, t, DOCS, site="main")
        if doc:  # discharge summary and medicines
            ses = self.visit(doc, p, t, 2)
            ses.do(p, "create DocumentReference", "update MedicationRequest")
            self.pharm.append((ses.t, p))
        nurse = self.on(ward, b - 20 * MIN, ("nurse",))
        if nurse:
            self.session(nurse, b - rng.uniform(10, 40) * MIN).do(p, "create DocumentReference")
        self.svc_ev("adt", b, "update", "Encounter", p)
        self.coding.append((b, p))
        self.portal_tasks.append((b, p))

    def nursing(self, p, ward, lo, hi, night):
        rng = self.rng
        nurse = self.on(ward, (lo + hi) / 2, ("nurse",))
        if not nurse:
            return
        self.care(nurse, p, lo)
        per = (1.3 if ward == "icu" else 2.2) * (1.6 if night else 1)
        for tr in sorted(rng.uniform(lo, hi) for _ in range(max(1, round((hi - lo) / HOUR / per)))):
            self.session(nurse, tr).do(p, ".5 read Patient", "search Observation", "create Observation", ".012 delete Observation",
                                       ".5 read MedicationRequest", ".45 create MedicationAdministration", ".1 read DocumentReference")
        if rng.random() < .7:  # nursing note, sometimes written after the shift
            t = hi + rng.uniform(5, 50) * MIN if rng.random() < .06 else hi - rng.uniform(10, 40) * MIN
            self.session(nurse, t).do(p, "create DocumentReference", ".05 update DocumentReference")

    def outpatient(self):
        """Clinic and hospital outpatient sessions, chart preparation, the weekly tumour board."""
        rng, clinic_days = self.rng, {"oncology": (1, 3), "cardiology": (0, 4), "surgery": (2,), "general-medicine": (3,)}
        for s in [s for s in self.staff if s.prof == "physician"]:
            prep = rng.random() < .3
            for sh in s.shifts:
                day = int(sh[0] // DAY)
                if sh[3] == "clinic":
                    times = [sh[0] + 30 * MIN + k * rng.uniform(18, 30) * MIN for k in range(16)]
                    ok = lambda p: CLINIC in p.orgs or (rng.random() < .15 and MAIN in p.orgs)  # some referrals
                elif sh[3] == "main" and day % 7 in clinic_days.get(s.dept, ()) and sh[1] - sh[0] > 8 * HOUR:
                    times = [day * DAY + 13.5 * HOUR + k * rng.uniform(25, 40) * MIN for k in range(rng.randint(4, 8))]
                    ok = lambda p, d=s.dept: MAIN in p.orgs and (d in p.depts or rng.random() < .4)
                else:
                    continue
                visits = [(t, self.pick(t, ok)) for t in times if t < sh[1] - 20 * MIN and rng.random() > .1]
                visits = [(t, p) for t, p in visits if p]
                if prep and visits:  # the evening before from home, or first thing
                    tp = (day - 1) * DAY + rng.uniform(20, 22.5) * HOUR if rng.random() < .6 else day * DAY + 7.3 * HOUR
                    ses = self.session(s, tp, src=(vpn_ip(rng), DESKTOP[tp > 8 * DAY]) if tp % DAY > 19 * HOUR else None)
                    for _, p in visits:
                        self.chart(ses, p, rng.randint(1, 3))
                for t, p in visits:
                    rc = self.on("clinic-reception", t, ("clerk",)) if sh[3] == "clinic" else None
                    if rc:
                        r = self.session(rc, t - rng.uniform(3, 12) * MIN)
                        r.ev("search", "Appointment", None, count=rng.randint(5, 30))
                        r.do(p, "read Patient", ".2 update Coverage")
                    nu = self.on(s.dept, t, ("nurse",)) if sh[3] == "clinic" else None
                    if nu:
                        self.care(nu, p, t)
                        self.session(nu, t - rng.uniform(1, 6) * MIN).do(p, "create Observation")
                    self.care(s, p, t)
                    ses = self.session(s, t + rng.uniform(1, 5) * MIN)
                    if self.chart(ses, p, rng.randint(3, 6)):
                        ses.do(p, "create DocumentReference")
                        self.orders(ses, p, meds=.45, labs=.25, img=.05)
                    if rng.random() < .3:
                        self.coding.append((t, p))
                    self.portal_tasks.append((t, p))
        for day in range(2, self.days, 7):  # tumour board, Wednesdays at noon, in the meeting room
            t = day * DAY + 12 * HOUR
            onc = self.on("oncology", t, ("physician",), site="main")
            cases = [p for p in self.patients if "oncology" in p.depts][:40]
            if onc and cases:
                ses = self.session(onc, t, src=("10.20.60.200", DESKTOP[t > 8 * DAY]))
                for p in rng.sample(cases, min(len(cases), rng.randint(6, 10))):
                    self.care(onc, p, t)
                    self.chart(ses, p, rng.randint(3, 5))
                    ses.do(p, "search ImagingStudy")

    def handover(self):
        """At each shift change the incoming charge nurse glances over every patient on the ward."""
        rng, beds = self.rng, defaultdict(list)
        for _, p, _, segs, _, _ in self.eps:
            for w, a, b in segs:
                beds[w].append((a, b, p))
        for ward, stays in sorted(beds.items()):
            for day in range(self.days):
                for h0, _, _, _ in (T12 if ward == "icu" else T8):
                    t = day * DAY + h0 * HOUR + rng.uniform(0, 20) * MIN
                    nurse = self.on(ward, t + 5 * MIN, ("nurse",))
                    if nurse and rng.random() < .8:
                        ses = self.session(nurse, t, pace=(5, 40))
                        for a, b, p in stays:
                            if a <= t < b:
                                ses.do(p, "read Patient", ".3 search Observation")

    # ------------------------------------------------------------------ back office and systems
    def support(self):
        rng, D = self.rng, self.days
        for t, p in sorted(self.pharm, key=lambda x: x[0]):  # pharmacists verify orders
            tt = t + rng.uniform(5, 60) * MIN
            ph = self.on("pharmacy", tt, ("pharmacist",))
            if not ph:
                tt = math.floor(tt / DAY + (tt % DAY > 8 * HOUR)) * DAY + rng.uniform(8.2, 10.5) * HOUR
                ph = self.on("pharmacy", tt, ("pharmacist",))
            if ph:
                self.care(ph, p, tt)
                self.session(ph, tt, pace=(3, 25)).do(p, "search MedicationRequest", "read MedicationRequest",
                                                      ".2 search AllergyIntolerance", ".2 search Observation", "update MedicationRequest")
        work, coders = defaultdict(list), [s for s in self.staff if s.prof == "coder"]
        for t, p in self.coding:  # coders take discharged charts a few working days later
            day = math.floor(t / DAY) + rng.randint(1, 4)
            work[day + ((7 - day % 7) % 7 if day % 7 >= 5 else 0)].append(p)
        for day, ps in sorted(work.items()):
            on = [c for c in coders if c.shift_at(day * DAY + 12 * HOUR, 0)] or coders
            for k, c in enumerate(on):
                ses = self.session(c, day * DAY + rng.uniform(8.2, 9.5) * HOUR, pace=(5, 40))
                for p in ps[k::len(on)]:
                    ses.purpose = "HOPERAT" if rng.random() < .2 else "HPAYMT"
                    ses.do(p, "read Encounter", "search Condition", "search Procedure", "search DocumentReference",
                           "read DocumentReference", ".5 read DocumentReference", ".5 create Claim")
                    ses.wait(2 * MIN, 8 * MIN)
                    self.bill_day[day].append(p)
        for s in self.staff:
            for sh in s.shifts:
                if -DAY < sh[0] < self.horizon:
                    self.desk_work(s, sh)
        seen, reg, hie = [p for p in self.patients if p.stays], [p for p in self.patients if MAIN in p.orgs], self.svc["hie"]
        for day in range(D):
            base = day * DAY
            jobs = [("dw", 1.5, "search", "Encounter", 100, 400), ("ph", 6, "search", "Observation", 20, 200),
                    ("ph", 6.1, "export", "Observation", 0, 15), ("dw", 1.8, "export", "Observation", 3000, 9000)]
            jobs += [("dw", 1.8, "export", rt, 100, 2000) for rt in ("Patient", "Encounter", "Condition", "MedicationRequest", "DocumentReference", "Claim")]
            for key, h, action, rt, lo, hi in jobs:  # nightly warehouse extract, morning public-health feed
                self.svc_ev(key, base + (h + rng.uniform(0, 1)) * HOUR, action, rt, None, rng.randint(lo, hi))
            for p in rng.sample(seen, min(len(seen), rng.randint(0, 3))):
                self.svc_ev("ph", base + 6.2 * HOUR + rng.uniform(0, 900), "read", "Patient", p)
            t = base + 3 * HOUR
            self.svc_ev("bill", t, "search", "Encounter", None, len(self.bill_day.get(day, ())))
            for p in self.bill_day.get(day - 1, ()):
                t += rng.uniform(1, 5)
                self.svc_ev("bill", t, "create", "Claim", p)
            for _ in range(round(rng.randint(6, 14) * self.scale)):  # other providers asking through the HIE
                p = rng.choice(seen if rng.random() < .6 else reg)
                ses = Session(self, hie, base + rng.uniform(7, 20) * HOUR, hie.src_fixed, pace=(.2, 3))
                ses.do(p, "search Patient", "search DocumentReference", ".5 read DocumentReference", ".3 read DocumentReference")
        for t, p in self.portal_tasks:
            for q in (p.portal, p.proxy):
                if q and rng.random() < .6:
                    self.portal(q, t + rng.uniform(.3, 3) * DAY)
        for p in self.patients:
            for q in (p.portal, p.proxy):
                if q and rng.random() < .12:
                    self.portal(q, rng.uniform(0, D) * DAY)
        for s in self.staff:  # accounts: created for new hires, suspended for leavers
            if s.start_day > 0 and s.role == "practitioner":
                t = (s.start_day - 1) * DAY + rng.uniform(9, 16) * HOUR
                self.session(rng.choice(self.admins), t).ev("create", None, None, 0, outcome="permit", basis="role", account="User/" + s.uid)
            if s.end_day < D and not s.unrevoked:
                t = s.end_day * DAY + rng.uniform(9, 16) * HOUR
                self.session(rng.choice(self.admins), t).ev("update", None, None, 0, outcome="permit", basis="role", account="User/" + s.uid)

    def desk_work(self, s, sh):
        rng, (a, b, where, site) = self.rng, sh
        if s.prof in ("nurse", "physician", "resident") and site == "main":  # ward and patient lists
            for k in range(rng.randint(1, 3)):
                t = a + rng.uniform(.05, .9) * (b - a) if k else a + rng.uniform(3, 20) * MIN
                self.session(s, t).ev("search", "Encounter", None, count=rng.randint(4, 30))
            return
        past = [p for p in self.patients if p.stays and p.stays[0][0] < a] if s.prof in ("clerk", "him", "researcher", "auditor") else []
        if s.prof == "labtech":
            t = a + rng.uniform(5, 30) * MIN
            while t < b:  # worklists
                ses = self.session(s, t)
                ses.ev("search", "ServiceRequest", None, count=rng.randint(3, 40))
                if rng.random() < .4:
                    ses.ev("search", "Specimen", None, count=rng.randint(1, 25))
                t += rng.uniform(20, 70) * MIN
        elif s.dept == "billing":  # calls about bills, many for old stays
            ses = self.session(s, a + rng.uniform(10, 40) * MIN, pace=(8, 60))
            for _ in range(rng.randint(6, 16)):
                p = rng.choice(past) if past and rng.random() < .6 else self.pick(a, lambda q: MAIN in q.orgs)
                ses.ev("search", "Patient", None, count=rng.randint(1, 5))
                ses.do(p, "read Patient", "search Coverage", ".5 search Claim", ".2 update Coverage")
                ses.wait(2 * MIN, 25 * MIN)
        elif s.prof == "him" and past:
            ses = self.session(s, a + rng.uniform(10, 60) * MIN, pace=(10, 90))
            for _ in range(rng.randint(1, 3)):  # release of information
                p = rng.choice(past)
                ses.ev("search", "Patient", None, count=rng.randint(1, 3))
                ses.do(p, "read Patient", "search DocumentReference")
                ses.ev("export", "DocumentReference", p, count=rng.randint(5, 200), purpose=rng.choice(["PATRQT", "PATRQT", "HLEGAL", "COVAUTH"]))
                ses.wait(10 * MIN, 50 * MIN)
            for p in rng.sample(past, min(len(past), rng.randint(4, 12))):  # chart completion
                ses.ev("read", "DocumentReference", p, pause=(30, 200))
            if rng.random() < .1:  # duplicate merge
                ses.ev("search", "Patient", None, count=2)
                ses.do(rng.choice(past), "read Patient", "update Patient")
                ses.ev("delete", "Patient", None)
        elif s.prof == "researcher":
            for _ in range(rng.randint(1, 3)):
                ses = self.session(s, rng.uniform(a, b - HOUR), pace=(30, 300))
                for _ in range(rng.randint(2, 6)):
                    ses.ev("search", rng.choice(["Observation", "Condition", "Encounter", "MedicationRequest"]), None, count=rng.randint(200, 5000))
                if rng.random() < .15:
                    ses.ev("export", "Observation", None, count=rng.randint(1000, 8000))
                for p in rng.sample(past, min(len(past), rng.randint(2, 6))) if rng.random() < .3 else ():
                    c = {"outcome": "permit", "basis": "consent", "consents": ["Consent/research-" + p.pid]}
                    ses.do(p, "read Patient", "search Observation", **c)  # consented study participants
        elif s.prof == "auditor":  # VIP records, recent break-glass, random samples
            ses = self.session(s, a + rng.uniform(20, 120) * MIN, pace=(20, 200))
            vips = [p for p in self.patients if p.conf == "V"]
            review = rng.sample(vips, min(len(vips), rng.randint(1, 3))) + [p for t, p in self.bg_log if a - 3 * DAY < t < a]
            for p in review + rng.sample(past, min(len(past), rng.randint(0, 3))):
                ses.ev("search", "AuditEvent", p, count=rng.randint(3, 120))
                ses.do(p, ".3 read Patient")
        elif s.dept == "admissions":  # bed management and elective admissions
            t = a + rng.uniform(10, 40) * MIN
            while t < b:
                ses = self.session(s, t)
                ses.ev("search", "Encounter", None, count=rng.randint(10, 80))
                p = self.pick(t, lambda q: MAIN in q.orgs)
                if p and rng.random() < .6:
                    ses.ev("search", "Patient", None, count=rng.randint(0, 5))
                    ses.do(p, "read Patient", rng.choice(["update Patient", "update Coverage"]))
                t += rng.uniform(30, 110) * MIN

    def portal(self, q, t):
        rng, p = self.rng, q.own
        t = math.floor(t / DAY) * DAY + (rng.uniform(17, 23) if rng.random() < .6 else rng.uniform(7, 23)) * HOUR
        ses = Session(self, q, t, (p.home if rng.random() < .8 else self.ip(MOBILE), q.src_fixed[1]), pace=(5, 60))
        for _ in range(rng.randint(1, 2) if rng.random() < .08 else 0):
            ses.ev("login", None, None, 0, outcome="deny", basis="bad-credentials", pause=(10, 60))
        ses.ev("login", None, None, 0, outcome="permit")
        kw = {"outcome": "permit", "basis": "consent", "consents": ["Consent/proxy-" + p.pid]} if q is p.proxy else {}
        ses.do(p, "read Patient", ".8 search Observation", ".5 search DiagnosticReport", ".3 read DiagnosticReport",
               ".4 search DocumentReference", ".25 read DocumentReference", ".2 search MedicationRequest",
               ".15 search Appointment", ".05 create Communication", ".03 update Patient", **kw)

    def logins(self):
        """A login opens each session after four idle hours or at another address; some typos, rare lock-outs."""
        rng, by = self.rng, defaultdict(list)
        for t, st, src, label in self.starts:
            by[st.uid].append((t, st, src, label))
        for uid in sorted(by):
            last_t, last_ip = -1e18, None
            for t, st, src, label in sorted(by[uid], key=lambda x: x[0]):
                if t - last_t > 4 * HOUR or src[0] != last_ip:
                    tl = t - rng.uniform(3, 40)
                    ses = Session(self, st, tl, src, label, pace=(0, 0))
                    if rng.random() < .035:
                        for k in range(rng.randint(1, 2)):
                            ses.t = tl - (k + 1) * rng.uniform(6, 25)
                            ses.ev("login", None, None, 0, outcome="deny", basis="bad-credentials")
                    elif label is None and rng.random() < .0015:
                        for k in range(5):
                            ses.t = tl - HOUR + k * rng.uniform(10, 40)
                            ses.ev("login", None, None, 0, outcome="deny", basis="bad-credentials" if k < 4 else "locked-out")
                        when = tl - rng.uniform(5, 40) * MIN  # the help desk unlocks the account
                        adm = self.on("it", when, ("itadmin",)) or rng.choice(self.admins)
                        Session(self, adm, when, self.src(adm, when)).ev(
                            "update", None, None, 0, outcome="permit", basis="role", account="User/" + uid)
                    ses.t = tl
                    ses.ev("login", None, None, 0, outcome="permit")
                last_t, last_ip = t, src[0]

    # ------------------------------------------------------------------ incidents
    def shift_on(self, profs, day, sites=("main", "clinic"), daytime=False):
        """Someone not yet used in an incident, with a shift starting that day (and ending in the log)."""
        c = [(s, sh) for s in self.staff if s.prof in profs and s.uid not in self.used for sh in s.shifts
             if int(sh[0] // DAY) == day and sh[3] in sites and sh[1] < self.horizon
             and (not daytime or 6 * HOUR <= sh[0] % DAY <= 12 * HOUR)]
        if not c:
            return None, None
        s, sh = self.rng.choice(c)
        self.used.add(s.uid)
        return s, sh

    def during(self, sh, lo=.1, hi=.9):
        return sh[0] + self.rng.uniform(lo, hi) * (sh[1] - sh[0])

    def inc_snooping(self, day, lab):
        """A VIP, a colleague, a neighbour, an ex-partner or a relative, from the usual workstation."""
        rng = self.rng
        sub = rng.choice(["vip", "vip", "colleague", "neighbour", "ex-partner", "family"])
        s, sh = self.shift_on(("physician", "resident", "nurse", "clerk", "pharmacist", "labtech", "radiographer", "coder"), day)
        if not s:
            return
        if sub == "vip":
            vips = [p for p in self.patients if p.conf == "V"]
            target = rng.choice([p for p in vips if any(a - DAY < sh[0] < b + DAY for a, b, _ in p.stays)] or vips)
        elif sub == "colleague":
            cands = [p for p in self.patients if p.staff and p.staff is not s]
            target = rng.choice([p for p in cands if p.stays and rng.random() < .6] or cands)
        else:
            target = self.pick(0, lambda p: s.uid not in p.team and not p.staff and p.conf != "V")
        again = [x for x in s.shifts if x[0] > sh[0] + 12 * HOUR and x[3] == sh[3]][:rng.randint(1, 3)] if sub == "ex-partner" else []
        for x in [sh] + again:
            ses = self.session(s, self.during(x), label=lab, pace=(10, 90))
            if target and ses.ev("read", "Patient", target):
                ses.do(target, *rng.sample(["search Encounter", "read DocumentReference", "search Observation", "search Condition",
                                            "read DiagnosticReport", "search MedicationRequest"], rng.randint(0, 4)))

    def inc_stolen(self, day, lab):
        """An outsider with a real account: odd hour or concurrent, foreign address and client."""
        rng = self.rng
        s, sh = self.shift_on(("physician", "resident", "nurse", "clerk", "coder"), day)
        if not s:
            return
        mode, r = rng.choice(["night", "night", "night", "offday", "concurrent"]), rng.random()
        t = {"night": day * DAY + rng.uniform(1, 5) * HOUR, "offday": day * DAY + rng.uniform(19, 23.5) * HOUR,
             "concurrent": self.during(sh, .2, .8)}[mode]
        ip = vpn_ip(rng) if r < .15 else self.ip(RESIDENTIAL) if r < .3 else "%s.%d" % (rng.choice(ATTACK_NETS), rng.randint(2, 254))
        src, style = (ip, rng.choice(ATTACK_UA)), rng.choice(["browse", "harvest", "targeted"])
        for night in range(2 if rng.random() < .3 else 1):
            ses = self.session(s, t + night * DAY, src=src, login=False, label=lab, pace=(1.5, 6) if style == "harvest" else (10, 80))
            for _ in range(rng.randint(0, 4) if night == 0 else 0):
                ses.ev("login", None, None, 0, outcome="deny", basis="bad-credentials", pause=(3, 20))
            ses.ev("login", None, None, 0, outcome="permit")
            if style == "harvest":
                for _ in range(rng.randint(2, 6)):
                    ses.ev("search", "Patient", None, count=rng.randint(50, 300))
                for p in [p for p in rng.sample(self.freq, rng.randint(40, 200)) if p.orgs]:
                    ses.ev("read", "Patient", p)
                if rng.random() < .4:
                    ses.ev("export", "Patient", None, count=rng.randint(100, 1000))
            else:
                pool = [p for p in self.patients if p.conf in ("V", "R") or p.staff] if style == "targeted" else \
                    [p for p in self.freq if p.orgs]
                for p in rng.sample(pool, min(len(pool), rng.randint(3, 10) if style == "targeted" else rng.randint(8, 30))):
                    self.chart(ses, p, rng.randint(1, 4))

    def inc_exfil(self, day, lab):
        """Bulk pulls in an evening, a slow drip of ED patients' contacts, or a departing clinician's exports."""
        rng = self.rng
        variant = rng.choice(["bulk-evening", "slow-drip", "departing-clinician"])
        profs = {"bulk-evening": ("clerk", "coder", "him", "researcher", "physician", "nurse"),
                 "slow-drip": ("clerk", "nurse", "coder"), "departing-clinician": DOCS}[variant]
        s, sh = self.shift_on(profs, day, sites=("main",))
        if not s:
            return
        if variant == "slow-drip":
            for x in [x for x in s.shifts if x[0] >= sh[0] and x[3] == "main"][:rng.randint(3, 5)]:
                recent = [p for p in self.patients if any(x[0] - 1.5 * DAY < a < x[0] and w == "emergency" for a, _, w in p.stays)]
                ses = self.session(s, self.during(x, .2, .6), label=lab, pace=(15, 70))
                for p in rng.sample(recent, min(len(recent), rng.randint(15, 40))):
                    ses.do(p, "read Patient", "search Coverage")
        elif variant == "bulk-evening":
            t = sh[1] + rng.uniform(.5, 3) * HOUR
            ses = self.session(s, t, src=(vpn_ip(rng), s.home_ua) if rng.random() < .5 else None, label=lab, pace=(5, 40))
            ses.ev("search", "Patient", None, count=rng.randint(500, 3000))
            ses.ev("export", "Patient", None, count=rng.randint(500, 5000))
            for p in rng.sample([p for p in self.freq if MAIN in p.orgs], rng.randint(20, 80)):
                ses.ev("export", "DocumentReference", p, count=rng.randint(5, 60), pause=(3, 20))
            if rng.random() < .5:
                ses.ev("search", "Observation", None, count=rng.randint(1000, 5000))
        else:
            mine = [p for p in self.patients if p.depts & {s.dept, s.dept2} and p.orgs] + [p for p in rng.sample(self.freq, 30) if p.orgs]
            for k in range(rng.randint(1, 2)):
                t = (day + k) * DAY + rng.uniform(20, 23) * HOUR
                ses = self.session(s, t, src=(vpn_ip(rng), DESKTOP[t > 8 * DAY]), label=lab, pace=(4, 30))
                for p in rng.sample(mine, min(len(mine), rng.randint(30, 90))):
                    if ses.do(p, "search DocumentReference"):
                        ses.ev("export", "DocumentReference", p, count=rng.randint(5, 40))

    def inc_enum(self, day, lab):
        """Walking through record numbers (a script or by hand), name-search sweeps, or a portal IDOR probe."""
        rng = self.rng
        variant = rng.choice(["sequential-ids", "name-sweep", "portal-idor"])
        if variant == "portal-idor":
            users = [p for p in self.patients if p.portal and not p.staff and p.portal.uid not in self.used]
            if not users:
                return
            p0 = rng.choice(users)
            q, own = p0.portal, int(p0.pid)
            self.used.add(q.uid)
            ses = Session(self, q, day * DAY + rng.uniform(0, 24) * HOUR,
                          (p0.home, rng.choice([q.src_fixed[1], "python-requests/2.31.0"])), lab, pace=(.5, 3))
            ses.ev("login", None, None, 0, outcome="permit")
            for mrn in range(own - rng.randint(0, 20), own + rng.randint(30, 200)):
                ses.ev("read", rng.choice(["Patient", "Patient", "Observation"]), self.by_pid.get(str(mrn), str(mrn)))
            return
        s, sh = self.shift_on(("clerk", "nurse", "coder", "labtech"), day)
        if not s:
            return
        if variant == "name-sweep":
            ses = self.session(s, self.during(sh, .1, .6), label=lab, pace=(3, 15))
            for k in range(rng.randint(80, 300)):
                ses.ev("search", "Patient", None, count=rng.randint(0, 40))
                if k % rng.randint(10, 25) == 0:
                    ses.ev("read", "Patient", self.pick(0, lambda p: True))
            return
        scripted = rng.random() < .5
        t = day * DAY + rng.uniform(0, 5) * HOUR if scripted else self.during(sh, .1, .7)
        src = (self.ip(RESIDENTIAL) if rng.random() < .5 else vpn_ip(rng), "python-requests/2.31.0") if scripted else None
        ses = self.session(s, t, src=src, label=lab, pace=(.8, 4) if scripted else (6, 25))
        start = rng.choice(self.mrns[:-500])
        for mrn in range(start, start + rng.randint(60, 400 if scripted else 120)):
            ses.ev("read", "Patient", self.by_pid.get(str(mrn), str(mrn)))

    def inc_bg_abuse(self, day, lab):
        """Break-the-glass in daytime, off the emergency path, with a plausible reason; sometimes a habit."""
        rng = self.rng
        s, sh = self.shift_on(("clerk", "labtech", "nurse", "pharmacist", "physician", "coder"), day, daytime=rng.random() < .85)
        if not s:
            return
        for x in [x for x in s.shifts if x[0] >= sh[0] and x[3] != "remote"][:rng.randint(3, 6) if rng.random() < .4 else 1]:
            t = min(max(x[0], int(x[0] // DAY) * DAY + 9 * HOUR) + rng.uniform(0, 5) * HOUR, x[1] - 10 * MIN)
            calm = lambda p: not any(a <= t <= b and w in ("icu", "emergency") for a, b, w in p.stays)
            blocked = lambda p: calm(p) and self.decide(s, p, "DocumentReference")[0] == "deny"
            p = (self.pick(0, blocked) if rng.random() < .7 else None) or self.pick(0, calm)
            if p is None:
                continue
            ses = self.session(s, t, label=lab, pace=(15, 90))
            if s.prof in ("clerk", "coder") and rng.random() < .4:  # policy refuses clerks the glass
                ses.ev("read", "DocumentReference", p)
                ses.ev("break-glass", "Patient", p, purpose="ETREAT", outcome="deny", basis="break-glass-refused", reason=rng.choice(BG_ABUSE))
                continue
            self.breakglass(ses, p, rng.choice(BG_ABUSE), None if self.decide(s, p, "DocumentReference")[0] == "deny" else False)
            self.chart(ses, p, rng.randint(1, 5), opened=rng.random() < .3)

    def inc_role(self, day, lab):
        """Reading what the role never reads: billing reading notes, lab reading psychiatry, IT, research, clerks."""
        rng = self.rng
        variant = rng.choice(["billing-clinical", "labtech-psych", "admin-reads", "researcher-identified", "clerk-results"])
        profs, rts = {"billing-clinical": (("clerk", "coder"), "DocumentReference Observation DiagnosticReport Condition"),
                      "labtech-psych": (("labtech",), "DocumentReference Condition MedicationRequest"),
                      "admin-reads": (("itadmin",), "Patient DocumentReference Observation"),
                      "researcher-identified": (("researcher",), "Patient Condition DocumentReference MedicationRequest"),
                      "clerk-results": (("clerk",), "DiagnosticReport Observation")}[variant]
        s, sh = self.shift_on(profs, day, sites=("main", "clinic", "remote"))
        if not s:
            return
        t = self.during(sh, .15, .8)
        inpatients = [p for p in self.patients if any(a < t < b for a, b, _ in p.stays)] or self.freq[:50]
        pool = {"labtech-psych": [p for p in self.patients if p.conf == "R"],
                "admin-reads": [p for p in self.patients if p.conf == "V" or p.staff] + inpatients[:10]}.get(variant, inpatients)
        ses = self.session(s, t, label=lab, pace=(15, 90), purpose=None if variant in ("labtech-psych", "admin-reads") else "TREAT")
        for p in rng.sample(pool, min(len(pool), rng.randint(2, 35 if variant == "researcher-identified" else 12))):
            if p.orgs:
                rs = rts.split()
                ses.do(p, *[("read " if rt in ("DocumentReference", "DiagnosticReport", "Patient") or rng.random() < .5 else "search ") + rt
                            for rt in rng.sample(rs, rng.randint(1, len(rs)))])

    def inc_terminated(self, day, lab, s):
        """A leaver whose account was never revoked, from home in the evening: former patients, a VIP."""
        rng = self.rng
        src = (s.home_ips[0] if rng.random() < .6 else self.ip(RESIDENTIAL), s.home_ua)
        ses = self.session(s, day * DAY + rng.uniform(19, 23.5) * HOUR, src=src, login=False, label=lab, pace=(15, 120))
        if rng.random() < .3:
            ses.ev("login", None, None, 0, outcome="deny", basis="bad-credentials", pause=(5, 30))
        ses.ev("login", None, None, 0, outcome="permit")
        former = [p for _, p in s.cared][-40:]
        targets = rng.sample(former, min(len(former), rng.randint(2, 10)))
        if rng.random() < .5 or not targets:
            targets.append(rng.choice([p for p in self.patients if p.conf == "V" or p.staff]))
        for p in targets:
            self.chart(ses, p, rng.randint(0, 3))

    def inc_tamper(self, day, lab):
        """Changing records afterwards: a medication record after an error, notes after a bad outcome, one's own file."""
        rng = self.rng
        variant = rng.choice(["mar-falsify", "own-record", "note-alteration"])
        if variant == "own-record":
            c = [(s, sh) for s in self.staff if s.own and s.uid not in self.used for sh in s.shifts
                 if int(sh[0] // DAY) == day and sh[1] < self.horizon]
            if not c:
                return
            s, sh = rng.choice(c)
            self.used.add(s.uid)
            p = s.own if rng.random() < .7 else self.pick(0, lambda q: not q.staff and q.conf == "N")  # or a relative's
            ses = self.session(s, self.during(sh, .2, .8), label=lab, pace=(20, 120))
            ses.do(p, "read Patient", *rng.sample(["update Patient", "delete Condition", "update AllergyIntolerance",
                                                   "delete DocumentReference", "update Coverage", "delete Observation"], rng.randint(2, 4)))
            return
        prof = ("nurse",) if variant == "mar-falsify" else DOCS
        cands = [(s, t, p) for s in self.staff if s.prof in prof and s.uid not in self.used for t, p in s.cared
                 if (day - 3) * DAY < t < day * DAY and p.orgs]
        if not cands:
            return
        s, t0, p = rng.choice(cands)
        self.used.add(s.uid)
        t = t0 + (rng.uniform(.8, 2.5) * DAY if variant == "note-alteration" else rng.uniform(10, 30) * HOUR)
        ses = self.session(s, t if day * DAY <= t < (day + 3) * DAY else day * DAY + rng.uniform(8, 22) * HOUR, label=lab, pace=(20, 200))
        if variant == "mar-falsify":
            ses.do(p, "search MedicationAdministration", *["update MedicationAdministration"] * rng.randint(2, 6),
                   "delete " + rng.choice(["MedicationAdministration", "Observation"]), ".5 delete MedicationAdministration", ".5 update Observation")
        else:
            ses.do(p, "search DocumentReference", *["update DocumentReference"] * rng.randint(3, 8), "delete DocumentReference")

    def plan_incidents(self, n):
        """Kinds by weight, spread over the period after day 2; leavers are chosen before the rosters."""
        rng, D, tot = self.rng, self.days, sum(KIND_WEIGHTS)
        raw = [n * w / tot for w in KIND_WEIGHTS]
        alloc = [int(x) for x in raw]
        for i in sorted(range(len(raw)), key=lambda i: alloc[i] - raw[i])[:n - sum(alloc)]:
            alloc[i] += 1
        kinds = [k for k, c in zip(KINDS, alloc) for _ in range(c)]
        rng.shuffle(kinds)
        self.incidents, self.leaver, self.used = [], {}, set()
        for i, kind in enumerate(kinds):
            day, inc = min(D - 1, int(2 + (D - 2) * (i + rng.random()) / max(1, n))), "inc-%02d" % (i + 1)
            if kind == "terminated-account":
                s = rng.choice([s for s in self.staff if s.prof in ("nurse", "clerk", "physician", "resident")
                                and s.end_day > D and s.start_day < 0 and s.uid not in self.used])
                s.end_day, s.unrevoked = max(1, day - rng.randint(1, 4)), True
                self.leaver[inc] = s
                self.used.add(s.uid)
            self.incidents.append((inc, kind, day))

    def run_incidents(self):
        fns = {"snooping": self.inc_snooping, "stolen-credentials": self.inc_stolen, "exfiltration": self.inc_exfil,
               "enumeration": self.inc_enum, "break-glass-abuse": self.inc_bg_abuse, "role-misuse": self.inc_role,
               "record-tampering": self.inc_tamper}
        for inc, kind, day in self.incidents:
            for attempt in range(10):  # the planned day, then the days around it
                before = len(self.events)
                d = max(2, min(self.days - 1, day + (attempt + 1) // 2 * (-1) ** attempt))
                if kind == "terminated-account":
                    self.inc_terminated(max(d, self.leaver[inc].end_day), (inc, kind), self.leaver[inc])
                else:
                    fns[kind](d, (inc, kind))
                if any(e[3] for e in self.events[before:]):
                    break

    def generate(self, n_incidents):
        self.plan_incidents(n_incidents)
        self.roster()
        self.eps = self.plan()
        for _, p, ed, segs, new, surge in self.eps:
            if ed:
                self.ed_visit(p, ed[0], ed[1], new, bool(segs), surge)
            if segs:
                self.inpatient(p, segs, bool(ed))
        self.outpatient()
        self.handover()
        self.support()
        self.run_incidents()
        self.logins()
        self.events.sort(key=lambda e: (e[0], e[1]))


def write(h, a):
    idrng, base = random.Random(a.seed * 1000003 + 17), EPOCH - dt.timedelta(hours=h.tz)
    evs, incs = Counter(), {}
    with open(a.out_events, "w") as fe, open(a.out_labels, "w") as fl:
        for ms, _, ev, label in h.events:
            eid = str(uuid.UUID(int=idrng.getrandbits(128), version=4))
            out = {"id": eid, "time": (base + dt.timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)}
            out.update(ev)
            fe.write(json.dumps(out, separators=(",", ":")) + "\n")
            if label:
                fl.write(json.dumps({"id": eid, "incident": label[0], "kind": label[1]}) + "\n")
                evs[label[1]] += 1
                incs[label[0]] = label[1]
    per = Counter(incs.values())
    print("independent_hospital seed=%d: %d events, %d attack events, %d incidents (%s); %d staff, %d patients, %d days"
          % (a.seed, len(h.events), sum(evs.values()), len(incs), ", ".join("%s=%d (%d ev)" % (k, per[k], evs[k]) for k in KINDS if per[k]),
             len(h.staff), len(h.patients), h.days), file=sys.stderr)


def check(a):
    """Validates the files against the event schema (the subset of JSON Schema it uses) and the labels."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared/events/access-event.schema.json")) as f:
        schema = json.load(f)
    types = {"string": str, "object": dict, "array": list, "boolean": bool, "null": type(None)}
    formats = {"uuid": r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$",
               "date-time": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"}

    def valid(v, sch, path):
        ts = sch.get("type", [])
        assert not ts or any(isinstance(v, int) and not isinstance(v, bool) if ty == "integer" else isinstance(v, types[ty])
                             for ty in (ts if isinstance(ts, list) else [ts])), "%s: %r is not %s" % (path, v, ts)
        assert v in sch.get("enum", [v]) and ("minimum" not in sch or v >= sch["minimum"]), "%s: %r" % (path, v)
        assert "format" not in sch or re.match(formats[sch["format"]], v), "%s: %r" % (path, v)
        if isinstance(v, dict):
            props = sch.get("properties", {})
            assert set(sch.get("required", [])) <= set(v), "%s: missing %s" % (path, set(sch["required"]) - set(v))
            assert sch.get("additionalProperties", True) is not False or set(v) <= set(props), "%s: extra %s" % (path, set(v) - set(props))
            for k in set(v) & set(props):
                valid(v[k], props[k], path + "." + k)
        for i, x in enumerate(v if isinstance(v, list) and "items" in sch else []):
            valid(x, sch["items"], "%s[%d]" % (path, i))

    ids, last = set(), None
    with open(a.out_events) as f:
        for n, line in enumerate(f):
            ev = json.loads(line)
            valid(ev, schema, "event %d" % n)
            t = dt.datetime.fromisoformat(ev["time"].replace("Z", "+00:00"))
            assert ev["id"] not in ids and (last is None or t >= last), "duplicate id or out of order at %d" % n
            assert all(x is None or x.startswith(pre) for x, pre in ((ev["patient"], "Patient/"), (ev["actor"]["organization"], "Organization/")))
            ids.add(ev["id"])
            last = t
    with open(a.out_labels) as f:
        labels = [json.loads(line) for line in f]
    assert all(set(x) == {"id", "incident", "kind"} and x["id"] in ids and x["kind"] in KINDS for x in labels)
    print("check: %d events valid, sorted, unique ids; %d labels name existing events" % (len(ids), len(labels)), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out-events", required=True)
    ap.add_argument("--out-labels", required=True)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--staff", type=int, default=120)
    ap.add_argument("--patients", type=int, default=3000)
    ap.add_argument("--incidents", type=int, default=25)
    ap.add_argument("--tz-offset", type=float, default=1.0, help="hours local time is ahead of UTC")
    ap.add_argument("--check", action="store_true", help="validate the written files afterwards")
    a = ap.parse_args()
    if a.days < 4 or a.staff < 40 or a.patients < 600:
        ap.error("needs --days >= 4, --staff >= 40, --patients >= 600")
    h = Hospital(a)
    h.generate(a.incidents)
    write(h, a)
    if a.check:
        check(a)


if __name__ == "__main__":
    main()
