//! `ledger keygen`: a new Ed25519 key in the C2SP note private-key format, for
//! `LEDGER_SIGNING_KEY_FILE` (a log's note key, signature type 0x01) or `WITNESS_KEY_FILE` (a
//! witness's cosigner key, type 0x04). The private key goes to a new file only (mode 0600,
//! never overwritten, never printed); the verifier key, which others configure to trust it,
//! is printed.

use std::{io::Write, path::PathBuf, process::ExitCode};

use crate::{
    cosignature::Cosigner,
    signing::{generate_private_key, NoteSigner, SigningError},
};

pub const USAGE: &str = "\
usage: ledger keygen --name NAME [--cosigner] --out FILE

Writes a new Ed25519 private key to FILE (which must not exist; mode 0600) and prints its
verifier key. NAME is the log's origin (LEDGER_ORIGIN) for a log key, or the witness's name
(WITNESS_NAME) with --cosigner. Add the key's line to LEDGER_SIGNING_KEY_FILE first in the
file to rotate: the keys after it stay listed, so what they signed stays verifiable.";

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeygenArgs {
    pub name: String,
    pub cosigner: bool,
    pub out: PathBuf,
}

impl KeygenArgs {
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let (mut name, mut cosigner, mut out) = (None, false, None);
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--name" => name = args.next().cloned(),
                "--out" => out = args.next().map(PathBuf::from),
                "--cosigner" => cosigner = true,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Self {
            name: name.ok_or("--name is required")?,
            cosigner,
            out: out.ok_or("--out is required")?,
        })
    }
}

/// A new key: its private key line and its verifier key.
pub fn generate(name: &str, cosigner: bool) -> Result<(String, String), SigningError> {
    let seed = generate_private_key()?;
    if cosigner {
        let key = Cosigner::from_raw(name, &seed)?;
        Ok((key.private_key_line()?, key.verifier_key()))
    } else {
        let key = NoteSigner::from_raw(name, &seed)?;
        Ok((key.private_key_line()?, key.verifier_key()))
    }
}

fn write_new_secret(path: &PathBuf, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

pub fn run(args: &[String]) -> ExitCode {
    let args = match KeygenArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ledger keygen: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (line, verifier_key) = match generate(&args.name, args.cosigner) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("ledger keygen: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = write_new_secret(&args.out, &format!("{line}\n")) {
        eprintln!("ledger keygen: {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    println!("{verifier_key}");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cosignature::CosignatureVerifier, signing::parse_private_key};

    #[test]
    fn generated_keys_load_as_what_they_are_for() {
        let (line, vkey) = generate("custodian.local/ledger", false).unwrap();
        let signer = NoteSigner::from_private_key(&parse_private_key(&line).unwrap()).unwrap();
        assert_eq!(signer.verifier_key(), vkey);

        let (line, vkey) = generate("witness.example", true).unwrap();
        let cosigner = Cosigner::from_private_key(&parse_private_key(&line).unwrap()).unwrap();
        assert_eq!(cosigner.verifier_key(), vkey);
        let body = "custodian.local/ledger\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let cosignature = cosigner.cosign(body, 1_700_000_000).unwrap();
        CosignatureVerifier::parse(&vkey)
            .unwrap()
            .verify(body, &cosignature)
            .unwrap();
    }

    #[test]
    fn the_private_key_goes_to_a_new_file_only() {
        let dir = std::env::temp_dir().join(format!("keygen-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("ledger.key");
        let args: Vec<String> = ["--name", "log.example", "--out", out.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(run(&args), ExitCode::SUCCESS);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("PRIVATE+KEY+log.example+"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Never overwritten.
        assert_eq!(run(&args), ExitCode::FAILURE);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), text);
        assert!(KeygenArgs::parse(&["--name".into(), "x".into()]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
