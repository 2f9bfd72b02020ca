#!/usr/bin/env python3
"""Synthetic, labelled access log of a regional care network.

Used to evaluate an insider-threat detector on a log its authors have never
seen.  The world is modelled on how a small health economy works, not on the
detector; events follow shared/events/access-event.schema.json.

The world
---------
One shared record system used by several organisations (actor.organization):

* Riverside General, a district general hospital: emergency department (24/7,
  registration, triage, doctors, break-glass for unconscious patients whose GP
  record is not shared), acute medical unit, surgical wards, ICU/HDU,
  maternity (births create new Patient records), day surgery, outpatient
  clinics (one of them sexual health, restricted "R"), radiology (reports by
  day, by an on-call radiologist from home in the evening, by a teleradiology
  company abroad at night), pathology (an interface engine files results, a
  scientist validates abnormal ones), pharmacy (medicines reconciliation of
  every admission), ward clerks, porters (task list), clinical coders (read
  every finished episode, often over Citrix), health records (clinic
  preparation, scanning, merging duplicate records: updates and deletes),
  medical secretaries typing clinic letters, phlebotomists, therapists,
  bed managers who look at everyone waiting or moving, safeguarding,
  information governance (privacy audit of VIP records, subject-access
  exports), complaints, an IT service desk (unlocks, new accounts, a leaver
  suspended), a weekly surgical MDT on one meeting-room PC, a registered
  clinical audit of ~50 charts, a night doctor bleeped about strangers.
* Two or three GP practices: results inbox every morning (results of tests
  others ordered), document inbox (discharge summaries, clinic letters, OOH
  and 111 reports, read days later), 10-minute appointments booked by
  receptionists, a duty doctor's call-backs, home visits from an iPad on 4G,
  partners reading results from home broadband in the evening,
  repeat-prescription batches at the end of the day (an e-prescription
  gateway reads every prescription), phlebotomy, practice-nurse clinics, a
  weekly care-home round from the care home's network, a practice manager's
  reports and one large quality-reporting export, a Saturday vaccination
  clinic for all practices at a community hall on kiosk laptops.
* A community nursing team on tablets over mobile networks (carrier-grade NAT
  addresses that change from visit to visit, queued writes synced late,
  an app upgrade mid-period), taking on elderly patients discharged from
  hospital; an evening service for insulin.
* A nursing home with two shared kiosk PCs behind one broadband address.
* A community mental-health team (records "R"), home visits over VPN, a
  weekly MDT, mental-health liaison in the emergency department.
* An out-of-hours GP service (evenings, nights, weekends, bank holidays)
  seeing patients of every practice for the first time, partly by car.
* A 111 telephone triage service behind two NAT addresses, covering a wider
  area than this record (many searches find nobody).
* A patient portal (role "patient"): patients read their own record, parents
  their children's (proxy consent); some staff are patients too, and now and
  then read their own record with their staff account.
* Service accounts: lab interface, PACS, e-prescription gateway, letter
  routing, demographics sync, a nightly data-warehouse export (HOPERAT),
  a weekly research extract (HRESCH), a public-health feed (PUBHLTH).

Realistic nuisances: bank nurses who appear for a few shifts, a locum, students
starting a rotation mid-period, a leaver whose account is suspended, staff with
jobs in two organisations (a GP doing OOH weekends, a nurse doing bank nights
at the nursing home), shared workstations, Citrix and NAT gateways, browser
and app upgrades, bank holidays with weekend staffing, an unplanned 25-minute
outage (errors) and a planned night downtime followed by backlog entry,
incomplete directory data (department null), failed logins, lock-outs and
unlocks.  Decisions come from a small access kernel: custodian (the
organisation holds a care relationship), consent (network sharing consent),
consent-deny (patient opted out, or restricted data outside the custodian),
no-permit (no consent recorded), role (service, audit and admin accounts;
non-clinical staff refused restricted documents), own-record, break-glass.

Incidents (labels: one line per attack event)
---------------------------------------------
From day 3 on, one actor (or one stolen account) each, spread over days and
over day and night, in variants from a single look to noisy sprees:
snooping (one look at a VIP; staff of other departments opening the patient
in the local news; a nurse on the same ward as a VIP she does not look after;
a colleague's record over several days), stolen-credentials (a scripted
night-time sweep from a hosting address; a quiet evening from a home
broadband address; a few records a night for three nights over a VPN),
exfiltration (a clerk's bulk export from home; a clinician paging large
searches over days; the warehouse service account used from a desktop),
enumeration (sequential record ids by script; wide name searches; a slow walk
through ids), break-glass-abuse (a weak reason on an opted-out stranger;
repeated over days; refused then retried on restricted notes), role-misuse
(a receptionist reading clinical notes; a pharmacist reading psychotherapy
notes; an IT admin account reading charts; a porter reading diagnoses),
family-lookup (an ex-partner living nearby; the actor's household),
data-broker (an ED receptionist collecting contact details of road-traffic
casualties, slowly or in a batch), prescription-fraud (a GP prescribing for a
patient without a consultation; a hospital doctor at night; a nurse
prescriber for several patients), shared-login (a GP's account used at the
nursing home while the GP works at the practice; a student using the
supervisor's account in the evening).  Subtle ones stay subtle; none is
identical to legitimate care.  Targets are chosen among patients the actor
(and usually the actor's department) never touched in legitimate work.

Usage
-----
    python3 scripts/detect-eval/regional_network.py --seed N --out-events E.jsonl \
        --out-labels L.jsonl [--days 14] [--staff 150] [--patients 4000] \
        [--incidents 25] [--tz-offset 0] [--check]

The same seed and arguments give byte-identical files (every random stream is
seeded from the seed and a fixed name).  The period starts at local midnight
(Monday 14 April 2025 unless --start says otherwise); times are written with
"Z" when --tz-offset is 0 and with the offset otherwise.  --check validates
every event against the schema and every label against the events.
"""

import argparse
import bisect
import datetime as dt
import itertools
import json
import os
import random
import re
import sys
import uuid

MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
NEVER = -1e18
DEFAULT_START = "2025-04-14"   # a Monday; Easter 2025 (Fri 18 and Mon 21 April) falls inside
BANK_HOLIDAYS = {"2025-01-01", "2025-04-18", "2025-04-21", "2025-05-05", "2025-05-26",
                 "2025-08-25", "2025-12-25", "2025-12-26", "2026-01-01", "2026-04-03", "2026-04-06"}

HOSP = "Organization/riverside-general"
PRACTICES = ("Organization/millbrook-surgery", "Organization/eastgate-health-centre",
             "Organization/harbour-lane-practice")
PRACTICE_SHARE = (.40, .35, .25)
CN = "Organization/north-community-nursing"
CH = "Organization/oakfield-nursing-home"
CMHT = "Organization/riverside-cmht"
OOH = "Organization/eastern-ooh-gp"
T111 = "Organization/east-111"
TELE = "Organization/southern-cross-teleradiology"
# providers whose first record of a patient starts a lasting care relationship
CUSTODIAL = {HOSP, CN, CH, CMHT}

KINDS = ("snooping", "stolen-credentials", "exfiltration", "enumeration", "break-glass-abuse",
         "role-misuse", "family-lookup", "data-broker", "prescription-fraud", "shared-login")
VARIANTS = {
    "snooping": ("vip_glance", "news_curiosity", "same_ward_vip", "colleague_record"),
    "stolen-credentials": ("stolen_noisy_night", "stolen_quiet_evening", "stolen_slow_nights"),
    "exfiltration": ("exfil_bulk_export", "exfil_paged_search", "exfil_service_account"),
    "enumeration": ("enum_scripted_sweep", "enum_name_search", "enum_slow_walk"),
    "break-glass-abuse": ("bg_single", "bg_repeated", "bg_refused_retry"),
    "role-misuse": ("role_receptionist_notes", "role_pharmacist_psych", "role_admin_charts",
                    "role_porter_charts"),
    "family-lookup": ("family_ex_partner", "family_household"),
    "data-broker": ("broker_slow", "broker_batch"),
    "prescription-fraud": ("rx_gp_phantom", "rx_hospital_night", "rx_nurse_prescriber"),
    "shared-login": ("shared_carehome", "shared_student"),
}

# ---------------------------------------------------------------- staff and rotas
# slot: (start hour, hours, share of the pool on it, at least)
NURSE = [(7.5, 12.5, .34, 1), (19.5, 12.5, .26, 1)]
# job: org, department, role, clinical, weight (per 150 staff), minimum, weekday slots, weekend/holiday slots
JOBS = {
    "ed_doctor": ("hosp", "emergency", "practitioner", True, 7, 2,
                  [(8, 10, .28, 1), (14, 10, .22, 1), (22, 10, .16, 1)], None),
    "ed_nurse": ("hosp", "emergency", "practitioner", True, 10, 2, NURSE, None),
    "ed_reception": ("hosp", "emergency", "practitioner", False, 3, 0,
                     [(7, 8.5, .34, 1), (15, 8.5, .34, 1), (23, 8, .2, 0)], None),
    "amu_doctor": ("hosp", "acute-medical-unit", "practitioner", True, 4, 1,
                   [(8, 9, .55, 1), (20, 12.5, .2, 1)], [(8, 12.5, .25, 1), (20, 12.5, .2, 1)]),
    "amu_nurse": ("hosp", "acute-medical-unit", "practitioner", True, 7, 2, NURSE, None),
    "surg_doctor": ("hosp", "surgical-wards", "practitioner", True, 5, 1, [(8, 9, .6, 1)], [(8, 12, .25, 1)]),
    "surg_nurse": ("hosp", "surgical-wards", "practitioner", True, 7, 2, NURSE, None),
    "icu_doctor": ("hosp", "icu-hdu", "practitioner", True, 2, 0, [(8, 12.5, .5, 1), (20, 12.5, .5, 1)], None),
    "icu_nurse": ("hosp", "icu-hdu", "practitioner", True, 6, 1, [(7.5, 12.5, .4, 1), (19.5, 12.5, .4, 1)], None),
    "obstetrician": ("hosp", "maternity", "practitioner", True, 1, 0, [(8, 9, 1, 1)], [(9, 6, 1, 1)]),
    "midwife": ("hosp", "maternity", "practitioner", True, 5, 1, NURSE, None),
    "anaesthetist": ("hosp", "day-surgery", "practitioner", True, 2, 0, [(7.5, 10, .8, 1)], []),
    "daysurg_nurse": ("hosp", "day-surgery", "practitioner", True, 3, 0, [(7, 10.5, .75, 1)], []),
    "op_consultant": ("hosp", "outpatients", "practitioner", True, 5, 1, [(8.5, 9, .8, 1)], []),
    "op_nurse": ("hosp", "outpatients", "practitioner", True, 2, 0, [(8.5, 8.5, .8, 1)], []),
    "op_reception": ("hosp", "outpatients", "practitioner", False, 2, 0, [(8, 9, .8, 1)], []),
    "radiographer": ("hosp", "radiology", "practitioner", True, 3, 1,
                     [(8, 10, .4, 1), (20, 12, .25, 1)], [(8, 12, .3, 1), (20, 12, .25, 1)]),
    "radiologist": ("hosp", "radiology", "practitioner", True, 2, 1, [(8.5, 9, .7, 1)], []),
    "lab_scientist": ("hosp", "pathology", "practitioner", True, 3, 1,
                      [(8, 10, .45, 1), (20, 12, .25, 1)], [(8, 12, .3, 1), (20, 12, .25, 1)]),
    "pharmacist": ("hosp", "pharmacy", "practitioner", True, 3, 1, [(8.5, 8.5, .75, 1)], [(9, 5, .34, 1)]),
    "ward_clerk": ("hosp", "acute-medical-unit", "practitioner", False, 3, 0, [(8, 8, .8, 1)], []),
    "therapist": ("hosp", "therapies", "practitioner", True, 3, 0, [(8.5, 8, .8, 1)], [(9, 5, .34, 0)]),
    "bed_manager": ("hosp", "patient-flow", "practitioner", True, 2, 0,
                    [(7.5, 12.5, .5, 1), (19.5, 12.5, .5, 1)], None),
    "secretary": ("hosp", "outpatients", "practitioner", False, 2, 0, [(8.5, 8, .85, 1)], []),
    "phlebotomist": ("hosp", "pathology", "practitioner", False, 2, 0, [(6.5, 7, .8, 1)], [(6.5, 5, .5, 1)]),
    "coder": ("hosp", "clinical-coding", "practitioner", False, 2, 0, [(9, 7.5, .85, 1)], []),
    "records_clerk": ("hosp", "health-records", "practitioner", False, 2, 0, [(8.5, 8, .85, 1)], []),
    "porter": ("hosp", "portering", "practitioner", False, 2, 0, [(7, 8, .5, 1), (15, 8, .5, 1)], [(8, 12, .4, 1)]),
    "it_admin": ("hosp", "it-service-desk", "admin", False, 2, 1,
                 [(8, 9, .6, 1), (17, 15, .4, 1)], [(8, 12, .4, 1), (20, 12, .4, 1)]),
    "ig_officer": ("hosp", "information-governance", "auditor", False, 1, 0, [(9, 8, .9, 1)], []),
    "complaints": ("hosp", "patient-experience", "auditor", False, 1, 0, [(9, 8, .8, 1)], []),
    "safeguarding": ("hosp", "safeguarding", "practitioner", True, 1, 0, [(9, 8, .9, 1)], []),
    "student": ("hosp", "surgical-wards", "practitioner", True, 2, 0, [(9, 7, .9, 0)], []),
    "gp": ("gp", "general-practice", "practitioner", True, 3, 1, [(8, 10.5, .85, 1)], []),
    "practice_nurse": ("gp", "general-practice", "practitioner", True, 2, 0, [(8.5, 8.5, .8, 1)], []),
    "hca": ("gp", "general-practice", "practitioner", True, 1, 0, [(8, 6, .9, 0)], []),
    "gp_reception": ("gp", "reception", "practitioner", False, 2, 1, [(8, 10.5, .9, 1)], []),
    "practice_manager": ("gp", "practice-admin", "practitioner", False, 1, 0, [(9, 8, .9, 0)], []),
    "district_nurse": ("cn", "district-nursing", "practitioner", True, 8, 1,
                       [(8, 8.5, .7, 1), (16, 6, .12, 1)], [(8, 8.5, .4, 1), (16, 6, .12, 1)]),
    "cn_admin": ("cn", "district-nursing", "practitioner", False, 1, 0, [(8.5, 8, .9, 0)], []),
    "ch_nurse": ("ch", "nursing", "practitioner", True, 2, 1, [(8, 12, .5, 1), (20, 12, .5, 1)], None),
    "carer": ("ch", "care", "practitioner", False, 4, 0, [(8, 12, .5, 1), (20, 12, .3, 1)], None),
    "ch_manager": ("ch", "management", "practitioner", False, 1, 0, [(9, 8, 1, 0)], []),
    "psychiatrist": ("cmht", "adult-mental-health", "practitioner", True, 1, 0, [(9, 8, .9, 1)], []),
    "cpn": ("cmht", "adult-mental-health", "practitioner", True, 3, 1, [(9, 8, .85, 1)], [(10, 8, .34, 0)]),
    "psychologist": ("cmht", "psychological-therapies", "practitioner", True, 1, 0, [(9, 8, .8, 0)], []),
    "cmht_admin": ("cmht", "adult-mental-health", "practitioner", False, 1, 0, [(9, 8, .9, 0)], []),
    "ooh_gp": ("ooh", "urgent-care", "practitioner", True, 4, 1,
               [(18.5, 5.5, .4, 1), (23, 9, .25, 1)], [(8, 6, .4, 1), (14, 6, .4, 1), (20, 12, .25, 1)]),
    "ooh_reception": ("ooh", "urgent-care", "practitioner", False, 2, 0,
                      [(18.5, 13.5, .5, 0)], [(8, 12, .5, 0), (20, 12, .5, 0)]),
    "call_handler": ("111", "call-centre", "practitioner", False, 6, 1,
                     [(7, 9, .3, 1), (15, 9, .35, 1), (23, 8, .2, 1)],
                     [(7, 9, .35, 1), (15, 9, .4, 1), (23, 8, .25, 1)]),
    "clinical_advisor": ("111", "clinical-assessment", "practitioner", True, 3, 1,
                         [(8, 12, .4, 1), (20, 12, .3, 1)], None),
    "telerad": ("tele", "teleradiology", "practitioner", True, 3, 1, [(22, 10, .4, 1)], None),
}
ORG_OF = {"hosp": HOSP, "cn": CN, "ch": CH, "cmht": CMHT, "ooh": OOH, "111": T111, "tele": TELE}
WARDS = {  # ward: nursing job, medical job, department
    "amu": ("amu_nurse", "amu_doctor", "acute-medical-unit"),
    "surg": ("surg_nurse", "surg_doctor", "surgical-wards"),
    "icu": ("icu_nurse", "icu_doctor", "icu-hdu"),
    "mat": ("midwife", "obstetrician", "maternity"),
}
OP_SPECIALTIES = ("general-surgery", "sexual-health", "cardiology", "orthopaedics", "respiratory", "diabetes")

# ---------------------------------------------------------------- devices
def chrome(v):
    return ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/%s Safari/537.36" % v)


def edge(v):
    return chrome(v.split(".")[0] + ".0.0.0") + " Edg/" + v


CHROME_OLD, CHROME_NEW = chrome("123.0.6312.122"), chrome("124.0.6367.119")
EDGE_OLD, EDGE_NEW = edge("123.0.2420.97"), edge("124.0.2478.80")
CHROME_111 = chrome("118.0.5993.118")   # the call centre's locked-down image is older
KIOSK_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.6099.224 Safari/537.36 CareKiosk/2.3.1")
IPAD_UA = ("Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
           "Version/17.4 Mobile/15E148 Safari/604.1")
ANDROID_TAB_UA = ("Mozilla/5.0 (Linux; Android 13; SM-T636B) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/123.0.6312.118 Safari/537.36")
MAC_CHROME = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/123.0.6312.122 Safari/537.36")
MAC_SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/17.4.1 Safari/605.1.15")
FIREFOX_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
ANDROID_CHROME = ("Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/123.0.6312.118 Mobile Safari/537.36")
IPHONE_SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1")
DN_APP = ("CommunityCare/4.12.1 (Android 13; SM-T505)", "CommunityCare/4.13.0 (Android 13; SM-T505)")
PORTAL_APPS = (   # (before, after the store update); old phones never get it
    ("CarePortal/5.8.2 (iPhone; iOS 17.4.1; Scale/3.00)", "CarePortal/5.9.0 (iPhone; iOS 17.4.1; Scale/3.00)"),
    ("CarePortal/5.8.2 (Android 14; SM-S911B)", "CarePortal/5.9.0 (Android 14; SM-S911B)"),
    ("CarePortal/5.8.2 (iPhone; iOS 16.7.7; Scale/2.00)", "CarePortal/5.8.2 (iPhone; iOS 16.7.7; Scale/2.00)"))
PORTAL_WEB = (chrome("123.0.6312.122"), MAC_SAFARI, ANDROID_CHROME, IPHONE_SAFARI, FIREFOX_WIN, EDGE_OLD)

CITRIX_IPS = ("10.20.200.11", "10.20.200.12", "10.20.200.13", "10.20.200.14")
NAT_111 = ("10.70.0.5", "10.70.0.6")
CH_IP = "86.142.31.77"                    # the nursing home's broadband router
VACC_IP = "100.81.17.203"                 # 4G router at the community hall
RES_FIRST = (31, 51, 77, 78, 79, 80, 81, 82, 86, 87, 88, 90, 92, 94, 109, 146, 176, 178, 188, 212, 213)


def cgnat(R):
    return "100.%d.%d.%d" % (R.randint(64, 127), R.randint(0, 255), R.randint(1, 254))


def residential(R):
    return "%d.%d.%d.%d" % (R.choice(RES_FIRST), R.randint(0, 255), R.randint(0, 255), R.randint(1, 254))


def vpn_ip(R):
    return "10.250.%d.%d" % (R.randint(0, 15), R.randint(2, 254))


# hourly arrival curves (relative weights, local time)
ED_CURVE = (2, 1.5, 1.2, 1, 1, 1, 1.3, 2.2, 4, 5.5, 6.5, 6.5, 6.2, 6, 5.8, 5.8, 6, 6.2, 6.4, 6, 5.2, 4.5, 3.5, 2.6)
CALL_CURVE = (2, 1.5, 1, .8, .7, .8, 1.2, 2.5, 4, 4.5, 4.5, 4.2, 4, 3.8, 3.8, 4, 4.5, 5, 6, 6.5, 6, 5, 4, 3)
PORTAL_CURVE = (.4, .2, .1, .1, .1, .2, .8, 2, 3, 3, 3, 3, 3.5, 3.5, 3, 3, 3, 3.5, 4.5, 5.5, 5.5, 4.5, 3, 1.5)

ED_BG_REASONS = ("Unconscious patient, medication history needed", "Cardiac arrest - urgent history",
                 "Major trauma, patient intubated, allergies unknown", "Overdose, patient unable to communicate",
                 "Confused patient, no history available - checking allergies and meds",
                 "Sepsis, patient unable to give history")
OOH_BG_REASONS = ("Patient consented verbally to viewing record", "Palliative patient, urgent OOH prescribing",
                  "Carer reports acute confusion, need medication list",
                  "Patient requests review of recent hospital letter, verbal consent")
WEAK_REASONS = ("checking", "need access", "review", "pt asked me", "urgent", "clinical need", "looking",
                ".", "test", "ok", "continuity of care", "checking something", "asked to")

# confidentiality: which resources carry restricted labels
MH_TYPES = {"DocumentReference", "Condition", "CarePlan", "QuestionnaireResponse"}
SH_TYPES = {"DocumentReference", "Condition", "Observation", "DiagnosticReport"}
UNLABELLED = {"AuditEvent", "Task", "Appointment", "Specimen", "Claim"}


class Picker:
    """Weighted choice by cumulative weights (fast, deterministic)."""

    def __init__(self, items, weights):
        self.items = list(items)
        self.cum = list(itertools.accumulate(weights))
        self.tot = self.cum[-1] if self.cum else 0.0

    def pick(self, R):
        i = bisect.bisect_right(self.cum, R.random() * self.tot)
        return self.items[min(i, len(self.items) - 1)]

    def __len__(self):
        return len(self.items)


class Patient:
    __slots__ = ("num", "ref", "age", "sex", "practice", "hh", "sector", "w", "sharing", "consent", "cust",
                 "mh", "sh", "vip", "conf_p", "conf_all", "rich", "chronic", "carehome", "dn", "portal",
                 "home_ip", "app", "proxies", "staff", "new", "preg", "dup_of", "hosp_history")

    def __init__(self, num):
        self.num = num
        self.ref = "Patient/%d" % num
        self.cust = {}
        self.mh = self.sh = self.vip = self.staff = self.dup_of = None
        self.conf_p, self.conf_all = "N", False
        self.carehome = self.dn = self.new = self.preg = False
        self.portal = self.home_ip = self.app = None
        self.proxies = []
        self.hosp_history = False


class Person:
    __slots__ = ("uid", "pract", "patient", "home_ip", "last_end", "starts", "name")


class Post:
    """One job of one person: the same user id can hold posts in two organisations."""
    __slots__ = ("person", "uid", "job", "org", "dept", "role", "clin", "pract", "ws", "actor", "avail",
                 "bank_days", "bank", "idx", "shifts", "practice", "specialty", "supervisor", "ward", "device",
                 "name", "desk")

    def __init__(self, person, job, org, dept, role, clin, idx):
        self.person, self.uid, self.job, self.org = person, person.uid, job, org
        self.dept, self.role, self.clin = dept, role, clin
        self.pract = person.pract if clin else None
        self.idx = idx
        self.ws = []
        self.avail = (0, 10 ** 6)
        self.bank_days = None
        self.bank = False
        self.shifts = []
        self.practice = self.specialty = self.supervisor = self.ward = self.device = None
        self.desk = True
        self.name = "%s-%d" % (job, idx)
        self.refresh()

    def refresh(self):
        self.actor = {"id": self.uid, "role": self.role, "organization": self.org,
                      "department": self.dept, "practitioner": self.pract}


class PortalUser:
    __slots__ = ("uid", "role", "org", "dept", "pract", "actor", "patient", "clin", "job", "name")

    def __init__(self, uid, patient):
        self.uid, self.role, self.org, self.dept, self.pract = uid, "patient", None, None, None
        self.patient, self.clin, self.job, self.name = patient, False, "portal", "portal"
        self.actor = {"id": uid, "role": "patient", "organization": None, "department": None,
                      "practitioner": None}


