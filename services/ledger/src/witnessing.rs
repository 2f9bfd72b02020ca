//! The log side of witnessing (C2SP `tlog-witness`): every signed checkpoint is submitted to
//! the configured witnesses, and only a checkpoint cosigned by at least the quorum is
//! published.
//!
//! - Each witness gets `POST <url>/add-checkpoint` with a consistency proof from the size it
//!   last cosigned (kept in `witness_state`); on 409 its size is taken from the answer and
//!   the request retried once.
//! - Each returned cosignature is verified against that witness's configured key and stored
//!   in `cosignatures`; the published note is the log's note followed by the cosignature
//!   lines, in the configured witness order.
//! - The work runs in its own task: appends and signing never wait for a witness; a slow or
//!   dead one only delays publication (its requests time out; refusals back off).
//! - Refusals are counted in `ledger_witness_failures_total{witness,reason}` (fixed reasons,
//!   [`Refusal::label`]) and logged at ERROR with the witness's name and the reason.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use prometheus::{IntCounterVec, IntGauge, Opts};
use tokio_util::sync::CancellationToken;

use crate::{
    cosignature::{CosignatureVerifier, VerifiedCosignature},
    error::LedgerError,
    routes::b64,
    schema::{checkpoints, cosignatures, witness_state},
    service::{LedgerService, SignedCheckpoint},
    signing,
};

/// One witness the log asks for cosignatures.
#[derive(Debug, Clone)]
pub struct WitnessEndpoint {
    pub verifier: CosignatureVerifier,
    /// The witness's submission prefix; requests go to `<url>/add-checkpoint`.
    pub url: String,
}

impl WitnessEndpoint {
    pub fn name(&self) -> &str {
        self.verifier.name()
    }

    /// Parses `<verifier key>@<url>` (a verifier key holds no `@`: its base64 cannot).
    pub fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        let last_plus = entry
            .rfind('+')
            .ok_or_else(|| "expected <verifier key>@<url>".to_string())?;
        let at = entry[last_plus..]
            .find('@')
            .map(|i| last_plus + i)
            .ok_or_else(|| "expected <verifier key>@<url>".to_string())?;
        let verifier = CosignatureVerifier::parse(&entry[..at]).map_err(|e| e.to_string())?;
        let url = entry[at + 1..].trim_end_matches('/').to_string();
        // The HTTP client is built without TLS (like every client here): a witness behind
        // https is reached through a local TLS-terminating relay.
        if !url.starts_with("http://") {
            return Err(format!(
                "witness {}: the URL must be http:// (no TLS in the client)",
                verifier.name()
            ));
        }
        Ok(Self { verifier, url })
    }
}

/// `LEDGER_WITNESSES`, `LEDGER_WITNESS_QUORUM`, `LEDGER_WITNESS_TIMEOUT_MS`.
#[derive(Debug, Clone)]
pub struct WitnessingSettings {
    pub witnesses: Vec<WitnessEndpoint>,
    /// Cosignatures a checkpoint needs to be published; 0 publishes every signed checkpoint.
    pub quorum: usize,
    /// How long one add-checkpoint request may take.
    pub timeout: Duration,
}

impl Default for WitnessingSettings {
    fn default() -> Self {
        Self {
            witnesses: Vec::new(),
            quorum: 0,
            timeout: Duration::from_secs(5),
        }
    }
}

impl WitnessingSettings {
    /// Parses the comma-separated witness list and checks the quorum can be met.
    pub fn parse(list: &str, quorum: usize, timeout: Duration) -> Result<Self, String> {
        let witnesses = list
            .split(',')
            .filter(|e| !e.trim().is_empty())
            .map(WitnessEndpoint::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let mut names: Vec<&str> = witnesses.iter().map(WitnessEndpoint::name).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err("two witnesses have the same name".into());
        }
        if quorum > witnesses.len() {
            return Err(format!(
                "a quorum of {quorum} needs at least that many witnesses, {} configured",
                witnesses.len()
            ));
        }
        Ok(Self {
            witnesses,
            quorum,
            timeout,
        })
    }
}

