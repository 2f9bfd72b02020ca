//! Merkle tree math of RFC 9162 §2.1, pure (no I/O, no clock, no randomness).
//!
//! - Hashing: a leaf is `SHA-256(0x00 || data)`, an interior node `SHA-256(0x01 || left ||
//!   right)`, the empty tree `SHA-256("")` (§2.1.1).
//! - [`HashSource`]: where the proof algorithms ([`root_at`], [`inclusion_proof`],
//!   [`consistency_proof`]) read complete nodes; [`NodeRecorder`] lists the nodes a proof will
//!   read, so a storage (C2SP tiles, [`crate::tiles`]) can fetch them in one go.
//! - [`Tree`] keeps the hash of every *perfect* subtree, level by level: `levels[k][i]` covers
//!   leaves `[i·2^k, (i+1)·2^k)`. Appending touches at most one entry per level (O(log n)).
//!   Every perfect subtree the RFC's recursions (MTH, PATH, PROOF) visit is aligned on its own
//!   size, so the root of any prefix, an inclusion path (§2.1.3.1) and a consistency proof
//!   (§2.1.4.1) cost O(log n) lookups plus the O(log n) hashes of the one ragged right edge.
//! - [`verify_inclusion`] and [`verify_consistency`] are the verification algorithms of
//!   §2.1.3.2 and §2.1.4.2, taking byte slices so malformed input is rejected, never panicked on.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Length of every hash in the tree.
pub const HASH_LEN: usize = 32;

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &[u8], right: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Why the tree cannot produce what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("tree size {requested} is larger than the tree ({size})")]
    SizeTooLarge { requested: u64, size: u64 },
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("a consistency proof needs 0 < first <= second (got {first}, {second})")]
    BadConsistencyRange { first: u64, second: u64 },
    #[error("the hash of node {0:?} is not available")]
    MissingNode(Node),
}

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("a hash has {0} bytes, not 32")]
    BadHashLength(usize),
    #[error("the proof has the wrong number of hashes")]
    WrongProofLength,
    #[error("second size {second} is smaller than first size {first}")]
    SizesReversed { first: u64, second: u64 },
    #[error("a consistency proof from the empty tree proves nothing")]
    EmptyFirstTree,
    #[error("equal sizes need an empty proof and equal roots")]
    EqualSizesMismatch,
    #[error("the computed root does not match")]
    RootMismatch,
}

/// Largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// A complete node of the tree: the perfect subtree of height `height` (2^height leaves)
/// covering leaves `[index·2^height, (index+1)·2^height)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    pub height: u32,
    pub index: u64,
}

/// Where the proof algorithms read the hashes of complete nodes. Every perfect subtree the
/// RFC's recursions (MTH, PATH, SUBPROOF) visit is aligned on its own size, so a proof over a
/// tree of `n` leaves reads only nodes complete at size `n`: O(log n) of them.
pub trait HashSource {
    /// The hash of `node`, or `None` when this source does not hold it.
    fn node(&self, node: Node) -> Option<Hash>;
}

/// Records which nodes an algorithm reads (answering with a placeholder hash), so a storage
/// can fetch them all at once before the real computation.
#[derive(Debug, Default)]
pub struct NodeRecorder {
    nodes: std::cell::RefCell<Vec<Node>>,
}

impl NodeRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The nodes read so far, in reading order (with repeats).
    pub fn into_nodes(self) -> Vec<Node> {
        self.nodes.into_inner()
    }
}

impl HashSource for NodeRecorder {
    fn node(&self, node: Node) -> Option<Hash> {
        self.nodes.borrow_mut().push(node);
        Some([0; 32])
    }
}

/// MTH(D[0:size]) over `source`.
pub fn root_at<S: HashSource + ?Sized>(source: &S, size: u64) -> Result<Hash, TreeError> {
    mth(source, 0, size)
}

/// The inclusion path of leaf `index` in the tree of the first `size` leaves (§2.1.3.1).
pub fn inclusion_proof<S: HashSource + ?Sized>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, TreeError> {
    if index >= size {
        return Err(TreeError::IndexOutOfRange { index, size });
    }
    let mut path = Vec::new();
    path_of(source, index, 0, size, &mut path)?;
    Ok(path)
}