class Stay:
    __slots__ = ("p", "ward", "t_in", "t_out", "src")

    def __init__(self, p, ward, t_in, t_out, src):
        self.p, self.ward, self.t_in, self.t_out, self.src = p, ward, t_in, t_out, src


class Sess:
    """One user at one device for a stretch of work; events inherit its source, purpose and label."""
    __slots__ = ("g", "a", "ip", "ua", "purpose", "label", "bg", "reason", "R", "lo", "hi", "page")

    def __init__(self, g, a, R, ip, ua=None, purpose="TREAT", label=None, pace=(3, 25), page=100):
        self.g, self.a, self.R, self.ip, self.ua = g, a, R, ip, ua
        self.purpose, self.label, self.bg, self.reason = purpose, label, False, None
        self.lo, self.hi = pace
        self.page = page   # the client pages search results: one request per page

    def ev(self, t, p, action, rtype, count=1, purpose=None, outcome=None, basis=None, consents=None,
           reason=None, bg=None, account=None):
        # no fixed address: the workstation the user is at, at that time
        ip = self.ip if self.ip is not None else self.g.desk_ip(self.a, t)
        while action == "search" and count > self.page and outcome is None:
            self.g.emit(t, self.a, p, action, rtype, self.page, ip,
                        self.ua if self.ua is not None else self.g.ws_ua(ip, t),
                        purpose or self.purpose, self.label, self.bg if bg is None else bg,
                        reason or self.reason, None, None, None, None)
            count -= self.page
            t += self.R.uniform(.3, 2.5)
        self.g.emit(t, self.a, p, action, rtype, count, ip,
                    self.ua if self.ua is not None else self.g.ws_ua(ip, t),
                    purpose or self.purpose, self.label, self.bg if bg is None else bg,
                    reason or self.reason, outcome, basis, consents, account)
        return t + self.R.uniform(self.lo, self.hi)

    def glass(self, t, p, reason, refused=False):
        """Break the glass: later events of this session carry the flag and the stated reason."""
        if refused:
            return self.ev(t, p, "break-glass", "Patient", 0, purpose="ETREAT", outcome="deny",
                           basis="break-glass-refused", reason=reason, bg=True)
        self.bg, self.reason, self.purpose = True, reason, "ETREAT"
        return self.ev(t, p, "break-glass", "Patient", 0, basis="break-glass", outcome="permit")