/// Why a witness did not cosign. The labels are a fixed set (alert rules match on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No answer in time, or the connection failed.
    Unreachable,
    /// 409 twice, or the witness holds a larger tree than this log signed: a rollback.
    Conflict,
    /// 403: the witness does not accept the log's signature.
    Forbidden,
    /// 404: the witness does not know this log.
    UnknownLog,
    /// 422: the consistency proof failed: the history was rewritten (or forked).
    Inconsistent,
    /// 400: the witness found the request malformed.
    BadRequest,
    /// Any other HTTP status.
    UnexpectedStatus,
    /// 200, but no valid cosignature by the configured key.
    BadCosignature,
}

impl Refusal {
    pub const ALL: [Refusal; 8] = [
        Refusal::Unreachable,
        Refusal::Conflict,
        Refusal::Forbidden,
        Refusal::UnknownLog,
        Refusal::Inconsistent,
        Refusal::BadRequest,
        Refusal::UnexpectedStatus,
        Refusal::BadCosignature,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::Unreachable => "unreachable",
            Refusal::Conflict => "conflict",
            Refusal::Forbidden => "forbidden",
            Refusal::UnknownLog => "unknown_log",
            Refusal::Inconsistent => "inconsistent",
            Refusal::BadRequest => "bad_request",
            Refusal::UnexpectedStatus => "unexpected_status",
            Refusal::BadCosignature => "bad_cosignature",
        }
    }

    fn from_status(status: u16) -> Self {
        match status {
            400 => Refusal::BadRequest,
            403 => Refusal::Forbidden,
            404 => Refusal::UnknownLog,
            409 => Refusal::Conflict,
            422 => Refusal::Inconsistent,
            _ => Refusal::UnexpectedStatus,
        }
    }
}

/// The witnessing metrics; label values are witness names from the configuration.
#[derive(Clone)]
pub struct WitnessingMetrics {
    pub cosignatures: IntCounterVec,
    pub failures: IntCounterVec,
    pub published_age: IntGauge,
    pub published_size: IntGauge,
}

impl WitnessingMetrics {
    pub fn register(
        metrics: &custodian_telemetry::Metrics,
        settings: &WitnessingSettings,
    ) -> Result<Self, prometheus::Error> {
        let m = Self {
            cosignatures: IntCounterVec::new(
                Opts::new(
                    "ledger_witness_cosignatures_total",
                    "Valid cosignatures received, by witness",
                ),
                &["witness"],
            )?,
            failures: IntCounterVec::new(
                Opts::new(
                    "ledger_witness_failures_total",
                    "Checkpoints a witness did not cosign, by witness and reason",
                ),
                &["witness", "reason"],
            )?,
            published_age: IntGauge::new(
                "ledger_published_checkpoint_age_seconds",
                "Seconds since the published checkpoint was signed",
            )?,
            published_size: IntGauge::new(
                "ledger_published_tree_size",
                "Tree size of the published checkpoint",
            )?,
        };
        // Every series exists from the start, so an alert on its increase sees the first one.
        for witness in &settings.witnesses {
            m.cosignatures.with_label_values(&[witness.name()]);
            for refusal in Refusal::ALL {
                m.failures
                    .with_label_values(&[witness.name(), refusal.label()]);
            }
        }
        metrics.register(Box::new(m.cosignatures.clone()));
        metrics.register(Box::new(m.failures.clone()));
        metrics.register(Box::new(m.published_age.clone()));
        metrics.register(Box::new(m.published_size.clone()));
        Ok(m)
    }

    /// Counts and logs a refusal: the ERROR line operators alert on.
    pub fn refused(&self, witness: &str, refusal: Refusal, tree_size: u64, detail: &str) {
        self.failures
            .with_label_values(&[witness, refusal.label()])
            .inc();
        tracing::error!(
            witness,
            reason = refusal.label(),
            tree_size,
            detail,
            "witness did not cosign the checkpoint"
        );
    }
}

