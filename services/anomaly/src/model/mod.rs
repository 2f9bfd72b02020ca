//! The anomaly model: pure, deterministic, no wall clock. Time comes from the events, so the
//! same sequence of events always produces the same scores, live (the stream consumer) and
//! offline (`anomaly replay`). An event's score uses only the events before it and itself.
//!
//! # What it looks at
//!
//! - [`explanations`]: what makes an access legitimate, learned from the stream (the actor's own
//!   history with the patient, the department as a proxy for the ward, data the department
//!   wrote, consults learned as department co-access, colleagues covering a ward, research under
//!   `HRESCH`, a clinician's declared review of her organisation's records under `HOPERAT`,
//!   the patient's own record) and from care facts fed with
//!   [`Detector::learn_relationship`]. An access nothing explains is the core signal. Who the
//!   patient is comes from her labels ([`Detector::learn_patient_labels`]: `EMP` staff, `CEL`
//!   a celebrity, counted as a V record). An auditor reading a patient's access trail
//!   (`AuditEvent`) is the privacy office's review, not a look at her data: it is scored as
//!   the actor's work without its patient ([`reads_the_audit_trail`]).
//! - [`baselines`]: per actor, and per role and department: hours of work, events and new
//!   patients per hour, resource types, actions and purposes (role misuse), addresses and user
//!   agents (novelty: stolen credentials), break-glass and export habits.
//! - [`patterns`]: the 5-minute window (distinct patients, rate against the actor's own
//!   baseline, denied share, failed logins), unexplained patients in the last hour, monotone
//!   sweeps of patient ids, many searches with few records opened, covering.
//! - [`sign_ins`]: failed sign-ins per source address, across accounts (password spraying,
//!   unknown usernames, a locked account tried again).
//! - [`places`]: one account at its own desk and at a computer other staff use at once (a
//!   shared login).
//! - [`networks`]: the organisation's own networks (a /24 eight of its members use without
//!   suspicion: a VPN pool), where an address new to the actor is barely new.
//! - [`outlier`]: Half-Space Trees over an 8-dimensional summary of the event.
//! - [`ensemble`]: the weighted noisy-OR and its calibration to a false-positive rate.
//! - [`incidents`]: alerts grouped per actor and time; suspicious events near an alert join it.
//! - [`parameters`]: what federated training shares ([`Detector::export_parameters`],
//!   [`Detector::import_parameters`]): the trees' masses and the calibration histogram.
//!
//! # Features (each `f` in `[0, 1]`; raw risk `1 − Π (1 − w·f)`)
//!
//! `u` is how unexplained the access is (`1 −` the strongest explanation), scaled down for
//! actors and departments whose ordinary work is unexplained by nature (admissions, coding,
//! case management, services: `u · (1 − min(1, 2h))` with `h` their habitual unexplained share,
//! learned from whole clean hours ([`habits`]); dormancy likewise with their habit of opening
//! dormant records, e.g. the emergency department). At an hour both the actor and her
//! department rarely work (odd hour `o` of each, `a = clamp(2·min(o) − 1)`) the discount
//! shrinks to `(1 − a)` of itself: a habit is learned at the hours its work is done. Reads,
//! exports, break-glass and the first patient of a search request (a search for one patient's
//! data) count fully; further patients of one request (a list) count 0.35.
//!
//! | feature | value `f` | `w` |
//! |---|---|---|
//! | `no_relationship` | `u` | 0.40 |
//! | `sensitive_unexplained` | unexplained `·` sensitivity `s` (V 1, R 0.6) `·` the habit factor counted `0.7 − 0.3 s` (a department unexplained by nature still has no reason to open a VIP's record), or `role_misuse · s` if more and the actor is mature (explained or not, what the role never does on a restricted record: the clerk who admitted the VIP reading her medication) | 0.75 |
//! | `dormant_unexplained` | `u ·` dormancy (nobody else touched the patient for 1 → 7 days; never, once the model is mature; her own reads of her record are nobody's care) | 0.55 |
//! | `unexplained_context` | `max(u, volume, patients_per_hour) · max(odd_hour, new_source, role_misuse)`, at least `role_misuse · new_source` (what the account never does, from where it never was) and the undiscounted unexplained `· role_misuse` (a habit of unexplained work excuses the role's own work, not what it never does) | 0.60 |
//! | `unexplained_spree` | unexplained patients in the last hour `n`: `(n − 1) / 9` (mature model); or, at a first look, patients opened for the first time in the last hour `f` (the clock hour before counted for its part still within the hour) against `b`, the busiest clean hour of first looks the actor or a member of her department had once mature (fading [`baselines::LIST_FADE`] a day; at least 6; not before one was learned): `(f − 2b) / b` | 0.95 |
//! | `distinct_patients` | 5-minute window, `d = r + s/10` read / only seen in search results, against the usual `b` (α 0.05 in the actor's first hour, then a mean over 20 active minutes, then α 0.05, of each active minute's busiest `d`: the actor's, or the department's if more): `(d − max(5, 3b)) / 10`; × 0.3 under purpose `POPHLTH` or `HRESCH` | 0.95 |
//! | `rate` | events in 60 s vs the actor's EWMA per active minute (floor 6): `(x − 3) / 7` (not for a list's further patients); × 0.3 under purpose `POPHLTH` or `HRESCH` | 0.50 |
//! | `denied` | `k` of `m` patient accesses (reads, writes, searches naming her) denied in 5 min (a refusal by role where the department's are everyday, 1% of its events or more, is none: [`EVERYDAY_ROLE_REFUSALS`]): `(k/m)·(k − 1)/2`, `k/m` once two patients were refused (one is a mistake or a glass about to be broken; three, or two patients, hardly ever benign); or `n` failed accesses (records that do not exist): `(n − 1) / 3` | 0.85 |
//! | `failed_logins` | failed logins in 5 min: `(n − 5) / 2` (a lockout is five and one refused), or `(n − 2) / 2 · max(new_source, odd_hour)` (an address the account never used that nobody of its department or organisation uses counts 1: address novelty ≥ 0.9, or for an account too young for its own places, new to it in the last hour once the stream is a day old); 1 for a second failure, or a sign-in that worked after a failure or at an odd hour (≥ 0.5), from an address and an agent both new to the account (at an odd hour an address never seen is enough: new source ≥ 0.6; a young account, 12 h and 20 events old, judged against the places of its first 12 h); 1 for 4 or more failures from one address (IPv6: /64) in 5 min for two accounts or more (each unknown username one: a spray), or a locked account tried again ([`sign_ins`]); 1 for a staff account's sign-in after [`SILENT_BEFORE_SIGN_IN`] (48 h) or more without use, from an address nobody of the organisation uses and a device the account never used (a leaver's account) | 0.97 |
//! | `break_glass_no_context` | break-glass: `(1 −` max(half the department's break-glass habit, new admission, explanation)`)²`; the habit not counted for an actor with two glasses broken alone in 14 days, on a record nobody else touched in 6 h ([`glasses`]: such a glass waits to see whether it too is alone) | 0.85 |
//! | `break_glass_excess` | the actor's break-glass share ≥ 4× the role's, 3+ times | 0.60 |
//! | `export` | export: 1 first exports, 0.2 habitual; × (0.5 + 0.5 · role rarity) | 0.50 |
//! | `whole_record` | [`WHOLE_RECORD`] or more events for one patient in one request (`$everything`), not under the patient's own or a consent's basis: [`ONE_WHOLE_RECORD`] (0.75 of the weight) until the actor or department did it unsuspiciously 3 times for patients something explained, then a fifth of it; × (0.5 + 0.5 · undiscounted unexplained share); at least `(k − 1) / 2 ·` the undiscounted unexplained share with `k` whole records of patients nothing explained (≥ 0.5) the actor pulled in the last hour (the third counts fully); an alerting whole record takes its request's first kinds of data into its incident | 0.97 |
//! | `large_result` | `log10(count) −` the actor's usual `− 0.3` (count ≥ 50; not for an export of one patient's record, as large as her record); for a job at its own place (20 events or more over 3 days, 90% from one address and one agent, and this one from them), the usual is at least its largest clean response of that kind, fading 3% a day ([`baselines::ActorBaseline::scheduled`]: a weekly full export) | 0.60 |
//! | `long_list` | `n` patients of one search request so far against `m`, the longest list the actor or its department made that raised no suspicion (fading [`baselines::LIST_FADE`] a day, at least [`LIST_FLOOR`]; a list is learned when the actor's next request begins; in the stream's first day every list is learned and none judged): `(log10(n / m) − 0.3) / 0.4 · (0.5 + 0.5 ·` undiscounted unexplained share`)`; × 0.3 under purpose `POPHLTH` or `HRESCH`. A search that names no patient and reports only how many it found (another system's log, one line a request) lists its `count`, against the longest such the actor or department made on earlier days ([`baselines::CountedLists`]: today's count from tomorrow, so a trawl does not make itself usual); at about three times that or more it is broad, and the actor's third broad search within an hour counts fully, whoever it listed | 0.90 |
//! | `sweep` | monotone run of patient ids (numeric steps ≤ 10: 4 → 0, 7 → 1; else 4 → 0, 10 → 1; two patients off a numeric run skipped) × its unexplained share (each patient counted at least `(e − 1) / 3` with `e` requests for records that do not exist in 5 min: guessing ids; a numeric step to a dormant record at its undiscounted dormant-unexplained share) | 0.97 |
//! | `search_sweep` | search requests in 10 min `n` with few records read: `(n − 15) / 25`; for a search of a mature person's (not a fixed-source account's: a job searches in batches), at least `(n − 2b) / b` against `b`, the most search requests within 10 minutes of a clean hour the actor or a member of her department had (fading [`baselines::LIST_FADE`] a day; at least 5; not before one was learned; an hour in which this reached 0.5 is not learned) | 0.70 |
//! | `odd_hour` | the actor's hour histogram (role's while new, × 0.6): 4% of events → 0, 0.3% → 1 | 0.25 |
//! | `new_source` | new address and/or user agent for a mature actor (0.5 each; a new address in a known /16 counts half, one the department uses every day, or in a /24 where eight of its recent addresses are (a ward's workstations, a VPN pool) or eight members of the organisation worked from this week ([`networks`]), 30%, and so does a user agent the department uses every day (its workstations' browser after an upgrade); a new version of a kind of client the actor uses (the agent without its version numbers), at an address she uses, counts 0.1 ([`baselines::UPGRADE_NOVELTY`]: her browser upgraded, not another device), and so do an address and a user agent the actor wrote for a patient from within 2 h (a GP's round of a care home documents each visit; a stranger with her password writes nothing: [`DOCUMENTED_FROM`]), but not for an account that always ran from one address with one client (a machine's: [`baselines::ActorBaseline::fixed_source`]); fades over a day) | 0.35 |
//! | `role_misuse` | what the role or department (almost) never does: resource type, action, purpose of use, by its share of the group's events once it has 500 (a type it never did counts from 200, a purpose from 100: a group declares a few purposes, by policy; as rare as the share of its events that were a kind done once: a small department of a few kinds has no new kind to expect) (a type or purpose only one other member of a group of three or more ever used is never done: her habit, or her exfiltration, is not the group's); a type (with its actions) or a purpose the actor herself uses counts 0.3, each on its own; a glass's `ETREAT` is left to the break-glass features; a machine's account from a new address or client: 1 for a type under 1% of its own events (what its role's other accounts do is no reason for it) | 0.50 |
//! | `misuse_run` | patients of a run of role misuse in the last hour `n`: `(n − 1) / 2`. A run begins with a person's look (not a machine's: [`baselines::ActorBaseline::fixed_source`]) at a kind of data her role and department (almost) never use and she never did (`role_misuse` of the type ≥ [`MISUSE_RUN_FROM`]); the same kind within the hour continues it, however her own looks have taught her groups since; a kind whose run alerted at [`CONFIDENT_MISUSE`] (0.92, the confidence that suspends) or more begins runs again for [`patterns::ALERTED_MISUSE_FOR`] (14 days: an exfiltration over a week's evenings does not become her habit), until the security team dismisses that alert | 0.95 |
//! | `volume` | events this hour vs the actor's EWMA per active hour (floor 20), stretched as the usual patients are: `(x − 2.5) / 5` | 0.50 |
//! | `patients_per_hour` | new patients this hour vs the usual (the mean per active hour, at least 40% of the busiest hour fading 3% per active hour, and half of this hour of the day's busiest fading 10% each day it is active, which hours with suspicious events do not set; floor 6), stretched for a member covering absent colleagues (her department at a third of its usual members at this hour of the day or less: up to `usual / at work − 2`, at most 4×, less for an odd hour or a new source, and never past what the department usually sees in this hour less what the others saw so far; [`baselines::Presence`]): `(x − 2) / 4` | 0.60 |
//! | `outlier` | Half-Space Trees score (`u`, dormancy, hour, source, misuse, volume, patients, count) | 0.30 |
//! | `restricted` | sensitivity alone | 0.10 |
//! | `amendments` | an update or delete: the actor's run of amendments of this patient (each within 30 min of the next) `n`, past the longest run `m` the department made without an alert (learned once a run is over; at least 1), `b = (n − m) / 2`, and how rarely the role and department amend this kind of data `r` (as rare as the run's rarest was when made): `(min(b, 1) + max(b − 1, 0) · r) · (0.5 + 0.5 · r)`; 1 for a change to the user's own record through her staff role ([`amendments`]) | 0.90 |
//! | `own_record` | the user's own record (the kernel decided `own-record` for her before, on the portal) accessed through her staff role | 0.90 |
//! | `unreviewed_prescription` | a `MedicationRequest` created within 30 min of the actor's first look at the patient when nothing explained that look (unexplained ≥ 0.4: at most the patient's consent named her organisation; a person's of a department, not a glass), with none of her clinical record (conditions, allergies, encounters, results, procedures, notes: [`CLINICAL_REVIEW`]) looked at in between: 1; 0 from a prescriber more than 2% of whose prescriptions (20 on record) were written blind, with no look into the patient's record beyond `Patient` in the 30 minutes before, or, until she has 20, more than 2% of her department's unsuspicious ones ([`BLIND_PRESCRIPTIONS_KNOWN`]) | 0.95 |
//! | `two_places` | 1 for an account at a desktop device other staff use (an address new to it this hour, with a kind of client [`places::SHARED_BY`] other accounts used there this week: a kiosk, a colleague's workstation) while its own desk (an address it has used for a day or more), in another network with another kind of client, was in use after it came there and within 10 minutes: two people on one account, not a move from one place to the other; a phone or tablet beside the desk is no second place ([`places`]) | 0.97 |
//! | `objections` | 1 for a refused access whose refusal was the patient's own (decision basis `consent-deny`: her consent denies this user) when [`patterns::OBJECTIONS`] (3) patients' refusals stopped a mature actor within 2 hours, unless she was refused [`patterns::USUAL_OBJECTIONS`] (3) times before (a records office releasing letters behind patients' objections every morning) | 0.95 |
//!
//! What the actor did to other patients (`unexplained_spree`, `denied`, `failed_logins`) weighs
//! on a permitted access to a patient times that access's own undiscounted unexplained share:
//! her own patients, read amid a snoop or after a lockout, are still her own.
//!
//! Logins and other events without a patient feed the rate, failed logins and the baselines
//! only. Writes (create, update, delete) are care, not curiosity: they explain later reads (not
//! one that itself alerted: a fraud's prescription makes the stranger no patient of hers) and
//! count toward rate and denials, not toward distinct patients; what changes entries after the
//! fact in an unusual run, or one's own record, is `amendments`' (an alert on it takes in the
//! run's earlier amendments).
//!
//! # Score, threshold, incidents
//!
//! The raw risk is calibrated ([`ensemble`]): after a warm-up (48 h of event time), the next
//! 48 h set the raw threshold at the target false-positive rate (`ANOMALY_TARGET_FPR`, 0.5%;
//! lower where that would exceed `ANOMALY_DAILY_ALERT_BUDGET` alerting events a day), then it
//! follows the last week's traffic, set again each day,
//! and the score maps that threshold to 0.8 (`score = 0.8 · raw / q` below it, `0.8 + 0.2 ·
//! (raw − q)/(1 − q)` above). `alert = score ≥ threshold` (`ANOMALY_ALERT_THRESHOLD`, 0.8).
//! Before calibration the prior `q = 0.8` holds, so the rules that need no history alert from the
//! first event. An alert opens an incident for the actor; for 30 minutes after its last alert,
//! the actor's events with at least 60% of the raw threshold alert with it once a second alert
//! on its own merits confirmed it (before, only those at the raw threshold; without extending
//! it; a look raised because its note never came opens or extends an incident but does not
//! confirm it: [`incidents::Incident::confirmed`]), and so do, with 10%, the further patients
//! of the search whose first patient alerted or joined it (an enumeration's later lists), with
//! any risk at all when that search stood out as a list (`distinct_patients`, `rate`,
//! `large_result` or `long_list` at 0.5 or more: a coder's paged list, each patient ordinary
//! for her); writes never: they are care. An alert on its own
//! merits that confirms its incident (the second; [`incidents::Incidents::join_confirmed`])
//! also takes into it the actor's earlier reads and searches that did not
//! alert but had 30% of the raw threshold (a quiet look's late alert: 90%, unless 20 or more
//! such events make a bulk), or 10% and the same request, within
//! [`incidents::LOOKBACK`] of it or of a later one that joined (a run with no pause of 10
//! minutes, at most [`incidents::MAX_REACH`] back; [`Scored::joined`]: they alert late); an
//! earlier search that stood out as a list comes whole with its first patient.
//!
//! # Alerts that wait
//!
//! What explains an access often comes just after it. An alert that rests only on a missing
//! explanation (its other features under half the threshold; no break-glass, no new source, the
//! actor's first such patient; in an open incident too, then raised into it) waits
//! [`ModelConfig::grace_seconds`] ([`GRACE`], 50 s): if the actor writes for the patient, or a
//! member of the actor's department opens her record, it is dropped (a portal user's, when the
//! kernel lets her into the record as the patient or under the patient's consent naming her,
//! unless that consent refused the look); otherwise it is raised late
//! ([`Detector::take_matured`]). On an ordinary record (not R, V or `EMP`) it waits as long as
//! nine in ten of the actor's own first notes took ([`habits::NoteDelays`], up to
//! [`LATE_NOTE_GRACE`]: the clinic physician writes the visit's note a minute or two after
//! opening the chart), and only until, the configured grace over, the actor turns to another
//! patient; and while she keeps reading the same chart (her last look at this patient, a grace
//! period ago at most, or a later look at it still waiting), up to [`ModelConfig::visit_seconds`]
//! ([`VISIT`], 15 minutes) after the first look, not for a very restricted (V, `CEL`) or a
//! colleague's (`EMP`) record. Such a look at an ordinary record nobody else touched for four
//! days raises nothing when its wait runs out where these looks going without her note are the
//! actor's habit (three in ten of her last ones, of five at least: the on-call oncologist's
//! night; [`Detector::raise_unless_habitual`]). Where the actor documents after a session with
//! the patient as a rule (half her first notes came 20 minutes or more after her first look, of
//! three at least: the psychiatrist reads the chart, sees the patient for fifty minutes, then
//! writes;
//! [`Detector::session_wait`]), it waits, on an ordinary or a restricted (R) record but not a
//! VIP's or a colleague's, as long as nine of her notes in ten took (up to
//! [`habits::NOTE_HORIZON`], 90 min), the next patient's chart not ending it ("the user
//! documents after her sessions, and documented nothing ..."); her quiet looks and refused
//! looks wait as long, if longer than their half hour. A person's refused look at one
//! patient's record (nobody else's refused in the window), alerting for the refusals and a
//! missing explanation only (its other features under half the threshold), waits
//! [`QUIET_LOOK_WAIT`] for her own note (the consent not on file at a community nurse's first
//! visit): dropped if she writes for the patient,
//! raised otherwise ("refused this patient's record, and the user documented nothing ..."); a
//! refusal of another patient while it waits alerts at once and raises it. A machine's look
//! under the threshold (role `service`: a gateway or a feed writes no note, and forgotten
//! records are its work; its theft shows in its source and volume) waits for nothing of what
//! follows. A first look
//! under the threshold (at least [`QUIET_LOOK_SHARE`], 70%, of it) at a record nobody touched lately (dormancy ≥
//! [`QUIET_LOOK_DORMANCY`]: nobody else for nearly three days)
//! with nothing to explain it (`u ≥ 0.75`, on a restricted record with the habit counted as for
//! `sensitive_unexplained`; or, once the actor's habits are known, the undiscounted unexplained
//! share × role misuse ≥ 0.6: a habit of unexplained work excuses the role's own work, not what
//! it never does) waits [`QUIET_LOOK_WAIT`] (30 min): dropped if the
//! actor writes for the patient or anyone else touches her record, raised otherwise. So does a
//! person's first look at an ordinary record nobody else touched for four days that only the
//! patient's consent to share it explains (decision basis `consent`: lawful, not care), at
//! least [`CONSENTED_LOOK_SHARE`] (50%) of the threshold, where unexplained work is not the
//! actor's or her department's habit (a records office's, a gateway's) ("opened on nothing but
//! the patient's consent ..."). In the warm-up (under the prior threshold), a look that would
//! alert only because the stream never saw the record (not a restricted or a colleague's one)
//! is no alert: in a young stream most records opened are new to it. A first
//! look at a very restricted (V, `CEL`) or a staff member's (`EMP`) record explained by nothing
//! but a guessed consult (the actor's department often reads patients of a department that
//! touched her lately) waits [`QUIET_LOOK_WAIT`] for the consult's note: dropped if the actor, or a
//! colleague of the department, writes for her; raised otherwise ("opened like a consult, but
//! no consult note followed within 30 minutes"); and so does a person's first look at such a
//! record with nothing at all to explain it, scored under the threshold but at least 75% of it
//! ("nothing explained opening this record, and neither the user nor her department
//! documented ..."), or, on a very restricted record, with nothing but the patient's consent
//! to share it (decision basis `consent`: lawful, not care), at 50% of it ("a very restricted
//! (V) record opened under the patient's consent ..."); and so does one explained only by her
//! department's touches where the
//! clinical data names her care team and neither the user nor the department is on it, if the
//! department is on the teams of the records it opens as a rule ([`habits::CareTeams`]: a ward
//! is, a pharmacy is not) ("her care team on record includes neither ..."); and so does a
//! mature person's first look at a restricted (R, V) or a colleague's record for what her role
//! or department never does (role misuse ≥ 0.6), at least 75% of the threshold ("a restricted
//! record opened for what this role or department never does ..."). A practitioner's first
//! look at a very restricted (V, `CEL`) record explained only by her department's care (the VIP
//! on her own ward) waits [`OWN_NOTE_WAIT`] (2 h) for her own note, where her department
//! documents at all (2% of its work or more): dropped if she writes for the patient (her
//! colleagues' notes are the care that explained it), raised otherwise ("a very restricted (V)
//! record opened on her ward's care, but the user documented nothing ..."). Any other first
//! look that only a guess explains (a consult, covering, the department's care of days ago,
//! faded) waits [`GUESS_WAIT`] (an hour) for care: dropped if the actor writes for the patient
//! or anyone else touches her record; raised otherwise, but only where the department's and
//! the actor's guesses are nearly always followed by care ([`habits::Confirmations`]: a ward's
//! are, a pharmacy's reviews are not, and say nothing when they are not; an actor's own, once
//! she has twenty on record, all but always: [`habits::Confirmations::own_record`]) and, for a
//! consult, the department's consults of the department that touched the patient last too,
//! where known (a GP's of the emergency department's patients are results reviewed, not care),
//! or, for a guessed consult of a record nobody else
//! touched for 1.6 days ([`STALE_CONSULT`]) by a person whose work is not unexplained by nature, where the
//! department's consults of the department that touched the patient last nearly always were
//! (per pair of departments: the cardiologists' of the ward's patients, whatever their guesses
//! elsewhere). A glass that alerts only without the department's habit (its
//! actor broke the glass alone twice in 14 days: [`glasses`]) waits [`glasses::LONE_AFTER`]
//! (3 h) from the session's first glass: dropped if anyone else touches the record or the actor
//! comes back to it after 30 minutes; raised otherwise ("broke the glass alone 3 times in 14
//! days"). Another alert of the actor raises its waiting ones at once (not its guesses nor its
//! glasses: what they turn out to be is what they teach). Time is event time; live,
//! the consumer also moves it with the wall clock when the stream is quiet ([`Detector::advance`], [`Detector::advance_quiet`]).
//!
//! Every [`Scored`] carries its contributions (feature, value, `w·f`), strongest first, the
//! `reasons` in words, and a one-line `explanation` ("Very restricted (V) record, e.g. a VIP,
//! with no care relationship, first access to this patient, no care relationship, outside usual
//! hours, new address and device.").
//!
//! # How well
//!
//! The README's anomaly section has the evaluation over simulated hospitals (`anomaly simulate`,
//! `anomaly evaluate`; tuned on seeds 1-2, misses read on 37): on seeds 1-8 with the clinical
//! record's care facts and patient labels precision 0.83-0.95, recall of attack events
//! 0.99, false-positive rate 0.15-0.33%, 26-27 of 27 incidents, median delay 45-50 s; from the
//! access events alone precision 0.84-0.92, recall 0.99, median delay 49-50 s; over 37 seeds
//! precision at least 0.833 and 0.837, recall at least 0.964 and 0.960, 985 and 972 of 999
//! incidents (model of 2026-12-03 22:10).
//!
//! # Memory
//!
//! All state is keyed by 64-bit hashes (no patient reference is stored) in bounded maps
//! ([`cache::Bounded`]): actors ([`Limits::actors`], 250,000: any actor seen among the last
//! 125,000 distinct actors is kept, so 100,000 active actors keep their history),
//! actor–patient relationships (4M), department–patient facts (2M), patients (2M), care facts
//! (1M), groups (20,000), the organisations' networks (50,000), pairs of departments' consults
//! (50,000). Per actor: the 5-minute window
//! (at most [`MAX_ENTRIES_PER_ACTOR`] entries), 32 recent patients, 4 recent requests, 8
//! addresses, 4 agents, 16 resource types, 4 purposes of use; per department 64 everyday
//! addresses and 64 members at work. Every
//! [`SWEEP_EVERY`] events windows that slid past are emptied. Measured (`cargo bench -p anomaly
//! --bench score`): 100,000 actors with a week of a day worker's history each hold 307-308 MiB
//! resident (2026-12-03 21:50, three runs; 258-304 MiB before the lists, whole records and
//! incident memory of that day's last round).
//!
//! # Restart
//!
//! The whole state serialises ([`snapshot`]: CBOR behind a format number); the service saves
//! it every `ANOMALY_SNAPSHOT_SECONDS` with a batch's scores and, at start, loads it and
//! [`Detector::observe`]s the scores stored after it (see `consumer::rebuild`). Without a
//! usable snapshot it observes the scores of the last day: windows and actor–patient
//! relationships come back; department facts, baselines and the calibration are relearned.

