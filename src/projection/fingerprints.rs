//! `FingerprintSet`: the compact set of every external number ever used
//! (`crate::domain::numbers`: payment, letter, order, payroll and account numbers).
//!
//! Every payout and progress payment carries a bank payment number that must be unique
//! within its project, so the set grows with the log: at ten million events a map of
//! `(project id, payment number)` strings would take about a gigabyte. It keeps instead
//! a 128-bit BLAKE3 fingerprint of each number's key (kind, scope, value: 16 bytes), in
//! a sorted vector searched by interpolation (fingerprints are uniform) plus a small
//! hash set of recent ones that is merged into the vector when it grows.
//!
//! Two different numbers with the same fingerprint would make the second one look like a
//! duplicate (a false `DUPLICATE_*`, never a missed one). Among 2^34 numbers the chance
//! of any such pair is below 2^-60; the chain itself already rests on BLAKE3's collision
//! resistance. The fingerprint is an in-memory key only: the log keeps the numbers
//! themselves, so a rebuild can always recompute the set.

use std::collections::HashSet;

use crate::domain::numbers::ExternalNo;

/// Fingerprints are uniform already: a fast, fixed hasher is enough for the recent set.
type Recent = HashSet<u128, foldhash::fast::FixedState>;

/// BLAKE3 derive-key context of an external number's fingerprint.
pub const NUMBER_CONTEXT: &str = "anxin v2 external number";

/// Recent fingerprints are merged into the sorted vector beyond this many, or an eighth
/// of the vector, whichever is more (so merging costs O(1) per insert, amortized).
#[cfg(not(test))]
const RECENT_MIN: usize = 1 << 16;
/// Small in unit tests, so that merges happen often.
#[cfg(test)]
const RECENT_MIN: usize = 16;

/// The fingerprint of an external number: the first 16 bytes of
/// BLAKE3-derive(`NUMBER_CONTEXT`, `ExternalNo::key_bytes`), big-endian.
pub fn fingerprint(n: &ExternalNo<'_>) -> u128 {
    static BASE: std::sync::LazyLock<blake3::Hasher> = std::sync::LazyLock::new(|| blake3::Hasher::new_derive_key(NUMBER_CONTEXT));
    let mut h = BASE.clone();
    n.write_key(&mut |b| {
        h.update(b);
    });
    let b = h.finalize();
    u128::from_be_bytes(b.as_bytes()[..16].try_into().expect("16 bytes"))
}

#[derive(Clone, Debug, Default)]
pub struct FingerprintSet {
    /// Sorted, no duplicates.
    base: Vec<u128>,
    recent: Recent,
    /// Fingerprints inserted since the outermost open level began (they stay in
    /// `recent`, unmerged, until it ends, so that rollback can take them out).
    journal: Vec<u128>,
    /// Where each open level starts in `journal`; empty while nothing is open.
    marks: Vec<usize>,
}

impl PartialEq for FingerprintSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.sorted() == other.sorted()
    }
}

impl FingerprintSet {
    pub fn len(&self) -> usize {
        self.base.len() + self.recent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, fp: u128) -> bool {
        self.recent.contains(&fp) || search(&self.base, fp)
    }

    /// Adds `fp`. Returns false if it was there already: `decide` refuses a duplicate
    /// number before `apply` inserts it, but a log recorded before the check covered a
    /// kind may hold one twice, and replaying it must not fail.
    pub fn insert(&mut self, fp: u128) -> bool {
        if search(&self.base, fp) {
            return false;
        }
        self.insert_absent(fp)
    }

    /// `insert` of a fingerprint the caller found absent (`contains`) with nothing
    /// inserted since: the sorted vector is not searched again.
    pub(crate) fn insert_absent(&mut self, fp: u128) -> bool {
        debug_assert!(!search(&self.base, fp), "checked absent");
        if !self.recent.insert(fp) {
            return false;
        }
        if self.marks.is_empty() {
            self.maybe_merge();
        } else {
            self.journal.push(fp);
        }
        true
    }

    pub(crate) fn begin(&mut self) {
        self.marks.push(self.journal.len());
    }

    pub(crate) fn commit(&mut self) {
        self.marks.pop().expect("no level is open");
        if self.marks.is_empty() {
            self.journal.clear();
            self.maybe_merge();
        }
    }

    pub(crate) fn rollback(&mut self) {
        let mark = self.marks.pop().expect("no level is open");
        for fp in self.journal.drain(mark..) {
            self.recent.remove(&fp);
        }
    }

    fn maybe_merge(&mut self) {
        if self.recent.len() >= RECENT_MIN.max(self.base.len() / 8) {
            self.merge();
        }
    }

    /// Moves the recent fingerprints into the sorted vector, in place: the vector grows
    /// (a large allocation grows without a copy) and is merged from the back, so the set
    /// never needs twice its size.
    fn merge(&mut self) {
        let mut add: Vec<u128> = self.recent.drain().collect();
        if self.recent.capacity() > 4 * RECENT_MIN {
            self.recent.shrink_to(RECENT_MIN);
        }
        add.sort_unstable();
        let n = self.base.len();
        self.base.resize(n + add.len(), 0);
        let (mut i, mut j, mut k) = (n, add.len(), n + add.len());
        // Invariant: base[k..] is final; base[..i] and add[..j] are what is left.
        while j > 0 {
            k -= 1;
            if i > 0 && self.base[i - 1] > add[j - 1] {
                self.base[k] = self.base[i - 1];
                i -= 1;
            } else {
                self.base[k] = add[j - 1];
                j -= 1;
            }
        }
    }