/// The consistency proof between the trees of `first` and `second` leaves (§2.1.4.1).
/// Equal sizes give the empty proof; `first` must not be zero.
pub fn consistency_proof<S: HashSource + ?Sized>(
    source: &S,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, TreeError> {
    if first == 0 || first > second {
        return Err(TreeError::BadConsistencyRange { first, second });
    }
    let mut proof = Vec::new();
    if first < second {
        subproof(source, first, 0, second, true, &mut proof)?;
    }
    Ok(proof)
}

/// MTH(D[start:end]). Perfect aligned ranges are one node; others split at the largest power
/// of two below their size, whose left part is always perfect and aligned.
fn mth<S: HashSource + ?Sized>(source: &S, start: u64, end: u64) -> Result<Hash, TreeError> {
    let n = end - start;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let node = Node {
            height: n.trailing_zeros(),
            index: start >> n.trailing_zeros(),
        };
        return source.node(node).ok_or(TreeError::MissingNode(node));
    }
    let k = split_point(n);
    Ok(node_hash(
        &mth(source, start, start + k)?,
        &mth(source, start + k, end)?,
    ))
}

/// PATH(m, D[start:end]) with `m` relative to `start`, siblings appended leaf first.
fn path_of<S: HashSource + ?Sized>(
    source: &S,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path_of(source, m, start, start + k, out)?;
        out.push(mth(source, start + k, end)?);
    } else {
        path_of(source, m - k, start + k, end, out)?;
        out.push(mth(source, start, start + k)?);
    }
    Ok(())
}

/// SUBPROOF(m, D[start:end], b).
fn subproof<S: HashSource + ?Sized>(
    source: &S,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(mth(source, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(source, m, start, start + k, complete, out)?;
        out.push(mth(source, start + k, end)?);
    } else {
        subproof(source, m - k, start + k, end, false, out)?;
        out.push(mth(source, start, start + k)?);
    }
    Ok(())
}

/// The root of a perfect subtree from its `2^k` bottom hashes, in order.
pub fn perfect_root(bottom: &[Hash]) -> Hash {
    debug_assert!(bottom.len().is_power_of_two());
    if bottom.len() == 1 {
        return bottom[0];
    }
    let mut row: Vec<Hash> = bottom
        .chunks_exact(2)
        .map(|p| node_hash(&p[0], &p[1]))
        .collect();
    while row.len() > 1 {
        let next: Vec<Hash> = row
            .chunks_exact(2)
            .map(|p| node_hash(&p[0], &p[1]))
            .collect();
        row = next;
    }
    row[0]
}

/// An append-only Merkle tree held in memory as perfect-subtree hashes per level. The
/// reference the tile-backed tree is tested against; fine for small logs and tests.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// `levels[0]` are the leaf hashes; `levels[k][i]` the hash of leaves `[i·2^k, (i+1)·2^k)`.
    levels: Vec<Vec<Hash>>,
}

impl HashSource for Tree {
    fn node(&self, node: Node) -> Option<Hash> {
        self.levels
            .get(node.height as usize)?
            .get(usize::try_from(node.index).ok()?)
            .copied()
    }
}

impl Tree {
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree of the given leaf hashes, in order.
    pub fn from_leaf_hashes(hashes: impl IntoIterator<Item = Hash>) -> Self {
        let mut tree = Self::new();
        for h in hashes {
            tree.push_leaf_hash(h);
        }
        tree
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends `data` as a leaf; returns its index and leaf hash.
    pub fn append(&mut self, data: &[u8]) -> (u64, Hash) {
        let h = leaf_hash(data);
        (self.push_leaf_hash(h), h)
    }

    /// Appends an already hashed leaf; returns its index. O(log n).
    pub fn push_leaf_hash(&mut self, hash: Hash) -> u64 {
        let index = self.size();
        let mut level = 0;
        let mut carry = hash;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(carry);
            // A completed pair makes a new perfect subtree one level up.
            if row.len() % 2 == 1 {
                break;
            }
            let n = row.len();
            carry = node_hash(&row[n - 2], &row[n - 1]);
            level += 1;
        }
        index
    }

    /// The hash of leaf `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.node(Node { height: 0, index })
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        // Every node below the size is held: this cannot miss.
        root_at(self, self.size()).unwrap_or_else(|_| empty_root())
    }

    /// The root the tree had when it held `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, TreeError> {
        self.check_size(size)?;
        root_at(self, size)
    }

    /// The inclusion path of leaf `index` in the tree of the first `size` leaves (§2.1.3.1).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(size)?;
        inclusion_proof(self, index, size)
    }

    /// The consistency proof between the trees of `first` and `second` leaves (§2.1.4.1).
    /// Equal sizes give the empty proof; `first` must not be zero.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size(second)?;
        consistency_proof(self, first, second)
    }

    fn check_size(&self, requested: u64) -> Result<(), TreeError> {
        if requested > self.size() {
            return Err(TreeError::SizeTooLarge {
                requested,
                size: self.size(),
            });
        }
        Ok(())
    }
}