/// The published note: the log's signed note, then the cosignature lines.
fn cosigned_note(note: &str, lines: &[&str]) -> String {
    let mut out = note.to_string();
    for line in lines {
        out.push_str(line);
    }
    out
}

/// At start, with a quorum: publishes the newest stored checkpoint that enough of the
/// configured witnesses cosigned (nothing when there is none yet).
pub async fn restore_published(
    ledger: &LedgerService,
    settings: &WitnessingSettings,
) -> Result<(), LedgerError> {
    if settings.quorum == 0 {
        return Ok(());
    }
    let keys: Vec<String> = settings
        .witnesses
        .iter()
        .map(|w| w.verifier.verifier_key().to_string())
        .collect();
    let mut conn = ledger.pool().get().await?;
    let size: Option<i64> = cosignatures::table
        .filter(cosignatures::witness.eq_any(&keys))
        .group_by(cosignatures::tree_size)
        .having(diesel::dsl::count_star().ge(settings.quorum as i64))
        .select(cosignatures::tree_size)
        .order(cosignatures::tree_size.desc())
        .first(&mut conn)
        .await
        .optional()?;
    let Some(size) = size else {
        return Ok(());
    };
    let (root, note): (Vec<u8>, String) = checkpoints::table
        .find(size)
        .select((checkpoints::root_hash, checkpoints::note))
        .first(&mut conn)
        .await?;
    let stored: HashMap<String, String> = cosignatures::table
        .filter(cosignatures::tree_size.eq(size))
        .filter(cosignatures::witness.eq_any(&keys))
        .select((cosignatures::witness, cosignatures::line))
        .load::<(String, String)>(&mut conn)
        .await?
        .into_iter()
        .collect();
    let lines: Vec<&str> = keys
        .iter()
        .filter_map(|k| stored.get(k).map(String::as_str))
        .collect();
    ledger.publish(SignedCheckpoint {
        tree_size: u64::try_from(size).map_err(LedgerError::unexpected)?,
        root_hash: root
            .as_slice()
            .try_into()
            .map_err(|_| LedgerError::unexpected("stored root is not 32 bytes"))?,
        note: cosigned_note(&note, &lines),
    });
    tracing::info!(tree_size = size, "published checkpoint restored");
    Ok(())
}

async fn stored_sizes(conn: &mut AsyncPgConnection) -> QueryResult<HashMap<String, u64>> {
    Ok(witness_state::table
        .select((witness_state::witness, witness_state::tree_size))
        .load::<(String, i64)>(conn)
        .await?
        .into_iter()
        .filter_map(|(w, s)| u64::try_from(s).ok().map(|s| (w, s)))
        .collect())
}

