//! TLS to PostgreSQL with libpq's URL parameters, for every connection this crate makes.
//!
//! diesel-async's own `establish` speaks no TLS, so a connection is opened with tokio-postgres
//! over OpenSSL and handed to diesel-async. The URL's `sslmode`, `sslrootcert`, `sslcert` and
//! `sslkey` mean what they mean to libpq (`psql`), so one `DATABASE_URL` works for both:
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | no | - |
//! | `prefer` (default) | when the server offers TLS, else plain | no |
//! | `require` | yes | no; with `sslrootcert`, as `verify-ca` |
//! | `verify-ca` | yes | chain against `sslrootcert` |
//! | `verify-full` | yes | chain against `sslrootcert`, and the host name |
//!
//! `sslrootcert` is a PEM file of the CAs trusted (only those), or `system` for the system's
//! roots (then, as in libpq 16, `sslmode` defaults to `verify-full` and weaker modes are
//! refused). `verify-ca` and `verify-full` need it: libpq's fallback `~/.postgresql/root.crt`
//! is not looked up (containers have no home directory worth trusting). `sslcert` and `sslkey`
//! (PEM) are the client certificate, for servers that authenticate with one.

use std::{path::PathBuf, str::FromStr, sync::Arc};

use diesel::ConnectionResult;
use diesel_async::AsyncPgConnection;
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode, SslVersion};
use postgres_openssl::MakeTlsConnector;

use crate::DatabaseError;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = DatabaseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            // libpq's `allow` tries plain first: nothing here wants that.
            other => {
                return Err(DatabaseError::BadUrl(format!(
                "sslmode {other:?} is not one of disable, prefer, require, verify-ca, verify-full"
            )))
            }
        })
    }
}

/// Where the trusted CAs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RootCert {
    File(PathBuf),
    System,
}

/// A database URL split into what tokio-postgres understands and the TLS settings it does
/// not (it knows `sslmode` only up to `require`, and none of the files).
#[derive(Debug, Clone, PartialEq, Eq)]
struct TlsParams {
    /// The URL without the parameters below.
    url: String,
    mode: SslMode,
    root_cert: Option<RootCert>,
    client_cert: Option<(PathBuf, PathBuf)>,
}

/// Decodes `%XX` escapes (a path in a URL may be escaped: `%2F` for `/`).
fn percent_decode(raw: &str) -> Result<String, DatabaseError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| DatabaseError::BadUrl("a parameter has a bad % escape".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| DatabaseError::BadUrl("a parameter is not UTF-8".into()))
}

impl TlsParams {
    fn parse(url: &str) -> Result<Self, DatabaseError> {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, q),
            None => (url, ""),
        };
        let (mut mode, mut root, mut cert, mut key) = (None, None, None, None);
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "sslmode" => mode = Some(percent_decode(value)?.parse::<SslMode>()?),
                "sslrootcert" => root = Some(percent_decode(value)?),
                "sslcert" => cert = Some(percent_decode(value)?),
                "sslkey" => key = Some(percent_decode(value)?),
                _ => kept.push(pair),
            }
        }
        let root_cert = root.filter(|r| !r.is_empty()).map(|r| match r.as_str() {
            "system" => RootCert::System,
            _ => RootCert::File(r.into()),
        });
        let mode = match (mode, &root_cert) {
            (None, Some(RootCert::System)) => SslMode::VerifyFull,
            (Some(m), Some(RootCert::System)) if m != SslMode::VerifyFull => {
                return Err(DatabaseError::BadUrl(
                    "sslrootcert=system needs sslmode=verify-full (as libpq)".into(),
                ))
            }
            // libpq: with a root certificate, `require` verifies the chain.
            (Some(SslMode::Require), Some(RootCert::File(_))) => SslMode::VerifyCa,
            (Some(m), _) => m,
            (None, _) => SslMode::Prefer,
        };
        if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && root_cert.is_none() {
            return Err(DatabaseError::BadUrl(
                "sslmode=verify-ca and verify-full need sslrootcert (a CA file, or `system`)"
                    .into(),
            ));
        }
        let client_cert = match (
            cert.filter(|c| !c.is_empty()),
            key.filter(|k| !k.is_empty()),
        ) {
            (None, None) => None,
            (Some(c), Some(k)) => Some((c.into(), k.into())),
            _ => {
                return Err(DatabaseError::BadUrl(
                    "sslcert and sslkey go together".into(),
                ))
            }
        };
        let url = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok(Self {
            url,
            mode,
            root_cert,
            client_cert,
        })
    }

    fn connector(&self) -> Result<MakeTlsConnector, DatabaseError> {
        let tls_error = |what: &str, e: openssl::error::ErrorStack| {
            DatabaseError::BadUrl(format!("TLS: {what}: {e}"))
        };
        let mut builder =
            SslConnector::builder(SslMethod::tls_client()).map_err(|e| tls_error("OpenSSL", e))?;
        builder
            .set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(|e| tls_error("OpenSSL", e))?;
        let verify = matches!(self.mode, SslMode::VerifyCa | SslMode::VerifyFull);
        if verify {
            match &self.root_cert {
                Some(RootCert::File(path)) => builder.set_cert_store(
                    custodian_telemetry::tls::trust_only(path)
                        .map_err(|e| DatabaseError::BadUrl(format!("sslrootcert: {e}")))?,
                ),
                Some(RootCert::System) | None => builder
                    .set_default_verify_paths()
                    .map_err(|e| tls_error("system roots", e))?,
            }
            builder.set_verify(SslVerifyMode::PEER);
        } else {
            builder.set_verify(SslVerifyMode::NONE);
        }
        if let Some((cert, key)) = &self.client_cert {
            builder
                .set_certificate_chain_file(cert)
                .map_err(|e| tls_error(&format!("sslcert {}", cert.display()), e))?;
            builder
                .set_private_key_file(key, SslFiletype::PEM)
                .map_err(|e| tls_error(&format!("sslkey {}", key.display()), e))?;
            builder
                .check_private_key()
                .map_err(|e| tls_error("sslkey does not match sslcert", e))?;
        }
        let mut connector = MakeTlsConnector::new(builder.build());
        let check_host = self.mode == SslMode::VerifyFull;
        connector.set_callback(move |config, _host| {
            config.set_verify_hostname(check_host);
            Ok(())
        });
        Ok(connector)
    }
}