pub mod amendments;
pub mod baselines;
pub mod cache;
pub mod ensemble;
pub mod explanations;
pub mod glasses;
pub mod habits;
pub mod incidents;
pub mod networks;
pub mod outlier;
pub mod parameters;
pub mod patterns;
pub mod places;
pub mod preparations;
pub mod sign_ins;
pub mod snapshot;
mod window;

use chrono::{DateTime, Duration, Utc};
use custodian_access::{Basis, LOCKED_OUT_BASIS, UNKNOWN_LOGIN_ACTOR};
use custodian_events::{AccessAction, AccessEvent, AccessOutcome};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use amendments::{Amendments, OwnRecords, Run};
use baselines::{
    clamp01, ActorBaseline, CountedLists, Cover, EventKeys, FirstLooks, GroupBaseline, LongestList,
    OpenList, Presence, SearchPeaks, DAY, HOUR,
};
use cache::{hash_str, pair, Bounded};
pub use ensemble::{CalibrationSettings, Phase};
use ensemble::{Calibrator, Feature, Values};
use explanations::{Access, Explanation, Learn, OpenDays, RelationLimits, Relations, Why};
pub use explanations::{CareActor, CareFact, CareVia};
use glasses::{GlassSessions, LoneGlasses, COMPANY_BEFORE, LONE_AFTER, LONE_HABIT};
use habits::{
    CareTeams, Confirmations, Habit, HeldHours, NoteDelays, YoungReads, GUESS_ALERTS_UNDER,
    OWN_GUESSES_ALERT_UNDER, YOUNG_ACTOR, YOUNG_GROUP,
};
use incidents::Incidents;
use networks::OrganisationNetworks;
use outlier::{HalfSpaceTrees, DIMS};
pub use parameters::{GlobalParameters, ImportError};
use patterns::Patterns;
use places::{client_kind, is_desktop, OwnDesk, SharedDevices};
use preparations::{DepartmentPreparations, Judged, Preparations};
use sign_ins::{FailedSignIns, SignInFailures};
pub use snapshot::SnapshotError;
use window::ActorState;

/// The shortest list taken as usual ([`LongestList`]): a ward's census, whatever its members
/// listed so far.
pub const LIST_FLOOR: f64 = 10.0;
/// How dormant a record must be for a first look at it to wait as a quiet look (0.3: nobody
/// else touched it for 2.8 days). At 0.5 (4 days), a neighbour's record nobody had touched for
/// three days, opened by an oncologist, was missed; measured on 45 simulated hospitals, 0.3
/// found three more incidents for 0.3% more false alerts, and 0.2 or 0.05 nothing more.
pub const QUIET_LOOK_DORMANCY: f64 = 0.3;
/// The share of a department's events the kernel refuses by role from which such refusals are
/// its everyday (once it has done [`ROLE_REFUSALS_KNOWN`] things) and count as no refusal in
/// the actor's window: in the regional networks outpatients, reception, health records and
/// coding are refused by role in 2-6% of their events, all day. Measured on the fifteen
/// hospitals written apart: −58 false alerts, −3 attack events, no incident lost or found
/// later; our 51 unchanged. Counting no refusal by role where the department was not yet known
/// (its first hundred events; the records office's first morning): −167, but four of our 51's
/// role misuse incidents, a role trying what it may not, were lost.
const EVERYDAY_ROLE_REFUSALS: f32 = 0.01;
const ROLE_REFUSALS_KNOWN: f32 = 100.0;
/// How dormant an ordinary record must be (0.5: nobody else for four days) for a first look at
/// it that waits a grace period to count in the actor's record of such looks, and how many of
/// them (faded, as guesses) and what share left without her note or her department's care make
/// another one her habit ([`Detector::raise_unless_habitual`]): the on-call oncologist
/// answering a former patient's call at night reads her record and writes, or not, at 2 a.m.
/// Measured on the fifteen hospitals written apart: −328 false alerts, −50 attack events, no
/// incident lost or found later; our 51: −30 and −16, no incident lost. With VIP's and
/// colleagues' records counted too, a VIP's snooper was lost there.
const DORMANT_LOOK: f64 = 0.5;
const DORMANT_LOOKS_KNOWN: f32 = 5.0;
const DORMANT_LOOKS_HABIT: f32 = 0.3;
/// How well a clinician's declared review of her organisation's records explains a look
/// (below a care relationship; the unexplained part, 0.3, counts in no run of unexplained
/// patients).
pub const REVIEW_STRENGTH: f64 = 0.7;
/// The share of the raw threshold a quiet look needs (0.7): at 0.75, three neighbours' records
/// opened with nothing to explain them scored 0.57-0.58 (raw at 72% of the threshold) and were
/// missed from events alone; measured on 45 simulated hospitals, 0.7 found them for 0.7% more
/// false alerts from events alone (+7 with care facts).
pub const QUIET_LOOK_SHARE: f64 = 0.7;
/// The sliding window the window features look at.
pub const WINDOW: Duration = Duration::minutes(5);
/// The rate feature looks at this much of the window.
pub const RATE_WINDOW: Duration = Duration::seconds(60);
/// How many events between two sweeps of slid-past windows.
pub const SWEEP_EVERY: u64 = 4096;
/// Window entries kept per actor at most (≥ 15 distinct patients already saturates).
pub const MAX_ENTRIES_PER_ACTOR: usize = 2_000;
/// The default alert threshold (`ANOMALY_ALERT_THRESHOLD`); the calibrated anchor.
pub const DEFAULT_THRESHOLD: f64 = ensemble::CALIBRATED_ANCHOR;
/// Events for one patient in one request from which it is her whole record (`$everything`: a
/// search event per kind of data; a chart's screen asks for one kind at a time).
pub const WHOLE_RECORD: u16 = 8;
/// What one whole record weighs of [`Feature::WholeRecord`]'s full value (its weight 0.97 is
/// for strangers' whole records one after another; one counts 0.75).
pub const ONE_WHOLE_RECORD: f64 = 0.75 / 0.97;
/// Whole-record pulls, unsuspicious, after which the actor's (or its department's) next are
/// usual (a practice system importing its patients' records under their consent).
const USUAL_WHOLE_RECORDS: u32 = 3;

/// The model is "mature" (a never-seen patient means a dormant record, the spree counts) after
/// this much event time.
pub const MATURE_AFTER: i64 = DAY;
/// How long (event time) an alert that rests only on a missing explanation waits for one, by
/// default (`ANOMALY_GRACE_SECONDS`): a clinician who opens a patient's chart and documents in
/// it (a note, vital signs) within this time is caring for her; a snooper reads and leaves no
/// trace. Longer buys precision with delay (measured: 180 s raises precision by about 0.05 and
/// doubles the median delay). At 60 s, most incidents found by waiting were found at 59-60 s
/// and the median delay of the simulated hospitals sat on the 60 s target (one late find
/// tipped it over); at 50 s the medians are 49-51 s, for 4% more false alerts from events
/// alone and 0.5% more with care facts (the false-positive rate stays calibrated).
pub const GRACE: i64 = 50;
/// The longest an actor's habit of documenting late stretches the grace period (see
/// [`habits::NoteDelays`]): a clinic physician opens the chart, sees the patient, and writes
/// the encounter and its note one to three minutes later.
pub const LATE_NOTE_GRACE: i64 = 300;
/// How long a first look's wait may run on while the actor keeps reading the same ordinary
/// chart ([`ModelConfig::visit_seconds`]): a clinic visit's quarter of an hour (the surgeon
/// reads a returning patient's history, imaging and results for nine minutes, then writes).
/// Measured on the 37 simulated hospitals at 300 s: −22% false alerts from events alone (−2%
/// with care facts), no incident lost, two seeds' median delay 50 → 63-64 s (a role misuse and
/// a colleague's look found 10-20 s later); on the hospitals of the independent generator −4 to
/// −9%. At 900 s (2026-12-06): the fifteen hospitals of the generators written apart −61 false
/// alerts, no attack event, incident or median delay changed; our 51 unchanged. Only an
/// unbroken reading stretches it (each look a grace period after the last at most): a snooper
/// who pauses, or turns to another patient, alerts as before. A VIP's or a colleague's record
/// does not wait on the reading.
pub const VISIT: i64 = 900;
/// The share of an actor's notes its grace period waits for, once it has shown this many.
const NOTE_SHARE: f32 = 0.9;
const ACTOR_NOTES: f32 = 5.0;
/// How late half an actor's first notes must come for her to document after a session with
/// the patient ([`Detector::session_wait`]), once she has shown this many. Measured on the
/// networks (their mental health teams and psychological therapies: 332 false alerts on
/// looks whose session note came 30-90 minutes later): −277 false alerts, no incident lost;
/// from five notes −145, from ten −15 (most of a team's alerts come in its first days).
const SESSION_NOTES_FROM: i64 = 1_200;
const SESSION_NOTES: f32 = 3.0;
/// How odd the hour ([`baselines::ActorSignals::odd_hour`]) of a sign-in from an address and
/// a device both new to the account must be for it to alert by itself.
const ODD_SIGN_IN_HOUR: f64 = 0.5;
/// The fewest first looks an hour is taken to hold at its busiest ([`FirstLooks`]).
const FIRST_LOOKS_FLOOR: f64 = 6.0;
/// The fewest search requests the busiest 10 minutes of a clean hour are taken to hold
/// ([`SearchPeaks`], [`Feature::SearchSweep`]).
const SEARCH_PEAK_FLOOR: f64 = 5.0;
/// Role misuse from which a look begins a run of it ([`Feature::MisuseRun`]): what the role and
/// department do in under about 0.06% of their events, and the actor herself never did.
const MISUSE_RUN_FROM: f64 = 0.8;
/// How dormant a record (nobody else touched it for 4 days: 0.5) must be for a first look
/// that only the patient's consent explains to wait for care as a quiet look.
const CONSENTED_LOOK_DORMANCY: f64 = 0.5;
/// The share of the raw threshold such a look needs (0.5; the networks' family lookups scored
/// 51-70% of it): at 0.4 no incident more for 85 more false alerts on the independent
/// hospitals and networks.
pub const CONSENTED_LOOK_SHARE: f64 = 0.5;
/// How ordinary unexplained work may be for the actor and her department at most (the habit
/// factor `1 − 2h` at least 0.8) for a look on a consent alone to wait, or a consult of a record
/// left for days to alert ([`STALE_CONSULT`]): a records office's or a coder's such looks are
/// its work.
const NOT_UNEXPLAINED_BY_NATURE: f64 = 0.8;
/// How long nobody else may have touched a record (0.1: 1.6 days) for a consult of it that
/// no care follows to alert where the department's consults of that department's patients are
/// care ([`Detector::stale_consult_alerts`]): from 0 (a day), 1,163 false alerts more over the
/// four evaluation sets instead of 848, for one incident more; the snoops found had been left
/// 1.6-3 days.
pub const STALE_CONSULT: f64 = 0.1;
/// The score from which an alert on a run of role misuse makes its kind of data stay misuse
/// for the actor ([`patterns::ALERTED_MISUSE_FOR`]): the default confidence that suspends.
pub const CONFIDENT_MISUSE: f64 = 0.92;
/// How long a place and a device a person documented a patient's care from stay hers
/// ([`ActorModel::documents_from`]).
const DOCUMENTED_FROM: i64 = 2 * 3600;
/// What a prescriber looks at to assess a patient: her problems, allergies, encounters,
/// results, procedures and notes ([`Feature::UnreviewedPrescription`]).
const CLINICAL_REVIEW: [&str; 12] = [
    "Condition",
    "AllergyIntolerance",
    "Encounter",
    "EpisodeOfCare",
    "Observation",
    "DiagnosticReport",
    "Procedure",
    "DocumentReference",
    "Composition",
    "CarePlan",
    "ClinicalImpression",
    "Immunization",
];
/// Prescriptions (faded) an actor's own record needs before it speaks for her
/// ([`Feature::UnreviewedPrescription`]): a prescriber more than
/// [`BLIND_PRESCRIPTIONS_ALERT_UNDER`] of whose prescriptions were written blind (with no look
/// into the patient's record beyond her demographics in the [`patterns::CONSULTATION`] before)
/// prescribes from the order screen as a matter of course, and one more unreviewed prescription
/// tells nothing. Read on the fifteen hospitals of the generators written apart: each network
/// prescriber whose prescription alerted, the twelve frauds too, had looked into the patient
/// before every one of her earlier prescriptions; the academic centres' prescribers alerting
/// (62 false alerts, no fraud there) wrote 5-55% of theirs blind. Measured there: 6,004 →
/// 5,967 false alerts, attack events and incidents unchanged; our 51 unchanged. Until her own
/// record speaks, her department's unsuspicious prescriptions do (a new resident prescribes as
/// her team does): 5,967 → 5,960 there (the academic centres' specialties have one prescriber
/// each, so most of their remaining 16 have no colleague to learn from), our 51 unchanged;
/// her own record speaking from 10 instead: 16 fewer, but a4's snoop confirmed by a
/// prescription was lost.
const BLIND_PRESCRIPTIONS_KNOWN: f32 = 20.0;
const BLIND_PRESCRIPTIONS_ALERT_UNDER: f32 = 0.02;
/// How long a staff account must have been silent for a sign-in from a stranger's address and
/// device to alert by itself (a weekend off is shorter; a leaver's account, longer).
const SILENT_BEFORE_SIGN_IN: i64 = 48;

/// The longest grace period accepted (a replay holds its output this long).
pub const MAX_GRACE: i64 = 3_600;
/// Alerts waiting for their grace period at most; beyond, they alert at once.
pub const MAX_PENDING: usize = 10_000;
/// How long (event time) a quiet look waits: a first look at a record nobody touched lately,
/// with nothing to explain it, that stays below the threshold. If within this time the actor
/// documents nothing for the patient and nobody else touches her record, nobody is caring for
/// her here: the look alerts (the curious colleague's or neighbour's one or two looks).
pub const QUIET_LOOK_WAIT: i64 = 30 * 60;
/// How long (event time) a first look only a guess explains waits for care ([`Wait::Guess`]):
/// a consulted or covered patient is the ward's, and the ward touches her within the hour (the
/// next round of observations, the medication round), not always within half an hour.
/// Measured against half an hour: −218 false alerts on fifteen hospitals of the generators
/// written apart, one incident more, no attack event fewer; 45 min −190, 90 min and 2 h lose
/// a shared login found only through a guess's incident (what a ward's guesses teach changes
/// with the wait).
pub const GUESS_WAIT: i64 = 60 * 60;
/// How long a VIP's record opened on the ward's care waits for the actor's own note
/// ([`Wait::OwnNote`]).
pub const OWN_NOTE_WAIT: i64 = 2 * 3600;
/// The longest any alert waits after its event (event time), whatever it waits for: how long a
/// replay holds a line before no late alert can mark it any more ([`crate::replay`]). A wait
/// longer than this would be raised after its line was written, and lost from the output.
pub const LONGEST_WAIT: i64 = longest(&[
    MAX_GRACE,
    QUIET_LOOK_WAIT,
    GUESS_WAIT,
    OWN_NOTE_WAIT,
    habits::NOTE_HORIZON,
    glasses::LONE_AFTER,
]);

