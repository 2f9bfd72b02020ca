//! Throwaway certificates for tests (feature `testing`): a CA, and server or client
//! certificates it signs, written as PEM files. P-256 keys, valid for two days.

use std::path::{Path, PathBuf};

use openssl::{
    asn1::Asn1Time,
    bn::{BigNum, MsbOption},
    ec::{EcGroup, EcKey},
    hash::MessageDigest,
    nid::Nid,
    pkey::{PKey, Private},
    x509::{
        extension::{
            AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage,
            SubjectAlternativeName, SubjectKeyIdentifier,
        },
        X509Builder, X509NameBuilder, X509,
    },
};

/// A local port nothing listens on now, for a throwaway TLS server (PostgreSQL, Redis) to bind.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A key pair and its certificate, written to `<dir>/<name>.crt` and `<dir>/<name>.key`
/// (the key as PKCS#8 PEM, which every consumer here reads).
pub struct Issued {
    pub cert: X509,
    pub key: PKey<Private>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// A test certificate authority.
pub struct TestCa {
    issued: Issued,
    dir: PathBuf,
}

fn key() -> Result<PKey<Private>, openssl::error::ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

fn builder(cn: &str, key: &PKey<Private>) -> Result<X509Builder, openssl::error::ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    let name = name.build();
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_pubkey(key)?;
    let (from, until) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(2)?);
    b.set_not_before(&from)?;
    b.set_not_after(&until)?;
    Ok(b)
}

fn write(dir: &Path, name: &str, cert: X509, key: PKey<Private>) -> std::io::Result<Issued> {
    let cert_file = dir.join(format!("{name}.crt"));
    let key_file = dir.join(format!("{name}.key"));
    std::fs::write(&cert_file, cert.to_pem().map_err(std::io::Error::other)?)?;
    std::fs::write(
        &key_file,
        key.private_key_to_pem_pkcs8()
            .map_err(std::io::Error::other)?,
    )?;
    // PostgreSQL refuses a key others may read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(Issued {
        cert,
        key,
        cert_file,
        key_file,
    })
}

impl TestCa {
    /// A self-signed CA named `name`, its files in `dir` (`<name>.crt`, `<name>.key`).
    pub fn new(dir: &Path, name: &str) -> std::io::Result<Self> {
        let make = || -> Result<(X509, PKey<Private>), openssl::error::ErrorStack> {
            let key = key()?;
            let mut b = builder(name, &key)?;
            let cert_name = {
                let mut n = X509NameBuilder::new()?;
                n.append_entry_by_nid(Nid::COMMONNAME, name)?;
                n.build()
            };
            b.set_issuer_name(&cert_name)?;
            b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()?,
            )?;
            let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
            b.append_extension(ski)?;
            b.sign(&key, MessageDigest::sha256())?;
            Ok((b.build(), key))
        };
        let (cert, key) = make().map_err(std::io::Error::other)?;
        Ok(Self {
            issued: write(dir, name, cert, key)?,
            dir: dir.to_path_buf(),
        })
    }

    /// The CA certificate's PEM file.
    pub fn cert_file(&self) -> &Path {
        &self.issued.cert_file
    }

    /// A server certificate for `dns_names` (and `ips`), signed by this CA.
    pub fn server(&self, name: &str, dns_names: &[&str], ips: &[&str]) -> std::io::Result<Issued> {
        self.issue(name, dns_names, ips, false)
    }

    /// A client certificate (common name `name`), signed by this CA.
    pub fn client(&self, name: &str) -> std::io::Result<Issued> {
        self.issue(name, &[], &[], true)
    }

    fn issue(
        &self,
        name: &str,
        dns_names: &[&str],
        ips: &[&str],
        client: bool,
    ) -> std::io::Result<Issued> {
        let make = || -> Result<(X509, PKey<Private>), openssl::error::ErrorStack> {
            let key = key()?;
            let mut b = builder(dns_names.first().copied().unwrap_or(name), &key)?;
            b.set_issuer_name(self.issued.cert.subject_name())?;
            b.append_extension(BasicConstraints::new().build()?)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .key_agreement()
                    .build()?,
            )?;
            let mut eku = ExtendedKeyUsage::new();
            if client {
                eku.client_auth();
            } else {
                eku.server_auth();
            }
            b.append_extension(eku.build()?)?;
            if !dns_names.is_empty() || !ips.is_empty() {
                let mut san = SubjectAlternativeName::new();
                for d in dns_names {
                    san.dns(d);
                }
                for ip in ips {
                    san.ip(ip);
                }
                let san = san.build(&b.x509v3_context(Some(&self.issued.cert), None))?;
                b.append_extension(san)?;
            }
            let aki = AuthorityKeyIdentifier::new()
                .keyid(false)
                .build(&b.x509v3_context(Some(&self.issued.cert), None))?;
            b.append_extension(aki)?;
            b.sign(&self.issued.key, MessageDigest::sha256())?;
            Ok((b.build(), key))
        };
        let (cert, key) = make().map_err(std::io::Error::other)?;
        write(&self.dir, name, cert, key)
    }
}