async fn store_cosignature(
    conn: &mut AsyncPgConnection,
    witness: &str,
    tree_size: i64,
    cosignature: &VerifiedCosignature,
) -> QueryResult<()> {
    let cosigned_at = i64::try_from(cosignature.timestamp)
        .ok()
        .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
        .unwrap_or_else(Utc::now);
    diesel::insert_into(cosignatures::table)
        .values((
            cosignatures::tree_size.eq(tree_size),
            cosignatures::witness.eq(witness),
            cosignatures::line.eq(&cosignature.line),
            cosignatures::cosigned_at.eq(cosigned_at),
        ))
        .on_conflict((cosignatures::tree_size, cosignatures::witness))
        .do_nothing()
        .execute(conn)
        .await?;
    diesel::insert_into(witness_state::table)
        .values((
            witness_state::witness.eq(witness),
            witness_state::tree_size.eq(tree_size),
        ))
        .on_conflict(witness_state::witness)
        .do_update()
        .set((
            witness_state::tree_size.eq(tree_size),
            witness_state::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The add-checkpoint request body: old size, proof lines, blank line, the signed note.
pub fn add_checkpoint_body(old_size: u64, proof: &[impl AsRef<[u8]>], note: &str) -> String {
    let mut body = format!("old {old_size}\n");
    for hash in proof {
        body.push_str(&b64(hash.as_ref()));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    body
}

/// Asks one witness to cosign `checkpoint`, from the size it is believed to hold; a size the
/// witness states (409) replaces the belief.
async fn submit(
    client: &awc::Client,
    ledger: &LedgerService,
    witness: &WitnessEndpoint,
    checkpoint: &SignedCheckpoint,
    believed_size: &mut u64,
) -> Result<VerifiedCosignature, (Refusal, String)> {
    let (body_text, _) = signing::split_note(&checkpoint.note)
        .map_err(|e| (Refusal::BadRequest, format!("unsendable note: {e}")))?;
    for attempt in 0..2 {
        let old = *believed_size;
        if old > checkpoint.tree_size {
            return Err((
                Refusal::Conflict,
                format!(
                    "the witness holds size {old}, larger than the signed {}",
                    checkpoint.tree_size
                ),
            ));
        }
        let proof = if old == 0 || old == checkpoint.tree_size {
            Vec::new()
        } else {
            ledger
                .consistency_proof(old, checkpoint.tree_size)
                .await
                .map_err(|e| (Refusal::Conflict, format!("no proof from size {old}: {e}")))?
        };
        let body = add_checkpoint_body(old, &proof, &checkpoint.note);
        let mut response = client
            .post(format!("{}/add-checkpoint", witness.url))
            .content_type("text/plain; charset=utf-8")
            .send_body(body)
            .await
            .map_err(|e| (Refusal::Unreachable, e.to_string()))?;
        let status = response.status().as_u16();
        let answer = response
            .body()
            .limit(64 * 1024)
            .await
            .map_err(|e| (Refusal::Unreachable, e.to_string()))?;
        let answer = String::from_utf8_lossy(&answer);
        match status {
            200 => {
                return witness
                    .verifier
                    .verify(body_text, &answer)
                    .map_err(|e| (Refusal::BadCosignature, e.to_string()));
            }
            409 if attempt == 0 => {
                *believed_size = answer
                    .strip_suffix('\n')
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| {
                        (
                            Refusal::UnexpectedStatus,
                            "409 without a tree size".to_string(),
                        )
                    })?;
            }
            other => {
                return Err((
                    Refusal::from_status(other),
                    format!("HTTP {other} for old size {old}"),
                ))
            }
        }
    }
    Err((
        Refusal::Conflict,
        "the witness's size changed again".to_string(),
    ))
}

/// Per-witness memory of the task.
#[derive(Default)]
struct WitnessProgress {
    /// The size the witness last cosigned (the next request's old size).
    size: u64,
    /// Its cosignature of the checkpoint being witnessed, once obtained.
    cosigned: Option<(u64, String)>,
    failures: u32,
    retry_at: Option<Instant>,
}

/// The witnessing task: submits each signed checkpoint, publishes it once cosigned by the
/// quorum, and keeps the published checkpoint's age up to date every `interval`.
pub async fn run(
    ledger: Arc<LedgerService>,
    settings: WitnessingSettings,
    metrics: WitnessingMetrics,
    interval: Duration,
    token: CancellationToken,
) {
    let client = awc::Client::builder().timeout(settings.timeout).finish();
    let mut progress: Vec<WitnessProgress> = settings
        .witnesses
        .iter()
        .map(|_| WitnessProgress::default())
        .collect();
    match ledger.pool().get().await {
        Ok(mut conn) => match stored_sizes(&mut conn).await {
            Ok(sizes) => {
                for (witness, p) in settings.witnesses.iter().zip(progress.iter_mut()) {
                    p.size = sizes
                        .get(witness.verifier.verifier_key())
                        .copied()
                        .unwrap_or(0);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the witnesses' sizes"),
        },
        // Sizes start at 0: a witness answers 409 with its own.
        Err(e) => tracing::warn!(error = %e, "could not read the witnesses' sizes"),
    }
    let mut signed = ledger.subscribe_signed();
    signed.mark_changed();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut age = PublishedAge::default();
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            changed = signed.changed() => if changed.is_err() { break },
            _ = ticker.tick() => {}
        }
        let checkpoint = signed.borrow_and_update().clone();
        if !settings.witnesses.is_empty() && !checkpoint.note.is_empty() {
            witness_round(
                &client,
                &ledger,
                &settings,
                &metrics,
                &mut progress,
                &checkpoint,
            )
            .await;
        }
        age.update(&ledger, &metrics).await;
    }
    tracing::info!("witnessing stopped");
}

/// Submits `checkpoint` to every witness that has not cosigned it and is not backing off;
/// publishes it when the quorum is reached.
async fn witness_round(
    client: &awc::Client,
    ledger: &LedgerService,
    settings: &WitnessingSettings,
    metrics: &WitnessingMetrics,
    progress: &mut [WitnessProgress],
    checkpoint: &SignedCheckpoint,
) {
    let size = checkpoint.tree_size;
    let now = Instant::now();
    let Ok(tree_size) = i64::try_from(size) else {
        return;
    };
    let requests = progress
        .iter_mut()
        .zip(&settings.witnesses)
        .filter(|(p, _)| {
            p.cosigned.as_ref().is_none_or(|(s, _)| *s != size)
                && p.retry_at.is_none_or(|t| t <= now)
        })
        .map(|(p, witness)| async move {
            let outcome = submit(client, ledger, witness, checkpoint, &mut p.size).await;
            (p, witness, outcome)
        });
    let outcomes = futures_util::future::join_all(requests).await;
    for (p, witness, outcome) in outcomes {
        match outcome {
            Ok(cosignature) => {
                metrics
                    .cosignatures
                    .with_label_values(&[witness.name()])
                    .inc();
                match ledger.pool().get().await {
                    Ok(mut conn) => {
                        if let Err(e) = store_cosignature(
                            &mut conn,
                            witness.verifier.verifier_key(),
                            tree_size,
                            &cosignature,
                        )
                        .await
                        {
                            tracing::warn!(witness = witness.name(), error = %e, "could not store a cosignature");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(witness = witness.name(), error = %e, "could not store a cosignature")
                    }
                }
                p.size = size;
                p.cosigned = Some((size, cosignature.line));
                p.failures = 0;
                p.retry_at = None;
            }
            Err((refusal, detail)) => {
                metrics.refused(witness.name(), refusal, size, &detail);
                p.failures = p.failures.saturating_add(1);
                // 1, 2, 4, ... seconds, at most a minute, between attempts at a refusing witness.
                let backoff = Duration::from_secs(1 << p.failures.min(6).saturating_sub(1));
                p.retry_at = Some(Instant::now() + backoff);
            }
        }
    }
    let lines: Vec<&str> = progress
        .iter()
        .filter_map(|p| match &p.cosigned {
            Some((s, line)) if *s == size => Some(line.as_str()),
            _ => None,
        })
        .collect();
    // Without a quorum the checkpoint was published when signed; cosignatures that come
    // anyway are added to it.
    if lines.len() >= settings.quorum.max(1)
        && ledger.publish(SignedCheckpoint {
            note: cosigned_note(&checkpoint.note, &lines),
            ..checkpoint.clone()
        })
    {
        tracing::debug!(
            tree_size = size,
            cosignatures = lines.len(),
            "checkpoint published"
        );
    }
}

/// When the published checkpoint was signed (read once per published size).
#[derive(Default)]
struct PublishedAge {
    size: Option<u64>,
    signed_at: Option<DateTime<Utc>>,
}

impl PublishedAge {
    async fn update(&mut self, ledger: &LedgerService, metrics: &WitnessingMetrics) {
        let published = ledger.latest();
        if published.note.is_empty() {
            return;
        }
        metrics.published_size.set(published.tree_size as i64);
        if self.size != Some(published.tree_size) {
            let Ok(size) = i64::try_from(published.tree_size) else {
                return;
            };
            let signed_at = match ledger.pool().get().await {
                Ok(mut conn) => checkpoints::table
                    .find(size)
                    .select(checkpoints::signed_at)
                    .first::<DateTime<Utc>>(&mut conn)
                    .await
                    .ok(),
                Err(_) => None,
            };
            if signed_at.is_none() {
                return;
            }
            self.size = Some(published.tree_size);
            self.signed_at = signed_at;
        }
        if let Some(at) = self.signed_at {
            metrics
                .published_age
                .set((Utc::now() - at).num_seconds().max(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cosignature::Cosigner, signing::generate_private_key};

    fn vkey(name: &str) -> String {
        Cosigner::from_raw(name, &generate_private_key().unwrap())
            .unwrap()
            .verifier_key()
    }

    /// Collects what the JSON log layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_refusal_is_counted_and_logged_at_error_with_the_witness_and_reason() {
        let settings = WitnessingSettings::parse(
            &format!("{}@http://w", vkey("w1")),
            1,
            Duration::from_secs(1),
        )
        .unwrap();
        let registry = custodian_telemetry::Metrics::new("ledger");
        let metrics = WitnessingMetrics::register(&registry, &settings).unwrap();
        let series = "custodian_ledger_witness_failures_total{reason=\"inconsistent\",witness=\"w1\",service=\"ledger\"}";
        let rendered = registry.render();
        assert!(
            rendered.contains(&format!("{series} 0")),
            "not pre-created:\n{rendered}"
        );

        let captured = Captured::default();
        let writer = captured.clone();
        // The same layer as `custodian_telemetry::logging::init`.
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            metrics.refused("w1", Refusal::Inconsistent, 6, "HTTP 422 for old size 5");
        });
        assert!(registry.render().contains(&format!("{series} 1")));
        let line = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let log: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(log["level"], "ERROR");
        assert_eq!(log["witness"], "w1");
        assert_eq!(log["reason"], "inconsistent");
        assert_eq!(log["tree_size"], 6);
        assert_eq!(log["message"], "witness did not cosign the checkpoint");
    }

    #[test]
    fn witness_lists_parse() {
        let (a, b) = (vkey("w1.example/a"), vkey("w2"));
        let list = format!("{a}@http://127.0.0.1:9001/, {b}@http://w2.example/witness");
        let s = WitnessingSettings::parse(&list, 2, Duration::from_secs(1)).unwrap();
        assert_eq!(s.witnesses.len(), 2);
        assert_eq!(s.witnesses[0].name(), "w1.example/a");
        assert_eq!(s.witnesses[0].url, "http://127.0.0.1:9001");
        assert_eq!(s.witnesses[1].url, "http://w2.example/witness");
        assert!(WitnessingSettings::parse("", 0, Duration::from_secs(1))
            .unwrap()
            .witnesses
            .is_empty());
    }

    #[test]
    fn bad_witness_lists_are_refused() {
        let a = vkey("w1");
        for (list, quorum) in [
            (format!("{a}@http://x"), 2),
            (a.clone(), 1),
            (format!("{a}@ftp://x"), 1),
            (format!("{a}@https://x"), 1),
            (format!("{a}@http://x,{a}@http://y"), 1),
            ("w+00000000+AAAA@http://x".to_string(), 1),
        ] {
            assert!(
                WitnessingSettings::parse(&list, quorum, Duration::from_secs(1)).is_err(),
                "{list}"
            );
        }
    }

    #[test]
    fn request_bodies_follow_the_spec() {
        let body = add_checkpoint_body(3, &[[0u8; 32], [1u8; 32]], "log\n5\nroot\n\n— log sig\n");
        assert_eq!(
            body,
            format!(
                "old 3\n{}\n{}\n\nlog\n5\nroot\n\n— log sig\n",
                b64(&[0u8; 32]),
                b64(&[1u8; 32])
            )
        );
        assert_eq!(
            add_checkpoint_body(0, &[] as &[[u8; 32]], "n\n\n— x y\n"),
            "old 0\n\nn\n\n— x y\n"
        );
    }
}
