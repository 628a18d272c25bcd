//! `Table`: an in-memory ordered map with an undo journal.
//!
//! The journal lets the writer roll back a batch whose later command was rejected, so a
//! batch is atomic without copying the state. Levels nest: the writer opens one for a
//! whole group commit (undone if the log refuses the write, e.g. a full disk) and
//! `decide_batch` one per batch inside it. Tables are persisted whole, in snapshots
//! (`crate::store::snapshot`), never entry by entry.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::ops::RangeBounds;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::chain::codec;

/// Entries at least this large are journaled once per batch (see `journal_old`).
const DEDUPE_BYTES: usize = 128;

/// Where a table keeps its entries. `BTreeMap` (the default) suits tables that are
/// mostly appended to and scanned in key order; `Hashed` suits tables the writer looks
/// up and changes in place for nearly every event (balances, enrolments, payroll lines,
/// workers): a point lookup hashes the key once instead of comparing it at every level
/// of a tree, and key order is kept aside for scans, changed only when a key comes or
/// goes.
pub trait Backing<K, V>: Default + Clone + std::fmt::Debug {
    fn get(&self, k: &K) -> Option<&V>;
    fn get_mut(&mut self, k: &K) -> Option<&mut V>;
    fn insert(&mut self, k: K, v: V) -> Option<V>;
    fn remove(&mut self, k: &K) -> Option<V>;
    /// The entry for `k`, created with `default` if absent; `seen` is told the value
    /// before (none if absent), with one lookup.
    fn entry_with(&mut self, k: K, default: impl FnOnce() -> V, seen: impl FnOnce(&K, Option<&V>)) -> &mut V;
    fn len(&self) -> usize;
    /// Every entry in key order.
    fn iter<'a>(&'a self) -> impl Iterator<Item = (&'a K, &'a V)>
    where
        K: 'a,
        V: 'a;
    /// The entries in `r`, in key order.
    fn range<'a, R: RangeBounds<K>>(&'a self, r: R) -> impl Iterator<Item = (&'a K, &'a V)>
    where
        K: 'a,
        V: 'a;
    /// Built from entries in increasing key order (a snapshot).
    fn from_sorted(pairs: Vec<(K, V)>) -> Self;
}

impl<K: Ord + Clone + std::fmt::Debug, V: Clone + std::fmt::Debug> Backing<K, V> for BTreeMap<K, V> {
    fn get(&self, k: &K) -> Option<&V> {
        BTreeMap::get(self, k)
    }

    fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        BTreeMap::get_mut(self, k)
    }

    fn insert(&mut self, k: K, v: V) -> Option<V> {
        BTreeMap::insert(self, k, v)
    }

    fn remove(&mut self, k: &K) -> Option<V> {
        BTreeMap::remove(self, k)
    }

    fn entry_with(&mut self, k: K, default: impl FnOnce() -> V, seen: impl FnOnce(&K, Option<&V>)) -> &mut V {
        match self.entry(k) {
            std::collections::btree_map::Entry::Occupied(o) => {
                seen(o.key(), Some(o.get()));
                o.into_mut()
            }
            std::collections::btree_map::Entry::Vacant(v) => {
                seen(v.key(), None);
                v.insert(default())
            }
        }
    }

    fn len(&self) -> usize {
        BTreeMap::len(self)
    }

    fn iter<'a>(&'a self) -> impl Iterator<Item = (&'a K, &'a V)>
    where
        K: 'a,
        V: 'a,
    {
        BTreeMap::iter(self)
    }

    fn range<'a, R: RangeBounds<K>>(&'a self, r: R) -> impl Iterator<Item = (&'a K, &'a V)>
    where
        K: 'a,
        V: 'a,
    {
        BTreeMap::range(self, r)
    }

    fn from_sorted(pairs: Vec<(K, V)>) -> Self {
        pairs.into_iter().collect()
    }
}