const fn longest(waits: &[i64]) -> i64 {
    let mut most = 0;
    let mut i = 0;
    while i < waits.len() {
        if waits[i] > most {
            most = waits[i];
        }
        i += 1;
    }
    most
}
/// The share of a department's work that is writing from which its members are expected to
/// document for the VIP they open ([`Wait::OwnNote`]).
const DOCUMENTING_DEPARTMENT: f32 = 0.02;
/// Quiet looks waiting at most.
pub const MAX_LOOKS: usize = 10_000;

/// How much the model may remember.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub actors: usize,
    pub groups: usize,
    pub relations: RelationLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            actors: 250_000,
            groups: 20_000,
            relations: RelationLimits::default(),
        }
    }
}

/// Everything configurable about the model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub calibration: CalibrationSettings,
    pub limits: Limits,
    /// Seed of the Half-Space Trees.
    pub seed: u64,
    /// Seconds an alert resting only on a missing explanation waits for one ([`GRACE`];
    /// 0 alerts at once).
    pub grace_seconds: i64,
    /// How long after a first look its wait may run on while the actor keeps reading the same
    /// chart (`ANOMALY_VISIT_SECONDS`; [`VISIT`], the default; 0: not at all). Fewer false
    /// alerts (the physician reads the history, then writes) for a later first alert on a
    /// snooper who reads on an ordinary record.
    #[serde(default)]
    pub visit_seconds: i64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            calibration: CalibrationSettings::default(),
            limits: Limits::default(),
            seed: 0x00c0_ffee,
            grace_seconds: GRACE,
            visit_seconds: VISIT,
        }
    }
}

/// One feature's part in a score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    pub feature: &'static str,
    /// The feature's value in `[0, 1]`.
    pub value: f64,
    /// `weight × value`: what it adds to the noisy-OR.
    pub contribution: f64,
}

/// Read back from a snapshot (a waiting alert's): the feature's name becomes
/// [`ensemble::Feature::name`]'s again.
impl<'de> Deserialize<'de> for Contribution {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Stored {
            feature: String,
            value: f64,
            contribution: f64,
        }
        let stored = Stored::deserialize(deserializer)?;
        let feature = Feature::ALL
            .iter()
            .map(|f| f.name())
            .find(|n| *n == stored.feature)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("unknown feature {}", stored.feature))
            })?;
        Ok(Self {
            feature,
            value: stored.value,
            contribution: stored.contribution,
        })
    }
}

/// One event's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub id: Uuid,
    /// In `[0, 1]`, rounded to 4 decimals.
    pub score: f64,
    /// `score >= threshold`.
    pub alert: bool,
    /// Human-readable contributions, strongest first (only those that added to the score).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The features that contributed, strongest first (at most 6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contributions: Vec<Contribution>,
    /// The reasons in one plain sentence.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub explanation: String,
    /// The incident (actor, time window) an alert belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<u64>,
    /// Earlier events of the same actor, scored before this one without alerting, that this
    /// alert shows to be part of its incident (the start of the burst or sweep, the other
    /// patients of the same search): they alert now, late.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joined: Vec<Uuid>,
}

/// An alert that waited for [`GRACE`] and found no explanation: raised late, at `at` (event
/// time), with the incident it opened or extended and the earlier events it takes into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matured {
    pub event: AccessEvent,
    /// The event's score, `alert` now true, `incident` and `joined` set.
    pub scored: Scored,
    pub at: DateTime<Utc>,
}

fn never() -> i64 {
    i64::MAX
}

/// What a waiting alert waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Wait {
    /// [`GRACE`]: the actor documenting, or a colleague of the department caring for her.
    Grace,
    /// [`QUIET_LOOK_WAIT`]: the actor documenting, or anyone else touching her record.
    QuietLook,
    /// [`QUIET_LOOK_WAIT`]: the consult's note, by the actor or the actor's department.
    ConsultNote,
    /// [`GUESS_WAIT`]: a first look only a guess explained (a consult, covering, the
    /// ward's care of days ago) turning out to be care: the actor writes for the patient, or
    /// anyone else touches her record ([`habits::Confirmations`]).
    Guess,
    /// [`LONE_AFTER`] from the session's first glass: a glass by someone who broke it alone
    /// before turning out to be alone again, or in company ([`glasses`]).
    LoneGlass,
    /// [`OWN_NOTE_WAIT`]: a VIP's record opened on nothing but her department's care: the
    /// actor herself writes for the patient.
    OwnNote,
    /// [`QUIET_LOOK_WAIT`]: a refused look at one patient's record: the actor herself writes
    /// for the patient (the consent was not on file, the care was real).
    Refused,
}

impl Wait {
    /// A look that waits only for the note or care that would explain it (not a refusal, not
    /// a glass): raised, it does not confirm its incident ([`incidents::Incident::confirmed`]).
    fn awaits_care(self) -> bool {
        match self {
            Wait::Grace | Wait::QuietLook | Wait::ConsultNote | Wait::Guess | Wait::OwnNote => true,
            Wait::LoneGlass | Wait::Refused => false,
        }
    }
}

/// An alert waiting for an explanation ([`Wait`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    wait: Wait,
    due: i64,
    /// From this time on (the configured grace period over, the actor's late-note habit
    /// stretching it), the actor turning to another patient ends the wait: the visit ended
    /// with no note.
    #[serde(default = "never")]
    moved_on_after: i64,
    actor: u64,
    dept: u64,
    patient: u64,
    request: u64,
    /// The open incident the event was carried into, if it was: raised, it belongs to that
    /// incident and, not alerting on its own merits, neither extends it nor takes others in.
    #[serde(default)]
    carried_into: Option<u64>,
    /// For a guessed consult: the pair of the actor's department and the department that
    /// touched the patient last ([`Detector::consults`]), and whether the record was left for
    /// days by a person whose work is not unexplained by nature ([`STALE_CONSULT`]).
    #[serde(default)]
    consult: u64,
    #[serde(default)]
    stale: bool,
    /// A first look at an ordinary record left for days, waiting a grace period: what becomes
    /// of it is learned ([`ActorModel::dormant_looks`]).
    #[serde(default)]
    dormant: bool,
    event: AccessEvent,
    scored: Scored,
}

/// What the windows remember of one event; also what a restart rebuilds them from.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub id: Uuid,
    pub actor: String,
    pub time: DateTime<Utc>,
    pub patient: Option<String>,
    pub touch: Touch,
}

/// How an event touches its patient, as far as the window features care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Touch {
    /// No patient: rate only.
    None,
    /// A login, failed (denied) or not.
    Login { denied: bool },
    /// A read, export or break-glass access of the patient's data, permitted or denied.
    Read { denied: bool },
    /// The patient's data returned by a search (records emits one event per patient).
    Searched,
    /// A create, update or delete in the patient's compartment.
    Wrote { denied: bool },
    /// An access that failed (outcome `error`, e.g. a record that does not exist): rate and
    /// the failures count.
    Failed,
}

impl Touch {
    pub fn of(action: AccessAction, outcome: AccessOutcome, has_patient: bool) -> Self {
        let denied = outcome == AccessOutcome::Deny;
        if action == AccessAction::Login {
            return Touch::Login { denied };
        }
        if outcome == AccessOutcome::Error {
            return Touch::Failed;
        }
        if !has_patient {
            return Touch::None;
        }
        match action {
            AccessAction::Read | AccessAction::Export | AccessAction::BreakGlass => {
                Touch::Read { denied }
            }
            // A search naming one patient, refused: an attempt on her data, as a refused read
            // (a broad search leaves those it may not show out, with no event).
            AccessAction::Search if denied => Touch::Read { denied },
            AccessAction::Search => Touch::Searched,
            AccessAction::Create | AccessAction::Update | AccessAction::Delete => {
                Touch::Wrote { denied }
            }
            AccessAction::Login => Touch::Login { denied },
        }
    }
}

impl Observation {
    pub fn of(event: &AccessEvent) -> Self {
        let patient = event
            .patient
            .clone()
            .filter(|p| !p.is_empty() && !reads_the_audit_trail(event));
        Self {
            id: event.id,
            actor: event.actor.id.clone(),
            time: event.time,
            touch: Touch::of(event.action, event.outcome, patient.is_some()),
            patient,
        }
    }
}

/// Everything the model keeps about one actor.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ActorModel {
    window: ActorState,
    baseline: ActorBaseline,
    patterns: Patterns,
    incidents: Incidents,
    /// How unexplained (and dormant-and-unexplained) the actor's ordinary reads are, learned
    /// from its clean hours ([`habits`]), and the hours not yet learned.
    habit: Habit,
    held: HeldHours,
    /// EWMA of the busiest window (weighted distinct patients) of each active minute: folded
    /// in when a minute closes (per event, a burst of a thousand events would teach itself
    /// within the burst); the minute being counted and its busiest window so far.
    usual_patients: f32,
    usual_minute: i64,
    minute_peak: f32,
    /// Active minutes folded in so far.
    usual_minutes: u32,
    /// How long after first opening an unexplained chart the actor documents for the patient.
    #[serde(default)]
    notes: NoteDelays,
    /// Whether the actor's guessed first looks turn out to be care.
    #[serde(default)]
    guesses: Confirmations,
    /// Whether the actor's first looks at ordinary records left for days, waiting for her note,
    /// got it (or the department's care): the same tally as guesses ([`DORMANT_LOOKS_KNOWN`]).
    #[serde(default)]
    dormant_looks: Confirmations,
    /// Whether the actor's prescriptions followed a look into the patient's record beyond her
    /// demographics ([`BLIND_PRESCRIPTIONS_KNOWN`]): the same tally as guesses, a blind one
    /// counted unconfirmed.
    #[serde(default)]
    prescriptions: Confirmations,
    /// The actor's glasses broken alone ([`glasses`]).
    #[serde(default)]
    lone_glasses: LoneGlasses,
    /// A young person's reads learned one by one this hour ([`habits::YoungReads`]).
    #[serde(default)]
    young_reads: YoungReads,
    /// The longest clean list the actor made, and the one being made ([`LongestList`]).
    #[serde(default)]
    longest_list: LongestList,
    #[serde(default)]
    open_list: OpenList,
    /// The longest counted list it made on earlier days ([`CountedLists`]).
    #[serde(default)]
    counted_lists: CountedLists,
    /// Patients opened for the first time lately, and its busiest clean hour of them.
    #[serde(default)]
    first_looks: FirstLooks,
    /// The most search requests within 10 minutes of the clock hour being counted.
    #[serde(default)]
    search_hour: SearchPeaks,
    /// The most search requests within 10 minutes of a clean hour the actor had.
    #[serde(default)]
    search_peak: LongestList,
    #[serde(default)]
    first_looks_peak: LongestList,
    /// Its recent updates and deletes ([`amendments`]).
    #[serde(default)]
    amendments: Amendments,
    /// Whether its dormant first looks turn out to be visits prepared ([`preparations`]).
    #[serde(default)]
    preparations: Preparations,
    /// The last two places (address and user agent keys) the actor wrote for a patient from,
    /// and when: her desk and the care home she visits the same afternoon.
    #[serde(default)]
    documented_from: [(u64, u64, i64); 2],
    /// Where it last acted from its own desk ([`places`]).
    #[serde(default)]
    own_desk: OwnDesk,
}

impl ActorModel {
    fn new(t: i64) -> Self {
        Self {
            window: ActorState::default(),
            baseline: ActorBaseline::new(t),
            patterns: Patterns::default(),
            incidents: Incidents::default(),
            habit: Habit::default(),
            held: HeldHours::default(),
            usual_patients: 0.0,
            usual_minute: i64::MIN,
            minute_peak: 0.0,
            notes: NoteDelays::default(),
            guesses: Confirmations::default(),
            dormant_looks: Confirmations::default(),
            prescriptions: Confirmations::default(),
            usual_minutes: 0,
            lone_glasses: LoneGlasses::default(),
            young_reads: YoungReads::default(),
            longest_list: LongestList::default(),
            open_list: OpenList::default(),
            counted_lists: CountedLists::default(),
            first_looks: FirstLooks::default(),
            search_hour: SearchPeaks::default(),
            search_peak: LongestList::default(),
            first_looks_peak: LongestList::default(),
            amendments: Amendments::default(),
            preparations: Preparations::default(),
            documented_from: [(0, 0, i64::MIN); 2],
            own_desk: OwnDesk::default(),
        }
    }

    /// Whether the actor wrote for a patient from this address, and with this user agent,
    /// within [`DOCUMENTED_FROM`]: a new place where she documents the visits she opens is
    /// hers (a GP's round of a care home), not a stranger's with her password (who reads and
    /// writes nothing).
    fn documents_from(&self, source: &EventKeys, t: i64) -> (bool, bool) {
        let recent = |at: i64| (0..=DOCUMENTED_FROM).contains(&t.saturating_sub(at));
        let here = self
            .documented_from
            .iter()
            .any(|&(address, _, at)| recent(at) && source.ip != 0 && source.ip == address);
        let with = self
            .documented_from
            .iter()
            .any(|&(_, agent, at)| recent(at) && source.agent != 0 && source.agent == agent);
        (here, with)
    }

    /// The actor wrote for a patient from `source` at `t`.
    fn documented(&mut self, source: &EventKeys, t: i64) {
        let slot = self
            .documented_from
            .iter()
            .position(|&(address, agent, _)| address == source.ip && agent == source.agent)
            .or_else(|| {
                self.documented_from
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, (_, _, at))| *at)
                    .map(|(i, _)| i)
            });
        if let Some(entry) = slot.and_then(|i| self.documented_from.get_mut(i)) {
            *entry = (source.ip, source.agent, t);
        }
    }
}

/// A role's or department's pooled habits, plus its habitual unexplained share.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Group {
    baseline: GroupBaseline,
    /// Learned from its members' clean hours, each at most [`habits::HOURLY_CAP`] reads' worth.
    habit: Habit,
    /// EWMA of its members' busiest windows per active minute.
    usual_patients: f32,
    /// A department's members at work ([`baselines::Presence`]).
    #[serde(default)]
    presence: Presence,
    /// Whether its members' guessed first looks turn out to be care.
    #[serde(default)]
    guesses: Confirmations,
    /// The longest clean list one of its members made ([`LongestList`]).
    #[serde(default)]
    longest_list: LongestList,
    /// The longest counted list one of its members made on earlier days ([`CountedLists`]).
    #[serde(default)]
    counted_lists: CountedLists,
    /// The busiest clean hour of first looks one of its members had.
    #[serde(default)]
    first_looks_peak: LongestList,
    /// The most search requests within 10 minutes of a clean hour one of its members had.
    #[serde(default)]
    search_peak: LongestList,
    /// Whether its members are on the care teams of the records they open ([`CareTeams`]).
    #[serde(default)]
    care_teams: CareTeams,
    /// The longest run of amendments of one patient a member made without suspicion
    /// ([`amendments`]).
    #[serde(default)]
    amendment_run: u16,
    /// The days its members worked: a department's clock for explanations ([`OpenDays`]).
    #[serde(default)]
    calendar: OpenDays,
    /// Its members' accesses the kernel refused by role ([`EVERYDAY_ROLE_REFUSALS`]).
    #[serde(default)]
    role_refusals: f32,
    /// Whether its members' dormant first looks turn out to be visits prepared
    /// ([`preparations`]).
    #[serde(default)]
    preparations: DepartmentPreparations,
    /// Whether its members' unsuspicious prescriptions followed a look into the patient's
    /// record ([`BLIND_PRESCRIPTIONS_KNOWN`]): the prior of a prescriber with too few her own.
    #[serde(default)]
    prescriptions: Confirmations,
}

/// The detector. One instance scores one stream of events in order; it is not `Sync` by
/// itself (the service wraps it in a mutex).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detector {
    threshold: f64,
    config: ModelConfig,
    actors: Bounded<ActorModel>,
    groups: Bounded<Group>,
    relations: Relations,
    forest: HalfSpaceTrees,
    calibrator: Calibrator,
    /// The first and the newest event time seen.
    first: Option<i64>,
    newest: Option<i64>,
    observed: u64,
    incidents: u64,
    /// Alerts waiting for their grace period, oldest first, and those that came of age since
    /// the last [`Detector::take_matured`].
    pending: std::collections::VecDeque<Pending>,
    /// Whether every score carries its contributions and sentence, or only alerts and the
    /// alerts waiting ([`Detector::explain_all`]).
    explain_all: bool,
    /// Quiet looks waiting, oldest first.
    looks: std::collections::VecDeque<Pending>,
    /// How many waiting alerts (of every kind) name each patient.
    waiting_patients: std::collections::HashMap<u64, u32>,
    matured: Vec<Matured>,
    /// Patients' labels ([`LABEL_EMPLOYEE`], [`LABEL_CELEBRITY`]) from records.
    #[serde(default = "patient_labels")]
    patient_labels: Bounded<u8>,
    /// Whether the stream names departments at all ([`Keys::of`]).
    #[serde(default)]
    departments_seen: bool,
    /// Failed sign-ins per source address, across accounts ([`sign_ins`]).
    #[serde(default)]
    sign_ins: FailedSignIns,
    /// The networks each organisation's members use ([`networks`]).
    #[serde(default)]
    networks: OrganisationNetworks,
    /// Break-the-glass sessions of the last hours ([`glasses`]).
    #[serde(default)]
    glass_sessions: GlassSessions,
    /// Whose own record each user opened through the portal ([`amendments`]).
    #[serde(default)]
    own_records: OwnRecords,
    /// How often one department's guessed consults of another's patients turned out to be
    /// care, per pair of departments ([`Detector::stale_consult_alerts`]).
    #[serde(default = "consults")]
    consults: Bounded<Confirmations>,
    /// Which accounts use each desktop device ([`places`]).
    #[serde(default)]
    shared_devices: SharedDevices,
}

/// A patient labelled `EMP` in `meta.security`: a member of staff, the colleague the curious
/// look up.
pub const LABEL_EMPLOYEE: u8 = 1;
/// A patient labelled `CEL`: a celebrity, counted as a very restricted record.
pub const LABEL_CELEBRITY: u8 = 2;
/// Labelled patients remembered at most.
const PATIENT_LABELS: usize = 200_000;

fn patient_labels() -> Bounded<u8> {
    Bounded::new(PATIENT_LABELS)
}

/// Pairs of departments whose consults are remembered at most.
const CONSULT_PAIRS: usize = 50_000;

fn consults() -> Bounded<Confirmations> {
    Bounded::new(CONSULT_PAIRS)
}

impl Default for Detector {
    fn default() -> Self {
        Self::new(DEFAULT_THRESHOLD)
    }
}

/// The hashed facts of one event.
#[derive(Debug, Clone, Copy)]
struct Keys {
    actor: u64,
    /// The actor's organisation (0 when the event names none).
    org: u64,
    /// The actor's `Practitioner/<id>` (0 when the event names none): what care facts name.
    person: u64,
    role: u64,
    dept: u64,
    patient: Option<u64>,
    request: u64,
    base: EventKeys,
}

impl Keys {
    /// `departments_seen`: whether the stream names departments at all.
    fn of(
        event: &AccessEvent,
        departments_seen: bool,
        new_patient: impl Fn(u64, u64) -> bool,
    ) -> Self {
        let t = event.time.timestamp();
        let org = hash_str(event.actor.organization.as_deref().unwrap_or(""));
        let role = pair(org, hash_str(&event.actor.role));
        let actor = hash_str(&event.actor.id);
        // Without a department: where others have one, this actor is a service, an
        // administrator or a patient, and its role is its group; in a log that names none, a
        // role is not a ward (every practitioner's care would explain every other's look), and
        // the actor is its own.
        let dept = match event.actor.department.as_deref() {
            Some(d) if !d.is_empty() => department_key(event.actor.organization.as_deref(), d),
            _ if departments_seen => role,
            _ => pair(role, actor),
        };
        let person = event
            .actor
            .practitioner
            .as_deref()
            .filter(|p| !p.is_empty())
            .map_or(0, hash_str);
        let patient = event
            .patient
            .as_deref()
            .filter(|p| !p.is_empty() && !reads_the_audit_trail(event))
            .map(hash_str);
        let ip = event.source.ip.as_deref().unwrap_or("");
        let (ip_key, ip_prefix, ip_network) = if ip.is_empty() {
            (0, 0, 0)
        } else {
            (
                hash_str(ip),
                hash_str(address_prefix(ip)),
                hash_str(address_network(ip)),
            )
        };
        let user_agent = event.source.user_agent.as_deref().filter(|a| !a.is_empty());
        let agent = user_agent.map_or(0, hash_str);
        let agent_kind = user_agent.map_or(0, client_kind);
        Self {
            actor,
            org,
            person,
            role,
            dept,
            patient,
            request: event.request_id.as_deref().map_or(0, hash_str),
            base: EventKeys {
                time: t,
                hour: (t.rem_euclid(DAY) / 3600) as usize,
                ip: ip_key,
                ip_prefix,
                ip_network,
                agent,
                agent_kind,
                resource: event.resource_type.as_deref().map_or(0, hash_str),
                action: action_index(event.action),
                purpose: hash_str(&event.purpose),
                break_glass: is_break_glass(event),
                export: event.action == AccessAction::Export,
                research: event.purpose.eq_ignore_ascii_case("HRESCH"),
                count: event.count,
                member: (actor ^ (actor >> 32)) as u32,
                new_patient_this_hour: patient.is_some_and(|p| new_patient(actor, p)),
                reading: matches!(
                    event.action,
                    AccessAction::Read
                        | AccessAction::Search
                        | AccessAction::Export
                        | AccessAction::BreakGlass
                ),
            },
        }
    }
}

