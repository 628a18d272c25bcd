//! Posting histories: every amount an account received or gave (and every payout a
//! worker received), in record order, each with its sequence number and value date,
//! kept compactly so that a past figure is a binary search and not a replay.
//!
//! A history is a byte string of entries (varint deltas of the sequence number and the
//! date, the amount zigzag-encoded, the event kind) cut into blocks of `BLOCK` entries.
//! After each block a `Mark` keeps the running sums and the dates the block spans, so:
//! - the figure at a point (`When`: records up to `seq`, dated on or before `date`) is
//!   the sums at the last mark wholly inside the point (a binary search: sequence
//!   numbers and the running largest date only grow), plus the later blocks, each added
//!   whole, skipped whole, or (only where the point cuts it) decoded: O(log k + blocks
//!   after the point), k being the account's postings, not the ledger's;
//! - a page of the history starts at the block holding its first entry.
//!
//! Histories are append-only; the undo journal (a batch taken back) only records how
//! long each history was, and cuts it back.

use std::collections::HashMap;
use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::date::Date;
use crate::domain::money::Fen;

use super::state::Seq;
use super::when::When;

/// Entries per block: a block is the most a past figure decodes per block it cuts.
pub const BLOCK: u32 = 64;

/// The kind byte's top bit: the posting is money paid to a worker (a payout or a
/// drawdown to a card), counted in "wages paid".
pub const PAID: u8 = 0x80;

/// One posting, as read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Posting {
    pub seq: Seq,
    pub date: Date,
    pub amount: Fen,
    /// `Event::kind_index` of the event, with `PAID` set for money paid to a worker.
    pub kind: u8,
}

/// Running sums of a history at a point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sums {
    /// The sum of the amounts: the balance.
    pub balance: Fen,
    /// The sum of the amounts of `PAID` postings.
    pub paid: Fen,
    /// How many postings were counted.
    pub count: u32,
}

/// Where decoding resumes: after an entry (or at the start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// Byte offset of the next entry.
    at: u32,
    /// Sequence number and `Date::to_u32` of the entry before it (0 at the start).
    seq: Seq,
    date: u32,
}

/// The end of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    end: Cursor,
    /// The sums of every entry up to the end of this block.
    balance: Fen,
    paid: Fen,
    /// The latest date of any entry up to the end of this block (only grows).
    max_date: Date,
    /// The earliest and latest dates within this block.
    block_min: Date,
    block_max: Date,
}

/// What the journal needs to cut a history back: its scalar state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Tip {
    end: Cursor,
    len: u32,
    balance: Fen,
    paid: Fen,
    /// The dates of the entries after the last mark (none if `len` is a multiple of `BLOCK`).
    tail_min: Option<Date>,
    tail_max: Option<Date>,
    max_date: Option<Date>,
}

/// One account's (or payee's) postings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(with = "bytes")]
    bytes: Vec<u8>,
    marks: Vec<Mark>,
    tip: Tip,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn get_varint(b: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*at];
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return v;
        }
        shift += 7;
    }
}

impl History {
    /// Appends a posting; `seq` is larger than every one before.
    pub fn push(&mut self, p: Posting) {
        let t = &mut self.tip;
        // One event may post to an account more than once (a drawdown to two payees, a
        // progress payment split two ways): equal sequence numbers are in order.
        debug_assert!(p.seq >= t.end.seq, "postings are appended in record order");
        let d = p.date.to_u32();
        put_varint(&mut self.bytes, p.seq - t.end.seq);
        put_varint(&mut self.bytes, zigzag(i64::from(d) - i64::from(t.end.date)));
        put_varint(&mut self.bytes, zigzag(p.amount));
        self.bytes.push(p.kind);
        t.end = Cursor { at: u32::try_from(self.bytes.len()).expect("a history under 4 GiB"), seq: p.seq, date: d };
        t.len += 1;
        t.balance += p.amount;
        if p.kind & PAID != 0 {
            t.paid += p.amount;
        }
        t.tail_min = Some(t.tail_min.map_or(p.date, |m| m.min(p.date)));
        t.tail_max = Some(t.tail_max.map_or(p.date, |m| m.max(p.date)));
        t.max_date = Some(t.max_date.map_or(p.date, |m| m.max(p.date)));
        if t.len % BLOCK == 0 {
            self.marks.push(Mark {
                end: t.end,
                balance: t.balance,
                paid: t.paid,
                max_date: t.max_date.expect("set above"),
                block_min: t.tail_min.take().expect("set above"),
                block_max: t.tail_max.take().expect("set above"),
            });
        }
    }

