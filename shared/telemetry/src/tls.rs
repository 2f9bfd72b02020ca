//! TLS on the HTTP listeners (HTTPS, optionally mutual TLS) and for the HTTP clients services
//! call each other with. OpenSSL throughout: the design's one TLS stack, already linked for
//! signatures, so nothing compiles a second one (ring, aws-lc).
//!
//! - Server: `TLS_CERT_FILE` and `TLS_KEY_FILE` (PEM: the certificate chain, leaf first, and
//!   its private key) make a service serve HTTPS instead of HTTP on its port;
//!   `TLS_CLIENT_CA_FILE` (PEM) then also requires every client to present a certificate signed
//!   by that CA (mutual TLS between services). [`ListenTls::listen_tls`] is the one place that binds.
//! - Client: `UPSTREAM_CA_FILE` (PEM) is the only CA trusted for `https://` service URLs
//!   (unset: the system's roots); `UPSTREAM_CLIENT_CERT_FILE` and `UPSTREAM_CLIENT_KEY_FILE`
//!   are the certificate presented to services that require one. [`upstream_connector`] is
//!   what every service-to-service client uses.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use actix_service::IntoServiceFactory;
use actix_web::{
    body::MessageBody,
    dev::{AppConfig, Response, Service, ServiceFactory},
    HttpServer,
};
use openssl::{
    ssl::{
        SslAcceptor, SslAcceptorBuilder, SslConnector, SslFiletype, SslMethod, SslVerifyMode,
        SslVersion,
    },
    x509::{store::X509StoreBuilder, X509},
};

use crate::{ConfigError, Env};

#[cfg(feature = "testing")]
pub mod testing;

/// The certificate and key a listener serves HTTPS with, and the CA its clients' certificates
/// must be signed by when mutual TLS is on. Paths only: files are read when the listener binds
/// (and once by [`ServerTls::from_env`], to fail at start rather than at bind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// `TLS_CLIENT_CA_FILE`: when set, a client without a certificate signed by it is refused
    /// during the handshake.
    pub client_ca_file: Option<PathBuf>,
}

impl ServerTls {
    /// `TLS_CERT_FILE`, `TLS_KEY_FILE` (both or neither) and `TLS_CLIENT_CA_FILE`; `None`
    /// (plain HTTP) when neither file is set. The files are checked now.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let cert = env.optional("TLS_CERT_FILE");
        let key = env.optional("TLS_KEY_FILE");
        let client_ca = env.optional("TLS_CLIENT_CA_FILE");
        let tls = match (cert, key) {
            (None, None) => {
                if client_ca.is_some() {
                    return Err(ConfigError::Invalid {
                        name: "TLS_CLIENT_CA_FILE".into(),
                        reason: "needs TLS_CERT_FILE and TLS_KEY_FILE (mutual TLS is TLS)".into(),
                    });
                }
                return Ok(None);
            }
            (Some(cert), Some(key)) => Self {
                cert_file: cert.trim().into(),
                key_file: key.trim().into(),
                client_ca_file: client_ca.map(|p| p.trim().into()),
            },
            (Some(_), None) => return Err(ConfigError::Missing("TLS_KEY_FILE".into())),
            (None, Some(_)) => return Err(ConfigError::Missing("TLS_CERT_FILE".into())),
        };
        tls.acceptor().map_err(|reason| ConfigError::Invalid {
            name: "TLS_CERT_FILE".into(),
            reason,
        })?;
        Ok(Some(tls))
    }

    /// An OpenSSL acceptor with Mozilla's "intermediate" settings (TLS 1.2 and 1.3), this
    /// certificate and key, and client verification when a client CA is set.
    pub fn acceptor(&self) -> Result<SslAcceptorBuilder, String> {
        let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
            .map_err(|e| format!("OpenSSL: {e}"))?;
        builder
            .set_certificate_chain_file(&self.cert_file)
            .map_err(|e| file_error("certificate", &self.cert_file, e))?;
        builder
            .set_private_key_file(&self.key_file, SslFiletype::PEM)
            .map_err(|e| file_error("private key", &self.key_file, e))?;
        builder
            .check_private_key()
            .map_err(|_| "the private key does not match the certificate".to_string())?;
        if let Some(ca) = &self.client_ca_file {
            builder
                .set_ca_file(ca)
                .map_err(|e| file_error("client CA", ca, e))?;
            // Tells clients which CA to pick a certificate for.
            let names = openssl::x509::X509Name::load_client_ca_file(ca)
                .map_err(|e| file_error("client CA", ca, e))?;
            builder.set_client_ca_list(names);
            builder.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        }
        Ok(builder)
    }
}

fn file_error(what: &str, path: &Path, e: openssl::error::ErrorStack) -> String {
    format!("cannot use {what} file {}: {e}", path.display())
}

/// Binds a server to `listener`: HTTPS with `tls` (mutual TLS when it has a client CA), plain
/// HTTP without. Every service binds through this, so they all serve TLS the same way; a
/// server chain reads `HttpServer::new(..).listen_tls(listener, settings.listen.tls.as_ref())?`.
pub trait ListenTls: Sized {
    fn listen_tls(self, listener: TcpListener, tls: Option<&ServerTls>) -> std::io::Result<Self>;
}

