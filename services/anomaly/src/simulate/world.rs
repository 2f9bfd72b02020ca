//! The simulated installation: organisations, departments, staff, patients, services, and the
//! fixed pools of addresses and user agents every actor (honest or not) draws from.

use rand::{seq::SliceRandom, Rng};
use rand_chacha::ChaCha8Rng;

use super::{emit::uuid, Params};

/// User agents seen in the installation. Attackers draw from this same list: a stolen session
/// is new *for its victim*, never an agent nobody else uses.
pub const AGENTS: &[&str] = &[
    // 0, 1: the hospital's managed workstations before the browser update.
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
    // 2..9: personal devices.
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    // 10: scripts (the reporting job, researchers' notebooks).
    "python-requests/2.32.3",
    // 11, 12: services.
    "LabBridge/4.2.1 (HL7v2-FHIR)",
    "okhttp/4.12.0",
    // 13, 14: the managed workstations after the fleet's browser update.
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/132.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/132.0.0.0 Safari/537.36 Edg/132.0.2957.115",
    // 15: the patient app on Android.
    "CustodianPatient/3.4.1 (Android 14)",
];

/// Personal devices staff use at home or on the ward's Wi-Fi.
pub const PERSONAL_AGENTS: &[usize] = &[2, 3, 4, 5, 6, 7, 8, 9];
/// Devices patients use.
pub const PATIENT_AGENTS: &[usize] = &[2, 3, 5, 6, 8, 9, 15, 0];

/// Residential and mobile networks (first two octets) that staff at home, patients and
/// attackers alike connect from.
const PUBLIC_NETS: &[&str] = &[
    "81.2", "86.141", "92.40", "109.150", "176.24", "188.220", "31.54", "5.151", "77.183",
    "94.130", "178.25", "213.61",
];

pub fn public_ip(rng: &mut ChaCha8Rng) -> String {
    let net = PUBLIC_NETS.choose(rng).copied().unwrap_or("81.2");
    format!(
        "{net}.{}.{}",
        rng.gen_range(0..=255),
        rng.gen_range(1..=254)
    )
}

/// An address from the hospital's VPN pool (a new one each VPN session).
pub fn vpn_ip(rng: &mut ChaCha8Rng) -> String {
    format!("10.8.{}.{}", rng.gen_range(0..4), rng.gen_range(2..=254))
}