    /// Every fingerprint, sorted: the snapshot form, and the canonical one for comparing.
    pub fn sorted(&self) -> Vec<u128> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each_sorted(&mut |fp| out.push(fp));
        out
    }

    /// Hands every fingerprint to `f` in increasing order, without copying the set (a
    /// snapshot of ten million payments would otherwise need another 160 MB).
    pub fn for_each_sorted(&self, f: &mut dyn FnMut(u128)) {
        let mut recent: Vec<u128> = self.recent.iter().copied().collect();
        recent.sort_unstable();
        let (mut i, mut j) = (0, 0);
        while i < self.base.len() || j < recent.len() {
            if j == recent.len() || (i < self.base.len() && self.base[i] < recent[j]) {
                f(self.base[i]);
                i += 1;
            } else {
                f(recent[j]);
                j += 1;
            }
        }
    }

    /// A set from a sorted, duplicate-free vector (a snapshot).
    ///
    /// # Errors
    /// If the vector is not strictly increasing.
    pub fn from_sorted(base: Vec<u128>) -> Result<FingerprintSet, String> {
        if base.windows(2).any(|w| w[0] >= w[1]) {
            return Err("payment number fingerprints are not strictly increasing".into());
        }
        Ok(FingerprintSet { base, recent: Recent::default(), journal: Vec::new(), marks: Vec::new() })
    }

    /// Heap bytes held (for memory reports).
    pub fn heap_bytes(&self) -> usize {
        self.base.capacity() * 16 + self.recent.capacity() * 17
    }
}

/// Serializes as the sorted sequence of every fingerprint (what `sorted` returns).
impl serde::Serialize for FingerprintSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        let mut err = None;
        self.for_each_sorted(&mut |fp| {
            if err.is_none() {
                if let Err(e) = seq.serialize_element(&fp) {
                    err = Some(e);
                }
            }
        });
        match err {
            Some(e) => Err(e),
            None => seq.end(),
        }
    }
}

/// Interpolation search of a sorted vector of uniformly distributed values, falling back
/// to binary search once the range is small.
fn search(v: &[u128], x: u128) -> bool {
    let (mut lo, mut hi) = (0usize, v.len());
    // Invariant: if x is in v, it is in v[lo..hi].
    while hi - lo > 32 {
        let (a, b) = (v[lo], v[hi - 1]);
        if x < a || x > b {
            return false;
        }
        // Estimated position of x between a and b, in 64-bit precision.
        let span = ((b - a) >> 64) as u64 as u128 + 1;
        let off = ((x - a) >> 64) as u64 as u128;
        let n = (hi - lo) as u128;
        let guess = lo + ((off * n / span) as usize).min(hi - lo - 1);
        // Probe a window around the guess; shrink the range to it or beside it.
        let w = 8usize;
        let g_lo = guess.saturating_sub(w).max(lo);
        let g_hi = (guess + w + 1).min(hi);
        if v[g_lo] <= x && x <= v[g_hi - 1] {
            return v[g_lo..g_hi].binary_search(&x).is_ok();
        }
        if x < v[g_lo] {
            hi = g_lo;
        } else {
            lo = g_hi;
        }
    }
    v[lo..hi].binary_search(&x).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn behaves_as_a_set_with_batches(ops in proptest::collection::vec((any::<u16>(), 0u8..4), 1..3000)) {
            let mut set = FingerprintSet::default();
            let mut model = std::collections::BTreeSet::new();
            let mut open: Option<std::collections::BTreeSet<u128>> = None;
            for (v, op) in ops {
                // Spread small values over the whole range, as fingerprints are.
                let fp = u128::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
                match op {
                    0 | 1 => {
                        let new = !set.contains(fp) && set.insert(fp);
                        prop_assert_eq!(new, model.insert(fp));
                        if new { if let Some(o) = &mut open { o.insert(fp); } }
                    }
                    2 => match open.take() {
                        None => { set.begin(); open = Some(Default::default()); }
                        Some(_) => set.commit(),
                    },
                    _ => if let Some(o) = open.take() {
                        set.rollback();
                        for fp in o { model.remove(&fp); }
                    },
                }
                prop_assert_eq!(set.contains(fp), model.contains(&fp));
            }
            if open.is_some() { set.commit(); }
            prop_assert_eq!(set.sorted(), model.iter().copied().collect::<Vec<_>>());
            for probe in 0..200u128 {
                let fp = probe.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
                prop_assert_eq!(set.contains(fp), model.contains(&fp));
            }
        }
    }

    #[test]
    fn interpolation_search_finds_every_member_of_a_large_set() {
        use crate::domain::ids::{DocNo, ProjectId};
        use crate::domain::numbers::{ExternalNo, NumberKind, NumberValue, Scope};
        let p = ProjectId::parse("P1").unwrap();
        let mut v: Vec<u128> = (0..200_000u128)
            .map(|i| {
                let no = DocNo::parse(&format!("N{i}")).unwrap();
                fingerprint(&ExternalNo { kind: NumberKind::Payment, scope: Scope::Project(&p), value: NumberValue::Doc(&no) })
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        let set = FingerprintSet::from_sorted(v.clone()).unwrap();
        for x in &v {
            assert!(set.contains(*x));
            assert!(!set.contains(x.wrapping_add(1)) || v.binary_search(&x.wrapping_add(1)).is_ok());
        }
        assert!(!set.contains(0) || v[0] == 0);
        assert!(!set.contains(u128::MAX) || *v.last().unwrap() == u128::MAX);
        assert!(FingerprintSet::from_sorted(vec![2, 1]).is_err());
    }
}
