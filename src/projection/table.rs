//! `Table`: an in-memory ordered map with an undo journal.
//!
//! The journal lets the writer roll back a batch whose later command was rejected, so a
//! batch is atomic without copying the state. Tables are persisted whole, in snapshots
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
    /// Old values of keys changed since `begin` (each key once, as it was before the
    /// batch); `None` while no batch is open.
    journal: Option<Vec<(K, Option<V>)>>,
    /// Keys already in the journal of the open batch: a key is copied once per batch,
    /// however often the batch changes it.
    journaled: BTreeSet<K>,
}

impl<K: Ord + Clone, V: Clone> Default for Table<K, V> {
    fn default() -> Self {
        Table { map: BTreeMap::new(), journal: None, journaled: BTreeSet::new() }
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
        if let Some(j) = &mut self.journal {
            // Large entries (a project) are copied once per batch, however often the batch
            // changes them; small ones are copied at every change, which is cheaper than
            // remembering which were copied. Rollback replays the journal backwards, so
            // the oldest copy of a key is restored last either way.
            if std::mem::size_of::<V>() < DEDUPE_BYTES {
                j.push((k.clone(), self.map.get(k).cloned()));
            } else if !self.journaled.contains(k) {
                self.journaled.insert(k.clone());
                j.push((k.clone(), self.map.get(k).cloned()));
            }
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

    pub(crate) fn begin(&mut self) {
        assert!(self.journal.is_none(), "a batch is already open");
        self.journal = Some(Vec::new());
    }

    pub(crate) fn commit(&mut self) {
        assert!(self.journal.take().is_some(), "no batch is open");
        self.journaled.clear();
    }

    pub(crate) fn rollback(&mut self) {
        let journal = self.journal.take().expect("no batch is open");
        self.journaled.clear();
        for (k, old) in journal.into_iter().rev() {
            match old {
                Some(v) => self.map.insert(k, v),
                None => self.map.remove(&k),
            };
        }
    }

    /// The entries, for a snapshot.
    pub(crate) fn map(&self) -> &BTreeMap<K, V> {
        &self.map
    }

    /// A table holding `map` (from a snapshot), with no batch open.
    pub(crate) fn from_map(map: BTreeMap<K, V>) -> Self {
        Table { map, journal: None, journaled: BTreeSet::new() }
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
}
