//! The right edge of a Merkle tree: enough to append leaves and compute the root, in O(log n)
//! hashes, without keeping the tree.

use crate::tree::{empty_root, node_hash, Hash};

/// The roots of the perfect subtrees a tree of `size` leaves decomposes into, largest first:
/// one per set bit of `size` (RFC 9162's MTH splits at the largest power of two, so the root
/// is these folded from the right).
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    size: u64,
    /// `nodes[i]` is the root of a perfect subtree; their sizes are the set bits of `size`,
    /// in decreasing order.
    nodes: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves integrated.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash. Amortised O(1), at most O(log n) hashes.
    pub fn push(&mut self, leaf: Hash) {
        let mut carry = leaf;
        // Each trailing one bit of the old size is a perfect subtree of the new leaf's size
        // on its left: merge them.
        let mut merges = self.size.trailing_ones();
        while merges > 0 {
            if let Some(left) = self.nodes.pop() {
                carry = node_hash(&left, &carry);
            }
            merges -= 1;
        }
        self.nodes.push(carry);
        self.size += 1;
    }

    /// The Merkle tree hash of the leaves integrated so far.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return empty_root();
        };
        nodes.fold(*last, |right, left| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{leaf_hash, Tree};

    #[test]
    fn roots_match_the_tree_at_every_size() {
        let mut frontier = Frontier::new();
        let mut tree = Tree::new();
        assert_eq!(frontier.root(), tree.root());
        for i in 0..300u32 {
            let h = leaf_hash(&i.to_be_bytes());
            frontier.push(h);
            tree.push_leaf_hash(h);
            assert_eq!(frontier.size(), tree.size());
            assert_eq!(frontier.root(), tree.root(), "size {}", i + 1);
            assert_eq!(
                frontier.nodes.len() as u32,
                frontier.size().count_ones(),
                "one node per set bit"
            );
        }
    }
}
