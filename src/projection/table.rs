//! `Table`: an in-memory ordered map with an undo journal.
//!
//! The journal lets the writer roll back a batch whose later command was rejected, so a
//! batch is atomic without copying the state. Levels nest: the writer opens one for a
//! whole group commit (undone if the log refuses the write, e.g. a full disk) and
//! `decide_batch` one per batch inside it. Tables are persisted whole, in snapshots
//! (`crate::store::snapshot`), never entry by entry.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeBounds;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::chain::codec;

/// Entries at least this large are journaled once per batch (see `remember`).
const DEDUPE_BYTES: usize = 128;

#[derive(Clone, Debug)]
pub struct Table<K: Ord + Clone, V: Clone> {
    map: BTreeMap<K, V>,
    /// Old values of keys changed since the outermost open `begin`, oldest first.
    journal: Vec<(K, Option<V>)>,
    /// Where each open level starts in `journal`; empty while nothing is open (and then
    /// nothing is journaled).
    marks: Vec<usize>,
    /// Large keys already copied since the innermost level began: such a key is copied
    /// once per level, however often the level changes it. Forgetting a key is always
    /// safe (it is copied again), so the set is cleared whenever in doubt.
    journaled: BTreeSet<K>,
}

/// A group's journal may grow large; past this many entries its memory is given back
/// when the outermost level ends.
const JOURNAL_KEEP: usize = 1 << 16;

impl<K: Ord + Clone, V: Clone> Default for Table<K, V> {
    fn default() -> Self {
        Table { map: BTreeMap::new(), journal: Vec::new(), marks: Vec::new(), journaled: BTreeSet::new() }
    }
}

impl<K: Ord + Clone + Serialize + DeserializeOwned, V: Clone + Serialize + DeserializeOwned + PartialEq> Table<K, V> {
    pub fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }

    pub fn contains(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }

    pub fn range<R: RangeBounds<K>>(&self, r: R) -> impl Iterator<Item = (&K, &V)> {
        self.map.range(r)
    }

    fn remember(&mut self, k: &K) {
        if self.marks.is_empty() {
            return;
        }
        // Large entries (a project) are copied once per level, however often it changes
        // them; small ones are copied at every change, which is cheaper than remembering
        // which were copied. Rollback replays the journal backwards, so the oldest copy
        // of a key is restored last either way.
        if std::mem::size_of::<V>() < DEDUPE_BYTES {
            self.journal.push((k.clone(), self.map.get(k).cloned()));
        } else if !self.journaled.contains(k) {
            self.journaled.insert(k.clone());
            self.journal.push((k.clone(), self.map.get(k).cloned()));
        }
    }

    pub fn insert(&mut self, k: K, v: V) {
        self.remember(&k);
        self.map.insert(k, v);
    }

    pub fn remove(&mut self, k: &K) {
        self.remember(k);
        self.map.remove(k);
    }

    /// The entry for `k`, created with `default` if absent, for changing in place.
    pub fn entry_or(&mut self, k: K, default: impl FnOnce() -> V) -> &mut V {
        self.remember(&k);
        self.map.entry(k).or_insert_with(default)
    }

    /// The entry for `k` for changing in place.
    ///
    /// # Panics
    /// If absent: `apply` only changes what `decide` checked exists.
    pub fn get_mut(&mut self, k: &K) -> &mut V {
        self.remember(k);
        self.map.get_mut(k).expect("apply changes only entries that decide found")
    }

    /// Opens a level (inside any already open).
    pub(crate) fn begin(&mut self) {
        self.marks.push(self.journal.len());
        self.journaled.clear();
    }

    /// Keeps the innermost level's changes (an outer level can still undo them).
    pub(crate) fn commit(&mut self) {
        self.marks.pop().expect("no level is open");
        // Keys copied in the inner level were copied in the outer one too: the set stays.
        if self.marks.is_empty() {
            self.end_journal();
        }
    }

    /// Undoes every change since the innermost level began, and closes it.
    pub(crate) fn rollback(&mut self) {
        let mark = self.marks.pop().expect("no level is open");
        self.journaled.clear();
        for (k, old) in self.journal.drain(mark..).rev() {
            match old {
                Some(v) => self.map.insert(k, v),
                None => self.map.remove(&k),
            };
        }
        if self.marks.is_empty() {
            self.end_journal();
        }
    }

    fn end_journal(&mut self) {
        self.journal.clear();
        self.journaled.clear();
        if self.journal.capacity() > JOURNAL_KEEP {
            self.journal.shrink_to(JOURNAL_KEEP);
        }
    }

    /// The entries, for a snapshot.
    pub(crate) fn map(&self) -> &BTreeMap<K, V> {
        &self.map
    }

    /// A table holding `map` (from a snapshot), with no batch open.
    pub(crate) fn from_map(map: BTreeMap<K, V>) -> Self {
        Table { map, journal: Vec::new(), marks: Vec::new(), journaled: BTreeSet::new() }
    }
}