/// An address on the hospital's clinical Wi-Fi (DHCP: a new one each session).
pub fn wifi_ip(rng: &mut ChaCha8Rng) -> String {
    format!("10.40.{}.{}", rng.gen_range(0..16), rng.gen_range(2..=254))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeptKind {
    Ward,
    Emergency,
    Radiology,
    Pharmacy,
    /// Physiotherapists, dietitians, social workers: seen on referral on every ward.
    AlliedHealth,
    HealthInformation,
    Research,
    Admissions,
    CaseManagement,
    It,
    Privacy,
    /// A partner organisation's single department.
    Partner,
}

#[derive(Debug, Clone)]
pub struct Dept {
    pub name: &'static str,
    pub kind: DeptKind,
    pub org: usize,
    pub beds: usize,
    /// Its physicians are asked for consults on other wards.
    pub consults: bool,
    /// Fixed addresses of the department's shared workstations.
    pub workstations: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Org {
    pub reference: String,
    pub main: bool,
    /// The partner's network address as the gateway sees it (NAT).
    pub nat: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffKind {
    Physician,
    Nurse,
    Radiologist,
    Pharmacist,
    Therapist,
    Coder,
    Researcher,
    Clerk,
    CaseManager,
    Admin,
    Auditor,
}

#[derive(Debug, Clone)]
pub struct Staff {
    pub id: String,
    pub kind: StaffKind,
    pub dept: usize,
    pub org: usize,
    pub role: &'static str,
    /// Their own devices (indices into [`AGENTS`]).
    pub devices: Vec<usize>,
    pub home_ip: String,
    /// Connects from home through the VPN (else directly from the home address).
    pub vpn: bool,
    /// Prefers night shifts (nurses, ED).
    pub night: bool,
    /// Minutes their day starts after the department's nominal start (may be negative).
    pub start_offset: i64,
    /// How busy they are relative to peers.
    pub volume: f64,
    /// Uses a tablet on the ward Wi-Fi for some sessions.
    pub tablet: bool,
    /// Works some days from home (coders, researchers).
    pub remote_days: f64,
    /// The patient record of this staff member at the hospital, when they are one.
    pub patient: Option<usize>,
    /// A device bought during the run: from this day on, used at home (index into [`AGENTS`]).
    pub new_device: Option<(i64, usize)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conf {
    Normal,
    Restricted,
    VeryRestricted,
}

#[derive(Debug, Clone)]
pub struct PatientUser {
    pub id: String,
    pub ip: String,
    pub agent: usize,
}

#[derive(Debug, Clone)]
pub struct Patient {
    pub reference: String,
    /// The organisation that holds the record.
    pub custodian: usize,
    pub conf: Conf,
    pub vip: bool,
    pub staff: Option<usize>,
    /// `Consent/<id>` admitting research (HRESCH).
    pub research_consent: Option<String>,
    /// Consents admitting other organisations for treatment: (org, `Consent/<id>`).
    pub consents: Vec<(usize, String)>,
    pub user: Option<PatientUser>,
    /// Resources of each searched type, as a search for this patient would count them.
    pub sizes: [u32; RESOURCE_TYPES.len()],
}

/// Types searched per patient, and how many resources a patient typically has of each.
pub const RESOURCE_TYPES: &[(&str, u32, u32)] = &[
    ("Observation", 4, 50),
    ("MedicationRequest", 1, 14),
    ("Condition", 1, 9),
    ("DiagnosticReport", 1, 7),
    ("AllergyIntolerance", 0, 3),
    ("DocumentReference", 1, 12),
    ("Encounter", 1, 6),
    ("Procedure", 0, 4),
    ("ImagingStudy", 0, 3),
    ("Coverage", 1, 2),
    ("MedicationStatement", 0, 6),
    ("CarePlan", 0, 2),
];

impl Patient {
    /// The most restrictive confidentiality code of this patient's data of type `rt`, as
    /// records reports it: VIP and restricted records are labelled throughout; the lab
    /// system labels its results N; other data carries no label.
    pub fn confidentiality(&self, rt: &str) -> Option<&'static str> {
        match self.conf {
            Conf::VeryRestricted => Some("V"),
            Conf::Restricted => Some("R"),
            Conf::Normal if matches!(rt, "Observation" | "DiagnosticReport") => Some("N"),
            Conf::Normal => None,
        }
    }

    /// How many resources of type `rt` a search for this patient returns (`cap` is the page).
    pub fn size(&self, rt: &str) -> u32 {
        RESOURCE_TYPES
            .iter()
            .position(|(t, _, _)| *t == rt)
            .map(|i| self.sizes[i])
            .unwrap_or(1)
    }
}

#[derive(Debug, Clone)]
pub struct Service {
    pub client_id: &'static str,
    pub ip: String,
    pub agent: usize,
}

#[derive(Debug, Clone)]
pub struct World {
    pub orgs: Vec<Org>,
    pub depts: Vec<Dept>,
    pub staff: Vec<Staff>,
    pub patients: Vec<Patient>,
    /// Main-hospital patients in the order of their record numbers (enumeration sweeps).
    pub mrn_order: Vec<usize>,
    pub services: Vec<Service>,
    /// Day (from 0) the hospital's workstations switch to the updated browser.
    pub browser_update_day: i64,
}

/// (name, kind, beds at 120 staff, consults, physicians, nurses or other staff)
const MAIN_DEPTS: &[(&str, DeptKind, usize, bool, usize, usize)] = &[
    ("Emergency", DeptKind::Emergency, 0, false, 6, 9),
    ("Internal Medicine", DeptKind::Ward, 30, false, 4, 8),
    ("Cardiology", DeptKind::Ward, 18, true, 3, 5),
    ("General Surgery", DeptKind::Ward, 22, true, 3, 5),
    ("Orthopaedics", DeptKind::Ward, 14, false, 2, 4),
    ("Paediatrics", DeptKind::Ward, 12, false, 2, 4),
    ("Obstetrics", DeptKind::Ward, 10, false, 2, 3),
    ("Oncology", DeptKind::Ward, 14, true, 2, 4),
    ("Intensive Care", DeptKind::Ward, 8, false, 2, 5),
    ("Psychiatry", DeptKind::Ward, 10, true, 2, 3),
    ("Neurology", DeptKind::Ward, 8, true, 2, 3),
    ("Radiology", DeptKind::Radiology, 0, false, 3, 0),
    ("Pharmacy", DeptKind::Pharmacy, 0, false, 0, 3),
    ("Allied Health", DeptKind::AlliedHealth, 0, false, 0, 4),
    (
        "Health Information",
        DeptKind::HealthInformation,
        0,
        false,
        0,
        3,
    ),
    ("Clinical Research", DeptKind::Research, 0, false, 0, 2),
    ("Admissions", DeptKind::Admissions, 0, false, 0, 3),
    ("Case Management", DeptKind::CaseManagement, 0, false, 0, 2),
    ("IT", DeptKind::It, 0, false, 0, 2),
    ("Privacy Office", DeptKind::Privacy, 0, false, 0, 1),
];

fn scaled(n: usize, scale: f64) -> usize {
    if n == 0 {
        0
    } else {
        ((n as f64 * scale).round() as usize).max(1)
    }
}

impl World {
    pub fn build(params: &Params, rng: &mut ChaCha8Rng) -> World {
        let scale = params.staff as f64 / 120.0;
        let mut orgs = vec![Org {
            reference: format!("Organization/{}", uuid(rng)),
            main: true,
            nat: Vec::new(),
        }];
        for _ in 0..2 {
            orgs.push(Org {
                reference: format!("Organization/{}", uuid(rng)),
                main: false,
                nat: vec![
                    format!(
                        "193.{}.{}.{}",
                        rng.gen_range(0..255),
                        rng.gen_range(0..255),
                        rng.gen_range(2..250)
                    ),
                    format!(
                        "193.{}.{}.{}",
                        rng.gen_range(0..255),
                        rng.gen_range(0..255),
                        rng.gen_range(2..250)
                    ),
                ],
            });
        }
        let mut depts = Vec::new();
        let mut staff = Vec::new();
        for (index, (name, kind, beds, consults, physicians, others)) in
            MAIN_DEPTS.iter().enumerate()
        {
            let dept = depts.len();
            let workstations = (0..rng.gen_range(3..8))
                .map(|n| format!("10.20.{}.{}", index + 1, 11 + n))
                .collect();
            depts.push(Dept {
                name,
                kind: *kind,
                org: 0,
                beds: scaled(*beds, scale),
                consults: *consults,
                workstations,
            });
            let other_kind = match kind {
                DeptKind::Ward | DeptKind::Emergency => StaffKind::Nurse,
                DeptKind::Pharmacy => StaffKind::Pharmacist,
                DeptKind::AlliedHealth => StaffKind::Therapist,
                DeptKind::HealthInformation => StaffKind::Coder,
                DeptKind::Research => StaffKind::Researcher,
                DeptKind::Admissions => StaffKind::Clerk,
                DeptKind::CaseManagement => StaffKind::CaseManager,
                DeptKind::It => StaffKind::Admin,
                DeptKind::Privacy => StaffKind::Auditor,
                DeptKind::Radiology | DeptKind::Partner => StaffKind::Physician,
            };
            let physician_kind = if *kind == DeptKind::Radiology {
                StaffKind::Radiologist
            } else {
                StaffKind::Physician
            };
            for _ in 0..scaled(*physicians, scale) {
                staff.push(new_staff(rng, physician_kind, dept, 0));
            }
            for _ in 0..scaled(*others, scale) {
                staff.push(new_staff(rng, other_kind, dept, 0));
            }
        }
        // The partners: a hospital and a GP practice, each one department.
        let main_staff = staff.len();
        let partner_staff = params.staff.saturating_sub(main_staff).max(4);
        for (org, name, share) in [(1, "Partner Hospital", 0.6), (2, "Family Practice", 0.4)] {
            let dept = depts.len();
            depts.push(Dept {
                name,
                kind: DeptKind::Partner,
                org,
                beds: 0,
                consults: false,
                workstations: orgs[org].nat.clone(),
            });
            let n = ((partner_staff as f64 * share).round() as usize).max(2);
            for i in 0..n {
                let kind = if org == 1 && i % 3 != 0 {
                    StaffKind::Nurse
                } else {
                    StaffKind::Physician
                };
                staff.push(new_staff(rng, kind, dept, org));
            }
        }

        // Patients: most held by the hospital, with record numbers issued in order (the EHR
        // loads them with its MRNs as ids); the partners' with server-assigned ids.
        let mut patients = Vec::with_capacity(params.patients);
        let mut mrn: u64 = rng.gen_range(1_040_000..1_090_000);
        let mut mrn_order = Vec::new();
        for i in 0..params.patients {
            let roll: f64 = rng.gen();
            let custodian = if roll < 0.86 {
                0
            } else if roll < 0.95 {
                1
            } else {
                2
            };
            let reference = if custodian == 0 {
                mrn += rng.gen_range(1..4);
                mrn_order.push(i);
                format!("Patient/{mrn}")
            } else {
                format!("Patient/{}", uuid(rng))
            };
            let mut consents = Vec::new();
            for org in 0..orgs.len() {
                let p = if org == custodian {
                    0.0
                } else if custodian == 0 {
                    0.18
                } else {
                    0.45
                };
                if rng.gen_bool(p) {
                    consents.push((org, format!("Consent/{}", uuid(rng))));
                }
            }
            let research_consent =
                (custodian == 0 && rng.gen_bool(0.22)).then(|| format!("Consent/{}", uuid(rng)));
            let conf = if rng.gen_bool(0.025) {
                Conf::Restricted
            } else {
                Conf::Normal
            };
            let user = rng.gen_bool(0.09).then(|| PatientUser {
                id: uuid(rng).to_string(),
                ip: public_ip(rng),
                agent: PATIENT_AGENTS.choose(rng).copied().unwrap_or(5),
            });
            let mut sizes = [0; RESOURCE_TYPES.len()];
            for (size, (_, lo, hi)) in sizes.iter_mut().zip(RESOURCE_TYPES) {
                *size = rng.gen_range(*lo..=*hi);
            }
            patients.push(Patient {
                reference,
                custodian,
                conf,
                vip: false,
                staff: None,
                research_consent,
                consents,
                user,
                sizes,
            });
        }
        // VIPs: public figures whose records are labelled V.
        let vips = ((params.patients as f64 * 0.003).round() as usize).max(3);
        let mut main_patients: Vec<usize> = mrn_order.clone();
        main_patients.shuffle(rng);
        for &p in main_patients.iter().take(vips) {
            patients[p].vip = true;
            patients[p].conf = Conf::VeryRestricted;
        }
        // Staff who are also the hospital's patients; some records carry the employee flag R.
        let mut pool = main_patients.iter().skip(vips);
        for (s, member) in staff.iter_mut().enumerate() {
            if member.org == 0 && rng.gen_bool(0.45) {
                if let Some(&p) = pool.next() {
                    member.patient = Some(p);
                    patients[p].staff = Some(s);
                    if rng.gen_bool(0.35) {
                        patients[p].conf = Conf::Restricted;
                    }
                }
            }
        }

        let services = vec![
            Service {
                client_id: "lab-interface",
                ip: "10.0.5.21".into(),
                agent: 11,
            },
            Service {
                client_id: "pharmacy-system",
                ip: "10.0.5.34".into(),
                agent: 12,
            },
            Service {
                client_id: "quality-reporting",
                ip: "10.0.6.12".into(),
                agent: 10,
            },
        ];
        let browser_update_day = rng.gen_range(2..(params.days.max(3) as i64));
        World {
            orgs,
            depts,
            staff,
            patients,
            mrn_order,
            services,
            browser_update_day,
        }
    }

    /// Patients held by the hospital.
    pub fn main_patients(&self) -> impl Iterator<Item = usize> + '_ {
        self.mrn_order.iter().copied()
    }

    /// The consent of `patient` admitting `org`, if any.
    pub fn consent_for(&self, patient: usize, org: usize) -> Option<&str> {
        self.patients[patient]
            .consents
            .iter()
            .find(|(o, _)| *o == org)
            .map(|(_, c)| c.as_str())
    }

    /// Whether `org`'s staff may read `patient` without breaking the glass: custodian or
    /// consent.
    pub fn visible_to(&self, patient: usize, org: usize) -> bool {
        self.patients[patient].custodian == org || self.consent_for(patient, org).is_some()
    }
}

fn new_staff(rng: &mut ChaCha8Rng, kind: StaffKind, dept: usize, org: usize) -> Staff {
    let role = match kind {
        StaffKind::Admin => "admin",
        StaffKind::Auditor => "auditor",
        _ => "practitioner",
    };
    let n_devices = rng.gen_range(1..=3);
    let mut devices: Vec<usize> = PERSONAL_AGENTS
        .choose_multiple(rng, n_devices)
        .copied()
        .collect();
    if matches!(kind, StaffKind::Researcher) && rng.gen_bool(0.5) {
        devices.push(10);
    }
    if devices.is_empty() {
        devices.push(3);
    }
    let (remote_days, night) = match kind {
        StaffKind::Coder => (0.35, false),
        StaffKind::Researcher => (0.4, false),
        StaffKind::Nurse => (0.0, rng.gen_bool(0.3)),
        _ => (0.0, false),
    };
    Staff {
        id: uuid(rng).to_string(),
        kind,
        dept,
        org,
        role,
        devices,
        home_ip: public_ip(rng),
        vpn: rng.gen_bool(0.8),
        night,
        start_offset: rng.gen_range(-40..=50),
        volume: 0.6 + rng.gen::<f64>() * 0.9,
        tablet: matches!(kind, StaffKind::Physician) && rng.gen_bool(0.3),
        remote_days,
        patient: None,
        new_device: rng.gen_bool(0.12).then(|| {
            (
                rng.gen_range(1..30),
                PERSONAL_AGENTS.choose(rng).copied().unwrap_or(5),
            )
        }),
    }
}
