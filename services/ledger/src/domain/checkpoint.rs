//! A checkpoint body in the C2SP tlog-checkpoint format:
//!
//! ```text
//! <origin>\n
//! <tree size, decimal>\n
//! <root hash, standard base64>\n
//! [extension lines]\n
//! ```

use base64::{engine::general_purpose::STANDARD, Engine as _};

use crate::tree::Hash;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub tree_size: u64,
    pub root_hash: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed checkpoint: {0}")]
pub struct CheckpointError(pub String);

impl Checkpoint {
    /// The note text to sign (ends with a newline, no extension lines).
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.tree_size,
            STANDARD.encode(self.root_hash)
        )
    }

    /// Parses a checkpoint body; extension lines after the root are allowed and ignored.
    pub fn parse(body: &str) -> Result<Self, CheckpointError> {
        let err = |m: &str| CheckpointError(m.to_string());
        let text = body
            .strip_suffix('\n')
            .ok_or_else(|| err("the text must end with a newline"))?;
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| err("no origin line"))?;
        let size = lines.next().ok_or_else(|| err("no tree size line"))?;
        // Decimal ASCII without sign or leading zeros.
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(err("the tree size is not a canonical decimal number"));
        }
        let tree_size = size
            .parse::<u64>()
            .map_err(|_| err("the tree size does not fit 64 bits"))?;
        let root = lines.next().ok_or_else(|| err("no root hash line"))?;
        let root_hash: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| err("the root hash is not 32 bytes of base64"))?;
        if lines.any(str::is_empty) {
            return Err(err("empty extension line"));
        }
        Ok(Self {
            origin: origin.to_string(),
            tree_size,
            root_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trips() {
        let c = Checkpoint {
            origin: "example.com/log".into(),
            tree_size: 42,
            root_hash: [7; 32],
        };
        let body = c.body();
        assert_eq!(
            body,
            format!("example.com/log\n42\n{}\n", STANDARD.encode([7u8; 32]))
        );
        assert_eq!(Checkpoint::parse(&body).unwrap(), c);
    }

    #[test]
    fn rejects_malformed_bodies() {
        let root = STANDARD.encode([1u8; 32]);
        for bad in [
            format!("o\n1\n{root}"),
            format!("o\n01\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            "o\n1\nAAAA\n".to_string(),
            format!("\n1\n{root}\n"),
            "o\n1\n".to_string(),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
        }
        assert!(Checkpoint::parse(&format!("o\n1\n{root}\next\n")).is_ok());
    }
}