    /// How many postings it holds.
    pub fn len(&self) -> u32 {
        self.tip.len
    }

    pub fn is_empty(&self) -> bool {
        self.tip.len == 0
    }

    /// The sums of every posting.
    pub fn total(&self) -> Sums {
        Sums { balance: self.tip.balance, paid: self.tip.paid, count: self.tip.len }
    }

    /// The sequence number of the first posting, if any.
    pub fn first_seq(&self) -> Option<Seq> {
        self.iter_from(0).next().map(|p| p.seq)
    }

    /// The start of block `b` (`b == marks.len()` is the tail), with the sums before it.
    fn block_start(&self, b: usize) -> (Cursor, Sums) {
        if b == 0 {
            (Cursor::default(), Sums::default())
        } else {
            let m = &self.marks[b - 1];
            (m.end, Sums { balance: m.balance, paid: m.paid, count: b as u32 * BLOCK })
        }
    }

    fn decode_from(&self, c: Cursor) -> impl Iterator<Item = Posting> + '_ {
        let mut at = c.at as usize;
        let (mut seq, mut date) = (c.seq, c.date);
        std::iter::from_fn(move || {
            if at >= self.bytes.len() {
                return None;
            }
            seq += get_varint(&self.bytes, &mut at);
            date = (i64::from(date) + unzigzag(get_varint(&self.bytes, &mut at))) as u32;
            let amount = unzigzag(get_varint(&self.bytes, &mut at));
            let kind = self.bytes[at];
            at += 1;
            Some(Posting { seq, date: Date::from_u32(date).expect("a date this history encoded"), amount, kind })
        })
    }

    /// Every posting from block `b` on, in record order.
    fn iter_from(&self, b: usize) -> impl Iterator<Item = Posting> + '_ {
        self.decode_from(self.block_start(b).0)
    }

    /// Every posting, in record order.
    pub fn iter(&self) -> impl Iterator<Item = Posting> + '_ {
        self.iter_from(0)
    }

    /// The sums of the postings the point `w` sees (recorded up to `w.seq`, dated on or
    /// before `w.date`).
    pub fn at(&self, w: When) -> Sums {
        let t = &self.tip;
        if t.end.seq <= w.seq && t.max_date.is_none_or(|d| d <= w.date) {
            return self.total();
        }
        // Marks wholly inside the point form a prefix: both conditions only grow false.
        let full = self.marks.partition_point(|m| m.end.seq <= w.seq && m.max_date <= w.date);
        let (_, mut sums) = self.block_start(full);
        for b in full..=self.marks.len() {
            let (start, before) = self.block_start(b);
            if start.seq > w.seq {
                break; // every entry from here on was recorded after the point
            }
            let (lo, hi, end_seq, whole) = match self.marks.get(b) {
                Some(m) => (m.block_min, m.block_max, m.end.seq, Sums { balance: m.balance - before.balance, paid: m.paid - before.paid, count: BLOCK }),
                None => match (t.tail_min, t.tail_max) {
                    (Some(lo), Some(hi)) => (lo, hi, t.end.seq, Sums { balance: t.balance - before.balance, paid: t.paid - before.paid, count: t.len % BLOCK }),
                    _ => break,
                },
            };
            if lo > w.date {
                continue; // no entry of this block is dated on or before the point
            }
            if end_seq <= w.seq && hi <= w.date {
                sums.balance += whole.balance;
                sums.paid += whole.paid;
                sums.count += whole.count;
                continue;
            }
            for p in self.decode_from(start).take(if b < self.marks.len() { BLOCK as usize } else { usize::MAX }) {
                if p.seq > w.seq {
                    break;
                }
                if p.date <= w.date {
                    sums.balance += p.amount;
                    if p.kind & PAID != 0 {
                        sums.paid += p.amount;
                    }
                    sums.count += 1;
                }
            }
        }
        sums
    }

    /// About `limit` postings the point `w` sees, recorded after `after`, each with the
    /// balance after it (over the postings the point sees), and whether more follow. A
    /// page never ends inside one record's postings (it runs over `limit` to finish
    /// them), so the next page can start after the last record's sequence number.
    pub fn page(&self, after: Seq, w: When, limit: usize) -> (Vec<(Posting, Fen)>, bool) {
        let mut balance = self.at(When { seq: after.min(w.seq), date: w.date }).balance;
        // The first block that can hold a posting after `after` (a block ending at
        // `after` may be followed by one starting with the same record: equal seqs).
        let b = self.marks.partition_point(|m| m.end.seq <= after);
        let mut out: Vec<(Posting, Fen)> = Vec::new();
        for p in self.iter_from(b) {
            if p.seq <= after || p.date > w.date {
                continue;
            }
            if p.seq > w.seq {
                break;
            }
            if out.len() >= limit && out.last().is_some_and(|(last, _)| last.seq != p.seq) {
                return (out, true);
            }
            balance += p.amount;
            out.push((p, balance));
        }
        (out, false)
    }
}

