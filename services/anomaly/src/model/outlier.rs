//! Streaming Half-Space Trees (Tan, Ting & Liu, IJCAI 2011): a multivariate outlier score over
//! the feature vector, learned online in constant memory and time.
//!
//! Each of [`TREES`] trees splits the unit cube in half along a random dimension at every
//! level, down to [`DEPTH`]. Every node counts the points of the reference window (`r`, the
//! previous [`WINDOW`] points learned) and of the latest window (`l`); when the latest window
//! is full it becomes the reference. A point is scored against the reference mass of the node
//! where it lands (descending while a node holds at least [`SIZE_LIMIT`] points): mass `m` at
//! depth `k` stands for a density `m·2^k / WINDOW`; the tree's anomaly is `1 / (1 + density)`,
//! and the score is the mean over the trees, in `(0, 1]`: a point in a region where recent
//! traffic never goes scores near 1. Splits come from a fixed seed, so the forest is the same
//! in every run (deterministic scores).
//!
//! Federation: every node also counts all the points it ever learned ([`HalfSpaceTrees::masses`]).
//! Since the same seed builds the same trees in every hospital, those masses, normalised by the
//! root's, are comparable and average meaningfully; an imported average
//! ([`HalfSpaceTrees::set_prior`]) is the reference until a local window exists, then half of it.

pub const DIMS: usize = 8;
pub const TREES: usize = 24;
pub const DEPTH: usize = 8;
pub const WINDOW: u32 = 1024;
pub const SIZE_LIMIT: u32 = 8;
const NODES: usize = (1 << (DEPTH + 1)) - 1;
const INTERNAL: usize = (1 << DEPTH) - 1;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Tree {
    /// Per internal node: the split dimension and value.
    dim: Vec<u8>,
    split: Vec<f32>,
    reference: Vec<u32>,
    latest: Vec<u32>,
    /// Points learned through each node since the start (what federates).
    learned: Vec<u32>,
}

/// The forest.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HalfSpaceTrees {
    trees: Vec<Tree>,
    /// Points in the latest window so far.
    filled: u32,
    /// Whether a reference window exists yet (before it, every point scores 0).
    warm: bool,
    /// Imported reference proportions (node mass / root mass), tree after tree.
    prior: Option<Vec<f32>>,
}

/// Nodes per tree (internal and leaves).
pub const NODES_PER_TREE: usize = NODES;

/// splitmix64: a small, seeded, portable generator.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl HalfSpaceTrees {
    pub fn new(seed: u64) -> Self {
        let mut rng = SplitMix(seed);
        let trees = (0..TREES)
            .map(|_| {
                // The work space: each dimension's range [s - 2·max(s, 1-s), s + 2·max(s, 1-s)]
                // around a random s, so splits do not all fall at 0.5 (Tan et al. §3.1).
                let mut low = [0f64; DIMS];
                let mut high = [0f64; DIMS];
                for d in 0..DIMS {
                    let s = rng.unit();
                    let half = 2.0 * s.max(1.0 - s);
                    low[d] = s - half;
                    high[d] = s + half;
                }
                let mut dim = vec![0u8; INTERNAL];
                let mut split = vec![0f32; INTERNAL];
                build(&mut rng, 0, &mut low, &mut high, &mut dim, &mut split);
                Tree {
                    dim,
                    split,
                    reference: vec![0; NODES],
                    latest: vec![0; NODES],
                    learned: vec![0; NODES],
                }
            })
            .collect();
        Self {
            trees,
            filled: 0,
            warm: false,
            prior: None,
        }
    }

    /// Every node's count of points learned since the start, tree after tree
    /// (`TREES × NODES_PER_TREE` values; each tree's first is its root: all points learned).
    pub fn masses(&self) -> Vec<f64> {
        self.trees
            .iter()
            .flat_map(|t| t.learned.iter().map(|&n| f64::from(n)))
            .collect()
    }

    /// Imports reference proportions (node mass / root mass, tree after tree, as
    /// [`Self::masses`] normalised): scoring uses them at once, and blends them half and half
    /// with the local reference window once there is one. Wrong lengths are ignored.
    pub fn set_prior(&mut self, proportions: &[f64]) {
        if proportions.len() != TREES * NODES {
            return;
        }
        self.prior = Some(
            proportions
                .iter()
                .map(|&p| {
                    if p.is_finite() {
                        p.clamp(0.0, 1.0) as f32
                    } else {
                        0.0
                    }
                })
                .collect(),
        );
    }

    /// The reference mass of a node (in points of a window): local, imported, or a blend.
    fn mass(&self, tree: usize, node: usize) -> f64 {
        let local = f64::from(self.trees[tree].reference[node]);
        match &self.prior {
            None => local,
            Some(prior) => {
                let imported = f64::from(prior[tree * NODES + node]) * f64::from(WINDOW);
                if self.warm {
                    0.5 * (local + imported)
                } else {
                    imported
                }
            }
        }
    }

    /// The anomaly score of `x` (each coordinate in `[0, 1]`) in `[0, 1]`; 0 until a first
    /// window has been learned.
    pub fn score(&self, x: &[f64; DIMS]) -> f64 {
        if !self.warm && self.prior.is_none() {
            return 0.0;
        }
        let mut total = 0.0;
        for (index, tree) in self.trees.iter().enumerate() {
            let mut node = 0usize;
            let mut depth = 0usize;
            // Without imported masses, the local window alone (the hot path, kept as it was).
            let density = if self.prior.is_none() {
                while node < INTERNAL && tree.reference[node] >= SIZE_LIMIT {
                    node = child(tree, node, x);
                    depth += 1;
                }
                f64::from(tree.reference[node])
            } else {
                while node < INTERNAL && self.mass(index, node) >= f64::from(SIZE_LIMIT) {
                    node = child(tree, node, x);
                    depth += 1;
                }
                self.mass(index, node)
            } * (1u64 << depth) as f64
                / f64::from(WINDOW);
            total += 1.0 / (1.0 + density);
        }
        total / TREES as f64
    }

    /// Adds `x` to the latest window; a full window becomes the reference.
    pub fn learn(&mut self, x: &[f64; DIMS]) {
        for tree in &mut self.trees {
            let mut node = 0usize;
            loop {
                tree.latest[node] += 1;
                tree.learned[node] = tree.learned[node].saturating_add(1);
                if node >= INTERNAL {
                    break;
                }
                node = child(tree, node, x);
            }
        }
        self.filled += 1;
        if self.filled >= WINDOW {
            for tree in &mut self.trees {
                std::mem::swap(&mut tree.reference, &mut tree.latest);
                tree.latest.iter_mut().for_each(|n| *n = 0);
            }
            self.filled = 0;
            self.warm = true;
        }
    }
}