# ==================================================================== the network
class Network:
    def __init__(self, args):
        self.a = args
        self.seed = args.seed
        self.D = args.days
        self.horizon = self.D * DAY
        self.rows = []          # (ms, seq, event, label)
        self.seq = 0
        self.start = dt.date.fromisoformat(args.start)
        self.dates = [self.start + dt.timedelta(days=d) for d in range(self.D)]
        self.holiday = [x.isoformat() in BANK_HOLIDAYS for x in self.dates]
        self.offday = [x.weekday() >= 5 or h for x, h in zip(self.dates, self.holiday)]
        self.ws = {}            # workstation ip -> (ua before, ua after, switch time)
        self.lockouts = []      # (time, person) waiting for the service desk
        self.letters = {pr: [] for pr in PRACTICES}   # documents for the GP inbox: (time, patient)
        self.results = {pr: [] for pr in PRACTICES}   # results for the GP inbox: (time, patient)
        self.lab_orders = []    # (sample time, result time, patient, source, urgent)
        self.img_orders = []    # (request time, patient, source, urgent)
        self.stays = []
        self.ed_visits = []     # (arrival, patient, rta, injury, registrar uid, departure)
        self.ed_referrals = {}  # day -> [(time, patient, tag)]
        self.ooh_cases = []
        self.coding_queue = []  # (episode end, patient)
        self.safeguard_queue = []
        self.mh_referrals = []
        self.dictations = []
        self.dn_referrals = []
        self.results_day = [set() for _ in range(self.D + 2)]
        self.discharge_day = [set() for _ in range(self.D + 2)]
        self.incidents_meta = []
        self.remote_shift = {}  # (post, shift start) -> address when working from home that day
        self.n_labelled = 0
        # an unplanned outage (errors) and a planned night downtime (backlog entered afterwards)
        od = max(0, min(self.D - 1, int(self.D * .55)))
        self.outage = (od * DAY + 14.15 * HOUR, od * DAY + 14.58 * HOUR)
        dd = max(0, min(self.D - 1, int(self.D * .7)))
        self.downtime = (dd * DAY + 1 * HOUR, dd * DAY + 3 * HOUR)
        self.R_emit = self.rng("emit")
        self.build_patients()
        self.build_staff()
        self.build_rota()
        self.build_services()

    def rng(self, *parts):
        # str seeds are hashed with SHA-512 by random.Random: stable across runs and platforms
        return random.Random("|".join(str(x) for x in (self.seed,) + parts))

    def day_of(self, t):
        return int(t // DAY)

    def hour_sample(self, R, curve):
        h = Picker(range(24), curve).pick(R)
        return (h + R.random()) * HOUR

    # ---------------------------------------------------------------- population
    def build_patients(self):
        R = self.rng("patients")
        N = self.a.patients
        n_pr = 3 if self.a.staff >= 80 else 2
        self.practices = PRACTICES[:n_pr]
        shares = PRACTICE_SHARE[:n_pr]
        n_sectors = max(8, N // 150)
        people = []
        hh = 0
        while len(people) < N:
            size = Picker((1, 2, 3, 4, 5), (30, 35, 15, 14, 6)).pick(R)
            sector = R.randrange(n_sectors)
            ages = []
            if size == 1:
                ages.append(int(min(99, max(18, R.gauss(58, 20)))))
            elif size == 2 and R.random() < .8:
                a0 = int(min(95, max(19, R.gauss(52, 18))))
                ages += [a0, max(18, min(99, a0 + R.randint(-6, 6)))]
            else:
                a0 = R.randint(24, 50)
                ages += [a0, max(18, a0 + R.randint(-5, 5))][:max(1, size - 1)]
                while len(ages) < size:
                    ages.append(R.randint(0, 17))
            for i, age in enumerate(ages):
                people.append((hh, sector, age, "F" if (i % 2 == 0) == (R.random() < .5) else "M"))
            hh += 1
        people = people[:N]
        R.shuffle(people)
        nums = sorted(R.sample(range(1000000, 1000000 + N * 3), N))   # gaps: merged, deceased, other regions
        # practices cover neighbouring sectors
        sector_practice = [Picker(range(n_pr), shares).pick(R) for _ in range(n_sectors)]
        self.patients = []
        self.by_num = {}
        for num, (h, sector, age, sex) in zip(nums, people):
            p = Patient(num)
            p.hh, p.sector, p.age, p.sex = h, sector, age, sex
            pi = sector_practice[sector] if R.random() < .85 else R.randrange(n_pr)
            p.practice = self.practices[pi]
            p.w = R.lognormvariate(0, .9) * (3.0 if age >= 75 else 1.8 if age >= 65 else 1.3 if age < 5 else 1.0)
            p.chronic = R.random() < (.55 if age >= 50 else .15 if age >= 18 else .05)
            p.rich = min(4, age // 25 + (1 if p.chronic else 0))
            r = R.random()
            p.sharing = "consent" if r < .91 else "opt-out" if r < .96 else "none"
            p.consent = "Consent/%s" % uuid.UUID(int=R.getrandbits(128)).hex[:12]
            p.cust[p.practice] = NEVER
            p.hosp_history = R.random() < .2 + (.45 if age >= 65 else .1)
            if p.hosp_history:
                p.cust[HOSP] = NEVER
            p.preg = sex == "F" and 18 <= age <= 42 and R.random() < .06
            if R.random() < .03 and age >= 18:
                p.mh = "gp"   # mental-health history held by the GP
            self.patients.append(p)
            self.by_num[num] = p
        self.max_num = 1000000 + N * 3
        self.households = {}
        for p in self.patients:
            self.households.setdefault(p.hh, []).append(p)
        adults = [p for p in self.patients if p.age >= 18]
        # community mental-health caseload: restricted notes
        k = max(10, N // 50)
        working_age = [p for p in adults if p.age <= 75]
        self.cmht_caseload = []
        while len(self.cmht_caseload) < k:
            p = working_age[R.randrange(len(working_age))]
            if p.mh != "cmht":
                p.mh = "cmht"
                p.cust[CMHT] = NEVER
                self.cmht_caseload.append(p)
        self.cmht_caseload.sort(key=lambda p: p.num)
        # nursing home residents, registered with one aligned practice
        old = sorted([p for p in self.patients if p.age >= 80 and p.mh != "cmht"], key=lambda p: p.num)
        R.shuffle(old)
        self.ch_practice = self.practices[1 % n_pr]
        self.residents = sorted(old[:max(10, N // 120)], key=lambda p: p.num)
        for p in self.residents:
            p.carehome = True
            p.practice = self.ch_practice
            p.cust = {self.ch_practice: NEVER, CH: NEVER, HOSP: NEVER}
            p.hosp_history = True
        # district nursing caseload: housebound elderly
        frail = [p for p in self.patients if p.age >= 70 and not p.carehome]
        R.shuffle(frail)
        self.dn_caseload = []
        for p in sorted(frail[:max(12, N // 35)], key=lambda p: p.num):
            self.dn_join(R, p, 0)
        # VIPs: local MP, footballer, presenter ... labelled inconsistently, as real systems are
        cands = [p for p in adults if 28 <= p.age <= 70 and p.mh is None and not p.carehome and not p.dn]
        R.shuffle(cands)
        self.vips = sorted(cands[:max(3, N // 700)], key=lambda p: p.num)
        for i, p in enumerate(self.vips):
            p.vip = ("footballer", "mp", "tv-presenter", "councillor", "musician", "bishop")[i % 6]
            mode = i % 3
            p.conf_all = mode == 0
            p.conf_p = "V" if mode in (0, 1) else "N"
        self.news_vip = self.vips[0]
        self.news_day = min(self.D - 1, max(2, self.D // 3))
        # patient portal accounts; parents as proxies for young children
        self.portal_users = []
        for p in self.patients:
            if 16 <= p.age <= 85 and R.random() < (.4 if p.age < 60 else .22):
                self.add_portal(R, p)
        for members in (self.households[h] for h in sorted(self.households)):
            parents = [m for m in members if m.portal and m.age >= 22]
            for child in (m for m in members if m.age < 12):
                if parents and R.random() < .45:
                    parents[0].proxies.append(child)
        self.pick_all = Picker(self.patients, [p.w for p in self.patients])
        self.pick_adult = Picker(adults, [p.w for p in adults])
        self.pick_by_practice = {}
        for pr in self.practices:
            lst = [p for p in self.patients if p.practice == pr]
            self.pick_by_practice[pr] = Picker(lst, [p.w for p in lst])
        self.chronic_by_practice = {pr: [p for p in self.patients if p.practice == pr and p.chronic]
                                    for pr in self.practices}
        self.preg_pool = [p for p in self.patients if p.preg]

    def add_portal(self, R, p):
        p.portal = PortalUser(str(uuid.UUID(int=R.getrandbits(128), version=4)), p)
        p.home_ip = residential(R)
        p.app = R.choice((None, 0, 1, 2, 0, 1))
        self.portal_users.append(p)

    def dn_join(self, R, p, day):
        p.dn = True
        freq = R.choice((1, 1, 2, 2, 3, 3, 7))
        self.dn_caseload.append([p, freq, day, p.sector % 2, freq == 1])

    def new_patient(self, R, age, sex, practice=None, hh=None, sector=None):
        """A patient created during the period (newborn, out-of-area visitor, temporary resident)."""
        num = R.randrange(self.max_num, self.max_num + 400000)
        while num in self.by_num:
            num += 1
        p = Patient(num)
        p.age, p.sex = age, sex
        p.hh = hh if hh is not None else -num
        p.sector = sector if sector is not None else R.randrange(1000, 2000)
        p.practice = practice
        p.w, p.chronic, p.rich = .5, False, 0
        p.sharing = "consent" if R.random() < .8 else "none"
        p.consent = "Consent/%s" % uuid.UUID(int=R.getrandbits(128)).hex[:12]
        p.new = True
        if practice:
            p.cust[practice] = NEVER
        self.by_num[num] = p
        self.patients.append(p)
        return p

    # ---------------------------------------------------------------- staff
    def build_staff(self):
        R = self.rng("staff")
        S = self.a.staff
        n_pr = len(self.practices)
        total = sum(spec[4] * (n_pr if spec[0] == "gp" else 1) for spec in JOBS.values())
        self.posts = []
        self.persons = []
        used_pract = set()

        def person():
            pe = Person()
            pe.uid = str(uuid.UUID(int=R.getrandbits(128), version=4))
            n = R.randrange(10000, 99999)
            while n in used_pract:
                n += 1
            used_pract.add(n)
            pe.pract = "Practitioner/%d" % n
            pe.patient, pe.home_ip = None, residential(R)
            pe.last_end, pe.starts = NEVER, []
            self.persons.append(pe)
            return pe

        def post(pe, job, org, practice=None):
            o, dept, role, clin = JOBS[job][:4]
            if job == "ward_clerk":
                dept = ("acute-medical-unit", "surgical-wards")[len(self.jobs_posts(job)) % 2]
            p = Post(pe, job, org, dept, role, clin, len(self.posts))
            p.practice = practice
            if R.random() < .07:   # incomplete directory
                p.dept = None
                p.refresh()
            self.posts.append(p)
            return p

        # head count per job: the minimum posts first, the rest of --staff shared by weight (largest remainder)
        heads = {j: spec[5] for j, spec in JOBS.items()}
        mult = {j: n_pr if spec[0] == "gp" else 1 for j, spec in JOBS.items()}
        left = S - sum(heads[j] * mult[j] for j in JOBS)
        want = {j: max(0.0, spec[4] * S / total - spec[5]) for j, spec in JOBS.items()}
        wsum = sum(want[j] * mult[j] for j in JOBS)
        if left > 0 and wsum > 0:
            rest = []
            for i, j in enumerate(JOBS):
                x = want[j] * left / wsum
                heads[j] += int(x)
                rest.append((int(x) - x, i, j))
            left = S - sum(heads[j] * mult[j] for j in JOBS)
            for _, _, j in sorted(rest):
                if left >= mult[j]:
                    heads[j] += 1
                    left -= mult[j]
        self._jobs_cache = {}
        for job, spec in JOBS.items():
            orgs = [(pr, pr) for pr in self.practices] if spec[0] == "gp" else [(ORG_OF[spec[0]], None)]
            for org, practice in orgs:
                n = heads[job]
                for _ in range(n):
                    post(person(), job, org, practice)
                    self._jobs_cache = {}
        # specialties, wards and supervisors
        for i, p in enumerate(self.jobs_posts("op_consultant")):
            p.specialty = OP_SPECIALTIES[i % len(OP_SPECIALTIES)]
        surg = self.jobs_posts("surg_doctor")
        for i, p in enumerate(self.jobs_posts("student")):
            p.supervisor = surg[i % len(surg)]
        # bank nurses: a few shifts each, first seen mid-period
        ward_nurses = [p for p in self.posts if p.job in ("amu_nurse", "surg_nurse", "ed_nurse")]
        R.shuffle(ward_nurses)
        for p in ward_nurses[:max(1, len(ward_nurses) // 6)]:
            p.bank = True
            lo = min(self.D - 1, 3)
            p.bank_days = set(R.sample(range(lo, self.D), min(self.D - lo, R.randint(2, 4))))
        # a locum ED doctor for a week, students from the middle of the period
        loc = post(person(), "ed_doctor", HOSP)
        loc.avail = (self.D // 3, self.D // 3 + 5)
        loc.name = "ed_doctor-locum"
        for p in self.jobs_posts("student"):
            p.avail = (min(self.D - 1, max(2, self.D // 2)), 10 ** 6)
        # a leaver
        cands = [p for p in self.posts if p.job in ("amu_nurse", "surg_nurse", "op_nurse") and not p.bank]
        self.leaver = cands[R.randrange(len(cands))] if cands else None
        self.leave_day = max(1, int(self.D * .6))
        if self.leaver:
            self.leaver.avail = (0, self.leave_day)
        # two jobs: GPs doing OOH weekend sessions, a ward nurse doing bank nights at the nursing home
        for g in self.jobs_posts("gp")[::4]:
            d = post(g.person, "ooh_gp", OOH)
            d.name = g.name + "+ooh"
        if ward_nurses:
            n0 = [p for p in ward_nurses if not p.bank][:1]
            for n in n0:
                d = post(n.person, "ch_nurse", CH)
                d.name = n.name + "+carehome"
        self._jobs_cache = {}
        # staff who are also patients of the network (some with households)
        adults = [p for p in self.patients if 22 <= p.age <= 64 and not p.vip and p.mh != "cmht"]
        R.shuffle(adults)
        multi = [p for p in adults if len(self.households[p.hh]) >= 2]
        k = 0
        self.staff_patients = []
        for pe in self.persons:
            if R.random() < .3 and k < len(adults):
                pool = multi if (R.random() < .5 and multi) else adults
                p = pool.pop()
                if p.staff is not None:
                    continue
                if p in adults:
                    adults.remove(p)
                pe.patient = p
                p.staff = pe
                if R.random() < .35:
                    p.conf_all, p.conf_p = True, "V"
                if p.portal is None and R.random() < .6:
                    self.add_portal(R, p)
                self.staff_patients.append(p)
                k += 1
        self.assign_workstations(R)

    def jobs_posts(self, job, org=None):
        key = (job, org)
        c = self._jobs_cache.get(key)
        if c is None:
            c = [p for p in self.posts if p.job == job and (org is None or p.org == org)]
            self._jobs_cache[key] = c
        return c

    def add_ws(self, prefix, n, old, new, switch, R, first=20):
        ips = []
        for i in range(n):
            ip = "%s.%d" % (prefix, first + i)
            sw = switch if switch is not None else NEVER
            if isinstance(switch, tuple):
                sw = R.uniform(*switch)
            self.ws[ip] = (old, new, sw)
            ips.append(ip)
        return ips

    def desk_ip(self, post, t):
        """The shared workstation a user is at: the same one for a while, then another on the unit."""
        ws = post.ws
        if len(ws) <= 1:
            return ws[0] if ws else None
        block = int(t // (40 * MIN))
        return ws[((post.idx + 1) * 2654435761 + block * 40503 + (block // 5) * 977) % 4294967291 % len(ws)]

    def ws_ua(self, ip, t):
        w = self.ws.get(ip)
        if w is None:
            return CHROME_NEW
        return w[1] if t >= w[2] else w[0]

    def assign_workstations(self, R):
        D = self.D
        # hospital: one VLAN per department; managed browser upgrade pushed to one floor, then the other
        vlan = {"emergency": 10, "acute-medical-unit": 11, "surgical-wards": 12, "icu-hdu": 13, "maternity": 14,
                "day-surgery": 15, "outpatients": 16, "radiology": 17, "pathology": 18, "pharmacy": 19,
                "clinical-coding": 21, "health-records": 22, "portering": 23, "it-service-desk": 24,
                "information-governance": 25, "patient-experience": 25, "safeguarding": 26, "therapies": 27,
                "patient-flow": 28}
        self.hosp_ws = {}
        for dept, v in sorted(vlan.items(), key=lambda x: x[1]):
            if v in self.hosp_ws:
                continue
            n = max(3, len([p for p in self.posts if p.org == HOSP and JOBS[p.job][1] == dept]) // 2 + 2)
            sw = (int(D * .45) + v % 2) * DAY + 6 * HOUR
            self.hosp_ws[v] = self.add_ws("10.20.%d" % v, n, CHROME_OLD, CHROME_NEW, sw, R)
        self.meeting_ws = self.add_ws("10.20.90", 1, CHROME_OLD, CHROME_NEW, int(D * .45) * DAY + 6 * HOUR, R, 15)
        self.student_ws = self.add_ws("10.20.95", 3, CHROME_OLD, CHROME_NEW, int(D * .45) * DAY + 6 * HOUR, R)
        for ip in CITRIX_IPS:
            self.ws[ip] = (CHROME_OLD, CHROME_OLD, NEVER)
        for ip in NAT_111:
            self.ws[ip] = (CHROME_111, CHROME_111, NEVER)
        self.ws[CH_IP] = (KIOSK_UA, KIOSK_UA, NEVER)
        self.ws[VACC_IP] = (KIOSK_UA, KIOSK_UA, NEVER)
        self.cn_ws = self.add_ws("10.40.1", 4, EDGE_OLD, EDGE_NEW, (D * .3 * DAY, D * .8 * DAY), R)
        self.cmht_ws = self.add_ws("10.50.1", 5, EDGE_OLD, EDGE_NEW, (D * .3 * DAY, D * .8 * DAY), R)
        self.cmht_meeting = self.add_ws("10.50.1", 1, EDGE_OLD, EDGE_NEW, D * .5 * DAY, R, 90)[0]
        self.ooh_ws = self.add_ws("10.60.1", 4, CHROME_OLD, CHROME_NEW, int(D * .5) * DAY + 7 * HOUR, R)
        self.tele_ips = {}
        self.gp_ws = {}
        for i, pr in enumerate(self.practices):
            self.gp_ws[pr] = {"reception": self.add_ws("10.31.%d" % (11 + i), 3, EDGE_OLD, EDGE_NEW,
                                                      (D * .25 * DAY, D * .75 * DAY), R, 10)}
        room = {pr: 30 for pr in self.practices}
        for p in self.posts:
            if p.org == HOSP:
                v = vlan.get(JOBS[p.job][1], 11)
                p.ws = self.hosp_ws[v]
                if p.job == "ward_clerk":
                    p.ws = self.hosp_ws[11 if (p.dept or JOBS[p.job][1]) == "acute-medical-unit" else 12]
                if p.job == "student":
                    p.ws = self.student_ws
            elif p.practice:
                if p.job == "gp_reception":
                    p.ws = self.gp_ws[p.practice]["reception"]
                else:   # a consulting room or office of one's own
                    i = self.practices.index(p.practice)
                    p.ws = self.add_ws("10.31.%d" % (11 + i), 1, EDGE_OLD, EDGE_NEW,
                                       (D * .25 * DAY, D * .75 * DAY), R, room[p.practice])
                    room[p.practice] += 1
            elif p.org == CN:
                p.ws = self.cn_ws
                p.device = (DN_APP[0], DN_APP[1], R.uniform(D * .35, D * .75) * DAY)
                p.desk = False
            elif p.org == CH:
                p.ws = [CH_IP]
                p.desk = False
            elif p.org == CMHT:
                p.ws = self.cmht_ws
            elif p.org == OOH:
                p.ws = self.ooh_ws
            elif p.org == T111:
                p.ws = list(NAT_111)
            elif p.org == TELE:
                ip = "203.0.113.%d" % (10 + len(self.tele_ips))
                self.tele_ips[p.uid] = ip
                self.ws[ip] = (MAC_CHROME, MAC_CHROME, NEVER)
                p.ws = [ip]

    # ---------------------------------------------------------------- rota
    def build_rota(self):
        R = self.rng("rota")
        self.duty = {}
        pools = {}
        for p in self.posts:
            pools.setdefault((p.job, p.org), []).append(p)
        order = sorted(pools, key=lambda k: (list(JOBS).index(k[0]), k[1]))
        for d in range(self.D):
            off = self.offday[d]
            for key in order:
                job = key[0]
                spec = JOBS[job]
                slots = spec[7] if (off and spec[7] is not None) else spec[6]
                pool = pools[key]
                # GPs and nurses with a second post only do it on days off from the first
                for (h, hours, frac, least) in slots:
                    avail = [p for p in pool if p.avail[0] <= d < p.avail[1]
                             and (p.bank_days is None or d in p.bank_days)]
                    regular = [p for p in avail if p.bank_days is None]
                    need = max(least, round(frac * len(regular)) + (1 if any(p.bank for p in avail) else 0))
                    s0 = d * DAY + h * HOUR
                    cands = []
                    for p in avail:
                        pe = p.person
                        if pe.last_end > s0 - 11 * HOUR:
                            continue
                        recent = sum(1 for x in pe.starts if x > s0 - 7 * DAY)
                        if recent >= (5 if hours <= 9 else 4):
                            continue
                        if p.name.endswith("+ooh") and not off:
                            continue
                        cands.append((recent + R.random() * 1.5 - (6 if p.bank else 0), p.idx, p))
                    cands.sort(key=lambda c: (c[0], c[1]))
                    chosen = [c[2] for c in cands[:need]]
                    if len(chosen) < least:   # short-staffed: someone covers without the usual rest
                        extra = [p for p in avail if p not in chosen and p.person.last_end <= s0]
                        chosen += extra[:least - len(chosen)]
                    for p in chosen:
                        s = s0 + R.uniform(-10, 10) * MIN
                        e = s + hours * HOUR + R.uniform(0, 40) * MIN
                        self.add_shift(p, s, e)

    def add_shift(self, p, s, e):
        p.shifts.append((s, e))
        p.person.last_end = max(p.person.last_end, e)
        p.person.starts.append(s)
        idx = self.duty.setdefault(p.job, {})
        for d in range(int(s // DAY), int((e - 1) // DAY) + 1):
            idx.setdefault(d, []).append((s, e, p))

    def on_duty(self, job, t, org=None):
        return [p for (s, e, p) in self.duty.get(job, {}).get(int(t // DAY), ())
                if s <= t < e and (org is None or p.org == org)]

    def pick(self, R, t, *jobs, org=None):
        for j in jobs:
            c = self.on_duty(j, t, org)
            if c:
                return c[R.randrange(len(c))]
        return None

    def shifts_of(self, job, d, org=None):
        """Shifts of a job starting on day d."""
        return sorted(((s, e, p) for (s, e, p) in self.duty.get(job, {}).get(d, ())
                       if int(s // DAY) == d and (org is None or p.org == org)), key=lambda x: (x[0], x[2].idx))

    def build_services(self):
        def svc(name, org, ip, ua):
            pe = Person()
            pe.uid = "service-account-" + name
            pe.pract, pe.patient, pe.home_ip, pe.last_end, pe.starts = None, None, None, NEVER, []
            p = Post(pe, "svc-" + name, org, None, "service", False, -1)
            p.ws = [ip]
            self.ws[ip] = (ua, ua, NEVER)
            p.name = name
            return p

        self.svc = {
            "lab": svc("lab-interface", HOSP, "10.10.5.11", "Rhapsody/6.17.0 HL7v2-FHIR-bridge"),
            "pacs": svc("pacs-bridge", HOSP, "10.10.5.12", "PACSBridge/3.4 (Java/11.0.21)"),
            "eps": svc("eps-gateway", None, "10.10.6.40", "eps-gateway/3.1.7"),
            "docman": svc("letter-router", None, "10.10.6.41", "docflow-router/2.0.3 (.NET 6.0.28)"),
            "mpi": svc("demographics-sync", HOSP, "10.10.5.15", "mpi-sync/1.9.2 (Java/17.0.10)"),
            "dw": svc("dw-extract", HOSP, "10.10.5.21", "dw-extract/2.4.0 (Java/17.0.10)"),
            "tre": svc("research-tre", HOSP, "10.10.5.22", "tre-export/1.3 python-requests/2.31.0"),
            "ph": svc("public-health-feed", HOSP, "10.10.5.23", "ph-feed/0.9.4 (Python/3.11.8)"),
        }

    # ---------------------------------------------------------------- events
    def conf(self, p, rtype):
        if p is None or rtype is None or rtype in UNLABELLED:
            return None
        if p.conf_all:
            return "V"
        if rtype == "Patient":
            return p.conf_p
        if p.mh and rtype in MH_TYPES:
            return "R"
        if p.sh and rtype in SH_TYPES:
            return "R"
        return "N"

    def kernel(self, t, a, p, rtype, action, conf):
        """The access decision: (outcome, basis, consents)."""
        if a.role == "patient":
            if p is a.patient:
                if conf == "R" and rtype == "DocumentReference":
                    return "deny", "scope", None   # restricted notes are not released to the portal
                return "permit", "own-record", None
            if p is not None and p in a.patient.proxies:
                return "permit", "consent", [p.consent]
            return "deny", "no-permit", None
        if a.role in ("service", "auditor", "admin"):
            return "permit", "role", None
        if p is None:
            return "permit", "custodian", None   # list searches are filtered to the organisation's records
        since = p.cust.get(a.org)
        if since is not None and since <= t:
            if conf == "R" and not a.clin and action != "create" and rtype in ("DocumentReference", "Condition"):
                return "deny", "role", None
            return "permit", "custodian", None
        if a.org == TELE and rtype in ("ImagingStudy", "ServiceRequest", "DiagnosticReport") and HOSP in p.cust:
            return "permit", "custodian", None     # reporting on the hospital's behalf
        if action == "create":
            return "permit", "custodian", None     # writing the record of one's own care contact
        if p.sharing == "consent":
            if conf == "R":
                return "deny", "consent-deny", [p.consent]   # restricted data stays with its custodian
            return "permit", "consent", [p.consent]
        if p.sharing == "opt-out":
            return "deny", "consent-deny", [p.consent]
        return "deny", "no-permit", None

    def set_cust(self, p, org, t):
        c = p.cust.get(org)
        if c is None or c > t:
            p.cust[org] = t

    def emit(self, t, a, p, action, rtype, count, ip, ua, purpose, label=None, bg=False, reason=None,
             outcome=None, basis=None, consents=None, account=None):
        if self.downtime[0] <= t < self.downtime[1]:
            if action not in ("create", "update") or label is not None:
                return          # nobody can read during the downtime; paper notes are typed in later
            t = self.downtime[1] + self.R_emit.uniform(2, 55) * MIN
        if t < 0 or t >= self.horizon:
            return
        conf = self.conf(p, rtype) if action not in ("login", "break-glass") else (
            None if action == "login" else self.conf(p, "Patient"))
        if basis == "unknown-patient":
            conf = None
        if outcome is None:
            if action == "login":
                outcome = "permit"
            elif bg:
                outcome, basis = "permit", "break-glass"
            else:
                outcome, basis, consents = self.kernel(t, a, p, rtype, action, conf)
        if self.outage[0] <= t < self.outage[1] or (action != "login" and self.R_emit.random() < .0006):
            outcome, basis, consents = "error", "undetermined", None
        ev = {"id": None, "time": None, "actor": a.actor, "patient": p.ref if p is not None else None,
              "action": action, "resource_type": rtype, "count": count if outcome == "permit" else 0,
              "purpose": purpose, "outcome": outcome, "break_glass": bool(bg), "confidentiality": conf,
              "source": {"ip": ip, "user_agent": ua}}
        if basis is not None:
            dec = {"basis": basis}
            if consents:
                dec["consents"] = list(consents)
            if bg and reason:
                dec["break_glass_reason"] = reason
            ev["decision"] = dec
        if account is not None:
            ev["account"] = account
        if action == "create" and outcome == "permit" and p is not None and a.org in CUSTODIAL:
            self.set_cust(p, a.org, t)
        self.rows.append((int(t * 1000), self.seq, ev, label))
        self.seq += 1
        if label is not None:
            self.n_labelled += 1

    def sess(self, post, R, ip=None, ua=None, purpose="TREAT", label=None, pace=(3, 25)):
        return Sess(self, post, R, ip, ua, purpose, label, pace)

    def login(self, post, t, R, ip, ua=None, purpose="TREAT", label=None, fail_rate=.03):
        """A sign-in; now and then mistyped passwords, rarely a lock-out that the service desk clears."""
        s = Sess(self, post, R, ip, ua, purpose, label, (4, 20))
        r = R.random()
        if r < fail_rate:
            for _ in range(R.randint(1, 2)):
                t = s.ev(t, None, "login", None, 0, outcome="deny", basis="bad-credentials")
        elif r < fail_rate * 1.15:
            for _ in range(5):
                t = s.ev(t, None, "login", None, 0, outcome="deny", basis="bad-credentials")
            t = s.ev(t, None, "login", None, 0, outcome="deny", basis="locked-out")
            self.lockouts.append((t, post))
            return t + R.uniform(8, 40) * MIN, False
        s.ev(t, None, "login", None, 0)
        return t + R.uniform(5, 40), True

    def chart(self, s, t, p, R, depth=1):
        """What a clinician opens to assess a patient: demographics, then the summary views."""
        k = p.rich
        t = s.ev(t, p, "read", "Patient")
        t = s.ev(t, p, "search", "AllergyIntolerance", R.randint(0, 3))   # the banner
        if R.random() < .7:
            t = s.ev(t, p, "search", "Flag", R.randint(0, 2))
        t = s.ev(t, p, "search", "Encounter", R.randint(1, 3 + 3 * k))
        t = s.ev(t, p, "search", "Observation", R.randint(5, 20 + 25 * k))        # vital signs
        if R.random() < .75:
            t = s.ev(t, p, "search", "Observation", R.randint(0, 30 + 40 * k))   # laboratory
        if R.random() < .85:
            t = s.ev(t, p, "search", "MedicationRequest", R.randint(0, 2 + 4 * k))
        if R.random() < .7:
            t = s.ev(t, p, "search", "Condition", R.randint(0, 1 + 3 * k))
        if depth >= 2:
            if R.random() < .5:
                t = s.ev(t, p, "search", "Procedure", R.randint(0, 1 + 2 * k))
            if R.random() < .7:
                t = s.ev(t, p, "search", "DiagnosticReport", R.randint(0, 2 + 4 * k))
            if R.random() < .6:
                t = s.ev(t, p, "read", "DocumentReference")
            if R.random() < .4:
                t = s.ev(t, p, "search", "DocumentReference", R.randint(1, 5 + 10 * k))
        return t

    def lab_order(self, R, t, p, src, urgent):
        if urgent:
            tr = t + R.uniform(45, 110) * MIN
        elif src == "gp":   # collected in the morning, the van reaches the lab at noon
            d = self.day_of(t)
            tr = d * DAY + R.uniform(14, 19.5) * HOUR
            if tr < t + 2 * HOUR:
                tr = t + R.uniform(3, 6) * HOUR
        else:
            tr = t + R.uniform(2, 6) * HOUR
        self.lab_orders.append((t, tr, p, src, urgent))
        if p.practice in self.results and (src == "gp" or (src in ("ed", "op") and R.random() < .4)):
            self.results[p.practice].append((tr, p))   # hospital results are copied to the GP
        dr = self.day_of(tr)
        if 0 <= dr < len(self.results_day):
            self.results_day[dr].add(p.num)

    def img_order(self, t, p, src, urgent):
        self.img_orders.append((t, p, src, urgent))

    def letter(self, R, t, p, kind):
        """A document for the patient's GP; the routing service picks it up shortly after."""
        if p.practice in self.letters:
            self.letters[p.practice].append((t, p, kind))
            ds = self.svc["docman"]
            Sess(self, ds, R, ds.ws[0], purpose="TREAT").ev(t + R.uniform(1, 20) * MIN, p, "read", "DocumentReference")

    def prescribe(self, s, t, p, R, n=None):
        """A prescription; the e-prescription gateway reads it to send it to the pharmacy."""
        t = s.ev(t, p, "create", "MedicationRequest", n or R.randint(1, 3))
        if s.a.org != HOSP:
            eps = self.svc["eps"]
            Sess(self, eps, R, eps.ws[0]).ev(t + R.uniform(20, 300), p, "read", "MedicationRequest")
        return t

    # ================================================================ phase A: demand
    def ooh_open(self, t):
        d = self.day_of(t)
        h = (t - d * DAY) / HOUR
        if 0 <= d < self.D and self.offday[d]:
            return True
        return h >= 18.5 or h < 8

    def flow_111(self):
        rate = self.a.patients * .004
        for d in range(self.D):
            R = self.rng("111", d)
            # the service covers a wider area: most callers are not on this record, the search finds nobody
            for _ in range(round(rate * 3 * (2.3 if self.offday[d] else 1.0))):
                t0 = d * DAY + self.hour_sample(R, CALL_CURVE)
                h = self.pick(R, t0, "call_handler")
                if h is not None:
                    s = self.sess(h, R, pace=(10, 60))
                    t = s.ev(t0, None, "search", "Patient", 0)
                    if R.random() < .4:
                        s.ev(t, None, "search", "Patient", R.randint(0, 1))
            n = max(2, round(rate * (2.3 if self.offday[d] else 1.0) * R.uniform(.8, 1.2)))
            for t0 in sorted(d * DAY + self.hour_sample(R, CALL_CURVE) for _ in range(n)):
                h = self.pick(R, t0, "call_handler", "clinical_advisor")
                if h is None:
                    continue
                s = self.sess(h, R, pace=(5, 40))
                if R.random() < .03:   # a visitor who is on nobody's list: a new record
                    t = s.ev(t0, None, "search", "Patient", 0)
                    p = self.new_patient(R, R.randint(18, 80), R.choice("FM"))
                    t = s.ev(t, p, "create", "Patient", outcome="permit", basis="unowned")
                else:
                    p = self.pick_all.pick(R)
                    t = s.ev(t0, None, "search", "Patient", R.randint(1, 8))
                    t = s.ev(t, p, "read", "Patient")
                t = s.ev(t, p, "create", "Encounter")
                if R.random() < .4:
                    ca = self.pick(R, t, "clinical_advisor")
                    if ca is not None:
                        s2 = self.sess(ca, R, pace=(8, 60))
                        t2 = s2.ev(t + R.uniform(5, 45) * MIN, p, "read", "Patient")
                        for rt in ("Condition", "MedicationRequest", "AllergyIntolerance"):
                            t2 = s2.ev(t2, p, "search", rt, R.randint(0, 6))
                        if R.random() < .3:
                            t2 = s2.ev(t2, p, "read", "DocumentReference")
                        t = s2.ev(t2 + R.uniform(3, 12) * MIN, p, "create", "DocumentReference")
                x = R.random()
                if x < .3 and self.ooh_open(t):
                    self.ooh_cases.append((t + R.uniform(5, 40) * MIN, p))
                elif x < .37:
                    ta = t + R.uniform(30, 150) * MIN
                    self.ed_referrals.setdefault(self.day_of(ta), []).append((ta, p, None))
                elif x < .6:
                    self.letter(R, t + R.uniform(5, 30) * MIN, p, "111")

    def admit(self, R, p, ward, t_in, src, los=None):
        lo, mean = {"amu": (.6, 2.5), "surg": (1, 3.5), "icu": (1.2, 3.5), "mat": (.8, 1.6)}[ward]
        days = los if los is not None else lo + R.expovariate(1 / (mean - lo))
        t_out = t_in + days * DAY
        if ward != "icu":   # discharges happen in the daytime
            t_out = int(t_out // DAY) * DAY + R.uniform(10, 18) * HOUR
            if t_out < t_in + 5 * HOUR:
                t_out = t_in + R.uniform(8, 26) * HOUR
        self.stays.append(Stay(p, ward, t_in, t_out, src))
        self.set_cust(p, HOSP, t_in)
        if ward == "icu":   # step down to a ward
            nxt = "surg" if src in ("elective", "news") or R.random() < .4 else "amu"
            self.admit(R, p, nxt, t_out, "transfer", los=(self.D + 5) if p is self.news_vip else None)

    def flow_ed(self):
        self.ed_rate = max(8.0, 7.5 * len(self.jobs_posts("ed_doctor")))
        for d in range(self.D):
            R = self.rng("ed", d)
            n = max(3, round(self.ed_rate * (1.12 if self.offday[d] else 1.0) * R.uniform(.85, 1.15)))
            arr = []
            for _ in range(n):
                t0 = d * DAY + self.hour_sample(R, ED_CURVE)
                if R.random() < .02:   # from out of the area: a new record, sometimes a duplicate
                    p = self.new_patient(R, R.randint(16, 90), R.choice("FM"))
                    if R.random() < .35:
                        p.dup_of = self.pick_adult.pick(R)
                    arr.append((t0, p, "new"))
                else:
                    arr.append((t0, self.pick_all.pick(R), None))
            arr += self.ed_referrals.get(d, [])
            if d == self.news_day:   # the local footballer, brought in after a crash
                arr.append((d * DAY + R.uniform(16, 17.5) * HOUR, self.news_vip, "news"))
            arr.sort(key=lambda x: (x[0], x[1].num))
            for t0, p, tag in arr:
                self.ed_visit(R, t0, p, tag)

    def ed_visit(self, R, t0, p, tag):
        rta = tag == "news" or (tag is None and R.random() < .07)
        injury = rta or R.random() < .18
        mh = (p.mh is not None and R.random() < .25) or R.random() < .035
        rec = self.pick(R, t0, "ed_reception", "ed_nurse")
        if rec is None:
            return
        s = self.sess(rec, R)
        if tag == "new":
            t = s.ev(t0, None, "search", "Patient", 0)
            t = s.ev(t, p, "create", "Patient", outcome="permit", basis="unowned")
        else:
            t = s.ev(t0, None, "search", "Patient", R.randint(1, 6))
        self.set_cust(p, HOSP, t)
        t = s.ev(t, p, "create", "Encounter")
        t = s.ev(t, p, "read", "Patient")
        if R.random() < .35:
            t = s.ev(t, p, "read", "RelatedPerson")
        if R.random() < .2:
            t = s.ev(t, p, "update", "Patient")
        # triage
        tn = t + R.uniform(2, 25) * MIN
        nurse = self.pick(R, tn, "ed_nurse", "ed_doctor")
        if nurse is None:
            return
        s = self.sess(nurse, R)
        t = s.ev(tn, p, "read", "Patient")
        t = s.ev(t, p, "search", "AllergyIntolerance", R.randint(0, 3))
        t = s.ev(t, p, "create", "Observation", R.randint(5, 8))
        t = s.ev(t, p, "update", "Encounter")
        # the doctor
        busy = 1.5 if 10 <= (t0 % DAY) / HOUR <= 22 else 1.0
        td = t + R.uniform(10, 110) * MIN * busy
        doc = self.pick(R, td, "ed_doctor")
        if doc is None:
            return
        s = self.sess(doc, R)
        t = td
        if p.sharing != "consent" and not p.hosp_history and R.random() < .6:
            # the GP record is not shared with the hospital: refused, then the glass is broken if it matters
            t = s.ev(t, p, "search", "MedicationRequest", 0, outcome="deny",
                     basis="consent-deny" if p.sharing == "opt-out" else "no-permit",
                     consents=[p.consent] if p.sharing == "opt-out" else None)
            if R.random() < .55 or tag == "news":
                t = s.glass(t + R.uniform(10, 60), p, R.choice(ED_BG_REASONS))
        t = self.chart(s, t, p, R, 2)
        t = s.ev(t, p, "create", "DocumentReference")
        tr = None
        if R.random() < .85 or tag == "news":
            t = s.ev(t, p, "create", "ServiceRequest", R.randint(1, 3))
            self.lab_order(R, t, p, "ed", True)
            tr = self.lab_orders[-1][1]
        if R.random() < .4 or rta:
            t = s.ev(t, p, "create", "ServiceRequest")
            self.img_order(t, p, "ed", True)
        if R.random() < .5:
            t = self.prescribe(s, t, p, R)
        dispo = td + R.uniform(60, 240) * MIN
        if tr is not None and tr < dispo:
            d2 = self.pick(R, tr + 5 * MIN, "ed_doctor") or doc
            s2 = self.sess(d2, R)
            t2 = s2.ev(tr + R.uniform(5, 40) * MIN, p, "search", "Observation", R.randint(8, 40))
            t2 = s2.ev(t2, p, "read", "DiagnosticReport")
        tt = tn + R.uniform(50, 80) * MIN
        while tt < dispo:   # observations while waiting
            n2 = self.pick(R, tt, "ed_nurse")
            if n2 is not None:
                sn2 = self.sess(n2, R)
                t2 = sn2.ev(tt, p, "read", "Patient")
                if R.random() < .5:
                    t2 = sn2.ev(t2, p, "search", "Observation", R.randint(3, 20))
                sn2.ev(t2, p, "create", "Observation", R.randint(4, 7))
            tt += R.uniform(50, 100) * MIN
        d3 = self.pick(R, dispo, "ed_doctor") or doc
        s3 = self.sess(d3, R)
        admit = tag == "news" or R.random() < (.36 if p.age >= 70 else .14 + (.12 if rta else 0))
        if admit:
            if tag == "news" or R.random() < .1:
                ward = "icu"
            elif p.preg and R.random() < .5:
                ward = "mat"
            elif (injury and R.random() < .6) or R.random() < .15:
                ward = "surg"
            else:
                ward = "amu"
            t = s3.ev(dispo, p, "create", "ServiceRequest")   # referral to the admitting team
            t = s3.ev(t, p, "update", "Encounter")
            self.admit(R, p, ward, dispo + R.uniform(20, 150) * MIN, "news" if tag == "news" else "ed")
        else:
            t = s3.ev(dispo, p, "create", "DocumentReference")   # discharge letter
            t = s3.ev(t, p, "update", "Encounter")
            self.letter(R, dispo + R.uniform(10, 600) * MIN, p, "ed")
        self.ed_visits.append((t0, p, rta, injury, rec.uid, dispo))
        if p.age < 16 or (p.age >= 75 and injury and R.random() < .5) or (mh and R.random() < .4):
            self.safeguard_queue.append((dispo, p))
        if mh:
            self.mh_referrals.append((td + R.uniform(30, 150) * MIN, p))

    def flow_ed_board(self):
        """The department's tracking board, refreshed by everyone on shift all the time."""
        arr = sorted((v[0], v[5]) for v in self.ed_visits)
        for job in ("ed_doctor", "ed_nurse", "ed_reception"):
            for p in self.jobs_posts(job):
                for (s, e) in p.shifts:
                    R = self.rng("ed-board", p.idx, int(s))
                    sb = self.sess(p, R)
                    t = s + R.uniform(5, 20) * MIN
                    while t < e:
                        n = sum(1 for a, b in arr[max(0, bisect.bisect_left(arr, (t - DAY, 0))):
                                                  bisect.bisect_right(arr, (t, 1e18))] if b > t)
                        sb.ev(t, None, "search", "Encounter", n)
                        t += R.uniform(8, 30) * MIN

    def initial_census(self):
        R = self.rng("census")
        beds = {"amu": 2.5 * len(self.jobs_posts("amu_nurse")), "surg": 2.5 * len(self.jobs_posts("surg_nurse")),
                "icu": 1.0 * len(self.jobs_posts("icu_nurse")), "mat": 1.0 * len(self.jobs_posts("midwife"))}
        for ward in ("amu", "surg", "icu", "mat"):
            for _ in range(max(2, round(beds[ward] * .8))):
                if ward == "mat" and self.preg_pool:
                    p = self.preg_pool[R.randrange(len(self.preg_pool))]
                else:
                    p = self.pick_adult.pick(R)
                p.hosp_history = True
                self.set_cust(p, HOSP, NEVER)
                t_in = -R.uniform(.2, 6) * DAY
                t_out = max(R.uniform(.3, 1.5) * DAY, t_in + R.uniform(1, 9) * DAY)
                t_out = int(t_out // DAY) * DAY + R.uniform(10, 18) * HOUR
                self.stays.append(Stay(p, ward, t_in, t_out, "census"))

    def flow_planned(self):
        """Elective surgery and births: planned or spontaneous admissions that do not come through ED."""
        elect = [p for p in self.patients if 30 <= p.age <= 88]
        pk = Picker(elect, [p.w for p in elect])
        for d in range(self.D):
            R = self.rng("planned", d)
            if not self.offday[d]:
                for _ in range(R.randint(1, max(1, len(self.jobs_posts("surg_doctor")) - 1))):
                    p = pk.pick(R)   # major surgery goes to ICU first
                    ward = "icu" if R.random() < .15 else "surg"
                    self.admit(R, p, ward, d * DAY + R.uniform(7, 8.5) * HOUR, "elective")
            births = sum(1 for _ in range(len(self.jobs_posts("midwife"))) if R.random() < .3)
            for _ in range(births):
                if not self.preg_pool:
                    break
                m = self.preg_pool[R.randrange(len(self.preg_pool))]
                t_in = d * DAY + R.uniform(0, 24) * HOUR
                self.admit(R, m, "mat", t_in, "labour")
                mother_stay = self.stays[-1]
                t_b = t_in + R.uniform(1, 10) * HOUR
                mw = self.pick(R, t_b, "midwife", "obstetrician")
                if mw is None:
                    continue
                baby = self.new_patient(R, 0, R.choice("FM"), m.practice, m.hh, m.sector)
                s = self.sess(mw, R)
                t = s.ev(t_b + R.uniform(20, 90) * MIN, baby, "create", "Patient", outcome="permit", basis="unowned")
                self.set_cust(baby, HOSP, t)
                t = s.ev(t, baby, "create", "Encounter")
                t = s.ev(t, baby, "create", "Observation", R.randint(4, 9))
                t = s.ev(t, baby, "create", "RelatedPerson")
                self.stays.append(Stay(baby, "mat", t, max(t + 6 * HOUR, mother_stay.t_out), "born"))
                self.households.setdefault(m.hh, []).append(baby)

    def flow_day_surgery(self):
        cand = [p for p in self.patients if 25 <= p.age <= 85]
        pk = Picker(cand, [p.w for p in cand])
        for d in range(self.D):
            if self.offday[d]:
                continue
            R = self.rng("daysurg", d)
            for i in range(R.randint(3, 4 + 2 * max(1, len(self.jobs_posts("daysurg_nurse"))))):
                p = pk.pick(R)
                ta = d * DAY + 7.5 * HOUR + i * R.uniform(15, 30) * MIN
                self.set_cust(p, HOSP, ta)
                n = self.pick(R, ta, "daysurg_nurse", "surg_nurse")
                if n is None:
                    continue
                s = self.sess(n, R)
                t = s.ev(ta, p, "read", "Patient")
                t = s.ev(t, p, "create", "Encounter")
                t = s.ev(t, p, "search", "AllergyIntolerance", R.randint(0, 3))
                t = s.ev(t, p, "create", "Observation", R.randint(4, 8))
                an = self.pick(R, t + 30 * MIN, "anaesthetist", "surg_doctor", "icu_doctor")
                if an is not None:
                    s2 = self.sess(an, R)
                    t2 = self.chart(s2, t + R.uniform(20, 60) * MIN, p, R, 2)
                    s2.ev(t2, p, "create", "DocumentReference")
                tp = ta + R.uniform(1.5, 4.5) * HOUR
                su = self.pick(R, tp, "surg_doctor", "anaesthetist")
                if su is not None:
                    s3 = self.sess(su, R)
                    t3 = s3.ev(tp, p, "read", "Patient")
                    t3 = s3.ev(t3, p, "create", "Procedure")
                    s3.ev(t3 + R.uniform(5, 20) * MIN, p, "create", "DocumentReference")
                td = max(tp + 2 * HOUR, d * DAY + R.uniform(13, 17.5) * HOUR)
                n2 = self.pick(R, td, "daysurg_nurse", "surg_nurse") or n
                s4 = self.sess(n2, R)
                t4 = s4.ev(td, p, "create", "Observation", R.randint(3, 6))
                t4 = s4.ev(t4, p, "create", "DocumentReference")
                t4 = s4.ev(t4, p, "update", "Encounter")
                self.letter(R, t4 + R.uniform(1, 48) * HOUR, p, "day-case")
                self.coding_queue.append((td, p))
                self.discharge_day[min(self.D + 1, self.day_of(td))].add(p.num)

    def flow_outpatients(self):
        R0 = self.rng("op-cohorts")
        cohorts = {}
        for c in self.jobs_posts("op_consultant"):
            if c.specialty == "sexual-health":
                pool = [p for p in self.patients if 16 <= p.age <= 55 and not p.vip]
            else:
                pool = [p for p in self.patients if p.age >= 18]
            pk = Picker(pool, [p.w * (2 if p.hosp_history else 1) for p in pool])
            coh, seen = [], set()
            while len(coh) < min(100, len(pool)):
                p = pk.pick(R0)
                if p.num not in seen:
                    seen.add(p.num)
                    coh.append(p)
            if c.specialty == "sexual-health":
                for p in coh:
                    p.sh = True
            cohorts[c.uid] = (coh, pk)
        self.op_lists = {}
        for d in range(self.D):
            if self.offday[d]:
                continue
            for (s, e, c) in self.shifts_of("op_consultant", d):
                R = self.rng("op", c.uid, d)
                coh, pk = cohorts[c.uid]
                for st in [9 * HOUR] + ([13.5 * HOUR] if R.random() < .55 else []):
                    clinic = []
                    tt = d * DAY + st
                    rec0 = self.pick(R, tt - 20 * MIN, "op_reception", "records_clerk", "op_nurse")
                    if rec0 is not None:   # the day's list
                        self.sess(rec0, R).ev(tt - R.uniform(10, 30) * MIN, None, "search", "Appointment",
                                              R.randint(8, 14))
                    for i in range(R.randint(8, 12)):
                        new = R.random() < .3
                        p = pk.pick(R) if new else coh[R.randrange(len(coh))]
                        if new and c.specialty == "sexual-health":
                            p.sh = True
                        clinic.append(p)
                        ts = tt + R.uniform(0, 10) * MIN
                        tt += (30 if new else 20) * MIN
                        self.set_cust(p, HOSP, ts - 15 * MIN)
                        rec = self.pick(R, ts - 10 * MIN, "op_reception", "records_clerk", "op_nurse")
                        if rec is not None:
                            sr = self.sess(rec, R)
                            t = sr.ev(ts - R.uniform(5, 15) * MIN, p, "read", "Patient")
                            sr.ev(t, p, "update", "Appointment")
                        if R.random() < .5:
                            on = self.pick(R, ts, "op_nurse")
                            if on is not None:
                                so = self.sess(on, R)
                                t = so.ev(ts - R.uniform(2, 8) * MIN, p, "read", "Patient")
                                so.ev(t, p, "create", "Observation", R.randint(3, 6))
                        sc = self.sess(c, R)
                        t = self.chart(sc, ts, p, R, 2 if new else 1)
                        if R.random() < .3:
                            t = sc.ev(t, p, "create", "ServiceRequest")
                            if R.random() < .6:
                                self.lab_order(R, t, p, "op", False)
                            else:
                                self.img_order(t, p, "op", False)
                        if R.random() < .15:
                            t = self.prescribe(sc, t, p, R)
                        sc.ev(t + R.uniform(1, 5) * MIN, p, "create", "Encounter")
                    # letters dictated at the end of the clinic
                    sc = self.sess(c, R, pace=(60, 240))
                    t = tt + R.uniform(10, 40) * MIN
                    for p in clinic:
                        t = sc.ev(t, p, "create", "DocumentReference")
                        self.dictations.append((t, p))
                        self.letter(R, t + R.uniform(1, 4) * DAY, p, "clinic")
                    self.op_lists.setdefault(d, []).extend(clinic)
                # some consultants look at results from home in the evening, over Citrix
                if R.random() < .25:
                    te = d * DAY + R.uniform(19, 22) * HOUR
                    ip = R.choice(CITRIX_IPS)
                    te, ok = self.login(c, te, R, ip)
                    if ok:
                        sc = self.sess(c, R, ip=ip)
                        for _ in range(R.randint(2, 5)):
                            p = coh[R.randrange(len(coh))]
                            te = sc.ev(te, p, "search", "Observation", R.randint(5, 30))
                            te = sc.ev(te, p, "read", "DiagnosticReport")
                            te += R.uniform(1, 5) * MIN

    def flow_cmht(self):
        cpns = self.jobs_posts("cpn")
        coord = {p.num: cpns[i % len(cpns)] for i, p in enumerate(self.cmht_caseload)} if cpns else {}
        therapy = self.cmht_caseload[::3]
        for d in range(self.D):
            R = self.rng("cmht", d)
            for job in ("psychiatrist", "cpn", "psychologist"):
                for (s, e, c) in self.shifts_of(job, d):
                    own = [p for p in self.cmht_caseload if coord.get(p.num) is c] if job == "cpn" else (
                        therapy if job == "psychologist" else self.cmht_caseload)
                    if not own or (self.offday[d] and job == "cpn"):
                        continue   # the weekend duty worker covers liaison only
                    t = s + R.uniform(20, 50) * MIN
                    for _ in range(R.randint(3, 5)):
                        p = own[R.randrange(len(own))]
                        ip = None
                        if job == "cpn" and R.random() < .55:   # home visit, laptop over the VPN
                            ip = vpn_ip(R)
                            t, ok = self.login(c, t, R, ip)
                        sc = self.sess(c, R, ip=ip)
                        t = sc.ev(t, p, "read", "Patient")
                        t = sc.ev(t, p, "search", "Encounter", R.randint(2, 20))
                        t = sc.ev(t, p, "search", "DocumentReference", R.randint(2, 30))
                        t = sc.ev(t, p, "read", "DocumentReference")
                        if job == "psychiatrist" or R.random() < .4:
                            t = sc.ev(t, p, "search", "MedicationRequest", R.randint(1, 8))
                        t += R.uniform(30, 60) * MIN
                        t = sc.ev(t, p, "create", "DocumentReference")
                        t = sc.ev(t, p, "create", "Encounter")
                        if R.random() < .3:
                            t = sc.ev(t, p, "update", "CarePlan")
                        if job == "psychiatrist" and R.random() < .3:
                            t = self.prescribe(sc, t, p, R)
                            self.letter(R, t + R.uniform(1, 3) * DAY, p, "cmht")
                        t += R.uniform(15, 60) * MIN
                        if t > e - 30 * MIN:
                            break
            for (s, e, c) in self.shifts_of("cmht_admin", d):
                sa = self.sess(c, R, pace=(10, 60))
                t = s + R.uniform(10, 30) * MIN
                for _ in range(R.randint(8, 18)):
                    p = self.cmht_caseload[R.randrange(len(self.cmht_caseload))]
                    t = sa.ev(t, p, "read", "Patient")
                    if R.random() < .5:
                        t = sa.ev(t, p, "create", "Appointment")
                    else:
                        t = sa.ev(t, p, "read", "DocumentReference")   # typing a letter
                        t = sa.ev(t, p, "create", "DocumentReference")
                        self.letter(R, t + R.uniform(1, 3) * DAY, p, "cmht")
                    t += R.uniform(5, 25) * MIN
            # the weekly MDT in the meeting room
            if self.dates[d].weekday() == 2 and not self.offday[d]:
                tm = d * DAY + 10 * HOUR
                att = [p for j in ("psychiatrist", "cpn", "psychologist") for p in self.on_duty(j, tm)]
                lst = R.sample(self.cmht_caseload, min(len(self.cmht_caseload), R.randint(12, 20)))
                for a in att:
                    sm = self.sess(a, R, ip=self.cmht_meeting)
                    t = tm + R.uniform(0, 5) * MIN
                    for p in lst:
                        if R.random() < .6:
                            t = sm.ev(t, p, "read", "DocumentReference")
                            if R.random() < .4:
                                t = sm.ev(t, p, "search", "Condition", R.randint(1, 6))
                        t += R.uniform(2, 6) * MIN
        # mental-health liaison in the emergency department
        for (t0, p) in sorted(self.mh_referrals, key=lambda x: (x[0], x[1].num)):
            R = self.rng("liaison", p.num, int(t0))
            d = self.day_of(t0)
            h = (t0 - d * DAY) / HOUR
            if h >= 17 or h < 9:
                t0 = (d + (1 if h >= 17 else 0)) * DAY + R.uniform(9, 11) * HOUR
            c = self.pick(R, t0, "cpn", "psychiatrist")
            if c is None:
                continue
            ip = None
            if R.random() < .5:   # from the team laptop over the VPN
                ip = vpn_ip(R)
                t0, ok = self.login(c, t0, R, ip)
            sc = self.sess(c, R, ip=ip)
            t = sc.ev(t0, p, "read", "Patient")
            t = sc.ev(t, p, "search", "Encounter", R.randint(1, 8))
            t = sc.ev(t, p, "read", "DocumentReference")
            t = sc.ev(t, p, "search", "Observation", R.randint(3, 20))
            t = sc.ev(t + R.uniform(20, 50) * MIN, p, "create", "DocumentReference")
            sc.ev(t, p, "create", "Encounter")

    def flow_ooh(self):
        cases = list(self.ooh_cases)
        for d in range(self.D):   # walk-ins at the base on weekends and bank holidays
            if self.offday[d]:
                R = self.rng("ooh-walkin", d)
                for _ in range(R.randint(2, 5)):
                    cases.append((d * DAY + R.uniform(9, 20) * HOUR, self.pick_all.pick(R)))
        cases.sort(key=lambda x: (x[0], x[1].num))
        for (t0, p) in cases:
            R = self.rng("ooh", p.num, int(t0))
            rec = self.pick(R, t0, "ooh_reception", "ooh_gp")
            if rec is None:
                continue
            s = self.sess(rec, R)
            t = s.ev(t0, None, "search", "Patient", R.randint(1, 5))
            t = s.ev(t, p, "create", "Encounter")
            t = s.ev(t, p, "read", "Patient")
            tc = t + R.uniform(20, 180) * MIN
            g = self.pick(R, tc, "ooh_gp")
            if g is None:
                continue
            visit = R.random() < .15
            ip = ua = None
            if visit:   # out in the car with a tablet
                ip, ua = cgnat(R), ANDROID_TAB_UA
                tc, ok = self.login(g, tc, R, ip, ua)
            sg = self.sess(g, R, ip=ip, ua=ua)
            t = sg.ev(tc, p, "read", "Patient")
            t = sg.ev(t, p, "search", "Condition", R.randint(0, 10))
            denied = p.sharing != "consent"
            if denied and R.random() < .35:
                t = sg.glass(t + R.uniform(10, 60), p, R.choice(OOH_BG_REASONS))
                t = sg.ev(t, p, "search", "Condition", R.randint(0, 10))
            t = sg.ev(t, p, "search", "MedicationRequest", R.randint(0, 12))
            t = sg.ev(t, p, "search", "AllergyIntolerance", R.randint(0, 3))
            if R.random() < .5:
                t = sg.ev(t, p, "search", "DocumentReference", R.randint(0, 15))
                t = sg.ev(t, p, "read", "DocumentReference")
            t += R.uniform(5, 25) * MIN
            if R.random() < .35:
                t = self.prescribe(sg, t, p, R)
            t = sg.ev(t, p, "create", "DocumentReference")
            self.letter(R, t + R.uniform(5, 60) * MIN, p, "ooh")
            if R.random() < .08:
                ta = t + R.uniform(30, 90) * MIN
                self.ed_referrals.setdefault(self.day_of(ta), []).append((ta, p, None))

    # ================================================================ phase B: hospital wards
    def census(self, stays, t0, t1):
        return [st for st in stays if st.t_in < t1 and st.t_out > t0]

    def flow_wards(self):
        self.stays.sort(key=lambda st: (st.t_in, st.p.num))
        surg_students = {}
        for stu in self.jobs_posts("student"):
            surg_students.setdefault(stu.supervisor.uid if stu.supervisor else None, []).append(stu)
        for wkey, (njob, djob, dept) in WARDS.items():
            stays = [st for st in self.stays if st.ward == wkey]
            for d in range(self.D):
                R = self.rng("ward", wkey, d)
                # nursing: patients shared out among the nurses on each shift
                groups = {}
                for (s, e, n) in self.shifts_of(njob, d):
                    groups.setdefault(0 if s - d * DAY < 15 * HOUR else 1, []).append((s, e, n))
                for gk in sorted(groups):
                    grp = sorted(groups[gk], key=lambda x: x[2].uid)
                    gs, ge = min(x[0] for x in grp), max(x[1] for x in grp)
                    cen = self.census(stays, gs, ge)
                    for i, (s, e, n) in enumerate(grp):
                        mine = [st for j, st in enumerate(cen) if j % len(grp) == i]
                        self.nurse_shift(R, n, s, e, mine, wkey, len(cen))
                # morning bloods
                for st in self.census(stays, d * DAY + 6 * HOUR, d * DAY + 7 * HOUR):
                    if R.random() < .6 and st.p.age > 0:
                        tb = d * DAY + R.uniform(6.5, 9) * HOUR
                        ph = self.pick(R, tb, "phlebotomist", njob)
                        if ph is not None:
                            vlan = {"amu": 11, "surg": 12, "icu": 13, "mat": 14}[wkey]
                            sb = self.sess(ph, R, ip=R.choice(self.hosp_ws[vlan]))
                            t = sb.ev(tb, st.p, "read", "Patient")
                            t = sb.ev(t, st.p, "search", "ServiceRequest", R.randint(1, 3))
                            tb = sb.ev(t, st.p, "create", "Specimen")
                        self.lab_order(R, tb, st.p, "ward", False)
                # the ward round and afternoon jobs
                docs = [x for x in self.shifts_of(djob, d) if x[0] - d * DAY < 12 * HOUR]
                if not docs and wkey == "icu":
                    docs = [x for x in self.shifts_of("amu_doctor", d) if x[0] - d * DAY < 12 * HOUR][:1]
                if docs:
                    cen = self.census(stays, d * DAY + 9 * HOUR, d * DAY + 12 * HOUR)
                    for i, (s, e, doc) in enumerate(docs):
                        mine = [st for j, st in enumerate(cen) if j % len(docs) == i]
                        self.ward_round(R, doc, s, e, mine, wkey, surg_students.get(doc.uid, []))
                # admissions clerked, discharges written
                for st in stays:
                    if d * DAY <= st.t_in < (d + 1) * DAY and st.src not in ("census", "born"):
                        self.clerk_admission(R, st, djob)
                    if d * DAY <= st.t_out < (d + 1) * DAY and wkey != "icu":
                        self.discharge(R, st, djob)

    def nurse_shift(self, R, n, s, e, pts, ward, census_n):
        sn = self.sess(n, R, pace=(4, 30))
        t = sn.ev(s + R.uniform(5, 25) * MIN, None, "search", "Encounter", census_n)
        tb = t + R.uniform(30, 90) * MIN
        while tb < e - 15 * MIN:   # the ward list, refreshed through the shift
            self.sess(n, R).ev(tb, None, "search", "Encounter", census_n)
            tb += R.uniform(40, 120) * MIN
        for st in pts:
            p = st.p
            if st.t_in > s + 30 * MIN:   # arrives during the shift: admission assessment
                sa = self.sess(n, R)
                ta = sa.ev(st.t_in + R.uniform(5, 30) * MIN, p, "read", "Patient")
                ta = sa.ev(ta, p, "search", "AllergyIntolerance", R.randint(0, 3))
                ta = sa.ev(ta, p, "create", "Observation", R.randint(5, 8))
                ta = sa.ev(ta, p, "search", "MedicationRequest", R.randint(0, 12))
                sa.ev(ta, p, "create", "CarePlan")
            else:   # handover
                t = sn.ev(t, p, "read", "Patient")
                t = sn.ev(t, p, "search", "AllergyIntolerance", R.randint(0, 3))
                t = sn.ev(t, p, "search", "Observation", R.randint(5, 40))
                if R.random() < .6:
                    t = sn.ev(t, p, "read", "CarePlan")
                t = sn.ev(t, p, "search", "MedicationRequest", R.randint(1, 12)) + R.uniform(1, 4) * MIN
        # observations on the clock: hourly in ICU, two- or four-hourly on the wards as acuity demands
        for st in pts:
            step = HOUR if ward == "icu" else (2 * HOUR if R.random() < .3 else 4 * HOUR)
            r = (s // step + 1) * step
            while r < e - 20 * MIN:
                tt = r + R.uniform(0, 25) * MIN
                if st.t_in <= tt < st.t_out:
                    so = self.sess(n, R)
                    tt = so.ev(tt, st.p, "read", "Patient")   # wristband scan
                    if R.random() < .4:
                        tt = so.ev(tt, st.p, "search", "Observation", R.randint(3, 20))
                    so.ev(tt, st.p, "create", "Observation", R.randint(4, 8))
                r += step
        # medicine rounds
        d0 = int(s // DAY) * DAY
        for mh in (8, 12, 18, 22, 30):
            tm = d0 + mh * HOUR
            if not s < tm < e:
                continue
            sm = self.sess(n, R, pace=(15, 60))
            tt = tm + R.uniform(0, 20) * MIN
            for st in pts:
                if st.t_in <= tt < st.t_out and R.random() < .9:
                    tt = sm.ev(tt, st.p, "read", "Patient")   # wristband scan
                    tt = sm.ev(tt, st.p, "search", "MedicationRequest", R.randint(1, 12))
                    tt = sm.ev(tt, st.p, "create", "MedicationAdministration", R.randint(1, 5)) + R.uniform(1, 4) * MIN
        # looks in between and notes at the end
        for st in pts:
            a, b = max(s, st.t_in), min(e, st.t_out)
            if b - a < 30 * MIN:
                continue
            for _ in range(R.randint(1, 5)):
                sx = self.sess(n, R)
                tx = sx.ev(R.uniform(a, b), st.p, "read", "Patient")
                for rt in R.sample(("DiagnosticReport", "Observation", "DocumentReference", "CarePlan",
                                    "MedicationRequest"), R.randint(1, 3)):
                    act = "read" if rt in ("DocumentReference", "CarePlan") else "search"
                    tx = sx.ev(tx, st.p, act, rt, R.randint(1, 20) if act == "search" else 1)
            if st.t_out > e - 45 * MIN:
                sx = self.sess(n, R)
                tt = e - R.uniform(20, 70) * MIN
                if R.random() < .7:
                    sx.ev(tt, st.p, "create", "DocumentReference")
                else:
                    sx.ev(tt, st.p, "update", "CarePlan")

    def ward_round(self, R, doc, s, e, pts, ward, students):
        sd = self.sess(doc, R, pace=(5, 35))
        t = max(s + 45 * MIN, int(s // DAY) * DAY + 9 * HOUR)
        for st in pts:
            p = st.p
            t = self.chart(sd, t, p, R, 2 if R.random() < .4 else 1)
            t = sd.ev(t + R.uniform(2, 8) * MIN, p, "create", "DocumentReference")
            if R.random() < .35:
                t = sd.ev(t, p, "create", "ServiceRequest")
                if R.random() < .75:
                    self.lab_order(R, t, p, "ward", R.random() < .3)
                else:
                    self.img_order(t, p, "ward", R.random() < .3)
            if R.random() < .3:
                t = sd.ev(t, p, "update", "MedicationRequest")
            if R.random() < .2:
                t = self.prescribe(sd, t, p, R)
            for stu in students:   # the student follows and reads along
                if stu.shifts and any(a <= t < b for a, b in stu.shifts) and R.random() < .6:
                    ss = self.sess(stu, R)
                    tt = ss.ev(t + R.uniform(3, 15) * MIN, p, "read", "Patient")
                    tt = ss.ev(tt, p, "search", "Observation", R.randint(5, 30))
                    ss.ev(tt, p, "read", "DocumentReference")
            t += R.uniform(3, 12) * MIN
        # afternoon: results and jobs
        for st in pts:
            if R.random() < .35:
                ta = int(s // DAY) * DAY + R.uniform(14, 17) * HOUR
                if st.t_in <= ta < st.t_out and ta < e:
                    sa = self.sess(doc, R)
                    ta = sa.ev(ta, st.p, "search", "Observation", R.randint(5, 40))
                    sa.ev(ta, st.p, "read", "DiagnosticReport")

    def clerk_admission(self, R, st, djob):
        ta = st.t_in + R.uniform(15, 90) * MIN
        doc = self.pick(R, ta, djob, "amu_doctor", "surg_doctor", "icu_doctor", "midwife")
        if doc is None:
            return
        s = self.sess(doc, R)
        t = self.chart(s, ta, st.p, R, 2)
        t = s.ev(t + R.uniform(5, 20) * MIN, st.p, "create", "DocumentReference")
        if R.random() < .6:
            t = s.ev(t, st.p, "create", "ServiceRequest", R.randint(1, 3))
            self.lab_order(R, t, st.p, "ward", True)
        if R.random() < .5:
            self.prescribe(s, t, st.p, R)

    def discharge(self, R, st, djob):
        p = st.p
        tw = st.t_out - R.uniform(1.5, 3) * HOUR
        doc = self.pick(R, tw, djob, "amu_doctor", "surg_doctor", "midwife", "ed_doctor")
        if doc is not None:
            s = self.sess(doc, R)
            t = s.ev(tw, p, "read", "Patient")
            t = s.ev(t, p, "search", "Observation", R.randint(5, 30))
            t = s.ev(t + R.uniform(3, 15) * MIN, p, "create", "DocumentReference")   # discharge summary
            if p.age > 0:
                self.prescribe(s, t, p, R)
        n = self.pick(R, st.t_out, WARDS[st.ward][0])
        if n is not None:
            self.sess(n, R).ev(st.t_out - R.uniform(0, 20) * MIN, p, "update", "Encounter")
        self.letter(R, st.t_out + R.uniform(.2, 30) * HOUR, p, "discharge")
        self.coding_queue.append((st.t_out, p))
        self.discharge_day[min(self.D + 1, max(0, self.day_of(st.t_out)))].add(p.num)
        if p.age >= 75 and not p.dn and not p.carehome and R.random() < .25:
            self.dn_referrals.append((st.t_out + R.uniform(.5, 2) * DAY, p))

    def flow_pharmacy(self):
        wards = [st for st in self.stays if st.ward in ("amu", "surg", "icu") and st.p.age > 0]
        for d in range(self.D):
            R = self.rng("pharmacy", d)
            ph = self.shifts_of("pharmacist", d)
            if not ph:
                continue
            s0 = min(x[0] for x in ph)
            new = [st for st in wards if s0 - 24 * HOUR <= st.t_in < s0 + 5 * HOUR and st.src != "transfer"]
            other = [st for st in self.census(wards, s0, s0 + 6 * HOUR) if st not in new and R.random() < .25]
            for i, st in enumerate(new + other):
                s, e, p = ph[i % len(ph)]
                t = max(s + R.uniform(20, 60) * MIN, st.t_in + 30 * MIN) + (i // len(ph)) * R.uniform(8, 15) * MIN
                if not st.t_in <= t < min(st.t_out, e):
                    continue
                sp = self.sess(p, R)
                t = sp.ev(t, st.p, "read", "Patient")
                t = sp.ev(t, st.p, "search", "MedicationRequest", R.randint(2, 15))
                if st in new:   # medicines reconciliation against the GP record
                    t = sp.ev(t, st.p, "search", "MedicationStatement", R.randint(0, 10))
                    t = sp.ev(t, st.p, "create", "MedicationStatement")
                if R.random() < .3:
                    t = sp.ev(t, st.p, "search", "Observation", R.randint(2, 15))
                if R.random() < .4:
                    sp.ev(t, st.p, "update", "MedicationRequest")
            for st in wards:   # medicines to take home
                if d * DAY <= st.t_out < (d + 1) * DAY:
                    tc = st.t_out - R.uniform(40, 90) * MIN
                    p = self.pick(R, tc, "pharmacist")
                    if p is not None:
                        sp = self.sess(p, R)
                        t = sp.ev(tc, st.p, "read", "MedicationRequest")
                        sp.ev(t, st.p, "update", "MedicationRequest")

    def flow_clerks_porters(self):
        movers = [st for st in self.stays if st.ward in ("amu", "surg")]
        for d in range(self.D):
            R = self.rng("clerks", d)
            for (s, e, c) in self.shifts_of("ward_clerk", d):
                ward = "amu" if (c.dept or "acute-medical-unit") == "acute-medical-unit" else "surg"
                sc = self.sess(c, R, pace=(5, 30))
                tt = s + 15 * MIN
                while tt < e - 30 * MIN:   # the bed state
                    n = len(self.census([m for m in movers if m.ward == ward], tt, tt + 1))
                    sc.ev(tt, None, "search", "Encounter", n)
                    tt += R.uniform(50, 100) * MIN
                for st in movers:
                    if st.ward != ward:
                        continue
                    for te in (st.t_in, st.t_out):
                        if s <= te < e:
                            t = sc.ev(te + R.uniform(5, 40) * MIN, st.p, "read", "Patient")
                            sc.ev(t, st.p, "update", "Encounter")
            # porters take discharged and transferred patients; the app shows the task and the patient
            for st in self.stays:
                for te in (st.t_in if st.src == "transfer" else None, st.t_out if R.random() < .3 else None):
                    if te is None or not d * DAY <= te < (d + 1) * DAY:
                        continue
                    po = self.pick(R, te, "porter")
                    if po is not None:
                        sp = self.sess(po, R)
                        t = sp.ev(te - R.uniform(5, 25) * MIN, st.p, "read", "Task")
                        sp.ev(t, st.p, "read", "Patient")

    def flow_therapies(self):
        """Physiotherapists and occupational therapists: inpatients across both wards."""
        wards = [st for st in self.stays if st.ward in ("amu", "surg", "icu") and st.p.age >= 16]
        for d in range(self.D):
            R = self.rng("therapies", d)
            th = self.shifts_of("therapist", d)
            if not th:
                continue
            cen = [st for st in self.census(wards, d * DAY + 10 * HOUR, d * DAY + 11 * HOUR)
                   if R.random() < (.7 if st.p.age >= 70 or st.ward == "icu" else .3)]
            for i, (s, e, t_) in enumerate(th):
                sx = self.sess(t_, R, ip=None)
                t = s + R.uniform(20, 50) * MIN
                for st in cen[i::len(th)]:
                    sx.ip = R.choice(self.hosp_ws[{"amu": 11, "surg": 12, "icu": 13}[st.ward]])
                    t = sx.ev(t, st.p, "read", "Patient")
                    t = sx.ev(t, st.p, "search", "Observation", R.randint(3, 30))
                    t = sx.ev(t, st.p, "read", "CarePlan")
                    if R.random() < .5:
                        t = sx.ev(t, st.p, "read", "DocumentReference")
                    t += R.uniform(20, 40) * MIN
                    t = sx.ev(t, st.p, "create", "Procedure")
                    t = sx.ev(t, st.p, "create", "DocumentReference") + R.uniform(5, 15) * MIN
                    if t > e - 20 * MIN:
                        break

    def flow_patient_flow(self):
        """Bed managers: the whole hospital's lists, and a look at everyone moving or waiting."""
        for d in range(self.D):
            R = self.rng("flow", d)
            for (s, e, b) in self.shifts_of("bed_manager", d):
                sb = self.sess(b, R, pace=(5, 40))
                t = s + R.uniform(10, 30) * MIN
                while t < e - 20 * MIN:
                    cen = len(self.census(self.stays, t, t + 1))
                    t = sb.ev(t, None, "search", "Encounter", cen)
                    t = sb.ev(t, None, "search", "Encounter", R.randint(5, 40))   # the ED board
                    waiting = [v for v in self.ed_visits if v[0] < t < v[5] and t - v[0] > 3 * HOUR]
                    for v in waiting[:R.randint(1, 4)]:
                        t = sb.ev(t, v[1], "read", "Patient")
                        t = sb.ev(t, v[1], "search", "Encounter", R.randint(1, 4))
                    moving = [st for st in self.stays if t - 90 * MIN <= st.t_in < t + 60 * MIN
                              or t <= st.t_out < t + 3 * HOUR]
                    for st in moving[:R.randint(1, 5)]:
                        t = sb.ev(t, st.p, "read", "Patient")
                        if R.random() < .5:
                            t = sb.ev(t, st.p, "read", "Encounter")
                    t += R.uniform(40, 100) * MIN

    def flow_secretaries(self):
        """Medical secretaries type the clinic letters in the days after the clinic."""
        q = sorted(self.dictations, key=lambda x: (x[0], x[1].num))
        qi = 0
        for d in range(self.D):
            if self.offday[d]:
                continue
            for (s, e, c) in self.shifts_of("secretary", d):
                R = self.rng("secretary", c.uid, d)
                sc = self.sess(c, R, pace=(20, 120))
                t = s + R.uniform(10, 30) * MIN
                while qi < len(q) and q[qi][0] < d * DAY and t < e - 15 * MIN:
                    p = q[qi][1]
                    qi += 1
                    t = sc.ev(t, p, "read", "Patient")
                    t = sc.ev(t, p, "read", "DocumentReference")
                    if R.random() < .3:
                        t = sc.ev(t, p, "search", "Observation", R.randint(2, 20))
                    t = sc.ev(t + R.uniform(4, 12) * MIN, p, "update", "DocumentReference")

    def flow_oncall(self):
        """Night doctor covering the medical and surgical wards: bleeps about patients never met."""
        wards = [st for st in self.stays if st.ward in ("amu", "surg")]
        for d in range(self.D):
            R = self.rng("oncall", d)
            for (s, e, doc) in self.shifts_of("amu_doctor", d):
                if s - d * DAY < 15 * HOUR:
                    continue
                for _ in range(R.randint(4, 9)):
                    t = R.uniform(s + 30 * MIN, e - 30 * MIN)
                    cen = self.census(wards, t, t + 1)
                    if not cen:
                        continue
                    st = cen[R.randrange(len(cen))]
                    ip = R.choice(self.hosp_ws[11 if st.ward == "amu" else 12])
                    so = self.sess(doc, R, ip=ip)
                    t = so.ev(t, st.p, "read", "Patient")
                    t = so.ev(t, st.p, "search", "Observation", R.randint(5, 40))
                    t = so.ev(t, st.p, "read", "DocumentReference")
                    if R.random() < .6:
                        t = so.ev(t, st.p, "search", "MedicationRequest", R.randint(1, 12))
                    t = so.ev(t + R.uniform(5, 20) * MIN, st.p, "create", "DocumentReference")
                    if R.random() < .25:
                        self.prescribe(so, t, st.p, R)

    # ================================================================ phase B: hospital back office
    def flow_coding(self):
        q = sorted(self.coding_queue, key=lambda x: (x[0], x[1].num))
        qi = 0
        for d in range(self.D):
            if self.offday[d]:
                continue
            for (s, e, c) in self.shifts_of("coder", d):
                R = self.rng("coding", c.uid, d)
                ip = None
                if R.random() < .35:   # working from home over Citrix
                    ip = R.choice(CITRIX_IPS)
                    self.remote_shift[(c.idx, int(s))] = ip
                sc = self.sess(c, R, ip=ip, purpose="HPAYMT", pace=(8, 60))
                t = s + R.uniform(15, 30) * MIN
                while t < e - 20 * MIN and qi < len(q) and q[qi][0] < d * DAY:
                    p = q[qi][1]
                    qi += 1
                    t = sc.ev(t, p, "search", "Encounter", R.randint(1, 4))
                    t = sc.ev(t, p, "read", "DocumentReference")
                    t = sc.ev(t, p, "search", "Condition", R.randint(1, 8))
                    t = sc.ev(t, p, "search", "Procedure", R.randint(0, 4))
                    if R.random() < .4:
                        t = sc.ev(t, p, "search", "Observation", R.randint(5, 40))
                    t = sc.ev(t + R.uniform(2, 6) * MIN, p, "update", "Encounter")
                    if R.random() < .5:
                        t = sc.ev(t, p, "create", "Claim")
                    t += R.uniform(3, 9) * MIN

    def flow_records(self):
        dups = sorted((p for p in self.patients if p.dup_of is not None), key=lambda p: p.num)
        merged = set()
        hosp = [p for p in self.patients if p.hosp_history]
        for d in range(self.D):
            if self.offday[d]:
                continue
            clerks = self.shifts_of("records_clerk", d)
            if not clerks:
                continue
            R = self.rng("records", d)
            nd = d + 1
            while nd < self.D and self.offday[nd]:
                nd += 1
            prep = self.op_lists.get(nd, [])
            for i, (s, e, c) in enumerate(clerks):
                sc = self.sess(c, R, purpose="RECORDMGT", pace=(10, 50))
                t = s + R.uniform(15, 40) * MIN
                for p in prep[i::len(clerks)]:   # notes pulled for tomorrow's clinics
                    t = sc.ev(t, p, "read", "Patient")
                    t = sc.ev(t, p, "search", "DocumentReference", R.randint(1, 40)) + R.uniform(1, 4) * MIN
                t = max(t, s + 3 * HOUR)
                for _ in range(R.randint(10, 25)):   # scanning paper correspondence
                    p = hosp[R.randrange(len(hosp))]
                    t = sc.ev(t, p, "read", "Patient")
                    t = sc.ev(t, p, "create", "DocumentReference") + R.uniform(2, 8) * MIN
                for p in dups[i::len(clerks)]:   # duplicate registrations merged
                    if p.num in merged or p.cust.get(HOSP, 1e18) > d * DAY:
                        continue
                    merged.add(p.num)
                    o = p.dup_of
                    t = sc.ev(t, None, "search", "Patient", 2)
                    t = sc.ev(t, p, "read", "Patient")
                    t = sc.ev(t, o, "read", "Patient")
                    t = sc.ev(t, p, "search", "Encounter", R.randint(1, 3))
                    t = sc.ev(t, o, "update", "Patient")
                    t = sc.ev(t, p, "delete", "Patient") + R.uniform(5, 15) * MIN

    def flow_safeguarding(self):
        q = sorted(self.safeguard_queue, key=lambda x: (x[0], x[1].num))
        qi = 0
        kids = [p for p in self.patients if p.age < 16]
        for d in range(self.D):
            for (s, e, c) in self.shifts_of("safeguarding", d):
                R = self.rng("safeguarding", d)
                sc = self.sess(c, R, pace=(10, 60))
                t = s + R.uniform(20, 45) * MIN
                while qi < len(q) and q[qi][0] < s and t < e - 30 * MIN:
                    p = q[qi][1]
                    qi += 1
                    t = sc.ev(t, p, "search", "Encounter", R.randint(1, 12))
                    t = sc.ev(t, p, "read", "DocumentReference")
                    t = sc.ev(t, p, "search", "Condition", R.randint(0, 6))
                    if R.random() < .4:
                        t = sc.ev(t, p, "search", "DocumentReference", R.randint(1, 30))
                    if R.random() < .3:
                        t = sc.ev(t, p, "search", "Observation", R.randint(3, 20))
                    if R.random() < .12:
                        t = sc.ev(t, p, "create", "Flag")
                    if R.random() < .2:
                        t = sc.ev(t, p, "create", "Communication")
                    t += R.uniform(10, 25) * MIN
                if self.dates[d].weekday() == 3:   # multi-agency meeting: children from every practice
                    t = d * DAY + 14 * HOUR
                    for p in R.sample(kids, min(len(kids), R.randint(6, 10))):
                        t = sc.ev(t, p, "read", "Patient")
                        t = sc.ev(t, p, "search", "Encounter", R.randint(0, 8))
                        t = sc.ev(t, p, "read", "DocumentReference") + R.uniform(4, 10) * MIN

    def flow_governance(self):
        watch = self.vips + [p for p in self.staff_patients if p.conf_all]
        R0 = self.rng("governance")
        work = [d for d in range(2, self.D) if not self.offday[d]]
        sar_days = set(R0.sample(work, min(2, len(work))))
        hosp = [p for p in self.patients if p.hosp_history]
        for d in range(self.D):
            R = self.rng("governance", d)
            for (s, e, c) in self.shifts_of("ig_officer", d):
                sc = self.sess(c, R, purpose="HOPERAT", pace=(20, 120))
                sc.page = 500
                t = s + R.uniform(10, 40) * MIN
                for p in watch:   # routine privacy monitoring of flagged records
                    t = sc.ev(t, p, "search", "AuditEvent", R.randint(0, 200))
                for _ in range(R.randint(0, 2)):
                    p = hosp[R.randrange(len(hosp))]
                    t = sc.ev(t + R.uniform(20, 90) * MIN, p, "search", "AuditEvent", R.randint(5, 400))
                if d in sar_days:   # subject access request: the whole record, exported for the patient
                    p = hosp[R.randrange(len(hosp))]
                    t = sc.ev(t + R.uniform(1, 3) * HOUR, p, "read", "Patient")
                    sc.ev(t, p, "export", "Patient", R.randint(300, 3000), purpose="PATRQT")
            for (s, e, c) in self.shifts_of("complaints", d):
                if R.random() < .4:
                    sc = self.sess(c, R, purpose="HOPERAT", pace=(20, 150))
                    p = hosp[R.randrange(len(hosp))]
                    t = s + R.uniform(1, 5) * HOUR
                    t = sc.ev(t, p, "read", "Patient")
                    for rt in ("Encounter", "DocumentReference", "Observation", "MedicationAdministration",
                               "DiagnosticReport", "CarePlan", "DocumentReference", "Observation"):
                        t = sc.ev(t, p, "search", rt, R.randint(1, 60))
                        if R.random() < .5:
                            t = sc.ev(t, p, "read", "DocumentReference")
                    sc.ev(t, p, "search", "AuditEvent", R.randint(20, 300))

    def flow_audits(self):
        """A registered clinical audit in the hospital and a medicines-safety audit at a practice."""
        def first_workday(x):
            for d in range(max(2, x), self.D):
                if not self.offday[d]:
                    return d
            return None
        d = first_workday(int(self.D * .4))
        if d is not None:
            R = self.rng("audit", d)
            docs = [x for j in ("amu_doctor", "surg_doctor") for x in self.shifts_of(j, d)
                    if x[0] - d * DAY < 12 * HOUR]
            if docs:
                s, e, doc = docs[R.randrange(len(docs))]
                frail = [p for p in self.patients if p.hosp_history and p.age >= 65]
                sa = self.sess(doc, R, purpose="HOPERAT", pace=(8, 40))
                t = d * DAY + 13 * HOUR
                for p in R.sample(frail, min(len(frail), R.randint(40, 60))):
                    t = sa.ev(t, p, "read", "Patient")
                    t = sa.ev(t, p, "search", "Encounter", R.randint(1, 10))
                    t = sa.ev(t, p, "read", "DocumentReference")
                    t = sa.ev(t, p, "search", "Observation", R.randint(5, 60))
                    t = sa.ev(t, p, "search", "MedicationRequest", R.randint(0, 15))
                    if R.random() < .5:
                        t = sa.ev(t, p, "search", "Procedure", R.randint(0, 4))
                    t += R.uniform(1, 4) * MIN
        d = first_workday(int(self.D * .75))
        if d is not None:
            R = self.rng("gp-audit", d)
            pr = self.practices[0]
            gps = self.shifts_of("gp", d, pr)
            if gps:
                s, e, g = gps[0]
                sa = self.sess(g, R, purpose="HOPERAT", pace=(8, 40))
                t = e - R.uniform(0, 30) * MIN
                lst = self.chronic_by_practice[pr]
                for p in R.sample(lst, min(len(lst), R.randint(25, 40))):
                    t = sa.ev(t, p, "search", "MedicationRequest", R.randint(1, 20))
                    t = sa.ev(t, p, "search", "Condition", R.randint(1, 10))
                    if R.random() < .5:
                        t = sa.ev(t, p, "search", "Observation", R.randint(2, 30))
                    t += R.uniform(.5, 2) * MIN

    def flow_mdt(self):
        surg = [st for st in self.stays if st.ward == "surg"]
        older = [p for p in self.patients if p.hosp_history and p.age >= 40]
        for d in range(self.D):
            if self.dates[d].weekday() != 1 or self.offday[d]:
                continue
            R = self.rng("mdt", d)
            tm = d * DAY + 12.5 * HOUR
            att = (self.on_duty("surg_doctor", tm)[:2] + self.on_duty("radiologist", tm)[:1]
                   + self.on_duty("op_consultant", tm)[:1])
            if not att:
                continue
            lst = [st.p for st in self.census(surg, tm, tm + 1)][:8]
            lst += R.sample(older, min(len(older), R.randint(6, 14)))
            ip = self.meeting_ws[0]   # one PC in the meeting room, everyone signs in on it
            for a in att:
                sa = self.sess(a, R, ip=ip, pace=(5, 30))
                t = tm + R.uniform(0, 4) * MIN
                for p in lst:
                    if a.job == "radiologist":
                        t = sa.ev(t, p, "read", "ImagingStudy")
                        t = sa.ev(t, p, "read", "DiagnosticReport")
                    else:
                        if R.random() < .7:
                            t = sa.ev(t, p, "read", "DocumentReference")
                        if R.random() < .5:
                            t = sa.ev(t, p, "read", "DiagnosticReport")
                        if R.random() < .4:
                            t = sa.ev(t, p, "search", "Observation", R.randint(3, 30))
                    t += R.uniform(2, 5) * MIN
            co = self.pick(R, tm, "op_reception", "ward_clerk")
            if co is not None:
                sc = self.sess(co, R, ip=ip, pace=(60, 300))
                t = tm + 10 * MIN
                for p in lst:
                    t = sc.ev(t, p, "create", "DocumentReference", purpose="TREAT")

    # ================================================================ phase B: primary and community care
    def gp_consult(self, R, g, ts, p, phone, phlebotomy, d):
        s = self.sess(g, R)
        if R.random() < .3:   # back to the day list
            ts = s.ev(ts, None, "search", "Appointment", R.randint(12, 18))
        t = s.ev(ts, p, "read", "Patient")
        t = s.ev(t, p, "search", "AllergyIntolerance", R.randint(0, 3))
        if R.random() < .6:
            t = s.ev(t, p, "search", "Flag", R.randint(0, 2))
        t = s.ev(t, p, "search", "Encounter", R.randint(1, 10))
        if R.random() < .8:
            t = s.ev(t, p, "search", "Observation", R.randint(3, 40))
        t = s.ev(t, p, "search", "MedicationRequest", R.randint(0, 15))
        if R.random() < .5:
            t = s.ev(t, p, "search", "Condition", R.randint(0, 12))
        if R.random() < .3:
            t = s.ev(t, p, "read", "DocumentReference")
        t += R.uniform(2, 6) * MIN
        if not phone and R.random() < .5:
            t = s.ev(t, p, "create", "Observation", R.randint(1, 4))
        if R.random() < .25:
            t = s.ev(t, p, "create", "ServiceRequest")
            phlebotomy.append((d + R.randint(1, 3), p))
        if R.random() < .05:
            t = s.ev(t, p, "create", "ServiceRequest")
            self.img_order(t, p, "gp", False)
        if R.random() < .35:
            t = self.prescribe(s, t, p, R)
        if R.random() < .08:
            t = s.ev(t, p, "create", "DocumentReference")   # referral letter
        return s.ev(t, p, "create", "Encounter")

    def booking(self, R, pr, ts, p, d):
        """The receptionist who booked the appointment: the same morning or an earlier day."""
        if R.random() < .55 and ts - d * DAY > 8.4 * HOUR:
            tb = d * DAY + R.uniform(8, min(10.5, (ts - d * DAY) / HOUR - .2)) * HOUR
        else:
            pd = d - R.randint(1, 4)
            if pd < 0:
                return
            tb = pd * DAY + R.uniform(8, 18) * HOUR
        rec = self.pick(R, tb, "gp_reception", org=pr)
        if rec is None:
            return
        s = self.sess(rec, R, pace=(5, 30))
        t = s.ev(tb, None, "search", "Patient", R.randint(1, 4))
        t = s.ev(t, p, "read", "Patient")
        t = s.ev(t, p, "search", "Appointment", R.randint(0, 4))
        s.ev(t, p, "create", "Appointment")

    def flow_gp(self):
        work = [d for d in range(max(2, int(self.D * .8)), self.D) if not self.offday[d]]
        self.qof_day = work[0] if work else None
        for pi, pr in enumerate(self.practices):
            pk = self.pick_by_practice[pr]
            chronic = self.chronic_by_practice[pr]
            housebound = [p for p in self.patients if p.practice == pr and (p.dn or p.age >= 85) and not p.carehome]
            phlebotomy = []   # (day due, patient)
            res_pending, let_pending = [], []
            res_i = let_i = 0
            for d in range(self.D):
                if self.offday[d]:
                    continue   # closed: results and letters wait for the next working day
                R = self.rng("gp", pi, d)
                day0 = d * DAY
                gps = self.shifts_of("gp", d, pr)
                nurses = self.shifts_of("practice_nurse", d, pr)
                hcas = self.shifts_of("hca", d, pr)
                recs = self.shifts_of("gp_reception", d, pr)
                res = sorted(self.results[pr], key=lambda x: (x[0], x[1].num))
                res_pending += [x for x in res[res_i:] if x[0] < day0 + 8 * HOUR]
                res_i += len([x for x in res[res_i:] if x[0] < day0 + 8 * HOUR])
                lets = sorted(self.letters[pr], key=lambda x: (x[0], x[1].num))
                let_pending += [x for x in lets[let_i:] if x[0] < day0 + 9 * HOUR]
                let_i += len([x for x in lets[let_i:] if x[0] < day0 + 9 * HOUR])
                if not gps:
                    continue
                # results inbox first thing: results of tests others ordered, shared out among the GPs
                for k, (s, e, g) in enumerate(gps):
                    sg = self.sess(g, R, pace=(15, 70))
                    t = s + R.uniform(3, 15) * MIN
                    for (tr, p) in res_pending[k::len(gps)]:
                        t = sg.ev(t, p, "search", "DiagnosticReport", R.randint(1, 3))
                        t = sg.ev(t, p, "search", "Observation", R.randint(5, 40))
                        if R.random() < .12:
                            t = sg.ev(t, p, "create", "Communication")
                        if R.random() < .05:
                            t = sg.ev(t, p, "create", "ServiceRequest")
                res_pending = []
                # document inbox: a receptionist files letters, flagged ones go to a GP
                if recs:
                    flagged = []
                    s, e, rc = recs[-1]
                    sr = self.sess(rc, R, pace=(20, 90))
                    t = day0 + R.uniform(9, 9.5) * HOUR
                    for (tl, p, kind) in let_pending:
                        t = sr.ev(t, p, "read", "DocumentReference")
                        t = sr.ev(t, p, "create", "Task")
                        if R.random() < .45:
                            flagged.append(p)
                    let_pending = []
                    for k, p in enumerate(flagged):
                        s, e, g = gps[k % len(gps)]
                        sg = self.sess(g, R)
                        t = sg.ev(day0 + R.uniform(12, 13.5) * HOUR, p, "read", "DocumentReference")
                        if R.random() < .15:
                            sg.ev(t, p, "update", "MedicationRequest")
                # surgeries: 10-minute appointments, some by telephone
                for (s, e, g) in gps:
                    slots = [day0 + 8.5 * HOUR + i * 10 * MIN for i in range(18)]
                    slots += [day0 + 14.5 * HOUR + i * 10 * MIN for i in range(18)]
                    for ts in slots:
                        if R.random() > .85 or ts >= e:
                            continue
                        p = pk.pick(R)
                        self.booking(R, pr, ts, p, d)
                        self.gp_consult(R, g, ts + R.uniform(0, 15) * MIN, p, R.random() < .3, phlebotomy, d)
                    # the duty doctor rings back patients asking for advice the same day
                if (s, e, g) == gps[d % len(gps)]:
                    for _ in range(R.randint(6, 14)):
                        p = pk.pick(R)
                        tc = day0 + R.uniform(11.5, 14.3) * HOUR
                        self.booking(R, pr, tc, p, d)
                        self.gp_consult(R, g, tc, p, True, phlebotomy, d)
                # a home visit or two over lunch, from the iPad on 4G
                    for _ in range(R.choice((0, 1, 1, 2))):
                        if not housebound:
                            break
                        p = housebound[R.randrange(len(housebound))]
                        ip = cgnat(R)
                        tv = day0 + R.uniform(12.2, 13.8) * HOUR
                        tv, ok = self.login(g, tv, R, ip, IPAD_UA)
                        sv = self.sess(g, R, ip=ip, ua=IPAD_UA)
                        t = self.chart(sv, tv, p, R, 1)
                        t = sv.ev(t + R.uniform(5, 15) * MIN, p, "create", "Observation", R.randint(2, 6))
                        if R.random() < .3:
                            t = self.prescribe(sv, t, p, R)
                        sv.ev(t, p, "create", "Encounter")
                # weekly round at the nursing home, on its network
                if pr == self.ch_practice and self.dates[d].weekday() == 3:
                    s, e, g = gps[0]
                    tv, ok = self.login(g, day0 + 13 * HOUR, R, CH_IP, EDGE_NEW)
                    sv = self.sess(g, R, ip=CH_IP, ua=EDGE_NEW)
                    for p in R.sample(self.residents, min(len(self.residents), R.randint(8, 14))):
                        tv = sv.ev(tv, p, "read", "Patient")
                        tv = sv.ev(tv, p, "search", "Observation", R.randint(5, 30))
                        tv = sv.ev(tv, p, "search", "MedicationRequest", R.randint(2, 12))
                        tv = sv.ev(tv, p, "read", "CarePlan")
                        if R.random() < .35:
                            tv = self.prescribe(sv, tv, p, R)
                        tv = sv.ev(tv, p, "create", "Encounter") + R.uniform(5, 12) * MIN
                # repeat prescriptions: requests taken by reception, signed by a GP at the end of the day
                reqs = R.sample(chronic, min(len(chronic), max(3, round(len(chronic) / 28 * R.uniform(.7, 1.3)))))
                if recs:
                    s, e, rc = recs[0]
                    sr = self.sess(rc, R, pace=(10, 40))
                    for p in reqs:
                        t = sr.ev(day0 + R.uniform(9, 16) * HOUR, p, "read", "Patient")
                        t = sr.ev(t, p, "search", "MedicationRequest", R.randint(1, 12))
                        sr.ev(t, p, "create", "Task")
                s, e, g = gps[d % len(gps)]
                sg = self.sess(g, R, pace=(10, 45))
                t = max(day0 + 17.5 * HOUR, e - 60 * MIN)
                for p in reqs:
                    t = sg.ev(t, p, "search", "MedicationRequest", R.randint(1, 12))
                    t = self.prescribe(sg, t, p, R, R.randint(1, 4))
                # practice nurse clinics
                for (s, e, n) in nurses:
                    slots = [day0 + 8.5 * HOUR + i * 20 * MIN for i in range(10)]
                    slots += [day0 + 13.5 * HOUR + i * 20 * MIN for i in range(10)]
                    for ts in slots:
                        if R.random() > .8 or ts >= e:
                            continue
                        kind = Picker(("chronic", "imm", "smear", "dressing", "other"), (5, 2, 1, 1, 1)).pick(R)
                        p = chronic[R.randrange(len(chronic))] if kind == "chronic" and chronic else pk.pick(R)
                        self.booking(R, pr, ts, p, d)
                        sn = self.sess(n, R)
                        t = sn.ev(ts + R.uniform(0, 8) * MIN, p, "read", "Patient")
                        if kind == "chronic":
                            t = sn.ev(t, p, "search", "Observation", R.randint(5, 40))
                            t = sn.ev(t, p, "search", "MedicationRequest", R.randint(1, 12))
                            t = sn.ev(t + R.uniform(5, 12) * MIN, p, "create", "Observation", R.randint(3, 8))
                            if R.random() < .4:
                                t = sn.ev(t, p, "create", "ServiceRequest")
                                phlebotomy.append((d + R.randint(0, 2), p))
                        elif kind == "imm":
                            t = sn.ev(t, p, "search", "Immunization", R.randint(0, 12))
                            t = sn.ev(t, p, "search", "AllergyIntolerance", R.randint(0, 3))
                            t = sn.ev(t + R.uniform(3, 8) * MIN, p, "create", "Immunization")
                        elif kind == "smear":
                            t = sn.ev(t, p, "search", "Observation", R.randint(0, 10))
                            t = sn.ev(t + R.uniform(5, 12) * MIN, p, "create", "Procedure")
                            t = sn.ev(t, p, "create", "ServiceRequest")
                            self.lab_order(R, t, p, "gp", False)
                        else:
                            t = sn.ev(t, p, "search", "Observation", R.randint(0, 10))
                            rt = "Procedure" if kind == "dressing" else "Observation"
                            t = sn.ev(t + R.uniform(5, 12) * MIN, p, "create", rt)
                        sn.ev(t, p, "create", "Encounter")
                # phlebotomy: tests requested on earlier days, plus routine monitoring
                due = [p for (dd, p) in phlebotomy if dd <= d]
                phlebotomy = [(dd, p) for (dd, p) in phlebotomy if dd > d]
                due += R.sample(chronic, min(len(chronic), R.randint(10, 22)))
                taker = hcas or nurses or gps
                s, e, h = taker[0]
                sh = self.sess(h, R, pace=(5, 30))
                t = day0 + 8.5 * HOUR
                for p in due:
                    t = sh.ev(t, p, "read", "Patient")
                    t = sh.ev(t, p, "search", "ServiceRequest", R.randint(1, 3))
                    t = sh.ev(t, p, "create", "Specimen")
                    self.lab_order(R, t, p, "gp", False)
                    t += R.uniform(3, 7) * MIN
                # the practice manager's reports; one quality-reporting export in the period
                for (s, e, m) in self.shifts_of("practice_manager", d, pr):
                    sm = self.sess(m, R, purpose="HOPERAT", pace=(30, 300))
                    sm.page = 1000
                    t = s + R.uniform(1, 5) * HOUR
                    for _ in range(R.randint(1, 3)):
                        t = sm.ev(t, None, "search", R.choice(("Patient", "Condition", "Observation", "Encounter")),
                                  R.randint(50, 900)) + R.uniform(10, 60) * MIN
                    if d == self.qof_day:
                        n = len(self.pick_by_practice[pr])
                        t = sm.ev(t, None, "export", "Patient", n)
                        t = sm.ev(t, None, "export", "Observation", n * R.randint(8, 14))
                        sm.ev(t, None, "export", "Condition", n * R.randint(2, 4))
        self.flow_vaccination()
        self.flow_gp_home()

    def flow_gp_home(self):
        """GP partners catching up on results from home in the evening or at weekends (home broadband)."""
        for g in self.jobs_posts("gp"):
            pe = g.person
            ua = (MAC_SAFARI, FIREFOX_WIN, MAC_CHROME)[g.idx % 3]
            for d in range(self.D):
                R = self.rng("gp-home", g.uid, d)
                if R.random() > (.15 if self.offday[d] else .05):
                    continue
                t = d * DAY + (R.uniform(10, 21) if self.offday[d] else R.uniform(19.5, 22.5)) * HOUR
                t, ok = self.login(g, t, R, pe.home_ip, ua)
                if not ok:
                    continue
                s = self.sess(g, R, ip=pe.home_ip, ua=ua, pace=(20, 120))
                recent = [p for (tr, p) in self.results[g.org] if t - 3 * DAY < tr < t]
                for p in R.sample(recent, min(len(recent), R.randint(3, 10))):
                    t = s.ev(t, p, "search", "DiagnosticReport", R.randint(1, 3))
                    t = s.ev(t, p, "search", "Observation", R.randint(5, 40))
                    if R.random() < .3:
                        t = s.ev(t, p, "read", "DocumentReference")

    def flow_vaccination(self):
        """A Saturday clinic for every practice at the community hall: many first contacts per hour."""
        sats = [d for d in range(2, self.D) if self.dates[d].weekday() == 5 and not self.holiday[d]]
        if not sats:
            return
        d = sats[0]
        R = self.rng("vaccination", d)
        team = [p for p in self.posts if p.job in ("practice_nurse", "hca")] or self.jobs_posts("gp")[:2]
        desk = [p for p in self.posts if p.job == "gp_reception"][:2]
        elig = sorted((p for p in self.patients if p.age >= 75 or (p.age >= 65 and p.chronic)), key=lambda p: p.num)
        lst = R.sample(elig, min(len(elig), max(30, round(self.a.patients * .05))))
        t0 = d * DAY + 8.75 * HOUR
        for v in team + desk:   # everyone signs in on a kiosk laptop
            self.login(v, t0 + R.uniform(0, 15) * MIN, R, VACC_IP, KIOSK_UA)
        per = (4.25 * HOUR) / max(1, len(lst) / max(1, len(team)))
        for i, p in enumerate(lst):
            ts = t0 + 15 * MIN + (i // max(1, len(team))) * per + R.uniform(0, 60)
            if desk:
                sd = self.sess(desk[i % len(desk)], R, ip=VACC_IP, ua=KIOSK_UA)
                t = sd.ev(ts - R.uniform(2, 6) * MIN, None, "search", "Patient", R.randint(1, 3))
                sd.ev(t, p, "read", "Patient")
            sv = self.sess(team[i % len(team)], R, ip=VACC_IP, ua=KIOSK_UA, pace=(5, 20))
            t = sv.ev(ts, p, "read", "Patient")
            t = sv.ev(t, p, "search", "Immunization", R.randint(0, 8))
            t = sv.ev(t, p, "search", "AllergyIntolerance", R.randint(0, 3))
            sv.ev(t + R.uniform(2, 5) * MIN, p, "create", "Immunization")

    def flow_district_nursing(self):
        R0 = self.rng("dn-referrals")
        refs = sorted(self.dn_referrals, key=lambda x: (x[0], x[1].num))
        ri = 0
        hosp_days = {}
        for st in self.stays:
            hosp_days.setdefault(st.p.num, []).append((st.t_in, st.t_out))
        for d in range(self.D):
            R = self.rng("dn", d)
            new = set()
            while ri < len(refs) and refs[ri][0] < (d + 1) * DAY:
                p = refs[ri][1]
                ri += 1
                if not p.dn:
                    self.dn_join(R0, p, d)
                    new.add(p.num)
            noon = d * DAY + 12 * HOUR
            due = [c for c in self.dn_caseload   # due today, and not in hospital
                   if c[2] <= d and not any(a <= noon < b for a, b in hosp_days.get(c[0].num, ()))]
            days = [x for x in self.shifts_of("district_nurse", d) if x[0] - d * DAY < 12 * HOUR]
            eves = [x for x in self.shifts_of("district_nurse", d) if x[0] - d * DAY >= 12 * HOUR]
            if days:
                teams = {0: days[0::2], 1: days[1::2]}   # two geographical teams
                if not teams[1]:
                    teams[1] = teams[0]
                plan = {x[2].uid: [] for x in days}
                for c in due:
                    tm = teams[c[3]]
                    best = min(tm, key=lambda x: (len(plan[x[2].uid]), x[2].idx))
                    if len(plan[best[2].uid]) < 9:
                        plan[best[2].uid].append(c)
                        c[2] = d + c[1]
                for (s, e, n) in days:
                    self.dn_day(R, n, s, e, plan[n.uid], new)
            for (s, e, n) in eves:   # insulin and end-of-life visits
                lst = [c for c in self.dn_caseload if c[4]]
                self.dn_day(R, n, s, e, R.sample(lst, min(len(lst), R.randint(3, 6))), new, evening=True)
            for (s, e, a) in self.shifts_of("cn_admin", d):
                sa = self.sess(a, R, pace=(20, 90))
                t = s + R.uniform(20, 60) * MIN
                for c in self.dn_caseload:
                    if c[0].num in new:
                        p = c[0]
                        t = sa.ev(t, p, "read", "Patient")
                        t = sa.ev(t, p, "read", "DocumentReference")
                        t = sa.ev(t, p, "create", "Appointment") + R.uniform(5, 20) * MIN

    def dn_day(self, R, n, s, e, visits, new, evening=False):
        t = s + R.uniform(5, 20) * MIN
        if not evening:   # the office: caseload list, today's care plans
            so = self.sess(n, R, ip=R.choice(self.cn_ws))
            t, ok = self.login(n, t, R, so.ip, None)
            t = so.ev(t, None, "search", "Patient", len(self.dn_caseload))
            for c in visits:
                if R.random() < .5:
                    t = so.ev(t, c[0], "read", "CarePlan")
            t = max(t, int(s // DAY) * DAY + 9 * HOUR)
        ua = n.device[1] if t >= n.device[2] else n.device[0]
        ip = cgnat(R)
        t, ok = self.login(n, t + R.uniform(10, 25) * MIN, R, ip, ua, fail_rate=.015)
        late = []
        for c in visits:
            p = c[0]
            if R.random() < .6:
                ip = cgnat(R)   # the mobile network hands out a new address
            sv = self.sess(n, R, ip=ip, ua=ua, pace=(5, 40))
            if late:   # writes queued offline go up when the signal returns
                for (rt, q) in late:
                    t = sv.ev(t, q, "create", rt)
                late = []
            t = sv.ev(t, p, "read", "Patient")
            t = sv.ev(t, p, "read", "CarePlan")
            if p.num in new:
                t = sv.ev(t, p, "read", "DocumentReference")
                self.set_cust(p, CN, t)
            t = sv.ev(t, p, "search", "Observation", R.randint(2, 30))
            t = sv.ev(t, p, "search", "MedicationRequest", R.randint(0, 12))
            if R.random() < .5:
                t = sv.ev(t, p, "search", "Condition", R.randint(0, 10))
            if c[4]:
                t = sv.ev(t, p, "create", "MedicationAdministration")
            t += R.uniform(10, 30) * MIN
            writes = [("Observation", R.randint(2, 6))]
            if R.random() < .55:
                writes.append(("Procedure", 1))
            if R.random() < .35:
                writes.append(("CarePlan", 0))
            writes.append(("DocumentReference", 1))
            offline = R.random() < .12
            for rt, k in writes:
                if offline:
                    late.append((rt, p))
                elif k == 0:
                    t = sv.ev(t, p, "update", rt)
                else:
                    t = sv.ev(t, p, "create", rt, k)
            t += R.uniform(12, 30) * MIN
            if t > e - 40 * MIN:
                break
        if late:
            sv = self.sess(n, R, ip=cgnat(R), ua=ua)
            for (rt, q) in late:
                t = sv.ev(t, q, "create", rt)
        if not evening and visits:   # back at base: catching up
            so = self.sess(n, R, ip=R.choice(self.cn_ws))
            t = max(t, e - R.uniform(40, 70) * MIN)
            for c in R.sample(visits, min(len(visits), R.randint(1, 3))):
                t = so.ev(t, c[0], "search", "Observation", R.randint(2, 20))
                if R.random() < .5:
                    t = so.ev(t, c[0], "create", "DocumentReference")

    def flow_care_home(self):
        hosp_days = {}
        for st in self.stays:
            hosp_days.setdefault(st.p.num, []).append((st.t_in, st.t_out))
        res = self.residents
        for d in range(self.D):
            R = self.rng("carehome", d)

            def home(p, t):
                return not any(a <= t < b for a, b in hosp_days.get(p.num, ()))

            # medicine rounds by the nurse on duty, signed in again at the kiosk each time
            for h in (8, 12, 17, 21):
                tm = d * DAY + h * HOUR + R.uniform(0, 20) * MIN
                nu = self.pick(R, tm, "ch_nurse", "carer")
                if nu is None:
                    continue
                tm, ok = self.login(nu, tm, R, CH_IP, KIOSK_UA)
                sm = self.sess(nu, R, ip=CH_IP, ua=KIOSK_UA, pace=(10, 50))
                for p in res:
                    if home(p, tm) and R.random() < .92:
                        tm = sm.ev(tm, p, "search", "MedicationRequest", R.randint(2, 10))
                        tm = sm.ev(tm, p, "create", "MedicationAdministration", R.randint(1, 6)) + R.uniform(1, 3) * MIN
            # carers record food, fluids and turns in batches at the kiosk
            for job in ("carer", "ch_nurse"):
                for (s, e, c) in self.shifts_of(job, d):
                    night = s - d * DAY >= 15 * HOUR
                    mine = res if job == "ch_nurse" else res[c.idx % 2::2]
                    for _ in range(R.randint(2, 3) if not night else R.randint(1, 2)):
                        tb = R.uniform(s + 30 * MIN, e - 30 * MIN)
                        tb, ok = self.login(c, tb, R, CH_IP, KIOSK_UA)
                        sc = self.sess(c, R, ip=CH_IP, ua=KIOSK_UA, pace=(10, 60))
                        for p in mine:
                            if home(p, tb) and R.random() < (.5 if job == "ch_nurse" else .8):
                                if R.random() < .3:
                                    tb = sc.ev(tb, p, "read", "CarePlan")
                                tb = sc.ev(tb, p, "create", "Observation", R.randint(1, 3))
                    if job == "ch_nurse" and not night:
                        sc = self.sess(c, R, ip=CH_IP, ua=KIOSK_UA)
                        for p in R.sample(res, min(len(res), R.randint(2, 5))):
                            t = sc.ev(R.uniform(s + HOUR, e - HOUR), p, "read", "CarePlan")
                            sc.ev(t, p, "update", "CarePlan")
                            if R.random() < .15:
                                sc.ev(t + 2 * MIN, p, "create", "DocumentReference")   # a fall, an incident
            for (s, e, m) in self.shifts_of("ch_manager", d):
                t, ok = self.login(m, s + R.uniform(20, 60) * MIN, R, CH_IP, KIOSK_UA)
                sm = self.sess(m, R, ip=CH_IP, ua=KIOSK_UA, pace=(20, 120))
                for p in R.sample(res, min(len(res), R.randint(4, 9))):
                    t = sm.ev(t, p, "read", "CarePlan")
                    if R.random() < .4:
                        t = sm.ev(t, p, "update", "CarePlan")

    # ================================================================ phase B: diagnostics, portal, systems
    def flow_lab(self):
        lab = self.svc["lab"]
        for i, (ts, tr, p, src, urgent) in enumerate(sorted(self.lab_orders, key=lambda x: (x[1], x[2].num))):
            R = self.rng("lab", i)
            si = Sess(self, lab, R, lab.ws[0], pace=(1, 4))
            t = si.ev(tr, p, "create", "Observation", R.randint(3, 25))
            si.ev(t, p, "create", "DiagnosticReport")
            if R.random() < .3:   # abnormal: a scientist validates, critical ones are phoned through
                sc = self.pick(R, tr + 5 * MIN, "lab_scientist")
                if sc is None:
                    continue
                ss = self.sess(sc, R)
                t = ss.ev(tr + R.uniform(2, 25) * MIN, p, "read", "DiagnosticReport")
                t = ss.ev(t, p, "search", "Observation", R.randint(5, 40))
                t = ss.ev(t, p, "update", "DiagnosticReport")
                if R.random() < .1:
                    t = ss.ev(t, p, "read", "Patient")
                    ss.ev(t + R.uniform(2, 10) * MIN, p, "create", "Communication")

    def flow_radiology(self):
        pacs = self.svc["pacs"]
        backlog = {}
        for i, (tq, p, src, urgent) in enumerate(sorted(self.img_orders, key=lambda x: (x[0], x[1].num))):
            R = self.rng("img", i)
            d = self.day_of(tq)
            if urgent:
                tp = tq + R.uniform(15, 60) * MIN
            else:   # next working day (wards: the next day)
                nd = d + 1 + (R.randint(0, 2) if src in ("gp", "op") else 0)
                while src != "ward" and nd < self.D and self.offday[nd]:
                    nd += 1
                tp = nd * DAY + R.uniform(9, 16.5) * HOUR
            rg = self.pick(R, tp, "radiographer")
            if rg is None:
                continue
            if src == "ward":
                po = self.pick(R, tp - 20 * MIN, "porter")
                if po is not None:
                    sp = self.sess(po, R)
                    t = sp.ev(tp - R.uniform(15, 30) * MIN, p, "read", "Task")
                    sp.ev(t, p, "read", "Patient")
            sr = self.sess(rg, R)
            t = sr.ev(tp, p, "read", "ServiceRequest")
            t = sr.ev(t, p, "read", "Patient")
            t = sr.ev(t + R.uniform(5, 20) * MIN, p, "create", "ImagingStudy")
            Sess(self, pacs, R, pacs.ws[0]).ev(t + R.uniform(1, 8) * MIN, p, "update", "ImagingStudy")
            # who reports: the department by day, on-call from home in the evening, abroad at night
            td = t + R.uniform(10, 60) * MIN
            dd = self.day_of(td)
            h = (td - dd * DAY) / HOUR
            off = not (0 <= dd < self.D) or self.offday[dd]
            if not urgent and (off or not 8.5 <= h < 17):
                nd = dd + 1
                while nd < self.D and self.offday[nd]:
                    nd += 1
                backlog.setdefault(nd, []).append(p)
                continue
            if 8.5 <= h < 17.5 and not off:
                who, ip, ua = self.pick(R, td, "radiologist"), None, None
            elif 17.5 <= h < 22 or (off and 8.5 <= h < 22):
                who = self.jobs_posts("radiologist")[dd % max(1, len(self.jobs_posts("radiologist")))] \
                    if self.jobs_posts("radiologist") else None
                ip, ua = vpn_ip(R), MAC_SAFARI
            else:
                who, ip, ua = self.pick(R, td, "telerad"), None, None
            if who is not None:
                self.report(R, who, td, p, ip, ua)
        for nd in sorted(backlog):   # routine reporting lists
            R = self.rng("report-list", nd)
            rads = self.shifts_of("radiologist", nd)
            if not rads:
                continue
            for k, p in enumerate(backlog[nd]):
                s, e, r = rads[k % len(rads)]
                td = s + R.uniform(15, 30) * MIN + (k // len(rads)) * R.uniform(4, 8) * MIN
                self.report(R, r, min(td, e - 5 * MIN), p, None, None)

    def report(self, R, who, t, p, ip, ua):
        if ip is not None:
            t, ok = self.login(who, t, R, ip, ua)
        s = self.sess(who, R, ip=ip, ua=ua)
        t = s.ev(t, p, "read", "ServiceRequest")
        t = s.ev(t, p, "read", "ImagingStudy")
        t = s.ev(t, p, "search", "DiagnosticReport", R.randint(0, 8))
        if R.random() < .3:
            t = s.ev(t, p, "read", "DocumentReference")
        if R.random() < .2:
            t = s.ev(t, p, "search", "Condition", R.randint(0, 6))
        t = s.ev(t + R.uniform(2, 8) * MIN, p, "create", "DiagnosticReport")
        if R.random() < .05:
            s.ev(t, p, "create", "Communication")

    def flow_portal(self):
        for d in range(self.D):
            R = self.rng("portal", d)
            for p in self.portal_users:
                prob = .035
                if p.num in self.results_day[d] or (d > 0 and p.num in self.results_day[d - 1]):
                    prob += .2
                if p.num in self.discharge_day[d] or (d > 0 and p.num in self.discharge_day[d - 1]):
                    prob += .15
                if R.random() >= prob:
                    continue
                u = p.portal
                t = d * DAY + self.hour_sample(R, PORTAL_CURVE)
                if p.app is not None:
                    old, new = PORTAL_APPS[p.app]
                    ua = new if t > (self.D * .4 + (p.num % 5)) * DAY else old
                    ip = cgnat(R) if R.random() < .6 else p.home_ip
                else:
                    ua = PORTAL_WEB[p.num % len(PORTAL_WEB)]
                    ip = p.home_ip if R.random() < .85 else cgnat(R)
                t, ok = self.login(u, t, R, ip, ua, purpose="PATRQT", fail_rate=.05)
                if not ok:
                    continue
                s = Sess(self, u, R, ip, ua, "PATRQT", None, (4, 40))
                t = s.ev(t, p, "read", "Patient")
                t = s.ev(t, p, "search", "Observation", R.randint(3, 60))
                if R.random() < .6:
                    t = s.ev(t, p, "search", "MedicationRequest", R.randint(0, 12))
                if R.random() < .4:
                    t = s.ev(t, p, "search", "Appointment", R.randint(0, 4))
                if R.random() < .3:
                    t = s.ev(t, p, "search", "DocumentReference", R.randint(0, 20))
                    t = s.ev(t, p, "read", "DocumentReference")
                if R.random() < .05:
                    t = s.ev(t, p, "create", "Appointment")
                if R.random() < .06:
                    t = s.ev(t, p, "create", "Communication")
                for c in p.proxies:   # a parent looking at a child's record
                    if R.random() < .5:
                        t = s.ev(t, c, "read", "Patient")
                        t = s.ev(t, c, "search", "Immunization", R.randint(0, 15))
                        if R.random() < .4:
                            t = s.ev(t, c, "search", "Appointment", R.randint(0, 3))

    def flow_staff_self(self):
        """Staff who are patients sometimes open their own record with their work account."""
        for p in self.staff_patients:
            R = self.rng("self", p.num)
            if R.random() > .15:
                continue
            posts = [x for x in self.posts if x.person is p.staff and x.role == "practitioner" and x.shifts]
            if not posts:
                continue
            po = posts[0]
            s, e = po.shifts[R.randrange(len(po.shifts))]
            ss = self.sess(po, R)
            t = ss.ev(R.uniform(s + HOUR, e - HOUR), p, "read", "Patient")
            ss.ev(t, p, "search", "Observation", R.randint(2, 30))

    def flow_services(self):
        counts = {}
        for (ms, _, ev, lab) in self.rows:
            if ev["action"] in ("create", "update") and ev["outcome"] == "permit":
                k = (ms // 86400000, ev["resource_type"])
                counts[k] = counts.get(k, 0) + 1
        dw, tre, ph, mpi = self.svc["dw"], self.svc["tre"], self.svc["ph"], self.svc["mpi"]
        types = ("Patient", "Encounter", "Observation", "Condition", "MedicationRequest", "MedicationAdministration",
                 "Procedure", "DiagnosticReport", "DocumentReference", "ServiceRequest", "Immunization", "ImagingStudy")
        N = len(self.patients)
        for d in range(self.D):
            R = self.rng("services", d)
            # demographics from the national register, overnight
            sm = Sess(self, mpi, R, mpi.ws[0], purpose="RECORDMGT", pace=(1, 5))
            t = d * DAY + R.uniform(1, 1.2) * HOUR
            for _ in range(max(1, round(N * .003 * R.uniform(.5, 1.5)))):
                t = sm.ev(t, self.pick_all.pick(R), "update", "Patient")
            # the warehouse: yesterday's changes, and a full extract on Sundays
            sd = Sess(self, dw, R, dw.ws[0], purpose="HOPERAT", pace=(60, 400))
            t = d * DAY + R.uniform(2, 2.2) * HOUR
            full = self.dates[d].weekday() == 6
            for rt in types:
                n = counts.get((d - 1, rt), 0)
                if full:
                    n = N * {"Patient": 1, "Observation": 60, "Encounter": 8}.get(rt, 4)
                t = sd.ev(t, None, "export", rt, n)
            if self.dates[d].weekday() == 5:   # research extract for an approved study
                st = Sess(self, tre, R, tre.ws[0], purpose="HRESCH", pace=(30, 200))
                t = d * DAY + R.uniform(3, 3.3) * HOUR
                cohort = R.randint(500, 900)
                for rt in ("Patient", "Condition", "Observation", "MedicationRequest"):
                    t = st.ev(t, None, "export", rt, cohort * (1 if rt == "Patient" else R.randint(3, 30)))
            # public health: yesterday's vaccinations
            sp = Sess(self, ph, R, ph.ws[0], purpose="PUBHLTH")
            sp.ev(d * DAY + R.uniform(6.2, 6.3) * HOUR, None, "export", "Immunization",
                  counts.get((d - 1, "Immunization"), 0))

    def flow_logins(self):
        """Sign-ins at the start of a shift and after idle time-outs, for desk-based staff."""
        for p in self.posts:
            if not p.desk or p.role == "service":
                continue
            for (s, e) in p.shifts:
                R = self.rng("logins", p.idx, int(s))
                ip = self.remote_shift.get((p.idx, int(s)))
                t = s - R.uniform(1, 9) * MIN
                while t < e - 20 * MIN:
                    this = ip or self.desk_ip(p, t)
                    self.login(p, t, R, this, purpose="HSYSADMIN" if p.role == "admin" else
                               "HOPERAT" if p.role == "auditor" else "TREAT")
                    t += R.uniform(2, 4.5) * HOUR

    def flow_service_desk(self):
        """Unlocks after lock-outs, accounts for new starters, the leaver suspended."""
        jobs = []
        for (t, who) in self.lockouts:
            jobs.append((t + 60, "unlock", who))
        for p in self.posts:
            if (p.bank or p.job == "student" or p.name.endswith("locum")) and p.shifts:
                jobs.append((p.shifts[0][0] - 3 * HOUR, "create", p))
        if self.leaver is not None and self.leave_day < self.D:
            jobs.append((self.leave_day * DAY + 10 * HOUR, "suspend", self.leaver))
        jobs.sort(key=lambda j: (j[0], j[2].uid))
        for i, (t, kind, who) in enumerate(jobs):
            R = self.rng("desk", i)
            t0 = t + R.uniform(4, 35) * MIN
            adm = self.pick(R, t0, "it_admin")
            if adm is None:
                adm_posts = self.jobs_posts("it_admin")
                if not adm_posts:
                    return
                adm = adm_posts[0]
            s = self.sess(adm, R, purpose="HSYSADMIN")
            if kind == "unlock":
                s.ev(t0, None, "login", None, 0, outcome="permit", basis="role", account="User/" + who.uid)
                if who.role != "patient":
                    self.login(who, t0 + R.uniform(1, 6) * MIN, R, None, fail_rate=0)
            elif kind == "create":
                t1 = s.ev(t0, None, "create", "PractitionerRole", 1, outcome="permit", basis="role")
                s.ev(t1, None, "login", None, 0, outcome="permit", basis="role", account="User/" + who.uid)
            else:
                s.ev(t0, None, "login", None, 0, outcome="permit", basis="role", account="User/" + who.uid)
                R2 = self.rng("leaver")
                t2 = (self.leave_day + 1) * DAY + R2.uniform(7.4, 8) * HOUR   # tries the next morning
                Sess(self, who, R2, who.ws[0]).ev(t2, None, "login", None, 0, outcome="deny", basis="locked-out")

    # ================================================================ incidents
    CLIN = ("ed_doctor", "ed_nurse", "amu_doctor", "amu_nurse", "surg_doctor", "surg_nurse", "icu_nurse",
            "midwife", "op_consultant", "op_nurse", "radiographer", "pharmacist", "gp", "practice_nurse",
            "district_nurse", "lab_scientist", "daysurg_nurse")
    DOCTORS = ("ed_doctor", "amu_doctor", "surg_doctor", "op_consultant", "gp", "icu_doctor")

    def build_links(self):
        """Who touched whom in legitimate work: attack targets are chosen outside these links."""
        self.pairs, self.dpairs, self.first_touch = set(), set(), {}
        for (ms, _, ev, lab) in self.rows:
            pt = ev["patient"]
            if pt is not None:
                a = ev["actor"]
                k = (a["id"], pt)
                if k not in self.pairs or ms < self.first_touch[k]:
                    self.first_touch[k] = ms
                self.pairs.add(k)
                self.dpairs.add((a["organization"], a["department"], pt))

    def unlinked(self, a, cands, dept=True):
        own = a.person.patient if hasattr(a, "person") else None
        return [p for p in cands if p is not own and (a.uid, p.ref) not in self.pairs
                and (not dept or (a.org, a.dept, p.ref) not in self.dpairs)]

    def posts_of(self, *jobs):
        # one incident per insider: people already used for an incident are left alone
        return [p for p in self.posts if p.job in jobs and p.shifts and p.uid not in self.used_actors]

    def pick_shift(self, R, posts, day, night=None, span=1):
        opts = []
        for p in posts:
            for (s, e) in p.shifts:
                d = int(s // DAY)
                if day <= d < day + span and e < self.horizon + 12 * HOUR and (
                        night is None or (s - d * DAY >= 15 * HOUR) == night):
                    opts.append((s, e, p))
        opts.sort(key=lambda x: (x[0], x[2].idx))
        return opts[R.randrange(len(opts))] if opts else None

    def on_shift_at(self, a, t, margin=HOUR):
        return any(s - margin <= t < e + margin for s, e in a.shifts)

    def ghost(self, num):
        """A record id that does not exist (deleted, merged, another region)."""
        g = Patient(num)
        g.sharing, g.consent, g.rich = "none", None, 0
        return g

    def incidents(self):
        n = self.a.incidents
        R = self.rng("incidents")
        self.used_actors = set()
        first = min(2, self.D - 1)
        span = max(1, self.D - first)
        days = [first + (i * span) // max(1, n) for i in range(n)]
        R.shuffle(days)
        # incidents that need a particular situation pick their insider before the others
        scarce = ("same_ward_vip", "news_curiosity", "family_household", "broker_slow", "broker_batch",
                  "role_admin_charts", "role_pharmacist_psych")

        def variant(i):   # kinds in turn, each kind's variants in turn
            kind = KINDS[i % len(KINDS)]
            vs = VARIANTS[kind]
            return kind, vs[(i // len(KINDS)) % len(vs)]

        meta = {}
        for i in sorted(range(n), key=lambda i: (variant(i)[1] not in scarce, i)):
            kind, var = variant(i)
            iid = "INC-%03d" % (i + 1)
            night = R.random() < .4
            fn = getattr(self, "inc_" + var)
            before = self.n_labelled
            done = None
            for attempt in range(2 * span):
                day = first + (days[i] - first + attempt // 2) % span
                nt = night if attempt % 2 == 0 else not night
                Ri = self.rng("incident", i, attempt)
                mark = len(self.rows)
                if fn(Ri, (iid, kind), day, nt) and self.n_labelled > before:
                    done = day
                    self.used_actors.add(next(r for r in reversed(self.rows) if r[3] is not None)[2]["actor"]["id"])
                    break
                del self.rows[mark:]   # a half-made attempt is withdrawn
                self.n_labelled = before
            meta[i] = (iid, kind, var, done, self.n_labelled - before)
        self.incidents_meta = [meta[i] for i in range(n)]


    # --- snooping
    def inc_vip_glance(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of(*self.CLIN), day, night)
        if not sh:
            return False
        s, e, a = sh
        targets = self.unlinked(a, self.vips)
        if not targets:
            return False
        p = targets[R.randrange(len(targets))]
        ss = self.sess(a, R, label=lab, pace=(8, 40))
        t = ss.ev(R.uniform(s + 40 * MIN, e - 40 * MIN), p, "read", "Patient")
        if R.random() < .6:
            if R.random() < .5:
                ss.ev(t, p, "search", "Condition", R.randint(1, 8))
            else:
                ss.ev(t, p, "read", "DocumentReference")
        return True

    def inc_news_curiosity(self, R, lab, day, night):
        arr = [v[0] for v in self.ed_visits if v[1] is self.news_vip]
        if not arr:
            return False
        day = max(day, self.news_day)
        if day > self.news_day + 1:
            day = self.news_day + R.randint(0, 1)
        others = ("pharmacist", "op_nurse", "radiographer", "gp_reception", "district_nurse", "lab_scientist",
                  "ward_clerk", "amu_nurse", "midwife", "practice_nurse", "call_handler", "porter")
        for _ in range(6):
            sh = self.pick_shift(R, self.posts_of(*others), day, None)
            if not sh:
                return False
            s, e, a = sh
            if not self.unlinked(a, [self.news_vip]):
                continue
            lo = max(s + 20 * MIN, arr[0] + 60 * MIN)
            if lo >= e - 20 * MIN:
                continue
            p = self.news_vip
            ss = self.sess(a, R, label=lab, pace=(10, 90))
            t = ss.ev(R.uniform(lo, e - 20 * MIN), p, "read", "Patient")
            for rt, act in R.sample((("Encounter", "search"), ("DocumentReference", "read"), ("Observation", "search"),
                                     ("DiagnosticReport", "search"), ("ImagingStudy", "read"), ("Condition", "search"),
                                     ("DocumentReference", "search")), R.randint(4, 7)):
                t = ss.ev(t, p, act, rt, 1 if act == "read" else R.randint(1, 25))
            if R.random() < .5 and day + 1 < self.D:   # and once more the next day
                sh2 = [x for x in a.shifts if int(x[0] // DAY) == day + 1]
                if sh2:
                    t = ss.ev(R.uniform(sh2[0][0] + HOUR, sh2[0][1] - HOUR), p, "read", "Patient")
                    ss.ev(t, p, "read", "DocumentReference")
            return True
        return False

    def inc_same_ward_vip(self, R, lab, day, night):
        vip = self.news_vip
        for st in self.stays:
            if st.p is not vip or st.ward not in ("surg", "icu", "amu"):
                continue
            njob, djob, dept = WARDS[st.ward]
            lo, hi = max(st.t_in, day * DAY), min(st.t_out, self.horizon)
            # nurses of the ward first; failing them, others who work on it (students, doctors, clerks)
            others = [p for p in self.posts_of("student", djob, "ward_clerk", "therapist")
                      if p.dept == dept or p.job in ("therapist", "student")]
            for near in (self.posts_of(njob), others):
                opts = []
                for a in near:
                    ft = self.first_touch.get((a.uid, vip.ref))
                    for (s, e) in a.shifts:
                        if s < hi - 3 * HOUR and e > lo + 3 * HOUR and (ft is None or ft > e * 1000):
                            opts.append((max(s, lo), min(e, hi), a))   # on the ward, not looking after the VIP
                if opts:
                    break
            if not opts:
                continue
            opts.sort(key=lambda x: (x[0], x[2].idx))
            s, e, a = opts[R.randrange(min(3, len(opts)))]
            ss = self.sess(a, R, label=lab, pace=(10, 60))
            t = R.uniform(s + 30 * MIN, max(s + 30 * MIN, min(e - 2 * HOUR, s + 4 * HOUR)))
            t = ss.ev(t, vip, "read", "Patient")
            t = ss.ev(t, vip, "search", "Observation", R.randint(5, 40))
            t = ss.ev(t, vip, "read", "DocumentReference")
            if e - 20 * MIN > t + HOUR:   # and again later in the shift
                t = R.uniform(t + HOUR, e - 20 * MIN)
            t = ss.ev(t, vip, "search", "Condition", R.randint(1, 6))
            if R.random() < .6:
                t = ss.ev(t, vip, "search", "DiagnosticReport", R.randint(1, 8))
            ss.ev(t, vip, "read", "DocumentReference")
            return True
        return False

    def inc_colleague_record(self, R, lab, day, night):
        hosp = [p for p in self.posts_of(*self.CLIN, "ward_clerk", "porter", "coder") if p.org == HOSP]
        sh = self.pick_shift(R, hosp, day, night)
        if not sh:
            return False
        s, e, a = sh
        coll = [p for p in self.staff_patients if p.staff is not a.person
                and any(x.org == HOSP for x in self.posts if x.person is p.staff)]
        targets = self.unlinked(a, coll)
        if not targets:
            return False
        p = targets[R.randrange(len(targets))]
        looks = [(s, e)] + [x for x in a.shifts if day * DAY + DAY <= x[0] < (day + 6) * DAY]
        ss = self.sess(a, R, label=lab, pace=(10, 60))
        for (s1, e1) in looks[:R.randint(2, 3)]:
            t = ss.ev(R.uniform(s1 + 30 * MIN, e1 - 30 * MIN), p, "read", "Patient")
            for rt, act in R.sample((("Condition", "search"), ("DocumentReference", "read"),
                                     ("MedicationRequest", "search"), ("Encounter", "search")), R.randint(1, 3)):
                t = ss.ev(t, p, act, rt, 1 if act == "read" else R.randint(0, 12))
        return True

    # --- stolen credentials
    def victim(self, R, t, jobs=None):
        cands = [p for p in self.posts_of(*(jobs or self.DOCTORS)) if not self.on_shift_at(p, t, 2 * HOUR)]
        cands = [p for p in cands if not any(self.on_shift_at(q, t, 2 * HOUR) for q in self.posts
                                             if q.person is p.person and q is not p)]
        return cands[R.randrange(len(cands))] if cands else None

    def inc_stolen_noisy_night(self, R, lab, day, night):
        t = day * DAY + R.uniform(1, 4.5) * HOUR
        a = self.victim(R, t)
        if a is None:
            return False
        ip = "198.51.100.%d" % R.randint(2, 250)
        ua = R.choice(("python-requests/2.31.0", "curl/8.5.0"))
        s = Sess(self, a, R, ip, ua, "TREAT", lab, (1, 4), page=1000)
        for _ in range(R.randint(2, 6)):
            t = s.ev(t, None, "login", None, 0, outcome="deny", basis="bad-credentials")
        t = s.ev(t + R.uniform(20, 300), None, "login", None, 0)
        for _ in range(R.randint(3, 6)):
            t = s.ev(t, None, "search", "Patient", R.randint(50, 100))
        for _ in range(R.randint(60, 150)):
            p = self.pick_all.pick(R)
            t = s.ev(t, p, "read", "Patient")
            if R.random() < .5:
                t = s.ev(t, p, "search", R.choice(("Observation", "Condition", "MedicationRequest")), R.randint(1, 40))
        return True

    def inc_stolen_quiet_evening(self, R, lab, day, night):
        t = day * DAY + R.uniform(19.5, 22) * HOUR
        a = self.victim(R, t)
        if a is None:
            return False
        ip, ua = residential(R), R.choice((MAC_CHROME, FIREFOX_WIN, MAC_SAFARI))
        s = Sess(self, a, R, ip, ua, "TREAT", lab, (20, 120))
        if R.random() < .5:
            t = s.ev(t, None, "login", None, 0, outcome="deny", basis="bad-credentials")
        t = s.ev(t, None, "login", None, 0)
        pool = self.unlinked(a, self.vips + self.staff_patients)
        pts = R.sample(pool, min(len(pool), R.randint(3, 6)))
        pts += self.unlinked(a, [self.pick_adult.pick(R) for _ in range(R.randint(5, 12))])
        R.shuffle(pts)
        for p in pts:
            t = s.ev(t, p, "read", "Patient")
            for _ in range(R.randint(1, 2)):
                rt, act = R.choice((("Observation", "search"), ("DocumentReference", "read"), ("Condition", "search")))
                t = s.ev(t, p, act, rt, 1 if act == "read" else R.randint(1, 30))
        return True

    def inc_stolen_slow_nights(self, R, lab, day, night):
        t = day * DAY + R.uniform(0.5, 2.5) * HOUR
        a = self.victim(R, t)
        if a is None:
            return False
        ip = "192.0.2.%d" % R.randint(2, 250)
        ua = self.ws_ua(a.ws[0], t) if a.ws else CHROME_OLD
        pool = self.unlinked(a, self.patients[:])
        for k in range(3):
            tn = (day + k) * DAY + R.uniform(0.5, 2.8) * HOUR
            if self.on_shift_at(a, tn, HOUR):
                continue
            s = Sess(self, a, R, ip, ua, "TREAT", lab, (30, 240))
            tn = s.ev(tn, None, "login", None, 0)
            for _ in range(R.randint(3, 6)):
                p = pool[R.randrange(len(pool))]
                tn = s.ev(tn, p, "read", "Patient")
                tn = s.ev(tn, p, "read", "DocumentReference")
                if R.random() < .5:
                    tn = s.ev(tn, p, "search", "Condition", R.randint(1, 10))
        return True

    # --- exfiltration
    def inc_exfil_bulk_export(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of("ward_clerk", "coder", "records_clerk", "op_reception"), day, None)
        if not sh:
            return False
        s, e, a = sh
        t = e + R.uniform(1.5, 3) * HOUR
        ip = vpn_ip(R)
        s_ = Sess(self, a, R, ip, EDGE_NEW, "HOPERAT", lab, (40, 400), page=1000)
        t = s_.ev(t, None, "login", None, 0)
        nh = sum(1 for p in self.patients if HOSP in p.cust)
        t = s_.ev(t, None, "search", "Patient", 1000)
        for rt, mult in (("Patient", 1), ("Encounter", 6), ("Condition", 4), ("Observation", 45),
                         ("MedicationRequest", 8)):
            if rt != "Patient" and R.random() < .3:
                continue
            t = s_.ev(t, None, "export", rt, int(nh * mult * R.uniform(.8, 1.1)))
        return True

    def inc_exfil_paged_search(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of("op_consultant", "surg_doctor", "gp"), day, False)
        if not sh:
            return False
        s, e, a = sh
        shifts = [(s, e)] + [x for x in a.shifts if s < x[0] < s + 5 * DAY][:R.randint(1, 2)]
        ss = self.sess(a, R, label=lab, pace=(30, 150))
        ss.page = 500   # the largest page the server allows
        for k, (s1, e1) in enumerate(shifts):
            t = e1 - R.uniform(20, 50) * MIN
            for _ in range(R.randint(6, 14)):
                rt = R.choice(("Patient", "Patient", "Observation", "Condition", "Encounter"))
                t = ss.ev(t, None, "search", rt, R.randint(200, 500) if rt == "Patient" else R.randint(400, 2000))
            if k == len(shifts) - 1:
                ss.ev(t, None, "export", "Patient", R.randint(800, 2500))
        return True

    def inc_exfil_service_account(self, R, lab, day, night):
        if self.offday[day] or self.svc["dw"].uid in self.used_actors:
            return False
        a = self.svc["dw"]
        ip = R.choice(self.hosp_ws[24] + self.hosp_ws[21])
        ua = R.choice(("curl/8.5.0", "PostmanRuntime/7.37.0", "DBeaver/24.0.2 (Windows 10)"))
        s = Sess(self, a, R, ip, ua, "HOPERAT", lab, (60, 300), page=1000)
        t = day * DAY + R.uniform(13, 16) * HOUR
        N = len(self.patients)
        t = s.ev(t, None, "search", "Patient", 1000)
        for rt, mult in (("Patient", 1), ("Condition", 4), ("MedicationRequest", 8), ("Observation", 50),
                         ("DocumentReference", 6)):
            t = s.ev(t, None, "export", rt, int(N * mult * R.uniform(.9, 1.1)))
        return True

    # --- enumeration
    def inc_enum_scripted_sweep(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of("ed_nurse", "amu_nurse", "porter", "it_admin", "ward_clerk",
                                              "call_handler"), day, night)
        if not sh:
            return False
        s, e, a = sh
        ip = a.ws[R.randrange(len(a.ws))]
        ss = Sess(self, a, R, ip, "python-requests/2.31.0", "TREAT", lab, (1, 3))
        t = R.uniform(s + HOUR, e - 2 * HOUR)
        num = R.randrange(1000000, self.max_num - 400)
        for _ in range(R.randint(100, 250)):
            p = self.by_num.get(num)
            if p is None:
                t = ss.ev(t, self.ghost(num), "read", "Patient", 0, outcome="deny", basis="unknown-patient")
            else:
                t = ss.ev(t, p, "read", "Patient")
            num += 1
        return True

    def inc_enum_name_search(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of("call_handler", "gp_reception", "ooh_reception"), day, None)
        if not sh:
            return False
        s, e, a = sh
        ss = self.sess(a, R, label=lab, pace=(30, 200))
        ss.page = 100
        t = s + R.uniform(HOUR, 2 * HOUR)
        pool = self.unlinked(a, self.patients[:])
        for _ in range(R.randint(25, 60)):
            t = ss.ev(t, None, "search", "Patient", R.randint(5, 60))
            if R.random() < .3:
                t = ss.ev(t, pool[R.randrange(len(pool))], "read", "Patient")
            if t > e - 10 * MIN:
                break
        return True

    def inc_enum_slow_walk(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of("ward_clerk", "porter", "records_clerk", "op_reception",
                                              "ed_reception"), day, None)
        if not sh:
            return False
        s, e, a = sh
        ss = self.sess(a, R, label=lab, pace=(2 * MIN, 10 * MIN))
        t = s + R.uniform(30, 90) * MIN
        num = R.randrange(1000000, self.max_num - 200)
        for _ in range(R.randint(30, 60)):
            p = self.by_num.get(num)
            if p is None:
                t = ss.ev(t, self.ghost(num), "read", "Patient", 0, outcome="deny", basis="unknown-patient")
            else:
                t = ss.ev(t, p, "read", "Patient")
            num += R.randint(1, 3)
            if t > e:
                break
        return True

    # --- break-glass abuse
    BG_JOBS = ("op_nurse", "op_consultant", "gp", "practice_nurse", "district_nurse", "pharmacist",
               "radiographer", "midwife", "surg_nurse", "amu_nurse", "cpn")

    def bg_targets(self, a):
        closed = [p for p in self.patients if p.sharing != "consent" and a.org not in p.cust and p.age >= 16]
        return self.unlinked(a, closed)

    def inc_bg_single(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of(*self.BG_JOBS), day, night)
        if not sh:
            return False
        s, e, a = sh
        cands = self.bg_targets(a)
        if not cands:
            return False
        special = [p for p in cands if p.vip or p.staff]
        p = (special or cands)[R.randrange(len(special or cands))]
        ss = self.sess(a, R, label=lab, pace=(10, 60))
        t = ss.ev(R.uniform(s + HOUR, e - HOUR), p, "read", "Patient")
        t = ss.glass(t + R.uniform(10, 60), p, R.choice(WEAK_REASONS))
        for rt, act in R.sample((("Condition", "search"), ("DocumentReference", "read"), ("Observation", "search"),
                                 ("MedicationRequest", "search"), ("Encounter", "search")), R.randint(3, 5)):
            t = ss.ev(t, p, act, rt, 1 if act == "read" else R.randint(1, 25))
        return True

    def inc_bg_repeated(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of(*self.BG_JOBS), day, night)
        if not sh:
            return False
        s, e, a = sh
        cands = self.bg_targets(a)
        if len(cands) < 3:
            return False
        shifts = [(s, e)] + [x for x in a.shifts if s < x[0] < s + 6 * DAY]
        reason = R.choice(("urgent", "clinical need", "continuity of care", "need access"))
        for (s1, e1) in shifts[:R.randint(3, 5)]:
            p = cands.pop(R.randrange(len(cands)))
            ss = self.sess(a, R, label=lab, pace=(10, 60))
            t = ss.glass(R.uniform(s1 + HOUR, e1 - HOUR), p, reason)
            t = ss.ev(t, p, "read", "Patient")
            for rt, act in R.sample((("Condition", "search"), ("DocumentReference", "read"),
                                     ("Observation", "search")), R.randint(1, 3)):
                t = ss.ev(t, p, act, rt, 1 if act == "read" else R.randint(1, 25))
        return True

    def inc_bg_refused_retry(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of("amu_nurse", "surg_nurse", "ed_nurse", "icu_nurse"), day, True)
        if not sh:
            return False
        s, e, a = sh
        cands = self.unlinked(a, [p for p in self.cmht_caseload if HOSP not in p.cust])
        if not cands:
            return False
        p = cands[R.randrange(len(cands))]
        ss = self.sess(a, R, label=lab, pace=(10, 60))
        t = ss.ev(R.uniform(s + 2 * HOUR, e - 2 * HOUR), p, "read", "DocumentReference")
        t = ss.glass(t, p, R.choice((".", "x", "")) or ".", refused=True)
        t = ss.glass(t + R.uniform(20, 120), p, R.choice(("emergency", "urgent review", "clinical need")))
        for _ in range(R.randint(2, 3)):
            t = ss.ev(t, p, "read", "DocumentReference")
        ss.ev(t, p, "search", "Condition", R.randint(1, 8))
        return True

    # --- role misuse
    def inc_role_receptionist_notes(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of("gp_reception"), day, None)
        if not sh:
            return False
        s, e, a = sh
        lst = [p for p in self.patients if p.practice == a.org and p.age >= 16]
        pool = self.unlinked(a, lst)
        special = [p for p in pool if p.vip or p.staff or p.mh]
        pts = R.sample(special, min(len(special), R.randint(1, 3))) + R.sample(pool, min(len(pool), R.randint(4, 9)))
        ss = self.sess(a, R, label=lab, pace=(15, 90))
        t = s + R.uniform(2, 6) * HOUR
        for p in pts:
            for rt, act in R.sample((("DocumentReference", "read"), ("Condition", "search"), ("Observation", "search"),
                                     ("DiagnosticReport", "read"), ("MedicationRequest", "search")), R.randint(2, 3)):
                t = ss.ev(t, p, act, rt, 1 if act == "read" else R.randint(1, 30))
            t += R.uniform(2, 15) * MIN
        return True

    def inc_role_pharmacist_psych(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of("pharmacist"), day, None)
        if not sh:
            return False
        s, e, a = sh
        pool = self.unlinked(a, self.cmht_caseload)
        if not pool:
            return False
        ss = self.sess(a, R, label=lab, pace=(15, 90))
        t = R.uniform(s + HOUR, e - 2 * HOUR)
        for p in R.sample(pool, min(len(pool), R.randint(3, 6))):
            t = ss.ev(t, p, "read", "Patient")
            t = ss.ev(t, p, "search", "DocumentReference", R.randint(1, 20))
            for _ in range(R.randint(1, 2)):
                t = ss.ev(t, p, "read", "DocumentReference")
            if R.random() < .5:
                t = ss.ev(t, p, "search", "Condition", R.randint(1, 8))
            t += R.uniform(3, 20) * MIN
        return True

    def inc_role_admin_charts(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of("it_admin"), day, night)
        if not sh:
            return False
        s, e, a = sh
        pts = R.sample(self.vips, min(len(self.vips), R.randint(0, 2)))
        pts += [self.pick_adult.pick(R) for _ in range(R.randint(3, 8))]
        ss = self.sess(a, R, purpose="HSYSADMIN", label=lab, pace=(10, 90))
        t = R.uniform(s + HOUR, e - HOUR)
        for p in pts:
            t = ss.ev(t, p, "read", "Patient")
            t = ss.ev(t, p, "search", "Observation", R.randint(1, 40))
            if R.random() < .6:
                t = ss.ev(t, p, "read", "DocumentReference")
            if R.random() < .4:
                t = ss.ev(t, p, "search", "Condition", R.randint(1, 10))
            t += R.uniform(1, 10) * MIN
        return True

    def inc_role_porter_charts(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of("porter", "ward_clerk"), day, None)
        if not sh:
            return False
        s, e, a = sh
        tm = (s + e) / 2
        inpat = [st.p for st in self.census(self.stays, tm, tm + 1) if st.ward in ("amu", "surg")]
        pool = self.unlinked(a, inpat, dept=False) + self.unlinked(a, [self.pick_adult.pick(R) for _ in range(3)])
        if len(pool) < 2:
            return False
        ss = self.sess(a, R, label=lab, pace=(15, 90))
        t = R.uniform(s + HOUR, e - 2 * HOUR)
        for p in R.sample(pool, min(len(pool), R.randint(3, 7))):
            t = ss.ev(t, p, "search", "Condition", R.randint(1, 10))
            t = ss.ev(t, p, "read", "DocumentReference")
            if R.random() < .5:
                t = ss.ev(t, p, "search", "Observation", R.randint(1, 30))
            t += R.uniform(5, 30) * MIN
        return True

    # --- family lookups
    def inc_family_ex_partner(self, R, lab, day, night):
        posts = [p for p in self.posts_of(*self.CLIN, "gp_reception", "ward_clerk", "ed_reception", "call_handler")
                 if p.person.patient is not None]
        sh = self.pick_shift(R, posts, day, night)
        if not sh:
            return False
        s, e, a = sh
        me = a.person.patient
        near = [p for p in self.patients if p.sector == me.sector and p.hh != me.hh and p.age >= 18
                and abs(p.age - me.age) <= 12 and p.sex != me.sex]
        near = self.unlinked(a, near)
        if not near:
            return False
        p = near[R.randrange(len(near))]
        looks = [(s, e)] + [x for x in a.shifts if s + DAY <= x[0] < s + 8 * DAY]
        ss = self.sess(a, R, label=lab, pace=(10, 60))
        for (s1, e1) in looks[:R.randint(2, 4)]:
            t = ss.ev(R.uniform(s1 + 30 * MIN, e1 - 30 * MIN), p, "read", "Patient")
            for rt, act in R.sample((("Encounter", "search"), ("DocumentReference", "read"), ("Condition", "search"),
                                     ("Observation", "search"), ("Appointment", "search")), R.randint(1, 4)):
                t = ss.ev(t, p, act, rt, 1 if act == "read" else R.randint(0, 15))
        return True

    def inc_family_household(self, R, lab, day, night):
        posts = [p for p in self.posts_of(*self.CLIN, "gp_reception", "ward_clerk", "ed_reception", "call_handler",
                                          "coder", "records_clerk")
                 if p.person.patient is not None and len(self.households[p.person.patient.hh]) >= 2]
        sh = self.pick_shift(R, posts, day, night)
        if not sh:
            return False
        s, e, a = sh
        me = a.person.patient
        fam = self.unlinked(a, [p for p in self.households[me.hh] if p is not me])
        if not fam:
            return False
        ss = self.sess(a, R, label=lab, pace=(10, 60))
        t = R.uniform(s + HOUR, e - HOUR)
        for p in fam:
            t = ss.ev(t, p, "read", "Patient")
            views = ("Condition", "MedicationRequest", "Observation", "Encounter", "Immunization")
            for rt in R.sample(views, R.randint(1, 3)):
                t = ss.ev(t, p, "search", rt, R.randint(0, 20))
            if R.random() < .5:
                t = ss.ev(t, p, "read", "DocumentReference")
        return True

    # --- data broker
    def broker_pool(self, a, t):
        lst = [v for v in self.ed_visits if t - 7 * DAY <= v[5] < t - 6 * HOUR and (v[2] or v[3])
               and v[4] != a.uid and v[1].age >= 17]
        lst.sort(key=lambda v: (not v[2], v[0]))
        seen, out = set(), []
        for v in lst:
            if v[1].num not in seen:
                seen.add(v[1].num)
                out.append(v[1])
        return self.unlinked(a, out, dept=False)

    def inc_broker_slow(self, R, lab, day, night):
        posts = self.posts_of("ed_reception") or self.posts_of("ed_nurse")
        sh = self.pick_shift(R, posts, day, None)
        if not sh:
            return False
        s, e, a = sh
        shifts = [(s, e)] + [x for x in a.shifts if s < x[0] < s + 7 * DAY]
        used, n = set(), 0
        for (s1, e1) in shifts[:R.randint(3, 5)]:
            pool = [p for p in self.broker_pool(a, s1) if p.num not in used]
            ss = self.sess(a, R, label=lab, pace=(10, 60))
            for p in pool[:R.randint(1, 3)]:
                used.add(p.num)
                t = ss.ev(R.uniform(s1 + HOUR, e1 - HOUR), p, "read", "Patient")
                if R.random() < .6:
                    t = ss.ev(t, p, "read", "RelatedPerson")
                if R.random() < .4:
                    ss.ev(t, p, "search", "Encounter", R.randint(1, 4))
                n += 1
        return n > 0

    def inc_broker_batch(self, R, lab, day, night):
        posts = self.posts_of("ed_reception") or self.posts_of("ed_nurse")
        sh = self.pick_shift(R, posts, day, night)
        if not sh:
            return False
        s, e, a = sh
        t = R.uniform(s + 2 * HOUR, e - 2 * HOUR)
        pool = self.broker_pool(a, t)
        if len(pool) < 4:
            return False
        ss = self.sess(a, R, label=lab, pace=(30, 120))
        t = ss.ev(t, None, "search", "Encounter", len([v for v in self.ed_visits if t - 7 * DAY <= v[0] < t]))
        for p in pool[:R.randint(8, 15)]:
            t = ss.ev(t, p, "read", "Patient")
            if R.random() < .5:
                t = ss.ev(t, p, "read", "RelatedPerson")
        return True

    # --- prescription fraud
    def inc_rx_gp_phantom(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of("gp"), day, None)
        if not sh:
            return False
        s, e, a = sh
        lst = self.unlinked(a, [p for p in self.patients if p.practice == a.org and 20 <= p.age <= 60])
        if not lst:
            return False
        p = lst[R.randrange(len(lst))]
        shifts = [(s, e)] + [x for x in a.shifts if s < x[0] < s + 8 * DAY]
        for (s1, e1) in shifts[:R.randint(2, 3)]:
            ss = self.sess(a, R, label=lab, pace=(15, 60))
            t = ss.ev(e1 + R.uniform(5, 50) * MIN, p, "read", "Patient")
            t = ss.ev(t, p, "search", "MedicationRequest", R.randint(0, 4))
            self.prescribe(ss, t, p, R, 1)
        return True

    def inc_rx_hospital_night(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of("amu_doctor", "ed_doctor"), day, True)
        if not sh:
            return False
        s, e, a = sh
        tm = (s + e) / 2
        inpat = set(st.p.num for st in self.census(self.stays, s, e))
        lst = self.unlinked(a, [p for p in self.patients if 18 <= p.age <= 65 and p.num not in inpat])
        if not lst:
            return False
        ss = self.sess(a, R, label=lab, pace=(15, 60))
        t = R.uniform(tm, e - HOUR)
        for p in R.sample(lst, R.randint(1, 2)):
            t = ss.ev(t, p, "read", "Patient")
            t = ss.ev(t, p, "search", "MedicationRequest", R.randint(0, 6))
            t = self.prescribe(ss, t, p, R, 1) + R.uniform(5, 40) * MIN
        return True

    def inc_rx_nurse_prescriber(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of("practice_nurse", "district_nurse"), day, None)
        if not sh:
            return False
        s, e, a = sh
        lst = self.unlinked(a, [p for p in self.patients if 18 <= p.age <= 70 and p.practice in self.practices])
        shifts = [(s, e)] + [x for x in a.shifts if s < x[0] < s + 7 * DAY]
        for (s1, e1) in shifts[:R.randint(2, 4)]:
            ss = self.sess(a, R, label=lab, pace=(15, 60))
            t = R.uniform(s1 + HOUR, e1 - HOUR)
            for p in R.sample(lst, R.randint(1, 2)):
                t = ss.ev(t, p, "read", "Patient")
                t = self.prescribe(ss, t, p, R, 1)
        return True

    # --- shared logins
    def inc_shared_carehome(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of("gp"), day, None)
        if not sh:
            return False
        s, e, a = sh
        pool = self.unlinked(a, self.residents)
        if len(pool) < 3:
            return False
        t = R.uniform(s + 4 * HOUR, e - 2 * HOUR)   # the GP is still at the practice
        ss = Sess(self, a, R, CH_IP, KIOSK_UA, "TREAT", lab, (15, 90))
        t = ss.ev(t, None, "login", None, 0)
        for p in R.sample(pool, min(len(pool), R.randint(5, 12))):
            t = ss.ev(t, p, "read", "Patient")
            t = ss.ev(t, p, "search", "MedicationRequest", R.randint(1, 10))
            if R.random() < .5:
                t = ss.ev(t, p, "search", "Observation", R.randint(1, 20))
            if R.random() < .2:
                t = ss.ev(t, p, "create", "Observation", R.randint(1, 3))
        return True

    def inc_shared_student(self, R, lab, day, night):
        sh = self.pick_shift(R, self.posts_of("surg_doctor", "amu_doctor", "gp"), day, False)
        if not sh:
            return False
        s, e, a = sh
        ip = R.choice(self.student_ws) if a.org == HOSP else self.gp_ws[a.org]["reception"][0]
        t = e + R.uniform(1, 2.5) * HOUR
        ss = Sess(self, a, R, ip, None, "TREAT", lab, (15, 90))
        t = ss.ev(t, None, "login", None, 0)
        young = self.unlinked(a, [p for p in self.patients if 18 <= p.age <= 30])
        for p in R.sample(young, min(len(young), R.randint(6, 15))):
            t = ss.ev(t, p, "read", "Patient")
            t = ss.ev(t, p, "search", "Observation", R.randint(1, 20))
            if R.random() < .6:
                t = ss.ev(t, p, "read", "DocumentReference")
        return True

    # ================================================================ run and write
    def run(self):
        # phase A: demand (calls, attendances, admissions, clinics)
        self.flow_111()
        self.flow_ooh()
        self.flow_ed()
        self.flow_ed_board()
        self.initial_census()
        self.flow_planned()
        self.flow_day_surgery()
        self.flow_outpatients()
        self.flow_cmht()
        # phase B: the work that follows from it
        self.flow_wards()
        self.flow_pharmacy()
        self.flow_clerks_porters()
        self.flow_oncall()
        self.flow_therapies()
        self.flow_patient_flow()
        self.flow_secretaries()
        self.flow_coding()
        self.flow_records()
        self.flow_safeguarding()
        self.flow_governance()
        self.flow_audits()
        self.flow_mdt()
        self.flow_gp()
        self.flow_district_nursing()
        self.flow_care_home()
        self.flow_lab()
        self.flow_radiology()
        self.flow_portal()
        self.flow_staff_self()
        self.flow_logins()
        self.flow_service_desk()
        self.flow_services()
        # phase C: insiders
        self.build_links()
        self.incidents()

    def fmt_time(self, ms):
        off = self.a.tz_offset
        local = dt.datetime(self.start.year, self.start.month, self.start.day) + dt.timedelta(milliseconds=ms)
        s = local.strftime("%Y-%m-%dT%H:%M:%S") + ".%03d" % (ms % 1000)
        if off == 0:
            return s + "Z"
        m = int(round(abs(off) * 60))
        return s + "%s%02d:%02d" % ("+" if off > 0 else "-", m // 60, m % 60)

    def write(self, out_events, out_labels):
        # local times are sorted as written; with a fixed offset that is also UTC order
        self.rows.sort(key=lambda r: (r[0], r[1]))
        R = self.rng("event-ids")
        n_lab = 0
        with open(out_events, "w", encoding="utf-8", newline="\n") as fe, \
                open(out_labels, "w", encoding="utf-8", newline="\n") as fl:
            for (ms, _, ev, lab) in self.rows:
                eid = str(uuid.UUID(int=R.getrandbits(128), version=4))
                ev["id"] = eid
                ev["time"] = self.fmt_time(ms)
                fe.write(json.dumps(ev, separators=(",", ":")) + "\n")
                if lab is not None:
                    fl.write(json.dumps({"id": eid, "incident": lab[0], "kind": lab[1]}, separators=(",", ":")) + "\n")
                    n_lab += 1
        return n_lab

    def summary(self, n_lab):
        out = sys.stderr
        ev = [r[2] for r in self.rows]
        staff = len(set(p.uid for p in self.posts))
        print("regional_network: seed=%d days=%d staff=%d (%d posts) patients=%d (+%d created)"
              % (self.seed, self.D, staff, len(self.posts), self.a.patients, len(self.patients) - self.a.patients),
              file=out)
        print("  events: %d   attack events: %d (%.2f%%)" % (len(ev), n_lab, 100.0 * n_lab / max(1, len(ev))), file=out)
        roles = {}
        for e in ev:
            roles[e["actor"]["role"]] = roles.get(e["actor"]["role"], 0) + 1
        print("  by role: " + ", ".join("%s %d" % kv for kv in sorted(roles.items())), file=out)
        kinds = {}
        for (iid, kind, var, day, n) in self.incidents_meta:
            k = kinds.setdefault(kind, [0, 0])
            k[0] += 1 if n else 0
            k[1] += n
        print("  incidents: %d placed of %d" % (sum(1 for m in self.incidents_meta if m[4]), len(self.incidents_meta)),
              file=out)
        for kind in KINDS:
            if kind in kinds:
                print("    %-20s incidents %d  events %d" % (kind, kinds[kind][0], kinds[kind][1]), file=out)
        for (iid, kind, var, day, n) in self.incidents_meta:
            if not n:
                print("  WARNING: %s (%s/%s) found no suitable actor or target" % (iid, kind, var), file=out)


# ==================================================================== validation (--check)
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_time(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def type_ok(v, t):
    return {"string": isinstance(v, str), "integer": isinstance(v, int) and not isinstance(v, bool),
            "number": isinstance(v, (int, float)) and not isinstance(v, bool), "boolean": isinstance(v, bool),
            "null": v is None, "object": isinstance(v, dict), "array": isinstance(v, list)}.get(t, False)


def validate(v, schema, path, errs):
    """The subset of JSON Schema the event schema uses."""
    t = schema.get("type")
    if t is not None and not any(type_ok(v, x) for x in (t if isinstance(t, list) else [t])):
        errs.append("%s: %r is not %s" % (path, v, t))
        return
    if "enum" in schema and v not in schema["enum"]:
        errs.append("%s: %r not in enum" % (path, v))
    if "minimum" in schema and type_ok(v, "number") and v < schema["minimum"]:
        errs.append("%s: %r below minimum" % (path, v))
    fmt = schema.get("format")
    if fmt and isinstance(v, str):
        if fmt == "uuid" and not UUID_RE.match(v):
            errs.append("%s: %r is not a uuid" % (path, v))
        if fmt == "date-time":
            try:
                ok = TIME_RE.match(v) and parse_time(v)
            except ValueError:
                ok = False
            if not ok:
                errs.append("%s: %r is not an RFC 3339 date-time" % (path, v))
    if isinstance(v, dict):
        props = schema.get("properties", {})
        for r in schema.get("required", []):
            if r not in v:
                errs.append("%s: missing %s" % (path, r))
        if schema.get("additionalProperties") is False:
            for k in v:
                if k not in props:
                    errs.append("%s: unexpected property %s" % (path, k))
        for k, x in v.items():
            if k in props:
                validate(x, props[k], path + "." + k, errs)
    if isinstance(v, list) and "items" in schema:
        for i, x in enumerate(v):
            validate(x, schema["items"], "%s[%d]" % (path, i), errs)


def check(events_path, labels_path, schema_path, expected_incidents):
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    errs, ids, last = [], set(), None
    n = 0
    with open(events_path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            n += 1
            try:
                ev = json.loads(line)
            except ValueError as e:
                errs.append("events:%d: not JSON (%s)" % (i, e))
                continue
            e1 = []
            validate(ev, schema, "events:%d" % i, e1)
            errs += e1
            if e1:
                continue
            if ev["id"] in ids:
                errs.append("events:%d: duplicate id %s" % (i, ev["id"]))
            ids.add(ev["id"])
            tm = parse_time(ev["time"])
            if last is not None and tm < last:
                errs.append("events:%d: out of time order" % i)
            last = tm
            if len(errs) > 50:
                break
    seen, incidents = set(), {}
    with open(labels_path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            lab = json.loads(line)
            if set(lab) != {"id", "incident", "kind"}:
                errs.append("labels:%d: fields %s" % (i, sorted(lab)))
            if lab.get("id") not in ids:
                errs.append("labels:%d: %s is not an event id" % (i, lab.get("id")))
            if lab.get("id") in seen:
                errs.append("labels:%d: duplicate label" % i)
            if lab.get("kind") not in KINDS:
                errs.append("labels:%d: unknown kind %s" % (i, lab.get("kind")))
            seen.add(lab.get("id"))
            if incidents.setdefault(lab.get("incident"), lab.get("kind")) != lab.get("kind"):
                errs.append("labels:%d: incident %s has two kinds" % (i, lab.get("incident")))
    if len(incidents) != expected_incidents:
        errs.append("labels: %d incidents labelled, %d requested" % (len(incidents), expected_incidents))
    for e in errs[:50]:
        print("CHECK: " + e, file=sys.stderr)
    print("check: %d events, %d labels, %d incidents: %s"
          % (n, len(seen), len(incidents), "OK" if not errs else "%d problems" % len(errs)), file=sys.stderr)
    return not errs


def main(argv=None):
    ap = argparse.ArgumentParser(description="Synthetic, labelled access log of a regional care network.")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out-events", required=True)
    ap.add_argument("--out-labels", required=True)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--staff", type=int, default=150)
    ap.add_argument("--patients", type=int, default=4000)
    ap.add_argument("--incidents", type=int, default=25)
    ap.add_argument("--tz-offset", type=float, default=0.0, help="hours east of UTC for local time")
    ap.add_argument("--start", default=DEFAULT_START, help="first day (local), YYYY-MM-DD")
    ap.add_argument("--check", action="store_true", help="validate the output and the labels")
    ap.add_argument("--schema", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                     "shared", "events", "access-event.schema.json"))
    a = ap.parse_args(argv)
    if a.days < 3 or a.staff < 10 or a.patients < 200 or a.incidents < 0:
        ap.error("need --days >= 3, --staff >= 10, --patients >= 200, --incidents >= 0")
    net = Network(a)
    net.run()
    n_lab = net.write(a.out_events, a.out_labels)
    net.summary(n_lab)
    if a.check:
        placed = sum(1 for m in net.incidents_meta if m[4])
        ok = check(a.out_events, a.out_labels, a.schema, placed)
        if placed != a.incidents:
            print("CHECK: only %d of %d incidents could be placed" % (placed, a.incidents), file=sys.stderr)
            ok = False
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