/// The histories of every key, with an undo journal whose levels nest like the tables'.
#[derive(Clone, Debug)]
pub struct Histories<K> {
    index: HashMap<K, u32, foldhash::fast::FixedState>,
    items: Vec<Item<K>>,
    undo: Vec<Undo>,
    /// Each open level: where its journal starts, and its number (never reused).
    levels: Vec<(usize, u64)>,
    next_level: u64,
}

#[derive(Clone, Debug)]
struct Item<K> {
    key: K,
    history: History,
    /// The number of the level whose journal last recorded this item (0: none): an item
    /// is journaled once per level, not once per posting.
    journaled: u64,
}

#[derive(Clone, Copy, Debug)]
enum Undo {
    Created,
    Appended { item: u32, tip: Tip, marks: u32, journaled: u64 },
}

impl<K> Default for Histories<K> {
    fn default() -> Self {
        Histories {
            index: HashMap::with_hasher(foldhash::fast::FixedState::default()),
            items: Vec::new(),
            undo: Vec::new(),
            levels: Vec::new(),
            next_level: 1,
        }
    }
}

impl<K: Hash + Eq + Ord + Clone + Serialize + DeserializeOwned> Histories<K> {
    pub fn get(&self, k: &K) -> Option<&History> {
        self.index.get(k).map(|&i| &self.items[i as usize].history)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every key and history, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &History)> {
        self.items.iter().map(|it| (&it.key, &it.history))
    }

    /// Appends a posting to `k`'s history.
    pub fn push(&mut self, k: &K, p: Posting) {
        let i = match self.index.get(k) {
            Some(&i) => i,
            None => {
                let i = u32::try_from(self.items.len()).expect("under 2^32 accounts");
                self.items.push(Item { key: k.clone(), history: History::default(), journaled: 0 });
                self.index.insert(k.clone(), i);
                if !self.levels.is_empty() {
                    self.undo.push(Undo::Created);
                }
                i
            }
        };
        let item = &mut self.items[i as usize];
        if let Some(&(_, level)) = self.levels.last() {
            if item.journaled != level {
                self.undo.push(Undo::Appended { item: i, tip: item.history.tip, marks: item.history.marks.len() as u32, journaled: item.journaled });
                item.journaled = level;
            }
        }
        item.history.push(p);
    }

    pub(crate) fn begin(&mut self) {
        self.levels.push((self.undo.len(), self.next_level));
        self.next_level += 1;
    }

    /// Keeps the level's changes in the enclosing level, whose journal now holds the
    /// entries that take them back.
    pub(crate) fn commit(&mut self) {
        self.levels.pop().expect("a level to commit");
        // An item this level journaled is marked with this level's number, which no
        // other level has: if the enclosing level changes it again, it is journaled
        // again (its state then), and a rollback undoes that entry first.
        if self.levels.is_empty() {
            self.undo.clear();
        }
    }

    pub(crate) fn rollback(&mut self) {
        let (at, _) = self.levels.pop().expect("a level to roll back");
        while self.undo.len() > at {
            match self.undo.pop().expect("checked") {
                Undo::Created => {
                    let it = self.items.pop().expect("created last");
                    self.index.remove(&it.key);
                }
                Undo::Appended { item, tip, marks, journaled } => {
                    let it = &mut self.items[item as usize];
                    it.history.bytes.truncate(tip.end.at as usize);
                    it.history.marks.truncate(marks as usize);
                    it.history.tip = tip;
                    it.journaled = journaled;
                }
            }
        }
    }

    /// The histories in key order: the form snapshots hold and states are compared in.
    pub fn sorted(&self) -> Vec<(&K, &History)> {
        let mut v: Vec<(&K, &History)> = self.iter().collect();
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// Built from `sorted`'s list, read back.
    ///
    /// # Errors
    /// If the keys are not in increasing order.
    pub fn from_sorted(pairs: Vec<(K, History)>) -> Result<Self, String> {
        if pairs.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err("histories: keys are not in increasing order".into());
        }
        let mut h = Histories::default();
        h.index.reserve(pairs.len());
        for (i, (key, history)) in pairs.into_iter().enumerate() {
            h.index.insert(key.clone(), i as u32);
            h.items.push(Item { key, history, journaled: 0 });
        }
        Ok(h)
    }