/// The first two octets of an IPv4 address (a site, a VPN pool), the first four groups of an
/// IPv6 one.
fn address_prefix(ip: &str) -> &str {
    leading_groups(ip, 2, 4)
}

/// The /24 of an IPv4 address (a subnet: a ward's workstations, one slice of a VPN pool), the
/// /48 of an IPv6 one.
fn address_network(ip: &str) -> &str {
    leading_groups(ip, 3, 3)
}

/// The first `v4` octets of an IPv4 address, or `v6` groups of an IPv6 one, as written.
fn leading_groups(ip: &str, v4: usize, v6: usize) -> &str {
    let (separator, keep) = if ip.contains(':') {
        (':', v6)
    } else {
        ('.', v4)
    };
    match ip.match_indices(separator).nth(keep - 1) {
        Some((at, _)) => &ip[..at],
        None => ip,
    }
}

pub const fn action_index(action: AccessAction) -> usize {
    match action {
        AccessAction::Read => 0,
        AccessAction::Search => 1,
        AccessAction::Create => 2,
        AccessAction::Update => 3,
        AccessAction::Delete => 4,
        AccessAction::Export => 5,
        AccessAction::Login => 6,
        AccessAction::BreakGlass => 7,
    }
}

fn read_like_or_search(action: AccessAction) -> bool {
    matches!(
        action,
        AccessAction::Read | AccessAction::Search | AccessAction::Export | AccessAction::BreakGlass
    )
}

/// A purpose of use that declares a review of records rather than care: HL7's `HOPERAT`
/// (healthcare operations: a clinical audit) and its `HQUALIMP` (quality improvement).
fn declares_review(event: &AccessEvent) -> bool {
    ["HOPERAT", "HQUALIMP"]
        .iter()
        .any(|p| event.purpose.eq_ignore_ascii_case(p))
}

/// The flag, the action, or the purpose of use: another system's log may say it only as HL7's
/// `ETREAT` (emergency treatment, what the kernel records for a break-the-glass access) or
/// `BTG` (break the glass).
fn is_break_glass(event: &AccessEvent) -> bool {
    event.break_glass
        || event.action == AccessAction::BreakGlass
        || ["ETREAT", "BTG"]
            .iter()
            .any(|p| event.purpose.eq_ignore_ascii_case(p))
}

/// Whether the event is the security team reading the ledger's record of who accessed a
/// patient's data (an auditor's read or search of `AuditEvent`): the privacy office's review
/// of her record's accesses, not a look at her data (Custodian's auditors read no clinical
/// data). It is scored as the actor's work (its pace, hours, sources, volume), not as a look
/// at the patient: no relationship is asked of it, and it makes her record look touched to
/// nobody. Measured on the fifteen hospitals of the three generators written apart from the
/// model: 786 false alerts were auditors' searches of the trail (45% of their 1,732),
/// no attack among them.
fn reads_the_audit_trail(event: &AccessEvent) -> bool {
    event.actor.role == "auditor"
        && event.resource_type.as_deref() == Some("AuditEvent")
        && matches!(event.action, AccessAction::Read | AccessAction::Search)
}

/// 1 for `V`, 0.6 for `R`, 0 otherwise.
fn sensitivity(event: &AccessEvent) -> f64 {
    match event.confidentiality.as_deref().map(str::trim) {
        Some(c) if c.eq_ignore_ascii_case("V") => 1.0,
        Some(c) if c.eq_ignore_ascii_case("R") => 0.6,
        _ => 0.0,
    }
}

/// What the phrases need besides the feature values.
struct Context {
    explanation: Explanation,
    sensitivity: f64,
    /// A restricted record counts for what the role never does on it, more than for being
    /// unexplained.
    sensitive_misuse: bool,
    spree: usize,
    /// Patients of a run of role misuse in the last hour.
    misuse_run: usize,
    /// Patients whose own refusal stopped the actor in the last two hours.
    objections: usize,
    /// First looks in the last hour, the busiest hour usual, and whether they drove the spree.
    first_looks: (f64, f64, bool),
    window: patterns::WindowFeatures,
    searches: usize,
    signals: baselines::ActorSignals,
    count: u32,
    break_glass_count: u32,
    first_export: bool,
    /// Events of the request for this patient when they make her whole record, else 0.
    whole_record: u16,
    /// Patients of the search request so far, and the longest list usual for the actor.
    list: (u32, f64),
    outlier: f64,
    broke_in: bool,
    /// A second failed sign-in from an address and a device both new to the account.
    stranger: bool,
    /// A sign-in from an address new to the account (and to the organisation), at an odd hour.
    odd_sign_in: bool,
    /// A sign-in from a stranger's address and device after this many days of silence
    /// ([`SILENT_BEFORE_SIGN_IN`]), if it was one.
    returning_after_days: Option<i64>,
    sign_ins: SignInFailures,
    /// The actor's amendments of this patient in a run so far, this one included.
    amendment_run: usize,
    /// The user's own record, through her staff role.
    own_record: bool,
}

impl Detector {
    pub fn new(threshold: f64) -> Self {
        Self::with_config(threshold, ModelConfig::default())
    }