impl<F, I, S, B> ListenTls for HttpServer<F, I, S, B>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, actix_http::Request>,
    S: ServiceFactory<actix_http::Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<actix_http::Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    fn listen_tls(self, listener: TcpListener, tls: Option<&ServerTls>) -> std::io::Result<Self> {
        match tls {
            None => self.listen(listener),
            Some(tls) => {
                let acceptor = tls.acceptor().map_err(std::io::Error::other)?;
                self.listen_openssl(listener, acceptor)
            }
        }
    }
}

/// What a service presents and trusts when it calls another over `https://`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// `UPSTREAM_CA_FILE`: the only CA trusted (unset: the system's roots).
    pub ca_file: Option<PathBuf>,
    /// `UPSTREAM_CLIENT_CERT_FILE` and `UPSTREAM_CLIENT_KEY_FILE` (both or neither).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl ClientTls {
    /// From the environment; the files are checked now.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let cert = env.optional("UPSTREAM_CLIENT_CERT_FILE");
        let key = env.optional("UPSTREAM_CLIENT_KEY_FILE");
        let client_cert = match (cert, key) {
            (None, None) => None,
            (Some(c), Some(k)) => Some((c.trim().into(), k.trim().into())),
            (Some(_), None) => return Err(ConfigError::Missing("UPSTREAM_CLIENT_KEY_FILE".into())),
            (None, Some(_)) => {
                return Err(ConfigError::Missing("UPSTREAM_CLIENT_CERT_FILE".into()))
            }
        };
        let tls = Self {
            ca_file: env.optional("UPSTREAM_CA_FILE").map(|p| p.trim().into()),
            client_cert,
        };
        tls.connector().map_err(|reason| ConfigError::Invalid {
            name: "UPSTREAM_CA_FILE".into(),
            reason,
        })?;
        Ok(tls)
    }

    /// An OpenSSL connector that verifies the server's chain and host name, offers only
    /// HTTP/1.1 (the same protocol as over plain HTTP: the gateway relays requests as they
    /// came) and presents the client certificate when one is set.
    pub fn connector(&self) -> Result<SslConnector, String> {
        let mut builder =
            SslConnector::builder(SslMethod::tls_client()).map_err(|e| format!("OpenSSL: {e}"))?;
        builder
            .set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(|e| format!("OpenSSL: {e}"))?;
        if let Some(ca) = &self.ca_file {
            // Only this CA: the system's roots would let any public certificate for the name pass.
            builder.set_cert_store(trust_only(ca)?);
        }
        if let Some((cert, key)) = &self.client_cert {
            builder
                .set_certificate_chain_file(cert)
                .map_err(|e| file_error("client certificate", cert, e))?;
            builder
                .set_private_key_file(key, SslFiletype::PEM)
                .map_err(|e| file_error("client key", key, e))?;
            builder
                .check_private_key()
                .map_err(|_| "the client key does not match the client certificate".to_string())?;
        }
        builder
            .set_alpn_protos(b"\x08http/1.1")
            .map_err(|e| format!("OpenSSL: {e}"))?;
        Ok(builder.build())
    }
}

/// A certificate store holding only the CA certificates of the PEM file at `path`.
pub fn trust_only(path: &Path) -> Result<openssl::x509::store::X509Store, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = X509::stack_from_pem(&pem)
        .map_err(|e| format!("{} is not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    let mut store = X509StoreBuilder::new().map_err(|e| format!("OpenSSL: {e}"))?;
    for cert in certs {
        store
            .add_cert(cert)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(store.build())
}

/// The connector every service-to-service HTTP client uses (the gateway's upstream pool,
/// JWKS and snapshot fetches), built once from the environment. Each service's settings call
/// [`ClientTls::from_env`] at start, so a bad file stops the service there; should it fail
/// here anyway (a file removed since), the error is logged and a connector that trusts no
/// CA is used: `https://` calls fail, nothing is sent unverified.
pub fn upstream_connector() -> SslConnector {
    static SHARED: OnceLock<SslConnector> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            match ClientTls::from_env(&Env).and_then(|tls| {
                tls.connector().map_err(|reason| ConfigError::Invalid {
                    name: "UPSTREAM_CA_FILE".into(),
                    reason,
                })
            }) {
                Ok(connector) => connector,
                Err(e) => {
                    tracing::error!(error = %e, "upstream TLS settings unusable: https calls will fail");
                    refusing_connector()
                }
            }
        })
        .clone()
}

/// A connector with an empty trust store: every verified handshake fails.
fn refusing_connector() -> SslConnector {
    let built = SslConnector::builder(SslMethod::tls_client()).and_then(|mut b| {
        b.set_cert_store(X509StoreBuilder::new()?.build());
        Ok(b.build())
    });
    match built {
        Ok(connector) => connector,
        // OpenSSL cannot even allocate a context: nothing will work, and this is logged above.
        Err(_) => std::process::abort(),
    }
}