    /// Whether two sets of histories hold the same postings.
    pub fn same(&self, other: &Histories<K>) -> bool {
        self.items.len() == other.items.len() && self.items.iter().all(|it| other.get(&it.key) == Some(&it.history))
    }
}

/// A byte string as one length-prefixed run (not a sequence of single bytes).
mod bytes {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(n: u32) -> Date {
        Date::from_ymd(2026, 1, 1).expect("date").add_days(i64::from(n))
    }

    proptest! {
        /// Every figure at every point, and every page, equals the sum over a plain list.
        #[test]
        fn figures_at_every_point_equal_a_plain_sum(
            // A gap of 0: the same record posting again (a drawdown to two payees).
            entries in prop::collection::vec((0u64..4, 0u32..200, -50_000i64..50_000, any::<bool>()), 0..300),
            points in prop::collection::vec((0u64..1000, 0u32..220), 1..20),
        ) {
            let mut h = History::default();
            let mut plain = Vec::new();
            let mut seq = 0;
            for (gap, d, amount, paid) in entries {
                seq += gap;
                let p = Posting { seq, date: date(d), amount, kind: if paid { PAID | 3 } else { 3 } };
                h.push(p);
                plain.push(p);
            }
            prop_assert_eq!(h.iter().collect::<Vec<_>>(), plain.clone());
            for (s, d) in points {
                let w = When { seq: s, date: date(d) };
                let seen: Vec<&Posting> = plain.iter().filter(|p| p.seq <= w.seq && p.date <= w.date).collect();
                let want = Sums {
                    balance: seen.iter().map(|p| p.amount).sum(),
                    paid: seen.iter().filter(|p| p.kind & PAID != 0).map(|p| p.amount).sum(),
                    count: seen.len() as u32,
                };
                prop_assert_eq!(h.at(w), want);
                let after = s / 2;
                let (page, more) = h.page(after, w, 7);
                let mut bal: Fen = plain.iter().filter(|p| p.seq <= after.min(w.seq) && p.date <= w.date).map(|p| p.amount).sum();
                let want_page: Vec<(Posting, Fen)> = seen.iter().filter(|p| p.seq > after).map(|p| { bal += p.amount; (**p, bal) }).collect();
                prop_assert!(page.len() <= want_page.len());
                prop_assert_eq!(&page[..], &want_page[..page.len()]);
                prop_assert!(page.len() >= want_page.len().min(7));
                prop_assert_eq!(more, page.len() < want_page.len());
                // A page ends between records: the next starts after the last one's seq.
                if let (Some((last, _)), Some((next, _))) = (page.last(), want_page.get(page.len())) {
                    prop_assert!(next.seq > last.seq);
                }
            }
        }

        /// A level taken back leaves the histories exactly as they were when it began,
        /// whatever the levels inside it did (kept or taken back).
        #[test]
        fn a_rolled_back_level_leaves_no_trace(
            before in prop::collection::vec((0u8..4, -1000i64..1000), 0..150),
            outer in prop::collection::vec((0u8..6, -1000i64..1000), 0..100),
            inner in prop::collection::vec((0u8..6, -1000i64..1000), 1..150),
            keep_inner in any::<bool>(),
            after in prop::collection::vec((0u8..6, -1000i64..1000), 0..100),
        ) {
            let mut hs: Histories<u8> = Histories::default();
            let mut seq = 0;
            let mut add = |hs: &mut Histories<u8>, k: u8, a: i64| {
                seq += 1;
                hs.push(&k, Posting { seq, date: date((seq % 50) as u32), amount: a, kind: 1 });
            };
            let image = |hs: &Histories<u8>| -> Vec<(u8, History)> { hs.sorted().into_iter().map(|(k, h)| (*k, h.clone())).collect() };
            for (k, a) in &before {
                add(&mut hs, *k, *a);
            }
            // As a snapshot reads them back.
            let mut hs = Histories::from_sorted(image(&hs)).unwrap();
            let at_start = image(&hs);
            hs.begin();
            for (k, a) in &outer {
                add(&mut hs, *k, *a);
            }
            let before_inner = image(&hs);
            hs.begin();
            for (k, a) in &inner {
                add(&mut hs, *k, *a);
            }
            if keep_inner {
                hs.commit();
            } else {
                hs.rollback();
                prop_assert_eq!(image(&hs), before_inner);
            }
            for (k, a) in &after {
                add(&mut hs, *k, *a);
            }
            hs.rollback();
            prop_assert_eq!(image(&hs), at_start);
            prop_assert!(hs.undo.is_empty());
        }
    }
}