pub(crate) fn key_bytes<K: Serialize>(prefix: u8, k: &K) -> Vec<u8> {
    let mut out = vec![prefix];
    out.extend(codec::encode(k));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_restores_small_and_large_entries_changed_many_times() {
        let mut small: Table<u32, u64> = Table::default();
        let mut large: Table<u32, [u64; 32]> = Table::default();
        small.insert(1, 10);
        large.insert(1, [10; 32]);
        for t in 0..2 {
            small.begin();
            large.begin();
            for i in 0..5u64 {
                *small.get_mut(&1) += i;
                small.insert(2, i);
                large.get_mut(&1)[0] += i;
                large.insert(2, [i; 32]);
            }
            small.remove(&1);
            if t == 0 {
                small.rollback();
                large.rollback();
                assert_eq!((small.get(&1), small.get(&2)), (Some(&10), None));
                assert_eq!((large.get(&1), large.get(&2)), (Some(&[10; 32]), None));
            } else {
                small.commit();
                large.commit();
                assert_eq!((small.get(&1), small.get(&2)), (None, Some(&4)));
                assert_eq!(large.get(&1).unwrap()[0], 20);
            }
        }
    }

    /// Nested levels against a model that clones the whole map at every `begin`: any
    /// sequence of changes, begins, commits and rollbacks ends with the same entries.
    fn nested_levels_match_a_copying_model<V: Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned>(ops: &[(u8, u8)], val: impl Fn(u8) -> V) {
        let mut t: Table<u8, V> = Table::default();
        let mut saved: Vec<BTreeMap<u8, V>> = Vec::new();
        let mut model: BTreeMap<u8, V> = BTreeMap::new();
        for &(op, k) in ops {
            let k = k % 8;
            match op % 6 {
                0 | 1 => {
                    t.insert(k, val(op));
                    model.insert(k, val(op));
                }
                2 => {
                    t.remove(&k);
                    model.remove(&k);
                }
                3 => {
                    t.begin();
                    saved.push(model.clone());
                }
                4 => {
                    if saved.pop().is_some() {
                        t.commit();
                    }
                }
                _ => {
                    if let Some(m) = saved.pop() {
                        t.rollback();
                        model = m;
                    }
                }
            }
            assert_eq!(t.map(), &model);
        }
        while let Some(m) = saved.pop() {
            t.rollback();
            model = m;
            assert_eq!(t.map(), &model);
        }
        assert!(t.journal.is_empty() && t.marks.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn nested_levels_undo_exactly_their_own_changes(ops in proptest::collection::vec((proptest::prelude::any::<u8>(), proptest::prelude::any::<u8>()), 0..400)) {
            nested_levels_match_a_copying_model(&ops, u64::from);
            nested_levels_match_a_copying_model(&ops, |v| [u64::from(v); 32]);
        }
    }
}
