//! Independent verification of what the ledger hands out: RFC 9162 inclusion proofs and C2SP
//! signed-note checkpoints with Ed25519 signatures.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// RFC 9162's interior node hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// RFC 9162 §2.1.3.2: verifies that `leaf` sits at `index` in the tree of `size` with `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && &r == root
}

pub fn decode_hash(b64: &str) -> Option<Hash> {
    STANDARD.decode(b64).ok()?.try_into().ok()
}

/// A verified checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// Verifies a C2SP signed note against a verifier key `<name>+<hex id>+<base64(0x01||pubkey)>`
/// and parses its tlog-checkpoint body.
pub fn verify_checkpoint(note: &str, verifier_key: &str) -> Result<Checkpoint, String> {
    let mut parts = verifier_key.splitn(3, '+');
    let (name, key_id_hex, key_b64) = match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => return Err("malformed verifier key".into()),
    };
    let key = STANDARD.decode(key_b64).map_err(|e| e.to_string())?;
    if key.len() != 33 || key[0] != 0x01 {
        return Err("verifier key is not an Ed25519 key".into());
    }
    let (body, signatures) = note
        .split_once("\n\n")
        .ok_or("note has no signature block")?;
    let body = format!("{body}\n");
    let public =
        openssl::pkey::PKey::public_key_from_raw_bytes(&key[1..], openssl::pkey::Id::ED25519)
            .map_err(|e| e.to_string())?;
    let mut verified = false;
    for line in signatures.lines() {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            continue;
        };
        let Some((signer, sig_b64)) = rest.split_once(' ') else {
            continue;
        };
        if signer != name {
            continue;
        }
        let sig = STANDARD.decode(sig_b64).map_err(|e| e.to_string())?;
        if sig.len() != 68 || hex_of(&sig[..4]) != key_id_hex {
            continue;
        }
        let mut verifier =
            openssl::sign::Verifier::new_without_digest(&public).map_err(|e| e.to_string())?;
        if verifier
            .verify_oneshot(&sig[4..], body.as_bytes())
            .unwrap_or(false)
        {
            verified = true;
        }
    }
    if !verified {
        return Err("no valid signature by the verifier key".into());
    }
    let mut lines = body.lines();
    let origin = lines.next().ok_or("no origin")?.to_string();
    let size = lines
        .next()
        .ok_or("no size")?
        .parse::<u64>()
        .map_err(|e| e.to_string())?;
    let root = decode_hash(lines.next().ok_or("no root")?).ok_or("bad root hash")?;
    Ok(Checkpoint { origin, size, root })
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inclusion_in_a_three_leaf_tree() {
        let leaves: Vec<Hash> = (0u8..3).map(|i| leaf_hash(&[i])).collect();
        let left = node_hash(&leaves[0], &leaves[1]);
        let root = node_hash(&left, &leaves[2]);
        assert!(verify_inclusion(2, 3, &leaves[2], &[left], &root));
        assert!(verify_inclusion(
            0,
            3,
            &leaves[0],
            &[leaves[1], leaves[2]],
            &root
        ));
        assert!(!verify_inclusion(
            1,
            3,
            &leaves[0],
            &[leaves[1], leaves[2]],
            &root
        ));
        assert!(!verify_inclusion(3, 3, &leaves[2], &[left], &root));
    }
}