/// How to open connections to one database URL: parsed and with its TLS files loaded once,
/// so a pool opens each connection without reading them again.
#[derive(Clone)]
pub struct Connector {
    config: tokio_postgres::Config,
    tls: MakeTlsConnector,
    mode: SslMode,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config holds the password.
        f.debug_struct("Connector")
            .field("sslmode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Parses `url` (`postgres://user:password@host:port/db?sslmode=...`); the TLS files it
    /// names are read now.
    pub fn new(url: &str) -> Result<Self, DatabaseError> {
        let params = TlsParams::parse(url)?;
        let mut config = tokio_postgres::Config::from_str(&params.url)
            // tokio-postgres' parse errors do not repeat the URL (it may hold the password).
            .map_err(|e| DatabaseError::BadUrl(e.to_string()))?;
        config.ssl_mode(match params.mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        Ok(Self {
            tls: params.connector()?,
            config,
            mode: params.mode,
        })
    }

    /// The effective `sslmode` (`require` with `sslrootcert` is `verify-ca`).
    pub fn ssl_mode(&self) -> SslMode {
        self.mode
    }

    /// Opens one connection.
    pub async fn connect(&self) -> ConnectionResult<AsyncPgConnection> {
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| diesel::ConnectionError::BadConnection(describe(&e)))?;
        AsyncPgConnection::try_from_client_and_connection(client, connection).await
    }
}

/// An error with its causes (tokio-postgres says "error performing TLS handshake" and keeps
/// why in its source).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A shared [`Connector`] for a pool's setup closure.
pub(crate) type SharedConnector = Arc<Connector>;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> TlsParams {
        TlsParams::parse(url).unwrap()
    }

    #[test]
    fn sslmode_defaults_to_prefer_and_parameters_are_taken_out() {
        let p = parse("postgres://u:pw@h:5432/db");
        assert_eq!(p.mode, SslMode::Prefer);
        assert_eq!(p.url, "postgres://u:pw@h:5432/db");
        let p = parse("postgres://h/db?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=5");
        assert_eq!(p.mode, SslMode::VerifyFull);
        assert_eq!(p.root_cert, Some(RootCert::File("/etc/ca.pem".into())));
        assert_eq!(
            p.url,
            "postgres://h/db?application_name=x&connect_timeout=5"
        );
    }

    #[test]
    fn require_with_a_root_certificate_verifies_the_chain() {
        assert_eq!(
            parse("postgres://h/db?sslmode=require").mode,
            SslMode::Require
        );
        assert_eq!(
            parse("postgres://h/db?sslmode=require&sslrootcert=/ca.pem").mode,
            SslMode::VerifyCa
        );
        // `prefer` never verifies, as in libpq.
        assert_eq!(
            parse("postgres://h/db?sslrootcert=/ca.pem").mode,
            SslMode::Prefer
        );
    }

    #[test]
    fn system_roots_mean_verify_full() {
        assert_eq!(
            parse("postgres://h/db?sslrootcert=system").mode,
            SslMode::VerifyFull
        );
        assert!(TlsParams::parse("postgres://h/db?sslrootcert=system&sslmode=require").is_err());
    }

    #[test]
    fn bad_tls_parameters_are_refused() {
        assert!(TlsParams::parse("postgres://h/db?sslmode=allow").is_err());
        assert!(TlsParams::parse("postgres://h/db?sslmode=verify-full").is_err());
        assert!(TlsParams::parse("postgres://h/db?sslcert=/c.pem").is_err());
        assert!(TlsParams::parse("postgres://h/db?sslrootcert=%zz").is_err());
        let p = parse("postgres://h/db?sslcert=/c.pem&sslkey=/k.pem&sslmode=disable");
        assert_eq!(p.client_cert, Some(("/c.pem".into(), "/k.pem".into())));
        assert_eq!(p.mode, SslMode::Disable);
    }

    #[test]
    fn connector_errors_do_not_show_the_password() {
        let err = Connector::new(
            "postgres://u:s3cret@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/ca.pem"));
        assert!(!err.contains("s3cret"));
    }
}