    pub fn with_config(threshold: f64, config: ModelConfig) -> Self {
        Self {
            threshold,
            config,
            actors: Bounded::new(config.limits.actors),
            groups: Bounded::new(config.limits.groups),
            relations: Relations::new(config.limits.relations),
            forest: HalfSpaceTrees::new(config.seed),
            calibrator: Calibrator::new(config.calibration),
            first: None,
            newest: None,
            observed: 0,
            incidents: 0,
            pending: std::collections::VecDeque::new(),
            explain_all: true,
            looks: std::collections::VecDeque::new(),
            waiting_patients: std::collections::HashMap::new(),
            matured: Vec::new(),
            patient_labels: patient_labels(),
            departments_seen: false,
            sign_ins: FailedSignIns::default(),
            networks: OrganisationNetworks::default(),
            glass_sessions: GlassSessions::default(),
            own_records: OwnRecords::default(),
            consults: consults(),
            shared_devices: SharedDevices::default(),
        }
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Whether scores that do not alert carry their contributions and sentence (the default;
    /// `anomaly replay` without `--explain` turns it off: it prints only the score).
    pub fn explain_all(&mut self, on: bool) {
        self.explain_all = on;
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Where the calibration stands, and the raw threshold in force.
    pub fn calibration(&self) -> (Phase, f64) {
        (self.calibrator.phase(), self.calibrator.raw_threshold())
    }

    /// Actors currently remembered.
    pub fn actors(&self) -> usize {
        self.actors.len()
    }

    /// Window entries currently remembered, over all actors.
    pub fn entries(&self) -> usize {
        self.actors.values().map(|a| a.window.len()).sum()
    }

    /// Relationship entries currently remembered.
    pub fn relations(&self) -> usize {
        self.relations.len()
    }

    /// Adds a care relationship from the clinical data (Encounter participants and service
    /// provider, CareTeam members, `Patient.generalPractitioner`, EpisodeOfCare): accesses it
    /// covers are explained.
    pub fn learn_relationship(&mut self, fact: &CareFact) {
        // A dismissed alert's kind of data was her work after all: it no longer stays misuse.
        if let (CareActor::User(id), CareVia::Dismissal) = (&fact.actor, fact.via) {
            if let Some(actor) = self.actors.get_mut(hash_str(id)) {
                actor.patterns.misuse_dismissed(fact.start.timestamp());
            }
        }
        let who = match &fact.actor {
            CareActor::User(id) => hash_str(id),
            CareActor::Department {
                organization,
                department,
            } => department_key(organization.as_deref(), department),
        };
        self.relations.learn_care(
            who,
            hash_str(&fact.patient),
            fact.start.timestamp(),
            fact.end.map(|e| e.timestamp()),
        );
    }

    /// Sets a patient's labels (her Patient resource's `meta.security` ActCode codes, as records
    /// publishes them), replacing earlier ones; codes the model does not use are ignored.
    pub fn learn_patient_labels(&mut self, patient: &str, labels: &[String]) {
        let bits = labels.iter().fold(0u8, |bits, label| {
            bits | match label.trim() {
                "EMP" => LABEL_EMPLOYEE,
                "CEL" => LABEL_CELEBRITY,
                _ => 0,
            }
        });
        let key = hash_str(patient);
        if bits == 0 && self.patient_labels.peek(key).is_none() {
            return;
        }
        *self.patient_labels.get_or_insert_with(key, || 0) = bits;
    }

    /// A patient's labels as the model holds them ([`LABEL_EMPLOYEE`], [`LABEL_CELEBRITY`]).
    pub fn patient_labels(&self, patient: &str) -> u8 {
        self.patient_labels
            .peek(hash_str(patient))
            .copied()
            .unwrap_or(0)
    }

    /// Adds an event to the windows and relationships without scoring it (restart rebuild).
    /// Returns whether the window remembered it (false for a duplicate id or an event older
    /// than the window).
    pub fn observe(&mut self, observation: &Observation) -> bool {
        let t = observation.time.timestamp();
        self.clock(t);
        let actor_key = hash_str(&observation.actor);
        let actor = self
            .actors
            .get_or_insert_with(actor_key, || ActorModel::new(t));
        let remembered = actor.window.insert(observation);
        if let (Some(patient), Touch::Read { denied: false } | Touch::Wrote { denied: false }) =
            (observation.patient.as_deref(), observation.touch)
        {
            let kind = if matches!(observation.touch, Touch::Wrote { .. }) {
                Learn::Write
            } else {
                Learn::Read
            };
            // Only the actor's own relationship: the stored rows have no department.
            let access = Access {
                actor: actor_key,
                person: 0,
                dept: actor_key,
                patient: hash_str(patient),
                time: t,
            };
            self.relations.learn(access, kind, true, true, false);
        }
        self.tick();
        remembered
    }

    /// Scores one event and learns from it.
    pub fn score(&mut self, event: &AccessEvent) -> Scored {
        let t = event.time.timestamp();
        self.clock(t);
        self.mature(t);
        let actors = &mut self.actors;
        self.glass_sessions.close(t, |actor, at| {
            if let Some(a) = actors.get_mut(actor) {
                a.lone_glasses.learn(at);
            }
        });
        let mature = self.first.is_some_and(|f| t - f >= MATURE_AFTER);
        let warming = mature && self.calibrator.phase() == Phase::Warmup;
        // A person of a department, not a machine, an administrator or a patient.
        let has_department = event
            .actor
            .department
            .as_deref()
            .is_some_and(|d| !d.is_empty());
        self.departments_seen |= has_department;
        let keys = {
            let actors = &self.actors;
            Keys::of(event, self.departments_seen, |a, p| {
                actors
                    .peek(a)
                    .is_none_or(|m| !m.patterns.seen_this_hour(p, t))
            })
        };
        let mut observation = Observation::of(event);
        // A patient's own record (one the kernel let her portal account open as her own
        // before): what the portal withholds from it (a restricted note, refused by her
        // token's scope) or cannot find is the portal's rule, not an attempt on someone's data.
        let own_record = event.actor.role == "patient"
            && keys
                .patient
                .is_some_and(|p| self.own_records.is_own(keys.actor, p));
        if own_record
            && matches!(
                observation.touch,
                Touch::Read { denied: true } | Touch::Failed
            )
        {
            observation.touch = Touch::None;
        }
        // A refusal by role is the kernel keeping a kind of data from a role, whoever the
        // patient: where the department's screens ask for what its role may not see as a
        // matter of course (the receptionist's notes tab), no attempt on anyone's record. Where
        // such refusals are rare, or not yet known to be everyday, they count (a role trying
        // what it may not: nothing else may show it).
        let role_refused = event.outcome == AccessOutcome::Deny
            && event
                .decision
                .as_ref()
                .is_some_and(|d| d.basis == Basis::Role.code());
        if role_refused
            && self.groups.peek(keys.dept).is_some_and(|g| {
                g.baseline.total >= ROLE_REFUSALS_KNOWN
                    && g.role_refusals >= EVERYDAY_ROLE_REFUSALS * g.baseline.total
            })
        {
            observation.touch = Touch::None;
        }
        let actor = self
            .actors
            .get_or_insert_with(keys.actor, || ActorModel::new(t));
        // A refused search is an attempt on one patient's data as the first patient of its
        // request; further patients of a list withheld one by one (consents that answer by the
        // data) are not attempts on each.
        // (Without a request id, a second's events of one actor are one request.)
        let request = if keys.request != 0 {
            keys.request
        } else {
            pair(t as u64, keys.actor)
        };
        if event.action == AccessAction::Search
            && observation.touch == (Touch::Read { denied: true })
            && !actor.patterns.opens_request(request)
        {
            observation.touch = Touch::None;
        }
        let duplicate = actor.window.contains(&event.id);
        if !duplicate {
            actor.window.insert(&observation);
        }
        let window = actor.window.features();
        let role = self.groups.peek(keys.role);
        let dept = self.groups.peek(keys.dept);
        let empty = GroupBaseline::default();
        let role_base = role.map_or(&empty, |g| &g.baseline);
        let dept_base = dept.map_or(&empty, |g| &g.baseline);
        // Colleagues absent (a weekend's lone pharmacist): her hour may hold theirs.
        let cover = dept.map_or(Cover::NONE, |g| g.presence.cover(keys.actor, t));
        let mut signals =
            actor
                .baseline
                .signals(&keys.base, &role_base.hours, role_base.total, cover);
        let group_address = dept_base.knows_address(keys.base.ip)
            || dept_base.knows_network(keys.base.ip_network)
            || self.networks.knows(keys.org, keys.base.ip_network, t);
        // A machine's credentials (an account that always ran from one address with one
        // client) used from anywhere else are someone else's hands, however familiar the place
        // and the browser are to the organisation's people.
        let fixed_source = actor.baseline.fixed_source(t);
        if signals.address.max(signals.young_address) > 0.0 && group_address && !fixed_source {
            signals.address_known_to_group();
        }
        // An address the account never used that nobody of its department or organisation uses
        // is a stranger's, whatever the device: failed sign-ins from it are guessing. Before the
        // account's own places are known (its first days), one new to it in the last hour,
        // once the stream is a day old and the organisation's places are known.
        let strange_address = if signals.mature {
            signals.address >= 0.9
        } else {
            mature && !group_address && actor.baseline.fresh_address(keys.base.ip, t)
        };
        if signals.agent.max(signals.young_agent) > 0.0
            && dept_base.knows_agent(keys.base.agent)
            && !fixed_source
        {
            signals.agent_known_to_group();
        }
        // Where a person documented her patients' care this session, the place and the device
        // are hers as much as her department's everyday ones are (a GP who always worked at
        // one desk too: where she writes her visits' notes is her hands).
        let (documents_here, documents_with) = actor.documents_from(&keys.base, t);
        if documents_here && has_department && signals.address.max(signals.young_address) > 0.0 {
            signals.address_known_to_group();
        }
        if documents_with && has_department && signals.agent.max(signals.young_agent) > 0.0 {
            signals.agent_known_to_group();
        }
        // The account at a computer other staff use, new to it this hour, while its own desk
        // elsewhere was in use minutes ago: two people on one account ([`places`]).
        // (The agent's kind is its key without versions: [`places::client_kind`].)
        let desktop = event
            .source
            .user_agent
            .as_deref()
            .filter(|a| is_desktop(a) && keys.base.ip != 0)
            .map(|_| keys.base.agent_kind);
        let two_places = desktop.is_some_and(|client| {
            actor
                .baseline
                .address_first_used(keys.base.ip)
                .is_some_and(|since| {
                    t - since < HOUR
                        && actor
                            .own_desk
                            .busy_elsewhere(keys.base.ip_prefix, client, since, t)
                })
                && self
                    .shared_devices
                    .shared(pair(keys.base.ip, client), keys.base.member, t)
        });

        let permitted = event.outcome != AccessOutcome::Deny;
        let read_like = matches!(
            event.action,
            AccessAction::Read | AccessAction::Export | AccessAction::BreakGlass
        );
        let search = event.action == AccessAction::Search;
        let write = matches!(
            event.action,
            AccessAction::Create | AccessAction::Update | AccessAction::Delete
        );
        let research = keys.base.research
            && (actor.baseline.research_share() >= 0.2
                || dept_base.research_share() >= 0.2
                || role_base.research_share() >= 0.2);

        // Explanation of the access.
        let mut explanation = Explanation::NONE;
        if let Some(patient) = keys.patient.filter(|_| read_like || search || write) {
            let access = Access {
                actor: keys.actor,
                person: keys.person,
                dept: keys.dept,
                patient,
                time: t,
            };
            let calendar = dept.map_or(&OpenDays::EVERY_DAY, |g| &g.calendar);
            explanation = self
                .relations
                .explain_on(access, research, mature, calendar);
            if let Some(other) = explanation.other_department {
                if actor.patterns.covering(other, t) && explanation.strength < 0.75 {
                    explanation.strength = 0.75;
                    explanation.why = Why::Covering;
                }
            }
            let basis = event.decision.as_ref().map(|d| d.basis.as_str());
            match basis {
                _ if (own_record || basis == Some("own-record")) && explanation.strength < 1.0 => {
                    explanation.strength = 1.0;
                    explanation.why = Why::OwnRecord;
                }
                // The patient's consent names the actor's organisation: a route of care the
                // patient chose, weaker than a care relationship.
                Some("consent") if explanation.strength < 0.6 => {
                    explanation.strength = 0.6;
                    explanation.why = Why::Consent;
                }
                _ => {}
            }
        }
        // A glass on a record nobody else touched lately opens (or continues) a session that
        // may turn out to be broken alone; after the actor's second such, the department's habit
        // no longer excuses it ([`glasses`]). Returns when the session began.
        let lone_glass = match keys.patient {
            Some(patient) if keys.base.break_glass && permitted && !duplicate => {
                let company = explanation
                    .others_last
                    .is_some_and(|last| t - last <= COMPANY_BEFORE);
                self.glass_sessions
                    .glass(keys.actor, patient, t, company)
                    .filter(|_| actor.lone_glasses.recent(t) >= LONE_HABIT)
            }
            _ => None,
        };
        // Habits: actors and departments whose work is population-wide (coding, admissions,
        // services) or who are often first to open a returning patient's record (emergency).
        // An unexplained access is ordinary for them; the factor is 1 − min(1, 2h).
        let habit_of = |own: f32, group: Option<f32>| {
            let own = (actor.habit.reads >= YOUNG_ACTOR).then_some(f64::from(own));
            let group = group.map(f64::from);
            let h = own.into_iter().chain(group).fold(0.0f64, f64::max);
            (1.0 - 2.0 * h).max(0.0)
        };
        let dept_habits = dept
            .filter(|g| g.habit.reads >= YOUNG_GROUP)
            .map(|g| g.habit);
        let ordinary = habit_of(actor.habit.unexplained, dept_habits.map(|g| g.unexplained));
        let ordinary_dormant = habit_of(actor.habit.dormant, dept_habits.map(|g| g.dormant));
        // A habit of unexplained work is learned at the hours the work is done: out of them it
        // excuses less (a practice's account reading strangers' records at nine in the evening
        // is not the clinic's bookings). Out of the department's hours as well as the actor's:
        // an admissions clerk on another shift than hers still does the desk's round-the-clock
        // work.
        // (The department's rarity only where the actor's could count: most events are at
        // usual hours.)
        let after_hours = if signals.odd_hour > 0.5 && ordinary.min(ordinary_dormant) < 1.0 {
            (2.0 * signals.odd_hour.min(dept_base.odd_hour(keys.base.hour)) - 1.0).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let ordinary = ordinary + (1.0 - ordinary) * after_hours;
        let ordinary_dormant = ordinary_dormant + (1.0 - ordinary_dormant) * after_hours;
        // A search for one patient's data weighs as a read; further patients of one request
        // (a list) weigh 0.35.
        let position = keys
            .patient
            .filter(|_| search)
            .map(|p| actor.patterns.position_in_request(request, p));
        let specific = read_like || position == Some(0);
        // The list so far (patients of this search request), and the actor's previous list if
        // it is over: usual if it raised no suspicion, or whatever it raised in the stream's
        // first day (a hospital's lists show in its first day; until then none is judged). A
        // redelivered event is no list's.
        let list_patients = position.map_or(0, |p| p.saturating_add(1));
        // A search that names no patient and reports only how many it found (another system's
        // log: one line per request) lists that many: a call centre's searches for one caller
        // find a handful, a wide name search pages through dozens.
        let counted_list = if search && keys.patient.is_none() && event.count > 1 {
            event.count
        } else {
            0
        };
        let finished_list = position
            .filter(|_| !duplicate)
            .and_then(|_| actor.open_list.see(request, list_patients))
            .filter(|(_, suspicious)| !suspicious || !mature)
            .map(|(patients, _)| patients);
        let weight = if specific {
            1.0
        } else if search {
            0.35
        } else {
            0.0
        };
        let labels = keys
            .patient
            .and_then(|p| self.patient_labels.peek(p).copied())
            .unwrap_or(0);
        let employee = labels & LABEL_EMPLOYEE != 0;
        let sens = if labels & LABEL_CELEBRITY != 0 {
            1.0
        } else {
            sensitivity(event)
        };
        // A clinician's declared review of her organisation's records (a clinical audit, a
        // quality review) reads patients nobody cares for now, one after another: the purpose
        // she declared and the kernel let her act on (the organisation holds the records)
        // explains the look, as research explains a researcher's. Not a VIP's or a
        // colleague's record: no audit is a reason to open those. Measured on the networks:
        // a consultant's one-day mortality review, 290-340 reads of dormant records, alerted
        // 230-280 times in each of five logs, a GP's practice audit 18-46 times. At an hour
        // both she and her department rarely work, it explains less: a review is done at work.
        let review = if keys.patient.is_some()
            && declares_review(event)
            && event.actor.role == "practitioner"
            && !keys.base.break_glass
            && sens < 1.0
            && !employee
            && event
                .decision
                .as_ref()
                .is_none_or(|d| d.basis == Basis::Custodian.code())
        {
            let off_hours = (2.0 * signals.odd_hour.min(dept_base.odd_hour(keys.base.hour)) - 1.0)
                .clamp(0.0, 1.0);
            REVIEW_STRENGTH * (1.0 - off_hours)
        } else {
            0.0
        };
        // Her work stays what it is: a department's habit of unexplained work (coding, under
        // the same purpose) is learned from what explained it before the review did.
        let explained_before_review = explanation.strength;
        if review > explanation.strength {
            explanation.strength = review;
            explanation.why = Why::Review;
        }
        // A first look at an ordinary record nobody touched for days, nothing explaining it
        // (or only the patient's consent to share it: lawful, not care): remembered to learn
        // whether the actor prepares her visits, and explained as a preparation where she does
        // as a rule ([`preparations`]). Measured: a family physician's evening lists, half of
        // them shared by consent, waited and alerted as consented looks (i5 −56 false alerts).
        let dormant_look = keys.patient.filter(|_| {
            mature
                && specific
                && permitted
                && read_like_or_search(event.action)
                && !keys.base.break_glass
                && !duplicate
                && sens <= 0.0
                && !employee
                && (explanation.strength <= 0.25 || explanation.why == Why::Consent)
                && explanation.dormant >= QUIET_LOOK_DORMANCY
        });
        let mut judged_preparations = Judged::default();
        if let Some(patient) = dormant_look {
            let habit = actor
                .preparations
                .factor(dept.and_then(|g| g.preparations.share()));
            judged_preparations = actor.preparations.look(patient, t);
            let strength = preparations::STRENGTH * habit;
            if strength > explanation.strength {
                explanation.strength = strength;
                explanation.why = Why::Preparation;
            }
        }
        let raw_unexplained = if keys.patient.is_some() {
            1.0 - explanation.strength
        } else {
            0.0
        };
        let u = raw_unexplained * weight * ordinary;
        // What the actor did to other patients (unexplained ones in the last hour, denials,
        // failures, failed sign-ins) weighs on a permitted access to a patient only as far as
        // nothing explains this one: her own patients read amid a snoop, after a lockout or a
        // refused chart are still her own (measured on 37 simulated hospitals: 1,800-2,000
        // fewer false alerts in all, 90-170 fewer of 133,527 attack events).
        let others = if keys.patient.is_some() && permitted {
            raw_unexplained
        } else {
            1.0
        };

        // A department whose work is unexplained by nature (admissions, coding) still has no
        // reason to open a VIP's record: its habit discounts a restricted record's signal less.
        // What the actor herself does habitually is not misuse however rare for her group: a
        // type she reads (with its actions), a purpose she declares, each on its own (the coder
        // who reads her usual documents, but for treatment, is misusing her role). A glass
        // declares its own purpose (ETREAT): the break-glass features judge it.
        let rarity = role_base
            .rarity(&keys.base)
            .rarer(dept_base.rarity(&keys.base));
        let habit = |known: bool| if known { 0.3 } else { 1.0 };
        let type_misuse = rarity.action.max(rarity.resource)
            * habit(keys.base.resource != 0 && actor.baseline.knows_type(keys.base.resource));
        let purpose_misuse = if keys.base.break_glass {
            0.0
        } else {
            rarity.purpose
                * habit(keys.base.purpose != 0 && actor.baseline.knows_purpose(keys.base.purpose))
        };
        let misuse = type_misuse.max(purpose_misuse);
        // A machine's work is its own, from its own place: what its role's other accounts do is
        // no reason for it (the pharmacy system's credentials reading notes from a ward's
        // workstation). From its own server, a new kind of work is its owners' (a new report).
        let misuse = if fixed_source
            && signals.address.max(signals.agent) >= 0.5
            && keys.base.resource != 0
            && !actor.baseline.works_with_type(keys.base.resource)
        {
            misuse.max(1.0)
        } else {
            misuse
        };
        // Changes to what a record holds, and a user's own record opened through her staff
        // role ([`amendments`]). Who is whose own patient only the kernel's own-record
        // decisions tell.
        let done = event.outcome == AccessOutcome::Permit;
        let own_record_basis = event
            .decision
            .as_ref()
            .is_some_and(|d| d.basis == "own-record");
        if let Some(patient) = keys.patient.filter(|_| done && own_record_basis) {
            self.own_records.learn(keys.actor, patient);
        }
        let own_as_staff = done
            && !own_record_basis
            && event.actor.role != "patient"
            && keys
                .patient
                .is_some_and(|p| self.own_records.is_own(keys.actor, p));
        let amendment = done
            && matches!(event.action, AccessAction::Update | AccessAction::Delete)
            && keys.patient.is_some();
        let (amendment_run, finished_run) = match keys.patient {
            Some(patient) if amendment && !duplicate => {
                actor.amendments.record(event.id, patient, t, rarity.amend)
            }
            _ => (Run::NONE, None),
        };
        let usual_run = dept.map_or(0, |g| usize::from(g.amendment_run));
        let floor = 0.3 + 0.3 * sens;
        let mut v = Values::default();
        v.set(Feature::NoRelationship, u);
        v.set(
            Feature::Amendments,
            if own_as_staff && write {
                1.0
            } else {
                amendment_run.risk(usual_run)
            },
        );
        v.set(Feature::OwnRecord, if own_as_staff { 1.0 } else { 0.0 });
        // Explained or not, what the role never does on a very restricted record is no reason
        // to open it (the admissions clerk who admitted the VIP, reading her medication).
        // Only once the actor has a history: until then her own habits cannot excuse what her
        // role seldom does (a researcher's first cohort search, a VIP among its patients).
        let sensitive_unexplained = raw_unexplained * (floor + (1.0 - floor) * ordinary);
        let sensitive_misuse = signals.mature && misuse > sensitive_unexplained;
        v.set(
            Feature::SensitiveUnexplained,
            sens * weight
                * if sensitive_misuse {
                    misuse
                } else {
                    sensitive_unexplained
                },
        );
        v.set(
            Feature::DormantUnexplained,
            u * explanation.dormant * ordinary_dormant,
        );
        // Unexplained, or far more patients than usual, in unusual circumstances: the stolen
        // credential's session, the exfiltration from home. A habit of unexplained work excuses
        // the role's own work, not what it never does: there the access counts undiscounted
        // (the coder who starts reading charts for treatment).
        v.set(
            Feature::UnexplainedContext,
            (u.max(signals.patients).max(signals.volume)
                * signals.odd_hour.max(signals.new_source).max(misuse))
            .max(misuse * signals.new_source)
            .max(raw_unexplained * weight * misuse),
        );
        let spree = if mature && specific && keys.patient.is_some() {
            let current = keys.patient.filter(|_| u >= 0.7);
            actor.patterns.unexplained_patients(t, current)
        } else {
            0
        };
        // Strangers or not, patients opened for the first time at twice the pace of the
        // busiest hour of first looks the user or any member of her department had (learned
        // from clean hours of mature accounts, fading 3% a day; full at three times): a
        // harvest at a pace nothing discounts, however ordinary each look is for her
        // department (a coder reading thirty inpatients' coverage an hour where coding's
        // busiest hour opened nine; an oncologist thirty strangers' insurance details).
        let unexplained_spree = ((spree as f64 - 1.0) / 9.0) * ordinary * others;
        let first_look =
            specific && permitted && !duplicate && keys.patient.is_some() && explanation.first_time;
        let (first_looks, clean_first_hour) = actor.first_looks.see(t, first_look);
        let clean_first_hour = clean_first_hour.filter(|_| signals.mature);
        let learned_first_hour = actor
            .first_looks_peak
            .usual(t)
            .max(dept.map_or(0.0, |g| g.first_looks_peak.usual(t)));
        let busiest_first_hour = learned_first_hour.max(FIRST_LOOKS_FLOOR);
        // Not before a busy hour was learned (a receptionist's second day).
        let flood = if mature && first_look && learned_first_hour > 0.0 {
            clamp01((first_looks - 2.0 * busiest_first_hour) / busiest_first_hour)
        } else {
            0.0
        };
        v.set(Feature::UnexplainedSpree, unexplained_spree.max(flood));
        let usual_patients =
            f64::from(actor.usual_patients).max(dept.map_or(0.0, |g| f64::from(g.usual_patients)));
        // A declared population purpose (population health, research) is population-wide by
        // definition; whether the actor may declare it is role misuse's question.
        let population = ["POPHLTH", "HRESCH"]
            .iter()
            .any(|p| event.purpose.eq_ignore_ascii_case(p));
        let population_scale = if population { 0.3 } else { 1.0 };
        let burst = window.burst(usual_patients) * population_scale;
        v.set(Feature::Burst, burst);
        // Not for the 2nd..nth patient of one search: a list arrives as many events at once.
        // A population job's pace is its nature too (its first night has no baseline yet).
        if specific || !search {
            v.set(Feature::Rate, window.rate() * population_scale);
        }
        v.set(
            Feature::Denied,
            window.denied_share().max(window.failures()) * others,
        );
        // Patients' own refusals (a consent that denies the user), one patient after another:
        // she goes on trying records whose owners said no ([`patterns::Objections`]).
        let objections = match keys.patient {
            Some(patient)
                if !permitted
                    && !duplicate
                    && event.action != AccessAction::Login
                    && event
                        .decision
                        .as_ref()
                        .is_some_and(|d| d.basis == Basis::ConsentDeny.code()) =>
            {
                actor.patterns.objected(patient, t)
            }
            _ => 0,
        };
        let objections = if signals.mature { objections } else { 0 };
        if objections >= patterns::OBJECTIONS {
            v.set(Feature::Objections, 1.0);
        }
        // From an address or at an hour the actor never uses, fewer failures are guessing.
        let guessing = ((f64::from(window.failed_logins) - 2.0) / 2.0)
            * signals
                .new_source
                .max(signals.odd_hour)
                .max(f64::from(u8::from(strange_address)));
        // A second failed sign-in from an address and a device both new to the account: someone
        // else trying its password (measured: 2 benign accounts in 8 simulated hospitals, 20
        // attacks; a user who forgot hers fails where she always signs in).
        let (sign_in_address, sign_in_source) = signals.sign_in_source();
        let stranger = window.failed_logins >= 2 && sign_in_source >= 0.9;
        let sign_ins = if event.action == AccessAction::Login
            && event.outcome == AccessOutcome::Deny
            && !duplicate
        {
            let (high, low) = event.id.as_u64_pair();
            self.sign_ins.record(
                event.source.ip.as_deref().unwrap_or(""),
                &event.actor.id,
                high ^ low,
                t,
                event
                    .decision
                    .as_ref()
                    .is_some_and(|d| d.basis == LOCKED_OUT_BASIS),
            )
        } else {
            SignInFailures::default()
        };
        // A sign-in that worked after failed attempts, from an address and a device the account
        // never used: a guessed or stolen password (measured: one such benign sign-in in
        // 6,000 of a simulated hospital, every stolen credential's). At an hour the account does
        // not work, an address never seen is enough (the thief's phone may run the browser
        // half her ward uses).
        let broke_in = event.action == AccessAction::Login
            && event.outcome == AccessOutcome::Permit
            && window.failed_logins >= 1
            && (sign_in_source >= 0.9
                || (sign_in_address >= 0.9 && signals.odd_hour >= ODD_SIGN_IN_HOUR));
        // Without a failure, at an hour the account does not work, from an address never seen
        // (nor the organisation's) and a device new at least to her: someone else's hands
        // (measured on 37 simulated hospitals: 1-7 benign sign-ins a hospital in two weeks, and
        // a fifth of stolen credentials found at the sign-in instead of the first read; with a
        // device her department knows too, 15 more false alerts and six more found at once).
        let odd_sign_in = event.action == AccessAction::Login
            && event.outcome == AccessOutcome::Permit
            && sign_in_address >= 0.9
            && sign_in_source >= 0.6
            && signals.odd_hour >= ODD_SIGN_IN_HOUR;
        let silent_hours = actor.baseline.silent_hours(t);
        // A staff account silent for days that signs in from an address nobody of the
        // organisation uses and a device it never used: a leaver's account in someone's hands,
        // or its owner's from home (measured on the independent hospitals, networks and
        // academic centres: one or two benign a network's fortnight, GPs at home after a long
        // weekend, none on the hospitals; two more leavers found).
        let returning_sign_in = event.action == AccessAction::Login
            && event.outcome == AccessOutcome::Permit
            && signals.mature
            && event.actor.role != "patient"
            && sign_in_address >= 0.9
            && sign_in_source >= 0.9
            && silent_hours >= SILENT_BEFORE_SIGN_IN;
        v.set(
            Feature::FailedLogins,
            if event.actor.id == UNKNOWN_LOGIN_ACTOR {
                // Every unknown username of the hospital is this one actor: its own window and
                // baselines are everyone's (a portal's forgotten names from a hundred homes);
                // only what one address does counts.
                sign_ins.value()
            } else {
                window
                    .failed_logins()
                    .max(guessing)
                    .max(f64::from(u8::from(
                        broke_in || stranger || odd_sign_in || returning_sign_in,
                    )))
                    .max(sign_ins.value())
                    * others
            },
        );
        // What the break-glass feature is if this glass turns out to be broken alone.
        let mut alone_glass = 0.0;
        if keys.base.break_glass {
            // An emergency department breaks the glass often, but for its own new patients:
            // its habit alone halves the signal, it does not explain the access.
            let department_habit = 0.5 * (dept_base.break_glass_rate() / 0.01).min(1.0);
            let own_context =
                f64::from(u8::from(explanation.patient_new)).max(explanation.strength);
            let context = department_habit.max(own_context);
            // Squared: a glass broken with no context at all alerts nearly by itself; the
            // department's habit (the emergency department's) leaves a quarter, not half.
            v.set(Feature::BreakGlass, (1.0 - context).powi(2));
            if lone_glass.is_some() {
                alone_glass = (1.0 - own_context).powi(2);
            }
            let count = actor.baseline.break_glass + 1;
            let own_rate = f64::from(count) / f64::from(actor.baseline.events + 1);
            let peers = role_base
                .break_glass_rate()
                .max(dept_base.break_glass_rate());
            if count >= 3 && peers > 0.0 {
                v.set(Feature::BreakGlassExcess, (own_rate / peers - 4.0) / 8.0);
            } else if count >= 3 && role_base.total >= 500.0 {
                v.set(Feature::BreakGlassExcess, 1.0);
            }
        }
        let first_export = keys.base.export && actor.baseline.exports < 3;
        if keys.base.export {
            let novelty = if first_export { 1.0 } else { 0.2 };
            let mut export_keys = keys.base;
            export_keys.resource = 0;
            export_keys.purpose = 0;
            v.set(
                Feature::Export,
                novelty * (0.5 + 0.5 * role_base.misuse(&export_keys)),
            );
        }
        // A whole record in one request is an export in all but name (the insider's slow
        // session of `$everything`, one patient every few minutes), unless it is the patient's
        // own, a route she chose (a consent naming the organisation: the practice system
        // importing her record), or the actor's (or department's) usual work.
        let breadth = if search {
            actor.patterns.request_breadth()
        } else {
            0
        };
        let whole_record = breadth >= WHOLE_RECORD
            && !matches!(
                event.decision.as_ref().map(|d| d.basis.as_str()),
                Some("own-record" | "consent")
            );
        if whole_record {
            // Unexplained counts undiscounted by habit: pulling whole records is not what a
            // clerk's or a coder's unexplained reading is.
            let usual = actor.baseline.whole_records >= USUAL_WHOLE_RECORDS
                || dept_base.whole_records >= USUAL_WHOLE_RECORDS;
            let novelty = if usual { 0.2 } else { 1.0 };
            // Strangers' whole records one after another are exfiltration, however usual one
            // is: the third within an hour counts fully.
            if breadth == WHOLE_RECORD && raw_unexplained >= 0.5 && !duplicate {
                actor.patterns.stranger_whole_record(t);
            }
            let strangers = actor.patterns.strangers_whole_records(t) as f64;
            v.set(
                Feature::WholeRecord,
                (ONE_WHOLE_RECORD * novelty * (0.5 + 0.5 * raw_unexplained))
                    .max(clamp01((strangers - 1.0) / 2.0) * raw_unexplained),
            );
        }
        // One patient's export is as large as her record: that says how much she has, not how
        // much the actor takes (a release-of-information clerk's legal copy of a long stay).
        // Taking much shows in how many patients ([`Feature::WholeRecord`], volume, spree).
        let one_patients_export = event.action == AccessAction::Export && keys.patient.is_some();
        if (read_like || search) && !one_patients_export {
            v.set(Feature::LargeResult, signals.large_result);
        }
        // A list far longer than any the actor or the department made (twice: nothing; five
        // times: full; not in the stream's first day), counted as the list grows: the bulk
        // search, a page of a hundred strangers at a time. Whom it lists weighs as for a whole
        // record.
        let usual_list = actor
            .longest_list
            .usual(t)
            .max(dept.map_or(0.0, |g| g.longest_list.usual(t)))
            .max(LIST_FLOOR);
        let usual_counted = actor
            .counted_lists
            .usual(t)
            .max(dept.map_or(0.0, |g| g.counted_lists.usual(t)))
            .max(LIST_FLOOR);
        let (listed, usual_list) = if counted_list > 0 {
            (counted_list, usual_counted)
        } else {
            (list_patients, usual_list)
        };
        if listed > 0 && mature {
            let beyond = (f64::from(listed) / usual_list).log10();
            let long = clamp01((beyond - 0.3) / 0.4);
            // Counted lists far beyond the usual, one after another: a trawl through the
            // population by wide searches, whoever each one lists (the third in an hour
            // counts fully).
            let mut trawl = 0.0;
            if counted_list > 0 && long >= 0.5 {
                if !duplicate {
                    actor.patterns.broad_list(t);
                }
                trawl = clamp01((actor.patterns.broad_lists(t) as f64 - 1.0) / 2.0);
            }
            v.set(
                Feature::LongList,
                (long * (0.5 + 0.5 * raw_unexplained)).max(trawl) * population_scale,
            );
        }
        let mut sweep = 0.0;
        if let (Some(patient), Some(reference)) = (keys.patient, event.patient.as_deref()) {
            // Patient-specific accesses only: a list comes in whatever order the server
            // sorts it.
            // A run interleaved with requests for records that do not exist is guessing ids,
            // whatever explains the records it finds (an admissions clerk's department has
            // touched most of them).
            let guessed = ((f64::from(window.errors) - 1.0) / 3.0).clamp(0.0, 1.0);
            if specific {
                sweep = actor.patterns.sweep(
                    patient,
                    reference,
                    t,
                    (raw_unexplained * ordinary).max(guessed),
                    raw_unexplained * explanation.dormant,
                );
            }
        }
        v.set(Feature::Sweep, sweep);
        let searches = if search {
            actor.patterns.search(t, request)
        } else {
            actor.patterns.searches(t)
        };
        let clean_search_hour = actor
            .search_hour
            .see(t, u32::try_from(searches).unwrap_or(u32::MAX))
            .filter(|_| signals.mature);
        let few_read = (window.distinct_patients as f64) * 5.0 <= searches as f64;
        if searches >= 15 && few_read {
            v.set(Feature::SearchSweep, (searches as f64 - 15.0) / 25.0);
        }
        // Against the most searches the user or a member of her department made within 10
        // minutes in a clean hour (not before one was learned): the coder whose busiest ten
        // minutes held seven searches making twenty-one, reading almost nothing, sweeps names
        // at a pace her work never needed. An hour in which it stood out teaches nothing. A
        // person's pace: a machine's searches come in its job's batches (a quality report's
        // larger run), and its theft shows in its source.
        if few_read && search && signals.mature && !fixed_source {
            let learned = actor
                .search_peak
                .usual(t)
                .max(dept.map_or(0.0, |g| g.search_peak.usual(t)));
            if learned > 0.0 {
                let busiest = learned.max(SEARCH_PEAK_FLOOR);
                let beyond = clamp01((searches as f64 - 2.0 * busiest) / busiest);
                v.set(
                    Feature::SearchSweep,
                    v.get(Feature::SearchSweep).max(beyond),
                );
                if beyond >= 0.5 {
                    actor.search_hour.taint();
                }
            }
        }
        v.set(Feature::OddHour, signals.odd_hour);
        v.set(Feature::NewSource, signals.new_source);
        v.set(Feature::TwoPlaces, f64::from(u8::from(two_places)));
        v.set(Feature::RoleMisuse, misuse);
        // Patients opened for what the role and department never do, one after another: the
        // billing clerk reading laboratory reports, the coder reading charts. Each look alone is
        // one rare thing (a new task's first look); the third patient within the hour is a
        // harvest of what the role has no use for, however her own looks taught her groups.
        // A machine's new kind of data, patient after patient, is its program's new report
        // (the quality service's nightly run); a machine is judged by where it runs from.
        let misuse_run = match keys.patient {
            Some(patient)
                if signals.mature && permitted && specific && !duplicate && !fixed_source =>
            {
                actor.patterns.misuse_run(
                    keys.base.resource,
                    patient,
                    t,
                    type_misuse >= MISUSE_RUN_FROM,
                )
            }
            _ => 0,
        };
        v.set(Feature::MisuseRun, clamp01((misuse_run as f64 - 1.0) / 2.0));
        // A prescription written in the session of a first look nothing explained, with nothing
        // of the patient's clinical record looked at in between: a prescriber who has never
        // seen her writes for her without a consultation (diversion in another's name). A
        // clinician's new patient is assessed first: her problems, allergies, encounters.
        // A person's look, of a department (a ward's doctor on one workstation too: where an
        // account runs from does not say whose hands prescribe); not a glass (its own features
        // judge it).
        let mut unreviewed_prescription = false;
        // A prescription's look into the patient beforehand, for the department's tally.
        let mut prescription_looked_into = None;
        if let Some(patient) = keys.patient.filter(|_| permitted && !duplicate) {
            let resource_type = event.resource_type.as_deref().unwrap_or("");
            if CLINICAL_REVIEW
                .iter()
                .any(|r| r.eq_ignore_ascii_case(resource_type))
            {
                actor.patterns.reviewed(patient);
            } else if mature
                && specific
                && explanation.first_time
                && raw_unexplained >= 0.4
                && has_department
                && !keys.base.break_glass
            {
                actor.patterns.opened_unexplained(patient, t);
            }
            if read_like_or_search(event.action) && !resource_type.eq_ignore_ascii_case("Patient") {
                actor.patterns.looked_into(patient, t);
            }
            if event.action == AccessAction::Create
                && resource_type.eq_ignore_ascii_case("MedicationRequest")
            {
                // Judged before this one is learned: her own record once it speaks, until then
                // her department's (a new resident prescribes as her team does).
                let blind_habit = actor
                    .prescriptions
                    .share_once(BLIND_PRESCRIPTIONS_KNOWN)
                    .or_else(|| {
                        dept.and_then(|g| g.prescriptions.share_once(BLIND_PRESCRIPTIONS_KNOWN))
                    })
                    .is_some_and(|blind| blind > BLIND_PRESCRIPTIONS_ALERT_UNDER);
                unreviewed_prescription =
                    !blind_habit && actor.patterns.prescribing_unreviewed(patient, t);
                let looked_into = actor.patterns.looked_into_lately(patient, t);
                actor.prescriptions.learn(looked_into);
                prescription_looked_into = Some(looked_into);
            }
        }
        v.set(
            Feature::UnreviewedPrescription,
            f64::from(u8::from(unreviewed_prescription)),
        );
        v.set(Feature::Volume, signals.volume);
        v.set(Feature::PatientsPerHour, signals.patients);
        let vector: [f64; DIMS] = [
            u,
            explanation.dormant * weight,
            signals.odd_hour,
            signals.new_source,
            misuse,
            signals.volume,
            signals.patients,
            (f64::from(event.count.max(1)).log10() / 4.0).min(1.0),
        ];
        let outlier = self.forest.score(&vector);
        // Rescaled so that the trees' background level (about 0.3 for ordinary traffic) adds
        // nothing.
        v.set(Feature::Outlier, (outlier - 0.5) / 0.5);
        v.set(Feature::Restricted, sens);

        // Score, threshold, incident.
        let raw = v.raw();
        let q = self.calibrator.raw_threshold();
        let alone = lone_glass.map(|start| {
            let mut alone = v;
            alone.set(
                Feature::BreakGlass,
                alone_glass.max(v.get(Feature::BreakGlass)),
            );
            (start, alone)
        });
        // A search that stands out as a list (its size, its pace) rather than for its first
        // patient: the rest of the list is what it disclosed.
        let list_alert = search
            && v.get(Feature::Burst)
                .max(v.get(Feature::Rate))
                .max(v.get(Feature::LargeResult))
                .max(v.get(Feature::LongList))
                >= 0.5;
        let mut score = self.calibrator.score(raw);
        let raw_score = score;
        let mut alert = score >= self.threshold;
        let mut incident = None;
        let mut carried = false;
        if let Some(open) = actor.incidents.open(t) {
            // Suspicious enough, or the rest of the list whose first patient alerted.
            let same_list = search && open.request != 0 && open.request == request;
            let whole_list = same_list && open.whole_list;
            if !alert
                && !write
                && (raw >= open.carry() * q
                    || whole_list
                    || (same_list && raw >= incidents::JOIN_SAME_REQUEST * q))
            {
                score = score.max(self.threshold.min(1.0));
                alert = true;
                carried = true;
                if search && specific {
                    actor.incidents.follow_request(t, request, list_alert);
                }
            }
            if alert {
                incident = Some(open.id);
            }
        }
        // Only an alert on its own merits extends or opens an incident: carried events must
        // not keep an incident open forever. It also takes the actor's suspicious events of the
        // last minutes into the incident: the first patients of a sweep look like anyone's.
        let mut joined = Vec::new();
        // An alert that rests only on a missing explanation waits for one (see [`GRACE`]).
        // Only the first such patient: a second one within the grace period is not a first
        // contact waiting for its note but a look around, and both alert now.
        let other_waiting = keys.patient.is_some_and(|patient| {
            self.pending
                .iter()
                .any(|p| p.wait == Wait::Grace && p.actor == keys.actor && p.patient != patient)
        });
        // What alerts beside a missing explanation is under half the threshold.
        let plain_grace = v.without(&Feature::EXPLANATION).raw() < 0.5 * q;
        // In the warm-up, under the prior threshold, a look that alerts only for a record the
        // stream never saw is no alert, nor a quiet look: in a young stream most records opened
        // are new to it (a returning patient's care starts). Waiting four hours for anyone
        // else's care raised 120 false alerts against 6 attack events on the fifteen hospitals
        // of the generators written apart, each of the 6 alerting by another path as well (no
        // alert: −86 false alerts there, two attack events of an incident found anyway; our
        // 51 −34 with care facts, unchanged from events alone). Not a restricted or a
        // colleague's record: that alerts for what it is.
        let young_look = alert
            && sens <= 0.0
            && !employee
            && !carried
            && !duplicate
            && warming
            && explanation.others_last.is_none()
            && explanation.dormant > 0.0
            && specific
            && read_like_or_search(event.action)
            && !keys.base.break_glass
            && plain_grace;
        // A person refused one patient's record (and nobody else's in the window), where the
        // refusals are what alerts beside a missing explanation: the consent not yet on file
        // at the community nurse's first visit, the weekend hub's GP, who document for the
        // patient minutes later (measured: 260-390 refusals a network and 23-34 an independent
        // hospital followed by the user's own note within 30 minutes, none of 1,114 attacks'
        // refusals). It waits for her own note ([`Wait::Refused`]); a refusal of a second
        // patient while it waits alerts at once and raises it (a slow walk through the ids).
        let refusal = event.outcome == AccessOutcome::Deny;
        let other_refused = refusal
            && keys.patient.is_some_and(|patient| {
                self.looks.iter().any(|p| {
                    p.wait == Wait::Refused && p.actor == keys.actor && p.patient != patient
                })
            });
        let refused_look = refusal
            && !plain_grace
            && !other_refused
            && has_department
            && event.actor.role != "patient"
            && window.refused_patients <= 1
            && self.looks.len() < MAX_LOOKS
            && v.without(&Feature::EXPLANATION)
                .without(&[Feature::Denied])
                .raw()
                < 0.5 * q;
        // In an open incident too, carried into it or not: documenting for the patient is care
        // whatever the actor did before (a false alert must not make the next half hour's
        // first looks alert before their notes), and a snooper writes nothing. The incident
        // was found by its first alert; its further looks alert a grace period later.
        let deferred = alert
            && !young_look
            && self.config.grace_seconds > 0
            && !duplicate
            && !other_waiting
            && specific
            && read_like_or_search(event.action)
            && !keys.base.break_glass
            && signals.new_source < 0.5
            && self.pending.len() < MAX_PENDING
            && !other_refused
            && (plain_grace || refused_look);
        let carried_into = incident.filter(|_| deferred && carried);
        if young_look {
            alert = false;
            incident = None;
            score = score.min(self.threshold - 0.0001).max(0.0);
        }
        if deferred {
            alert = false;
            carried = false;
            incident = None;
            score = score.min(self.threshold - 0.0001).max(0.0);
        }
        if alert && !carried && !duplicate {
            let (id, new) =
                actor
                    .incidents
                    .alert(t, score, (request, list_alert), self.incidents + 1);
            if new {
                self.incidents += 1;
            }
            incident = Some(id);
            joined = actor.incidents.join_confirmed(t, request);
            if misuse_run >= 2 && score >= CONFIDENT_MISUSE {
                actor.patterns.misuse_alerted(keys.base.resource, t);
            }
            // The run's earlier amendments are what this one shows to be tampering.
            if let Some(patient) = keys.patient.filter(|_| amendment) {
                joined.extend(actor.amendments.alerted(event.id, patient, t));
            }
        }
        // A whole record alerting (on its own merits or carried): the same pull's first kinds
        // of data alert with it.
        if alert && whole_record && !duplicate {
            joined.extend(actor.incidents.join_record(t, request));
        } else if !alert && !deferred && !duplicate && !write && q > 0.0 {
            // Writes are care: they are not what an incident disclosed.
            if list_alert && specific {
                actor.incidents.stood_out(request);
            }
            let patient = keys.patient.unwrap_or(0);
            if search && specific {
                actor
                    .incidents
                    .remember_record(event.id, t, request, patient, raw / q);
            } else {
                actor
                    .incidents
                    .remember(event.id, t, request, patient, raw / q);
            }
        }
        // What may wait to see whether care follows: a first look that did not alert, at one
        // patient's record, by a user the patient did not refuse. Not a machine's: an
        // exchange gateway or a public-health feed never writes a note and reads records
        // nobody touched for days by design (on the fifteen hospitals of the generators written
        // apart, 107 false alerts raised for want of care, and no attack event: a compromised
        // integration shows in its source, its agent and its volume, on the spot).
        let may_wait_unripe = !alert
            && !deferred
            && !duplicate
            && permitted
            && specific
            && read_like_or_search(event.action)
            && !keys.base.break_glass
            && event.actor.role != "service"
            && self.looks.len() < MAX_LOOKS;
        let may_wait = may_wait_unripe && mature;
        // A look below the threshold at a record nobody touched lately, with nothing to
        // explain it, waits to see whether anyone is caring for the patient. A habit of
        // unexplained work (admissions) excuses the role's own work, not what it never does
        // (once the actor's own habits are known: a new job's first night is neither).
        let never_done = if signals.mature {
            raw_unexplained * misuse
        } else {
            0.0
        };
        // On a restricted record the department's habit excuses less (as for
        // `sensitive_unexplained`).
        let restricted_unexplained = if sens > 0.0 {
            sensitive_unexplained * weight
        } else {
            0.0
        };
        // Her consent to share her record across the organisation makes a look lawful, not
        // care: a record nobody here touched for days, opened on nothing else by someone whose
        // work is not unexplained by nature, waits as a quiet look for the care that would
        // bring it (the relative's, the neighbour's record looked up on the network). A person's
        // (`may_wait`): an exchange gateway's reads under consent are its job.
        let consented_look = may_wait
            && q > 0.0
            && has_department
            && !fixed_source
            && !population
            && explanation.why == Why::Consent
            && explanation.first_time
            && sens <= 0.0
            && !employee
            && ordinary >= NOT_UNEXPLAINED_BY_NATURE
            && explanation.dormant >= CONSENTED_LOOK_DORMANCY
            && raw >= CONSENTED_LOOK_SHARE * q;
        let quiet_look = !young_look
            && (consented_look
                || (may_wait
                    && q > 0.0
                    && raw >= QUIET_LOOK_SHARE * q
                    && (u.max(restricted_unexplained) >= 0.75 || never_done >= 0.6)
                    && explanation.dormant >= QUIET_LOOK_DORMANCY))
            && keys.patient.is_some_and(|patient| {
                !self.waiting_patients.contains_key(&patient)
                    || !self
                        .looks
                        .iter()
                        .any(|p| p.actor == keys.actor && p.patient == patient)
            });
        // A very restricted record (a VIP's) or a colleague's (labelled staff) opened on nothing
        // but a guessed consult (the actor's department often reads patients of a department
        // that touched her lately) waits for the consult's note: the curious look like
        // consultants who never write. So does one a person opened with nothing at all to
        // explain it, under the threshold (at least 75% of it) only because the hospital's
        // threshold is high (a small hospital's: a VIP nobody here cares for scored 0.80), as a
        // ward's care of its VIP keeps her record from looking forgotten; a machine's
        // population work is not a look.
        // Where the clinical data names her care team and the user is not on it, nor her
        // department, her department's touches are no better than a guess: a colleague of the
        // emergency department reading a staff member's record hours after her visit there
        // ended, a cardiology nurse the chart of a patient one cardiologist was consulted on.
        let off_care_team = has_department
            && dept.is_some_and(|g| g.care_teams.on_as_a_rule())
            && explanation.care_on_record
            && !explanation.in_care
            && matches!(
                explanation.why,
                Why::Department | Why::DepartmentWrote | Why::Covering
            );
        // So does a restricted or a colleague's record opened for what the role or department
        // never does, under the threshold but at least 75% of it: a pharmacist reading a
        // colleague's notes and diagnoses.
        let misuse_note = may_wait
            && !quiet_look
            && (sens > 0.0 || employee)
            && has_department
            && signals.mature
            && misuse >= 0.6
            && q > 0.0
            && raw >= 0.75 * q
            && explanation.first_time;
        let consult_note = misuse_note
            || (may_wait
                && !quiet_look
                && (sens >= 1.0 || employee)
                && (explanation.why == Why::Consult
                    || off_care_team
                    || (has_department
                        && !population
                        && q > 0.0
                        && match explanation.why {
                            Why::Nothing => raw >= 0.75 * q,
                            // Her consent makes the access lawful, not care: a VIP who
                            // consented to share her record with the network has not asked
                            // every emergency doctor of it to read it (the networks' VIP
                            // glances, all under consent, scored 0.55-0.67).
                            Why::Consent => sens >= 1.0 && raw >= 0.5 * q,
                            _ => false,
                        }))
                && explanation.first_time);
        // A VIP on the actor's own ward is whom the curious of the ward open: her department's
        // care explains her first look only if she cares for the patient herself, documenting
        // within [`OWN_NOTE_WAIT`] (the independent hospitals and networks: an emergency doctor
        // reading the VIP his colleagues were treating, a nurse the VIP on her ward she was not
        // nursing; the colleagues who cared wrote). A colleague's record (`EMP`) is not held to
        // it: on our simulated hospitals, +2,000 false alerts, no incident more.
        let own_note = may_wait
            && !quiet_look
            && !consult_note
            && sens >= 1.0
            && has_department
            && event.actor.role == "practitioner"
            // A department that never documents (a pharmacy verifying orders, a research
            // office) cannot be expected to.
            && dept_base
                .write_share()
                .is_some_and(|share| share >= DOCUMENTING_DEPARTMENT)
            && explanation.first_time
            && matches!(explanation.why, Why::Department | Why::DepartmentWrote)
            && self.pending.len() < MAX_PENDING;
        // Guesses wait from the first day: what a department's guesses turn out to be is
        // learned before it may alert.
        let guess = may_wait_unripe
            && !quiet_look
            && !consult_note
            && !own_note
            && explanation.first_time
            && !population
            && has_department
            && match explanation.why {
                Why::Consult | Why::Covering => true,
                // The department's care of days ago, faded with the patient's dormancy.
                Why::DepartmentWrote | Why::Department => explanation.strength < 0.9,
                _ => false,
            };
        // A glass that alerts only if it was broken alone waits to see whether it was.
        let lone_glass_wait = alone
            .filter(|(_, alone)| {
                !alert
                    && !deferred
                    && !duplicate
                    && q > 0.0
                    && alone.raw() >= q
                    && self.pending.len() < MAX_PENDING
            })
            .map(|(start, alone)| (start, alone, actor.lone_glasses.recent(t)));
        // A note or an observation written for the patient explains the reads waiting on her;
        // someone else caring for her explains a quiet look, a colleague of the department a
        // waiting alert.
        let settles = keys.patient.filter(|_| permitted && (specific || write));
        let suspicious = alert || deferred;

        // Learning. Habits (how unexplained the actor's and its groups' ordinary work is) learn
        // from every patient a read or search touched, list members at their weight, but only
        // from whole hours without alerts or an open incident ([`habits`]): an exfiltration must
        // not teach itself.
        let in_incident = actor.incidents.open(t).is_some();
        // A person's first look at a record whose clinical data names a care team: whether she
        // is on it teaches her department's rule ([`CareTeams`]).
        let looked_at_care_team = has_department
            && specific
            && permitted
            && !duplicate
            && read_like_or_search(event.action)
            && explanation.care_on_record
            && explanation.first_time;
        // The first time a request reaches a whole record, if nothing was suspicious and the
        // patient is the actor's care: usual work. A stranger's whole record under the
        // threshold is not (an insider's first three would make her fourth usual).
        let usual_whole_record =
            breadth == WHOLE_RECORD && !suspicious && !in_incident && raw_unexplained < 0.5;
        let habitual =
            permitted && keys.patient.is_some() && weight > 0.0 && !suspicious && !in_incident;
        // A counted list is over with its one event.
        let counted_clean =
            (counted_list > 0 && (!(suspicious || in_incident) || !mature)).then_some(counted_list);
        if !duplicate {
            if position.is_some() && (suspicious || in_incident) {
                actor.open_list.taint();
            }
            if let Some(patients) = finished_list {
                actor.longest_list.learn(patients, t);
            }
            if let Some(patients) = counted_clean {
                actor.counted_lists.learn(patients, t);
            }
            if suspicious || in_incident {
                actor.first_looks.taint();
                actor.search_hour.taint();
            }
            if let Some(most) = clean_search_hour {
                actor.search_peak.learn(most, t);
            }
            if let Some(looks) = clean_first_hour {
                actor.first_looks_peak.learn(looks, t);
            }
            if let Some(client) = desktop {
                if actor.baseline.established_address(keys.base.ip, t) {
                    actor.own_desk.seen(keys.base.ip_prefix, client, t);
                }
                self.shared_devices
                    .record(pair(keys.base.ip, client), keys.base.member, t);
            }
            actor.baseline.record(&keys.base, suspicious || in_incident);
            if usual_whole_record {
                actor.baseline.whole_records = actor.baseline.whole_records.saturating_add(1);
            }
            // Habits learn from whole clean hours, held until the next hour has passed.
            if suspicious || in_incident {
                actor.held.taint(t);
            }
            // A young habit (the actor's first 50 reads, a group's first 300) learns from each
            // read at once: what an actor is by nature shows in its first hour. A person's (an
            // actor with a department), at most [`habits::YOUNG_PER_HOUR`] an hour: her own
            // first hour's sweep must not make itself her nature. A machine's first batch may.
            let unexplained_work = if explanation.why == Why::Review {
                1.0 - explained_before_review
            } else {
                raw_unexplained
            };
            let unexplained_read = unexplained_work as f32;
            let dormant_read = (unexplained_work * explanation.dormant) as f32;
            let mut learned_hours = Vec::new();
            if habitual {
                if actor.habit.reads < YOUNG_ACTOR && (!has_department || actor.young_reads.take(t))
                {
                    actor
                        .habit
                        .learn_read(unexplained_read, dormant_read, weight as f32, 0.05);
                }
                learned_hours.extend(actor.held.hold(
                    t,
                    unexplained_read,
                    dormant_read,
                    weight as f32,
                ));
            }
            for hour in &learned_hours {
                if actor.habit.reads >= YOUNG_ACTOR {
                    actor.habit.learn_hour(hour, 0.01);
                }
            }
            let minute = t.div_euclid(60);
            let weighted = window.weighted_patients() as f32;
            let mut closed = None;
            if minute > actor.usual_minute {
                if actor.usual_minute != i64::MIN {
                    // A running mean over the first 20 active minutes (after the first hour),
                    // then 5% per active minute, whether or not it alerted: an actor whose real work is
                    // population-wide (a nightly quality batch, research) must not alert every
                    // night; a few minutes of an established actor's exfiltration barely move it.
                    // The running mean starts only once the actor has an hour of history: a
                    // newcomer's first minutes (a burst among them) teach slowly.
                    let alpha = if t - actor.baseline.first >= 3600 {
                        actor.usual_minutes = actor.usual_minutes.saturating_add(1);
                        (1.0 / actor.usual_minutes as f32).max(0.05)
                    } else {
                        0.05
                    };
                    actor.usual_patients =
                        (1.0 - alpha) * actor.usual_patients + alpha * actor.minute_peak;
                    closed = Some(actor.minute_peak);
                }
                actor.usual_minute = minute;
                actor.minute_peak = weighted;
            } else {
                actor.minute_peak = actor.minute_peak.max(weighted);
            }
            if let Some(patient) = keys.patient {
                if write && permitted {
                    // How long after first opening her record, unexplained, the actor wrote
                    // this first note: the actor's habit (a note in an open incident counts:
                    // the late note is what the incident lacked).
                    let delay = actor.patterns.explain_patient(patient, t);
                    actor.documented(&keys.base, t);
                    if let (Some(delay), false) = (delay, suspicious) {
                        actor.notes.learn(delay);
                    }
                    actor.incidents.cared_for(patient);
                    judged_preparations.add(actor.preparations.wrote(patient, t));
                }
                if specific {
                    actor.patterns.record_patient(patient, t, raw_unexplained);
                    if let Some(other) = explanation.other_department {
                        if explanation.strength < 0.5 && !suspicious {
                            actor.patterns.record_cover(other, t);
                        }
                    }
                }
                // The patient reading her own record is nobody's care of her: it must not make
                // her record look touched lately to the snooper who opens it next (measured on 37
                // simulated hospitals: 70-100 fewer false alerts; a colleague's restricted record
                // opened 40 minutes after she read it herself was missed).
                let own_record = event
                    .decision
                    .as_ref()
                    .is_some_and(|d| d.basis == "own-record");
                if permitted && (specific || write) && !own_record {
                    let access = Access {
                        actor: keys.actor,
                        person: keys.person,
                        dept: keys.dept,
                        patient,
                        time: t,
                    };
                    let kind = if write { Learn::Write } else { Learn::Read };
                    // A relationship made by an unexplained access is provisional (until another
                    // day, or an explanation): a snooper's next reads of the same record stay
                    // unexplained.
                    let explained = explanation.strength >= 0.5;
                    // A patient (or her proxy) in the portal is nobody's care: her reads keep
                    // her own relationship but must not make the record look cared for to the
                    // colleague who snoops on it next (an independent generator's hospital: a
                    // snooper's second look, the day after the patient read her results, was
                    // explained as a return to a record in others' hands).
                    let leaves_record = (suspicious && mature) || event.actor.role == "patient";
                    self.relations.learn(
                        access,
                        kind,
                        explained,
                        leaves_record,
                        keys.base.break_glass,
                    );
                }
            }
            for (key, is_dept) in [(keys.role, false), (keys.dept, true)] {
                if is_dept && key == keys.role {
                    continue;
                }
                let group = self.groups.get_or_insert_with(key, Group::default);
                group.baseline.record(&keys.base);
                if is_dept && role_refused {
                    group.role_refusals += 1.0;
                }
                if is_dept {
                    group
                        .presence
                        .see(keys.actor, &keys.base, suspicious || in_incident);
                    group.calendar.see(t);
                }
                if is_dept && !suspicious && !in_incident {
                    group.baseline.record_source(&keys.base);
                }
                if is_dept && usual_whole_record {
                    group.baseline.whole_records = group.baseline.whole_records.saturating_add(1);
                }
                if let Some(peak) = closed {
                    group.usual_patients = 0.99 * group.usual_patients + 0.01 * peak;
                }
                // The department's (a machine's role is its department).
                if let (Some(patients), true) = (finished_list, key == keys.dept) {
                    group.longest_list.learn(patients, t);
                }
                if let (Some(patients), true) = (counted_clean, key == keys.dept) {
                    group.counted_lists.learn(patients, t);
                }
                if let (Some(looks), true) = (clean_first_hour, key == keys.dept) {
                    group.first_looks_peak.learn(looks, t);
                }
                if let (Some(most), true) = (clean_search_hour, key == keys.dept) {
                    group.search_peak.learn(most, t);
                }
                if let (Some(run), true) = (finished_run, key == keys.dept) {
                    let run = u16::try_from(run).unwrap_or(u16::MAX);
                    group.amendment_run = group.amendment_run.max(run);
                }
                if key == keys.dept {
                    // Truncated: a member's tag.
                    #[allow(clippy::cast_possible_truncation)]
                    let member = keys.actor as u32;
                    group.preparations.learn(member, judged_preparations);
                }
                // What its members do unsuspiciously is the department's way of prescribing.
                if let (Some(looked_into), true, false) =
                    (prescription_looked_into, is_dept, suspicious)
                {
                    group.prescriptions.learn(looked_into);
                }
                if is_dept && looked_at_care_team {
                    group.care_teams.learn(explanation.in_care);
                }
                if habitual && group.habit.reads < YOUNG_GROUP {
                    group
                        .habit
                        .learn_read(unexplained_read, dormant_read, weight as f32, 0.01);
                }
                for hour in &learned_hours {
                    if group.habit.reads >= YOUNG_GROUP {
                        group.habit.learn_hour(hour, 0.002);
                    }
                }
            }
            if !suspicious {
                self.forest.learn(&vector);
            }
            if !suspicious && !in_incident {
                self.networks
                    .record(keys.org, keys.base.ip_network, keys.base.member, t);
            }
            self.calibrator.observe(t, keys.actor, raw);
        }
        self.tick();

        let context = Context {
            explanation,
            sensitivity: sens,
            sensitive_misuse,
            spree,
            misuse_run,
            objections,
            first_looks: (first_looks, busiest_first_hour, flood > unexplained_spree),
            window,
            searches,
            signals,
            count: event.count,
            break_glass_count: self
                .actors
                .peek(keys.actor)
                .map_or(0, |a| a.baseline.break_glass),
            first_export,
            whole_record: if whole_record { breadth } else { 0 },
            list: (listed, usual_list),
            outlier,
            broke_in,
            stranger,
            odd_sign_in,
            returning_after_days: returning_sign_in.then_some(silent_hours / 24),
            sign_ins,
            amendment_run: amendment_run.length,
            own_record: own_as_staff,
        };
        // Words cost more than the score: only for what someone may read.
        let worded = self.explain_all
            || alert
            || deferred
            || quiet_look
            || consult_note
            || guess
            || carried
            || lone_glass_wait.is_some();
        let (contributions, reasons) = if worded {
            describe(&v, &context)
        } else {
            (Vec::new(), Vec::new())
        };
        let explanation_text = sentence(&reasons);
        let scored = Scored {
            id: event.id,
            score,
            alert,
            reasons,
            contributions,
            explanation: explanation_text,
            incident,
            joined,
        };
        if let Some(patient) = settles {
            // A portal user let in as the patient herself, or under the patient's consent naming
            // her (a parent, a proxy): whose record this is, her own looks before it included.
            let hers = event.actor.role == "patient"
                && event.decision.as_ref().is_some_and(|d| {
                    d.basis == Basis::OwnRecord.code() || d.basis == Basis::Consent.code()
                });
            self.settle(keys.actor, keys.dept, patient, write, hers, t);
            self.glass_sessions.touched(keys.actor, patient, t);
        }
        if alert {
            // The actor's waiting alerts belong to this incident: they come of age now.
            // Not a guess nor a glass: whether it was care, or alone, is what its wait learns.
            self.mature_where(t, true, |p| {
                p.actor == keys.actor && !matches!(p.wait, Wait::Guess | Wait::LoneGlass)
            });
        } else if let (Some(patient), true, false) =
            (keys.patient, specific || write, self.pending.is_empty())
        {
            // A wait stretched for a late note ends when the actor turns to another patient.
            self.mature_where(t, false, |p| {
                p.wait == Wait::Grace
                    && p.actor == keys.actor
                    && p.patient != patient
                    && t >= p.moved_on_after
            });
        }
        if let (Some(patient), true) = (
            keys.patient,
            deferred
                || quiet_look
                || consult_note
                || own_note
                || guess
                || lone_glass_wait.is_some(),
        ) {
            // The actor writes her notes after a session with the patient, as a rule: her
            // looks wait as long (not at a VIP's or a colleague's record).
            let session = self
                .session_wait(keys.actor)
                .filter(|_| sens < 1.0 && !employee);
            let look_wait = session.map_or(QUIET_LOOK_WAIT, |s| s.max(QUIET_LOOK_WAIT));
            let (wait, due, alerting) = if let Some((start, alone, _)) = lone_glass_wait {
                let alerting = self.calibrator.score(alone.raw());
                (Wait::LoneGlass, start + LONE_AFTER, alerting)
            } else if deferred && refused_look {
                let alerting = if carried_into.is_some() {
                    self.threshold.min(1.0)
                } else {
                    raw_score
                };
                (Wait::Refused, t + look_wait, alerting)
            } else if deferred {
                let due = t + match session {
                    Some(session) => session,
                    None => self.grace_for(keys.actor, sens > 0.0 || employee),
                };
                let alerting = if carried_into.is_some() {
                    self.threshold.min(1.0)
                } else {
                    raw_score
                };
                (Wait::Grace, due, alerting)
            } else if quiet_look {
                (
                    Wait::QuietLook,
                    t + look_wait,
                    self.threshold.max(raw_score),
                )
            } else if consult_note {
                (Wait::ConsultNote, t + QUIET_LOOK_WAIT, self.threshold)
            } else if own_note {
                (Wait::OwnNote, t + OWN_NOTE_WAIT, self.threshold)
            } else {
                (Wait::Guess, t + GUESS_WAIT, self.threshold)
            };
            let moved_on_after = match wait {
                // A session's note may come after the next patient's chart is opened.
                Wait::Grace if session.is_some() => never(),
                Wait::Grace => t + self.config.grace_seconds.clamp(0, MAX_GRACE),
                Wait::QuietLook
                | Wait::ConsultNote
                | Wait::OwnNote
                | Wait::Guess
                | Wait::LoneGlass
                | Wait::Refused => never(),
            };
            let mut waiting = Scored {
                score: alerting.max(scored.score),
                alert: true,
                ..scored.clone()
            };
            if let Some((_, alone, _)) = lone_glass_wait {
                (waiting.contributions, waiting.reasons) = describe(&alone, &context);
            }
            let reason = match wait {
                Wait::Grace => session.map(|wait| within(SESSION_REASON, wait)),
                Wait::QuietLook if consented_look => Some(within(CONSENTED_LOOK_REASON, look_wait)),
                Wait::QuietLook => Some(within(QUIET_LOOK_REASON, look_wait)),
                Wait::ConsultNote if off_care_team => Some(OFF_CARE_TEAM_REASON.to_string()),
                Wait::ConsultNote if misuse_note => Some(MISUSE_NOTE_REASON.to_string()),
                Wait::ConsultNote if explanation.why == Why::Nothing => {
                    Some(NO_NOTE_REASON.to_string())
                }
                Wait::ConsultNote if explanation.why == Why::Consent => {
                    Some(CONSENT_NOTE_REASON.to_string())
                }
                Wait::ConsultNote if employee => Some(STAFF_CONSULT_NOTE_REASON.to_string()),
                Wait::ConsultNote => Some(CONSULT_NOTE_REASON.to_string()),
                Wait::OwnNote => Some(VIP_OWN_NOTE_REASON.to_string()),
                Wait::Refused => Some(within(REFUSED_REASON, look_wait)),
                Wait::Guess => Some(GUESS_REASON.to_string()),
                Wait::LoneGlass => Some(lone_glass_reason(
                    lone_glass_wait.map_or(0, |(_, _, before)| before) + 1,
                )),
            };
            if let Some(reason) = reason {
                waiting.reasons.insert(0, reason);
                waiting.explanation = sentence(&waiting.reasons);
            }
            self.wait(Pending {
                wait,
                due,
                moved_on_after,
                actor: keys.actor,
                dept: keys.dept,
                patient,
                request,
                carried_into,
                consult: explanation
                    .other_department
                    .filter(|_| wait == Wait::Guess && explanation.why == Why::Consult)
                    .map_or(0, |other| pair(keys.dept, other)),
                stale: explanation.dormant >= STALE_CONSULT
                    && ordinary >= NOT_UNEXPLAINED_BY_NATURE
                    && !fixed_source
                    && event.actor.role != "service",
                dormant: wait == Wait::Grace
                    && explanation.dormant >= DORMANT_LOOK
                    && sens <= 0.0
                    && !employee,
                event: event.clone(),
                scored: waiting,
            });
        }
        scored
    }

    /// How long an alert resting only on a missing explanation waits for one: the configured
    /// grace period, or, for an ordinary record (not restricted, not a colleague's), as long as
    /// the actor takes to document for nine patients in ten after first opening their records
    /// ([`habits::NoteDelays`]), at most [`LATE_NOTE_GRACE`]. The actor's own habit only: a
    /// department's mixes its clinic's late notes with its ward's prompt ones, and waiting as
    /// long for the ward's snooper delayed the alerts on neighbours' and colleagues' records
    /// (measured: median delay 60 → 98 s on a seed, for 0.02 more precision than this).
    fn grace_for(&self, actor: u64, sensitive: bool) -> i64 {
        let grace = self.config.grace_seconds.clamp(0, MAX_GRACE);
        if sensitive || grace == 0 {
            return grace;
        }
        self.actors
            .peek(actor)
            .and_then(|a| a.notes.quantile(NOTE_SHARE, ACTOR_NOTES))
            .map_or(grace, |late| late.min(LATE_NOTE_GRACE).max(grace))
    }

    /// How long a first look waits for the note of an actor who, as a rule, documents after
    /// a session with the patient (half her first notes came [`SESSION_NOTES_FROM`] or more
    /// after her first look: a psychiatrist reads the chart, sees the patient for fifty
    /// minutes, then writes): as long as nine notes in ten took, at most
    /// [`habits::NOTE_HORIZON`]. `None` for anyone else, and before [`SESSION_NOTES`] notes.
    fn session_wait(&self, actor: u64) -> Option<i64> {
        let notes = &self.actors.peek(actor)?.notes;
        let median = notes.quantile(0.5, SESSION_NOTES)?;
        (median >= SESSION_NOTES_FROM)
            .then(|| notes.quantile(NOTE_SHARE, SESSION_NOTES))
            .flatten()
    }

    fn wait(&mut self, p: Pending) {
        debug_assert!(
            p.due - p.event.time.timestamp() <= LONGEST_WAIT,
            "a {:?} waits longer than LONGEST_WAIT",
            p.wait
        );
        *self.waiting_patients.entry(p.patient).or_insert(0) += 1;
        match p.wait {
            // Grace periods differ by department, and glasses and own notes wait hours: kept
            // in order of when they run out.
            Wait::Grace | Wait::LoneGlass | Wait::OwnNote => {
                let at = self.pending.partition_point(|q| q.due <= p.due);
                self.pending.insert(at, p);
            }
            // Half an hour each, so mostly in order of arrival; a user who documents after her
            // sessions waits longer ([`Detector::session_wait`]): kept in order of when they
            // run out too (the queue is read from its front).
            Wait::QuietLook | Wait::ConsultNote | Wait::Guess | Wait::Refused => {
                let at = self.looks.partition_point(|q| q.due <= p.due);
                self.looks.insert(at, p);
            }
        }
    }

    fn unwait(&mut self, patient: u64) {
        if let Some(n) = self.waiting_patients.get_mut(&patient) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.waiting_patients.remove(&patient);
            }
        }
    }

    /// `actor` of `dept` touched `patient` at `t` (wrote for her if `write`; `hers`: a portal
    /// user let in as the patient or her proxy): what waits on her and this explains is dropped.
    /// Her own look that the patient's consent refused stays: the app asking again for what the
    /// token lacked (a refusal of scope) is not a proxy trying what the patient withheld.
    fn settle(&mut self, actor: u64, dept: u64, patient: u64, write: bool, hers: bool, t: i64) {
        if !self.waiting_patients.contains_key(&patient) {
            return;
        }
        let explained = |p: &Pending| {
            p.patient == patient
                && if p.wait == Wait::LoneGlass {
                    glasses::ends_alone(p.actor, p.due - LONE_AFTER, actor, t)
                } else if p.actor == actor {
                    write
                        || (hers
                            && p.event
                                .decision
                                .as_ref()
                                .is_none_or(|d| d.basis != Basis::ConsentDeny.code()))
                } else {
                    match p.wait {
                        Wait::QuietLook => true,
                        Wait::Grace => p.dept == dept,
                        Wait::ConsultNote => write && p.dept == dept,
                        // Her department's care is what it was already explained by.
                        Wait::OwnNote => false,
                        // Only her own note shows the refused look was care.
                        Wait::Refused => false,
                        // Anyone's: a consult on a ward's patient, a transfer; not a
                        // neighbour's record, nobody else's business that half hour.
                        Wait::Guess => true,
                        Wait::LoneGlass => true,
                    }
                }
        };
        let mut dropped = 0;
        let mut confirmed = Vec::new();
        let mut answered = Vec::new();
        for queue in [&mut self.pending, &mut self.looks] {
            let before = queue.len();
            queue.retain(|p| {
                let drop = explained(p);
                if drop && p.wait == Wait::Guess {
                    confirmed.push((p.actor, p.dept, p.consult));
                }
                if drop && p.dormant {
                    answered.push(p.actor);
                }
                !drop
            });
            dropped += before - queue.len();
        }
        for _ in 0..dropped {
            self.unwait(patient);
        }
        for (actor, dept, consult) in confirmed {
            self.learn_guess(actor, dept, consult, true);
        }
        for actor in answered {
            if let Some(a) = self.actors.get_mut(actor) {
                a.dormant_looks.learn(true);
            }
        }
    }

    fn learn_guess(&mut self, actor: u64, dept: u64, consult: u64, confirmed: bool) {
        if let Some(a) = self.actors.get_mut(actor) {
            a.guesses.learn(confirmed);
        }
        if let Some(g) = self.groups.get_mut(dept) {
            g.guesses.learn(confirmed);
        }
        if consult != 0 {
            self.consults
                .get_or_insert_with(consult, Confirmations::default)
                .learn(confirmed);
        }
    }

    /// Whether an unconfirmed consult of a record left for days alerts: where this department's
    /// consults of that department's patients are nearly always care (the cardiologists' of the
    /// ward's patients), whatever its guesses elsewhere.
    fn stale_consult_alerts(&self, p: &Pending) -> bool {
        p.stale
            && p.consult != 0
            && self
                .consults
                .peek(p.consult)
                .is_none_or(|g| g.unconfirmed_share() <= GUESS_ALERTS_UNDER)
    }

    /// Whether an unconfirmed guess may alert for its pair of departments: not a consult, or a
    /// consult where this department's consults of that department's patients are nearly
    /// always care, or not yet known. A department whose guesses are care as a rule may still
    /// read one department's patients without writing (the GP's results inbox after the
    /// emergency department's night). Measured: −170 false alerts on fifteen hospitals of the
    /// generators written apart, no incident lost there; −35 and −104 on our 51, one of 1,422
    /// incidents lost (a neighbour's record, where that pair's consults were not care).
    fn consult_pair_alerts(&self, p: &Pending) -> bool {
        p.consult == 0
            || self
                .consults
                .peek(p.consult)
                .is_none_or(|g| g.unconfirmed_share() <= GUESS_ALERTS_UNDER)
    }

    /// Whether an unconfirmed guess alerts: where guesses are nearly always confirmed (a ward's),
    /// by the department and by the actor alike, once each has shown it; and where the actor's
    /// own record of guesses is long ([`Confirmations::own_record`]), where hers are all but always
    /// (measured on the fifteen hospitals written apart: −222 false alerts, −7 attack events,
    /// no incident lost; −4 and −11 on our 51).
    fn unconfirmed_guess_alerts(&self, actor: u64, dept: u64) -> bool {
        let share = |g: &Confirmations| g.unconfirmed_share();
        let group = self.groups.peek(dept).map(|g| share(&g.guesses));
        let own = self.actors.peek(actor).map(|a| &a.guesses);
        group.is_none_or(|s| s <= GUESS_ALERTS_UNDER)
            && own.is_none_or(|g| {
                share(g) <= GUESS_ALERTS_UNDER
                    && g.own_record().is_none_or(|s| s <= OWN_GUESSES_ALERT_UNDER)
            })
    }

    /// Alerts whose grace period ran out, without an explanation, since the last call (the
    /// live consumer raises them; `anomaly replay` marks their lines).
    pub fn take_matured(&mut self) -> Vec<Matured> {
        std::mem::take(&mut self.matured)
    }

    /// Whether late alerts wait for [`Detector::take_matured`].
    pub fn has_matured(&self) -> bool {
        !self.matured.is_empty()
    }

    /// Moves the model's clock to `now` for the waiting alerts only (the live path, when no
    /// event came for a while): those due come of age.
    pub fn advance(&mut self, now: DateTime<Utc>) {
        self.mature(now.timestamp());
    }

    /// Moves the model's clock `quiet` past the newest event for the waiting alerts only (no
    /// event came for that long of wall-clock time).
    pub fn advance_quiet(&mut self, quiet: Duration) {
        if let Some(newest) = self.newest {
            self.mature(newest.saturating_add(quiet.num_seconds()));
        }
    }

    /// Events scored or observed so far.
    /// Alerts waiting (for their grace period, or quiet looks).
    pub fn waiting(&self) -> usize {
        self.pending.len() + self.looks.len()
    }

    /// The newest event time seen.
    pub fn newest(&self) -> Option<DateTime<Utc>> {
        self.newest.and_then(|t| DateTime::from_timestamp(t, 0))
    }

    pub fn observed(&self) -> u64 {
        self.observed
    }

    /// Gives back late alerts that could not be stored: the next [`Detector::take_matured`]
    /// returns them again.
    pub fn restore_matured(&mut self, mut matured: Vec<Matured>) {
        matured.append(&mut self.matured);
        self.matured = matured;
    }

    /// At the end of a finite input: every waiting alert comes of age now.
    pub fn finish(&mut self) -> Vec<Matured> {
        self.mature(i64::MAX);
        self.take_matured()
    }

    /// Raises the waiting alerts due by `t`.
    fn mature(&mut self, t: i64) {
        loop {
            let grace = self.pending.front().map_or(i64::MAX, |p| p.due);
            let look = self.looks.front().map_or(i64::MAX, |p| p.due);
            let from_pending = grace <= look;
            let next = if from_pending {
                self.pending.pop_front()
            } else {
                self.looks.pop_front()
            };
            match next {
                Some(p) if p.due <= t && p.wait == Wait::Guess => {
                    // Judged before learning: the guess under judgement must not excuse itself.
                    let ripe = self
                        .first
                        .is_some_and(|first| p.event.time.timestamp() - first >= MATURE_AFTER);
                    let alerts = ripe
                        && ((self.unconfirmed_guess_alerts(p.actor, p.dept)
                            && self.consult_pair_alerts(&p))
                            || self.stale_consult_alerts(&p));
                    self.learn_guess(p.actor, p.dept, p.consult, false);
                    if alerts {
                        self.raise(p, t);
                    } else {
                        self.unwait(p.patient);
                    }
                }
                Some(mut p) if p.due <= t => {
                    if let Some(due) = self.visit_end(&p) {
                        p.due = due;
                    }
                    if p.due > t {
                        let at = self.pending.partition_point(|q| q.due <= p.due);
                        self.pending.insert(at, p);
                    } else {
                        self.raise_unless_habitual(p, t);
                    }
                }
                Some(p) => {
                    // Not due: put it back where it was (a wait stretched by a visit is in
                    // `pending` whatever its kind).
                    if from_pending {
                        self.pending.push_front(p);
                    } else {
                        self.looks.push_front(p);
                    }
                    break;
                }
                None => break,
            }
        }
    }

    /// When a first look whose grace period ran out stops waiting, if the actor is still reading
    /// the same chart (her last look was at this patient, or a later look at it waits for a
    /// note too): a grace period after that last look, or with the latest such look's wait, at
    /// most [`ModelConfig::visit_seconds`] after the first look.
    fn visit_end(&self, p: &Pending) -> Option<i64> {
        let visit = self.config.visit_seconds.clamp(0, MAX_GRACE);
        // A very restricted record (a VIP's, CEL) or a colleague's (EMP) read on nothing alerts
        // when the grace period is over, however long the reading.
        let labels = self.patient_labels.peek(p.patient).copied().unwrap_or(0);
        if p.wait != Wait::Grace
            || visit == 0
            || sensitivity(&p.event) >= 1.0
            || labels & (LABEL_EMPLOYEE | LABEL_CELEBRITY) != 0
        {
            return None;
        }
        let until = p.event.time.timestamp() + visit;
        let later_look = self
            .pending
            .iter()
            .filter(|q| q.wait == Wait::Grace && q.actor == p.actor && q.patient == p.patient)
            .map(|q| q.due.min(until))
            .max();
        // Still in the chart: the actor's last look was at this patient, a grace period ago
        // at most (the physician reading the history before she writes).
        let grace = self.config.grace_seconds.clamp(0, MAX_GRACE);
        let in_chart = self
            .actors
            .peek(p.actor)
            .and_then(|a| a.patterns.last_patient())
            .filter(|&(patient, _)| patient == p.patient)
            .map(|(_, last)| (last + grace).min(until));
        later_look.max(in_chart).filter(|&due| due > p.due)
    }

    /// Raises the waiting alerts `which` picks at `t`: `corroborated` by another alert of the
    /// actor's (all raised), or ended by her turning to another patient (as if due).
    fn mature_where(&mut self, t: i64, corroborated: bool, which: impl Fn(&Pending) -> bool) {
        let mut now = Vec::new();
        for queue in [&mut self.pending, &mut self.looks] {
            if !queue.iter().any(&which) {
                continue;
            }
            let (picked, rest): (Vec<Pending>, Vec<Pending>) =
                std::mem::take(queue).into_iter().partition(|p| which(p));
            *queue = rest.into();
            now.extend(picked);
        }
        now.sort_by_key(|p| p.due);
        for p in now {
            if corroborated {
                self.raise(p, t);
            } else {
                self.raise_unless_habitual(p, t);
            }
        }
    }

    /// Raises a wait that ran out, unless it is a first look at an ordinary record left for
    /// days by an actor for whom such looks without a note are a habit (at least
    /// [`DORMANT_LOOKS_HABIT`] of her last ones, [`DORMANT_LOOKS_KNOWN`] at least). Judged
    /// before learning, as a guess is; carried into an open incident, it is raised with it
    /// and teaches nothing.
    fn raise_unless_habitual(&mut self, p: Pending, t: i64) {
        if p.dormant && p.carried_into.is_none() {
            if let Some(actor) = self.actors.get_mut(p.actor) {
                let habitual = actor
                    .dormant_looks
                    .share_once(DORMANT_LOOKS_KNOWN)
                    .is_some_and(|s| s >= DORMANT_LOOKS_HABIT);
                actor.dormant_looks.learn(false);
                if habitual {
                    self.unwait(p.patient);
                    return;
                }
            }
        }
        self.raise(p, t);
    }

    /// Raises one waiting alert at `t`: its incident, and the events it takes into it.
    fn raise(&mut self, mut p: Pending, t: i64) {
        self.unwait(p.patient);
        {
            let at = p.event.time.timestamp();
            let (incident, joined) = match (p.carried_into, self.actors.get_mut(p.actor)) {
                (Some(incident), actor) => {
                    if let Some(actor) = actor {
                        actor.held.taint(at);
                    }
                    (incident, Vec::new())
                }
                (None, Some(actor)) => {
                    actor.held.taint(at);
                    let next = self.incidents + 1;
                    let (id, new) = if p.wait.awaits_care() {
                        actor
                            .incidents
                            .alert_unanswered(at, p.scored.score, p.request, next)
                    } else {
                        actor
                            .incidents
                            .alert(at, p.scored.score, (p.request, false), next)
                    };
                    if new {
                        self.incidents += 1;
                    }
                    // A look raised because no note came judges that one record: the
                    // actor's other looks before it are not shown to be part of it (mostly a
                    // clinician's other first looks of the morning). A run of refusals of one
                    // record, a guess that care would follow, a glass broken alone judge the
                    // session, and take its suspicious start in (without it, on the fifteen
                    // hospitals written apart, 358 false alerts and 50 attack events fewer, and
                    // a shared login lost that only a guess's incident found). A guess opening
                    // the incident takes only what followed its look
                    // ([`Incidents::join_waited`]): refusals of one record and a glass's session
                    // are one act from their start.
                    let joined = match p.wait {
                        Wait::Grace | Wait::QuietLook | Wait::ConsultNote | Wait::OwnNote => {
                            Vec::new()
                        }
                        Wait::Guess if new => actor.incidents.join_waited(at, p.request),
                        Wait::Guess | Wait::LoneGlass | Wait::Refused => {
                            actor.incidents.join(at, p.request)
                        }
                    };
                    (id, joined)
                }
                (None, None) => {
                    self.incidents += 1;
                    (self.incidents, Vec::new())
                }
            };
            p.scored.incident = Some(incident);
            p.scored.joined = joined;
            let due = DateTime::<Utc>::from_timestamp(p.due.min(t), 0)
                .unwrap_or(p.event.time)
                .max(p.event.time);
            self.matured.push(Matured {
                event: p.event,
                scored: p.scored,
                at: due,
            });
        }
    }

    fn clock(&mut self, t: i64) {
        if self.first.is_none() {
            self.first = Some(t);
        }
        if self.newest.is_none_or(|n| t > n) {
            self.newest = Some(t);
        }
    }

    /// Counts an event and, every [`SWEEP_EVERY`], empties windows that slid past.
    fn tick(&mut self) {
        self.observed += 1;
        if !self.observed.is_multiple_of(SWEEP_EVERY) {
            return;
        }
        let Some(newest) = self.newest else { return };
        let cutoff = DateTime::<Utc>::from_timestamp(newest, 0).map(|n| n - WINDOW);
        if let Some(cutoff) = cutoff {
            self.actors
                .for_each_mut(|actor| actor.window.prune_before(cutoff));
        }
    }
}

/// The reason an unconfirmed guess alerts with.
const GUESS_REASON: &str =
    "Opened as if in care (a consult, covering, the ward's earlier stay), but neither a note nor anyone's care followed within an hour, where they nearly always do";

/// The reason a glass broken alone alerts with: the `n`th in [`glasses::REMEMBERED`].
fn lone_glass_reason(n: usize) -> String {
    format!(
        "broke the glass alone {n} times in 14 days: nobody else touched these records within hours, and the user did not come back to them"
    )
}

/// A waiting alert's reason: what did not come, and within how long (`wait`, seconds).
fn within(what: &str, wait: i64) -> String {
    if wait >= 2 * 3600 && wait % 3600 == 0 {
        format!("{what} within {} hours", wait / 3600)
    } else {
        format!("{what} within {} minutes", wait / 60)
    }
}

/// The reason a look that only the patient's consent explained alerts with, when no care came.
const CONSENTED_LOOK_REASON: &str =
    "opened on nothing but the patient's consent to share her record, a record nobody here had touched for days, and neither a note nor anyone else's care followed";
/// The reason a quiet look alerts with.
const QUIET_LOOK_REASON: &str =
    "nobody else touched this record and the user documented nothing for the patient";

/// The reason a refused look that no note of the user followed alerts with.
const REFUSED_REASON: &str =
    "refused this patient's record, and the user documented nothing for her";

/// The reason a first look of a user who documents after her sessions alerts with
/// ([`Detector::session_wait`]).
const SESSION_REASON: &str =
    "the user documents after her sessions, and documented nothing for the patient";

/// The reason a staff member's record opened on a guessed consult alerts with.
const STAFF_CONSULT_NOTE_REASON: &str =
    "a staff member's record opened like a consult, but no consult note followed within 30 minutes";

/// The reason a VIP's or a staff member's record opened with nothing to explain it alerts with.
const NO_NOTE_REASON: &str =
    "nothing explained opening this record, and neither the user nor her department documented for the patient within 30 minutes";

/// The reason a VIP's record opened under her consent alone alerts with.
const CONSENT_NOTE_REASON: &str =
    "a very restricted (V) record opened under the patient's consent to share it, with no care relationship, and neither the user nor her department documented for the patient within 30 minutes";

/// The reason a VIP's or a staff member's record opened off her care team alerts with.
const OFF_CARE_TEAM_REASON: &str =
    "her care team on record includes neither the user nor her department, and neither documented for the patient within 30 minutes";

/// The reason a restricted or a staff member's record opened for what the role never does
/// alerts with.
const MISUSE_NOTE_REASON: &str =
    "a restricted record opened for what this role or department never does, and neither the user nor her department documented for the patient within 30 minutes";

/// The reason a VIP's record opened on the department's care alerts with.
const VIP_OWN_NOTE_REASON: &str =
    "a very restricted (V) record opened on her ward's care, but the user documented nothing for the patient within 2 hours";

/// The reason a VIP's record opened on a guessed consult alerts with.
const CONSULT_NOTE_REASON: &str =
    "opened like a consult, but no consult note followed within 30 minutes";

/// A department's key within its organisation (events and care facts alike).
fn department_key(organization: Option<&str>, department: &str) -> u64 {
    pair(
        pair(hash_str(organization.unwrap_or("")), hash_str(department)),
        1,
    )
}

/// The contributions (strongest first, at most 6) and their phrases.
fn describe(v: &Values, c: &Context) -> (Vec<Contribution>, Vec<String>) {
    let contributions = v.contributions();
    let mut order: Vec<Feature> = Feature::ALL
        .into_iter()
        .filter(|f| contributions[*f as usize] >= 0.005)
        .collect();
    // Stable sort: ties keep the table's order, so reasons are deterministic.
    order.sort_by(|a, b| contributions[*b as usize].total_cmp(&contributions[*a as usize]));
    order.truncate(6);
    let reasons = order.iter().map(|f| phrase(*f, c)).collect();
    let contributions = order
        .into_iter()
        .map(|f| Contribution {
            feature: f.name(),
            value: round4(v.get(f)),
            contribution: round4(contributions[f as usize]),
        })
        .collect();
    (contributions, reasons)
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Where a strange sign-in came from, in words.
fn strange_source(signals: &baselines::ActorSignals) -> &'static str {
    if signals.agent >= 0.9 {
        "an address and device this account never used"
    } else {
        "an address this account never used"
    }
}

fn phrase(feature: Feature, c: &Context) -> String {
    let e = &c.explanation;
    match feature {
        Feature::NoRelationship if e.first_time => {
            "first access to this patient, no care relationship".into()
        }
        Feature::NoRelationship => "no care relationship to this patient".into(),
        Feature::SensitiveUnexplained => format!(
            "{} record{}, {}",
            if c.sensitivity >= 1.0 {
                "very restricted (V)"
            } else {
                "restricted (R)"
            },
            if c.sensitivity >= 1.0 {
                ", e.g. a VIP"
            } else {
                ""
            },
            if c.sensitive_misuse {
                "opened for what this role or department never does"
            } else {
                "with no care relationship"
            }
        ),
        Feature::DormantUnexplained => "a record nobody else has touched lately".into(),
        Feature::UnexplainedContext => "unexplained access in unusual circumstances".into(),
        Feature::UnexplainedSpree if c.first_looks.2 => format!(
            "{:.0} patients opened for the first time in the last hour, the busiest hour usual about {:.0}",
            c.first_looks.0, c.first_looks.1
        ),
        Feature::UnexplainedSpree => {
            format!("{} patients without explanation in the last hour", c.spree)
        }
        Feature::Burst if c.window.searched_patients == 0 => format!(
            "{} distinct patients in 5 minutes",
            c.window.distinct_patients
        ),
        Feature::Burst => format!(
            "{} distinct patients in 5 minutes (and {} more in search results)",
            c.window.distinct_patients, c.window.searched_patients
        ),
        Feature::Rate => format!(
            "{} events in the last minute against a baseline of {:.1} per minute",
            c.window.recent_events,
            c.window.effective_baseline()
        ),
        Feature::Denied if c.window.failures() > c.window.denied_share() => format!(
            "{} requests for records that do not exist in 5 minutes",
            c.window.errors
        ),
        Feature::Denied => format!(
            "{} of {} patient accesses in 5 minutes denied",
            c.window.denied, c.window.patient_events
        ),
        Feature::FailedLogins if c.broke_in => format!(
            "signed in after {} failed attempts, from {}",
            c.window.failed_logins,
            strange_source(&c.signals)
        ),
        Feature::FailedLogins if c.odd_sign_in && !c.broke_in => format!(
            "signed in at an hour this account does not work, from {}",
            strange_source(&c.signals)
        ),
        Feature::FailedLogins if c.returning_after_days.is_some() && !c.broke_in => format!(
            "signed in after {} days without use, from {}",
            c.returning_after_days.unwrap_or_default(),
            strange_source(&c.signals)
        ),
        Feature::FailedLogins if c.sign_ins.spray() => format!(
            "{} failed logins for {} accounts from one address in 5 minutes",
            c.sign_ins.failures, c.sign_ins.accounts
        ),
        Feature::FailedLogins if c.sign_ins.locked_again => {
            "tried again after the account was locked out".into()
        }
        Feature::FailedLogins if c.stranger => format!(
            "{} failed logins from an address and device this account never used",
            c.window.failed_logins
        ),
        Feature::FailedLogins => format!("{} failed logins in 5 minutes", c.window.failed_logins),
        Feature::BreakGlass => "break-glass with no emergency context".into(),
        Feature::BreakGlassExcess => format!(
            "breaks the glass far more often than peers ({} times)",
            c.break_glass_count
        ),
        Feature::WholeRecord => format!(
            "the whole record ({} kinds of data) in one request",
            c.whole_record
        ),
        Feature::Export if c.first_export => "export, not something this user does".into(),
        Feature::Export => "export".into(),
        Feature::LargeResult => format!("{} resources in one response", c.count),
        Feature::LongList => format!(
            "{} patients in one search, the longest usual list about {:.0}",
            c.list.0, c.list.1
        ),
        Feature::Sweep => "a sweep through patient records in id order".into(),
        Feature::SearchSweep => format!(
            "{} searches in 10 minutes with few records opened",
            c.searches
        ),
        Feature::OddHour => "outside usual hours".into(),
        Feature::NewSource => match (c.signals.new_address, c.signals.new_agent) {
            (true, true) => "new address and device".into(),
            (false, true) => "new device".into(),
            (true, false) => "new address".into(),
            // Neither new by itself (the department's, or first seen within the day): name
            // the newer of the two.
            (false, false) if c.signals.agent > c.signals.address => "recently new device".into(),
            (false, false) => "recently new address".into(),
        },
        Feature::RoleMisuse => "something this role or department never does".into(),
        Feature::MisuseRun => format!(
            "{} patients in the last hour opened for what this role or department never does",
            c.misuse_run
        ),
        Feature::Volume => format!("{} events this hour, far above usual", c.signals.volume_now),
        Feature::PatientsPerHour => format!(
            "{} different patients this hour, far above usual",
            c.signals.patients_now
        ),
        Feature::Outlier => format!("an unusual combination (outlier {:.2})", c.outlier),
        Feature::Amendments if c.own_record => {
            "a change to the user's own record, through a staff role".into()
        }
        Feature::Amendments => format!(
            "{} changes to entries of this patient in a row, of data this role or department seldom amends",
            c.amendment_run
        ),
        Feature::OwnRecord => "the user's own record, opened through a staff role".into(),
        Feature::Objections => format!(
            "{} patients' own refusals (a consent that denies this user) within 2 hours",
            c.objections
        ),
        Feature::TwoPlaces => "the account at a computer other staff use, while in use at its \
            own desk elsewhere minutes before"
            .into(),
        Feature::UnreviewedPrescription => "a prescription for a patient first opened minutes \
            before with no care relationship, nothing of her conditions, allergies or encounters \
            looked at"
            .into(),
        Feature::Restricted if c.sensitivity >= 1.0 => "very restricted (V) record".into(),
        Feature::Restricted => "restricted (R) record".into(),
    }
}

/// "First access to this patient, no care relationship, outside usual hours, new address."
fn sentence(reasons: &[String]) -> String {
    let joined = reasons
        .iter()
        .take(4)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let mut chars = joined.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