fn check_len(hash: &[u8]) -> Result<(), VerifyError> {
    if hash.len() != HASH_LEN {
        return Err(VerifyError::BadHashLength(hash.len()));
    }
    Ok(())
}

/// Right-shifts `fn_` and `sn` together until `fn_`'s lowest bit is set or it is zero.
fn shift_while_even(fn_: &mut u64, sn: &mut u64) {
    while *fn_ & 1 == 0 && *fn_ != 0 {
        *fn_ >>= 1;
        *sn >>= 1;
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion<P: AsRef<[u8]>>(
    index: u64,
    size: u64,
    leaf: &[u8],
    proof: &[P],
    root: &[u8],
) -> Result<(), VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    check_len(leaf)?;
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r: Hash = leaf
        .try_into()
        .map_err(|_| VerifyError::BadHashLength(leaf.len()))?;
    for p in proof {
        let p = p.as_ref();
        check_len(p)?;
        if sn == 0 {
            return Err(VerifyError::WrongProofLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            shift_while_even(&mut fn_, &mut sn);
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(VerifyError::WrongProofLength);
    }
    if r.as_slice() != root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// Verifies a consistency proof between a tree of `first` leaves with root `first_root` and
/// one of `second` leaves with root `second_root` (RFC 9162 §2.1.4.2). The RFC defines proofs
/// for `0 < first < second`; equal sizes are consistent when the proof is empty and the roots
/// are equal; a proof from the empty tree is rejected as meaningless.
pub fn verify_consistency<P: AsRef<[u8]>>(
    first: u64,
    second: u64,
    proof: &[P],
    first_root: &[u8],
    second_root: &[u8],
) -> Result<(), VerifyError> {
    if second < first {
        return Err(VerifyError::SizesReversed { first, second });
    }
    if first == 0 {
        return Err(VerifyError::EmptyFirstTree);
    }
    if first == second {
        if !proof.is_empty() || first_root != second_root {
            return Err(VerifyError::EqualSizesMismatch);
        }
        return Ok(());
    }
    // Step 1: an empty path fails.
    if proof.is_empty() {
        return Err(VerifyError::WrongProofLength);
    }
    for p in proof {
        check_len(p.as_ref())?;
    }
    // Step 2: a power-of-two first tree is itself the first node of the path.
    let mut path: Vec<&[u8]> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(first_root);
    }
    path.extend(proof.iter().map(|p| p.as_ref()));
    // Steps 3-4.
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let seed = path[0];
    check_len(seed)?;
    let mut fr: Hash = seed
        .try_into()
        .map_err(|_| VerifyError::BadHashLength(seed.len()))?;
    let mut sr = fr;
    // Step 6.
    for c in &path[1..] {
        if sn == 0 {
            return Err(VerifyError::WrongProofLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            shift_while_even(&mut fn_, &mut sn);
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(VerifyError::WrongProofLength);
    }
    if fr.as_slice() != first_root || sr.as_slice() != second_root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MTH straight from the RFC's recursive definition, as the reference.
    fn reference_mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_mth(&leaves[..k]), &reference_mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn empty_tree_root_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(Tree::new().root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn rfc6962_reference_roots() {
        // The eight leaves of the RFC 6962 test data (certificate-transparency-go).
        let data: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ];
        let want = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let mut tree = Tree::new();
        for (i, d) in data.iter().enumerate() {
            tree.append(d);
            assert_eq!(hex::encode(tree.root()), want[i], "size {}", i + 1);
        }
        for (i, w) in want.iter().enumerate() {
            assert_eq!(hex::encode(tree.root_at(i as u64 + 1).unwrap()), *w);
        }
    }

    #[test]
    fn roots_of_every_prefix_match_the_recursive_definition() {
        let all = leaves(300);
        let tree = Tree::from_leaf_hashes(all.iter().copied());
        for n in 0..=300u64 {
            assert_eq!(
                tree.root_at(n).unwrap(),
                reference_mth(&all[..n as usize]),
                "size {n}"
            );
        }
        assert!(tree.root_at(301).is_err());
    }

    #[test]
    fn inclusion_proofs_verify_for_every_leaf_of_many_sizes() {
        let all = leaves(130);
        let tree = Tree::from_leaf_hashes(all.iter().copied());
        for size in 1..=130u64 {
            let root = tree.root_at(size).unwrap();
            for index in 0..size {
                let proof = tree.inclusion_proof(index, size).unwrap();
                let leaf = all[index as usize];
                verify_inclusion(index, size, &leaf, &proof, &root)
                    .unwrap_or_else(|e| panic!("index {index} size {size}: {e}"));
                // The same proof does not prove another leaf, another index or another root.
                let other = leaf_hash(b"not in the tree");
                assert!(verify_inclusion(index, size, &other, &proof, &root).is_err());
                if size > 1 {
                    let wrong = (index + 1) % size;
                    assert!(verify_inclusion(wrong, size, &leaf, &proof, &root).is_err());
                }
                let mut bad_root = root;
                bad_root[0] ^= 1;
                assert!(verify_inclusion(index, size, &leaf, &proof, &bad_root).is_err());
                if let Some(last) = proof.last() {
                    let mut flipped = proof.clone();
                    let mut h = *last;
                    h[31] ^= 0x80;
                    *flipped.last_mut().unwrap() = h;
                    assert!(verify_inclusion(index, size, &leaf, &flipped, &root).is_err());
                    assert!(
                        verify_inclusion(index, size, &leaf, &proof[..proof.len() - 1], &root)
                            .is_err()
                    );
                }
                let mut extended = proof.clone();
                extended.push(leaf);
                assert!(verify_inclusion(index, size, &leaf, &extended, &root).is_err());
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_for_every_pair_of_many_sizes() {
        let all = leaves(100);
        let tree = Tree::from_leaf_hashes(all.iter().copied());
        for second in 1..=100u64 {
            let root2 = tree.root_at(second).unwrap();
            for first in 1..=second {
                let root1 = tree.root_at(first).unwrap();
                let proof = tree.consistency_proof(first, second).unwrap();
                verify_consistency(first, second, &proof, &root1, &root2)
                    .unwrap_or_else(|e| panic!("{first} -> {second}: {e}"));
                if first < second {
                    let mut bad = root1;
                    bad[5] ^= 4;
                    assert!(verify_consistency(first, second, &proof, &bad, &root2).is_err());
                    assert!(verify_consistency(first, second, &proof, &root1, &bad).is_err());
                    assert!(
                        verify_consistency(first, second, &proof[1..], &root1, &root2).is_err()
                    );
                    let mut longer = proof.clone();
                    longer.push(root1);
                    assert!(verify_consistency(first, second, &longer, &root1, &root2).is_err());
                    if second > first + 1 {
                        assert!(
                            verify_consistency(first + 1, second, &proof, &root1, &root2).is_err()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn sampled_proofs_verify_in_a_large_tree() {
        let n: u64 = 100_003;
        let mut tree = Tree::new();
        for i in 0..n {
            tree.append(&i.to_be_bytes());
        }
        let root = tree.root();
        // A cheap deterministic generator: no dependency, reproducible failures.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let index = x % n;
            let size = index + 1 + (x >> 20) % (n - index);
            let proof = tree.inclusion_proof(index, size).unwrap();
            let leaf = tree.leaf(index).unwrap();
            verify_inclusion(index, size, &leaf, &proof, &tree.root_at(size).unwrap()).unwrap();
            let first = 1 + (x >> 7) % size;
            let cproof = tree.consistency_proof(first, size).unwrap();
            verify_consistency(
                first,
                size,
                &cproof,
                &tree.root_at(first).unwrap(),
                &tree.root_at(size).unwrap(),
            )
            .unwrap();
            verify_consistency(
                size,
                n,
                &tree.consistency_proof(size, n).unwrap(),
                &tree.root_at(size).unwrap(),
                &root,
            )
            .unwrap();
        }
    }

    #[test]
    fn out_of_range_requests_are_errors() {
        let tree = Tree::from_leaf_hashes(leaves(5));
        assert_eq!(
            tree.inclusion_proof(5, 5),
            Err(TreeError::IndexOutOfRange { index: 5, size: 5 })
        );
        assert_eq!(
            tree.inclusion_proof(0, 6),
            Err(TreeError::SizeTooLarge {
                requested: 6,
                size: 5
            })
        );
        assert!(tree.consistency_proof(0, 3).is_err());
        assert!(tree.consistency_proof(4, 3).is_err());
        assert!(tree.consistency_proof(3, 6).is_err());
        assert_eq!(tree.consistency_proof(3, 3), Ok(vec![]));
    }
}