/// A hash map for point lookups, with the keys' order kept in a set beside it.
#[derive(Clone, Debug)]
pub struct Hashed<K, V> {
    map: HashMap<K, V, foldhash::fast::FixedState>,
    order: BTreeSet<K>,
}

impl<K, V> Default for Hashed<K, V> {
    fn default() -> Self {
        Hashed { map: HashMap::with_hasher(foldhash::fast::FixedState::default()), order: BTreeSet::new() }
    }
}

impl<K: Ord + Hash + Clone + std::fmt::Debug, V: Clone + std::fmt::Debug> Backing<K, V> for Hashed<K, V> {
    fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }

    fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.map.get_mut(k)
    }

    fn insert(&mut self, k: K, v: V) -> Option<V> {
        match self.map.entry(k) {
            std::collections::hash_map::Entry::Occupied(mut o) => Some(o.insert(v)),
            std::collections::hash_map::Entry::Vacant(e) => {
                self.order.insert(e.key().clone());
                e.insert(v);
                None
            }
        }
    }

    fn remove(&mut self, k: &K) -> Option<V> {
        let old = self.map.remove(k);
        if old.is_some() {
            self.order.remove(k);
        }
        old
    }

    fn entry_with(&mut self, k: K, default: impl FnOnce() -> V, seen: impl FnOnce(&K, Option<&V>)) -> &mut V {
        match self.map.entry(k) {
            std::collections::hash_map::Entry::Occupied(o) => {
                seen(o.key(), Some(o.get()));
                o.into_mut()
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                seen(e.key(), None);
                self.order.insert(e.key().clone());
                e.insert(default())
            }
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn iter<'a>(&'a self) -> impl Iterator<Item = (&'a K, &'a V)>
    where
        K: 'a,
        V: 'a,
    {
        self.order.iter().map(|k| (k, &self.map[k]))
    }

    fn range<'a, R: RangeBounds<K>>(&'a self, r: R) -> impl Iterator<Item = (&'a K, &'a V)>
    where
        K: 'a,
        V: 'a,
    {
        self.order.range(r).map(|k| (k, &self.map[k]))
    }

    fn from_sorted(pairs: Vec<(K, V)>) -> Self {
        let mut t = Hashed { map: HashMap::with_capacity_and_hasher(pairs.len(), foldhash::fast::FixedState::default()), order: BTreeSet::new() };
        t.order = pairs.iter().map(|(k, _)| k.clone()).collect();
        t.map.extend(pairs);
        t
    }
}

#[derive(Clone, Debug)]
pub struct Table<K: Ord + Clone, V: Clone, B = BTreeMap<K, V>> {
    map: B,
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

impl<K: Ord + Clone, V: Clone, B: Default> Default for Table<K, V, B> {
    fn default() -> Self {
        Table { map: B::default(), journal: Vec::new(), marks: Vec::new(), journaled: BTreeSet::new() }
    }
}

/// What the journal copies of an entry before a change, given the value before (none if
/// absent). Small entries are copied at every change, which is cheaper than remembering
/// which were copied; large ones (a project) once per level, however often it changes
/// them. Rollback replays the journal backwards, so the oldest copy of a key is
/// restored last either way.
fn journal_old<K: Ord + Clone, V: Clone>(journal: &mut Vec<(K, Option<V>)>, marks: &[usize], journaled: &mut BTreeSet<K>, k: &K, old: Option<&V>) {
    if marks.is_empty() {
        return;
    }
    if std::mem::size_of::<V>() < DEDUPE_BYTES {
        journal.push((k.clone(), old.cloned()));
    } else if !journaled.contains(k) {
        journaled.insert(k.clone());
        journal.push((k.clone(), old.cloned()));
    }
}

impl<K: Ord + Clone + Serialize + DeserializeOwned, V: Clone + Serialize + DeserializeOwned + PartialEq, B: Backing<K, V>> Table<K, V, B> {
    pub fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }

    pub fn contains(&self, k: &K) -> bool {
        self.map.get(k).is_some()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }

    /// The entries with keys in `r`, in key order.
    pub fn range<R: RangeBounds<K>>(&self, r: R) -> impl Iterator<Item = (&K, &V)> {
        self.map.range(r)
    }

    pub fn insert(&mut self, k: K, v: V) {
        if self.marks.is_empty() {
            self.map.insert(k, v);
            return;
        }
        let old = self.map.insert(k.clone(), v);
        journal_old(&mut self.journal, &self.marks, &mut self.journaled, &k, old.as_ref());
    }

    pub fn remove(&mut self, k: &K) {
        let old = self.map.remove(k);
        journal_old(&mut self.journal, &self.marks, &mut self.journaled, k, old.as_ref());
    }

    /// The entry for `k`, created with `default` if absent, for changing in place.
    pub fn entry_or(&mut self, k: K, default: impl FnOnce() -> V) -> &mut V {
        let (journal, marks, journaled) = (&mut self.journal, &self.marks, &mut self.journaled);
        self.map.entry_with(k, default, |k, old| journal_old(journal, marks, journaled, k, old))
    }

    /// The entry for `k` for changing in place.
    ///
    /// # Panics
    /// If absent: `apply` only changes what `decide` checked exists.
    pub fn get_mut(&mut self, k: &K) -> &mut V {
        let v = self.map.get_mut(k).expect("apply changes only entries that decide found");
        journal_old(&mut self.journal, &self.marks, &mut self.journaled, k, Some(v));
        v
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

    /// Whether both hold the same entries.
    pub(crate) fn same_entries(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }

    /// Writes the entries in key order, as bincode writes a map (a length, then each
    /// key and value).
    pub(crate) fn write_to<W: std::io::Write, C: bincode::config::Config>(&self, w: &mut W, config: C) -> Result<(), bincode::error::EncodeError> {
        bincode::serde::encode_into_std_write(Ordered(self), w, config).map(|_| ())
    }

    /// A table holding `pairs` (from a snapshot, in increasing key order), with no batch open.
    pub(crate) fn from_sorted(pairs: Vec<(K, V)>) -> Self {
        Table { map: B::from_sorted(pairs), journal: Vec::new(), marks: Vec::new(), journaled: BTreeSet::new() }
    }
}

/// A table's entries as a serde map in key order (the bytes of a `BTreeMap`).
struct Ordered<'a, K: Ord + Clone, V: Clone, B>(&'a Table<K, V, B>);

impl<K: Ord + Clone + Serialize + DeserializeOwned, V: Clone + Serialize + DeserializeOwned + PartialEq, B: Backing<K, V>> Serialize for Ordered<'_, K, V, B> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter())
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
    fn nested_levels_match_a_copying_model<V: Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned, B: Backing<u8, V>>(ops: &[(u8, u8)], val: impl Fn(u8) -> V) {
        let mut t: Table<u8, V, B> = Table::default();
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
            assert_eq!(t.iter().map(|(k, v)| (*k, v.clone())).collect::<BTreeMap<_, _>>(), model);
        }
        while let Some(m) = saved.pop() {
            t.rollback();
            model = m;
            assert_eq!(t.iter().map(|(k, v)| (*k, v.clone())).collect::<BTreeMap<_, _>>(), model);
        }
        assert!(t.journal.is_empty() && t.marks.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn nested_levels_undo_exactly_their_own_changes(ops in proptest::collection::vec((proptest::prelude::any::<u8>(), proptest::prelude::any::<u8>()), 0..400)) {
            nested_levels_match_a_copying_model::<_, BTreeMap<_, _>>(&ops, u64::from);
            nested_levels_match_a_copying_model::<_, BTreeMap<_, _>>(&ops, |v| [u64::from(v); 32]);
            nested_levels_match_a_copying_model::<_, Hashed<_, _>>(&ops, u64::from);
            nested_levels_match_a_copying_model::<_, Hashed<_, _>>(&ops, |v| [u64::from(v); 32]);
        }
    }
}