fn child(tree: &Tree, node: usize, x: &[f64; DIMS]) -> usize {
    let d = usize::from(tree.dim[node]);
    if x[d] < f64::from(tree.split[node]) {
        2 * node + 1
    } else {
        2 * node + 2
    }
}

fn build(
    rng: &mut SplitMix,
    node: usize,
    low: &mut [f64; DIMS],
    high: &mut [f64; DIMS],
    dim: &mut [u8],
    split: &mut [f32],
) {
    if node >= INTERNAL {
        return;
    }
    let d = (rng.next() % DIMS as u64) as usize;
    let mid = (low[d] + high[d]) / 2.0;
    dim[node] = d as u8;
    split[node] = mid as f32;
    let saved = high[d];
    high[d] = mid;
    build(rng, 2 * node + 1, low, high, dim, split);
    high[d] = saved;
    let saved = low[d];
    low[d] = mid;
    build(rng, 2 * node + 2, low, high, dim, split);
    low[d] = saved;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(i: usize) -> [f64; DIMS] {
        let mut x = [0.0; DIMS];
        // Ordinary traffic: small values in a couple of dimensions.
        x[0] = (i % 7) as f64 * 0.02;
        x[3] = (i % 5) as f64 * 0.03;
        x
    }

    #[test]
    fn rare_points_score_higher_than_common_ones_and_it_is_deterministic() {
        let mut a = HalfSpaceTrees::new(7);
        let mut b = HalfSpaceTrees::new(7);
        for i in 0..3 * WINDOW as usize {
            a.learn(&normal(i));
            b.learn(&normal(i));
        }
        let odd = [0.9, 0.8, 0.0, 0.9, 0.7, 0.0, 1.0, 0.5];
        let common = a.score(&normal(3));
        let rare = a.score(&odd);
        assert!(rare > 0.8, "{rare}");
        assert!(common < 0.3, "{common}");
        assert_eq!(a.score(&odd), b.score(&odd));
        assert!(HalfSpaceTrees::new(8).score(&odd) == 0.0);
    }

    #[test]
    fn imported_masses_score_like_the_forest_they_came_from() {
        let mut a = HalfSpaceTrees::new(7);
        for i in 0..3 * WINDOW as usize {
            a.learn(&normal(i));
        }
        let masses = a.masses();
        assert_eq!(masses.len(), TREES * NODES_PER_TREE);
        assert_eq!(masses[0], 3.0 * f64::from(WINDOW));
        let proportions: Vec<f64> = masses.iter().map(|m| m / masses[0]).collect();
        let mut b = HalfSpaceTrees::new(7);
        b.set_prior(&proportions);
        let odd = [0.9, 0.8, 0.0, 0.9, 0.7, 0.0, 1.0, 0.5];
        // The same traffic in every window: the imported reference is (nearly) the local one.
        assert!((b.score(&odd) - a.score(&odd)).abs() < 0.02);
        assert!((b.score(&normal(3)) - a.score(&normal(3))).abs() < 0.02);
    }
}
