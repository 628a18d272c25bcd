//! The log: append-only segment files of framed batches. The source of truth.
//!
//! A segment file `log/<first seq, 20 digits>.seg` starts with a header (magic, format
//! version, ledger id, first sequence number, CRC) and holds frames. A frame is one
//! group commit's records: `body_len u32 | crc32 u32 | body`, body = `first_seq u64 |
//! record_count u32 | signed u64 | (record_len u32 | record_crc32 u32 | record bytes)*`,
//! all big-endian (a version-1 segment's frames have no `signed`). The per-record CRC
//! lets `verify` name the damaged record, not just the frame. `signed` is the size of
//! the newest checkpoint the writer had durably saved when it wrote the frame: the log
//! itself records that a checkpoint was signed, so that losing `checkpoints/latest` (or
//! putting an older one back) is noticed. It never exceeds the records before the frame
//! and never decreases along the log. `sync` makes
//! everything appended durable with one `fdatasync`; nothing is acknowledged before it.
//!
//! On recovery a frame cut short by the end of the last segment, or a last frame whose
//! CRC fails, was never acknowledged (acknowledged frames were synced whole) and is cut
//! off, and the cut is reported. Damage anywhere else is `StoreError::Corruption` naming
//! the segment and offset: the ledger refuses to start rather than guess.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::limits::{FRAME_BYTES_MAX, RECORD_BYTES_MAX, SEGMENT_BYTES_MAX};

use super::StoreError;

pub const SEGMENT_MAGIC: &[u8; 8] = b"ANXINLOG";
/// The version new segments are written in. Version 1 (frames without `signed`) is read.
pub const SEGMENT_VERSION: u16 = 2;
const FRAME_HEADER: usize = 8;

/// The fixed part of a frame body before its records: `first_seq`, `record_count` and,
/// from version 2, `signed`.
fn body_fixed(version: u16) -> usize {
    if version >= 2 {
        20
    } else {
        12
    }
}

/// Where a frame starts: segment (named by its first sequence number) and byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// A frame read back: its position, first sequence number, and records' canonical bytes.
#[derive(Debug)]
pub struct Frame {
    pub pos: Position,
    /// Offset just past the frame.
    pub end: u64,
    pub first_seq: u64,
    /// The size of the newest checkpoint saved before the frame was written (0 in a
    /// version-1 segment, which does not record it).
    pub signed: u64,
    /// The offset in the segment where the first record (its length) starts.
    pub records_at: u64,
    pub records: Vec<Vec<u8>>,
}

pub fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

/// The segments of a log directory, by first sequence number, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".seg") {
            if let Ok(n) = stem.parse::<u64>() {
                out.push(n);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn segment_header(ledger_id: &str, first_seq: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(32 + ledger_id.len());
    h.extend_from_slice(SEGMENT_MAGIC);
    h.extend_from_slice(&SEGMENT_VERSION.to_be_bytes());
    h.extend_from_slice(&(ledger_id.len() as u16).to_be_bytes());
    h.extend_from_slice(ledger_id.as_bytes());
    h.extend_from_slice(&first_seq.to_be_bytes());
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_be_bytes());
    h
}

/// A segment's header, read and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub ledger_id: String,
    pub first_seq: u64,
    pub version: u16,
    /// Its length: where the first frame starts.
    pub len: u64,
}

/// Reads and checks a segment's header.
pub fn read_segment_header(path: &Path) -> Result<SegmentHeader, StoreError> {
    let mut f = File::open(path)?;
    let corrupt = |why: &str| StoreError::Corruption { at: format!("{} header", path.display()), why: why.to_owned() };
    let mut fixed = [0u8; 12];
    f.read_exact(&mut fixed).map_err(|_| corrupt("shorter than a segment header"))?;
    if &fixed[..8] != SEGMENT_MAGIC {
        return Err(corrupt("bad magic: not an Anxin log segment"));
    }
    let version = u16::from_be_bytes([fixed[8], fixed[9]]);
    if !(1..=SEGMENT_VERSION).contains(&version) {
        return Err(corrupt(&format!("segment version {version} is not one this build reads (1 to {SEGMENT_VERSION})")));
    }
    let id_len = usize::from(u16::from_be_bytes([fixed[10], fixed[11]]));
    let mut rest = vec![0u8; id_len + 12];
    f.read_exact(&mut rest).map_err(|_| corrupt("header cut short"))?;
    let mut all = fixed.to_vec();
    all.extend_from_slice(&rest[..id_len + 8]);
    let crc = u32::from_be_bytes(rest[id_len + 8..].try_into().expect("4 bytes"));
    if crc32fast::hash(&all) != crc {
        return Err(corrupt("header CRC does not match"));
    }
    let id = String::from_utf8(rest[..id_len].to_vec()).map_err(|_| corrupt("ledger id not UTF-8"))?;
    let first = u64::from_be_bytes(rest[id_len..id_len + 8].try_into().expect("8 bytes"));
    Ok(SegmentHeader { ledger_id: id, first_seq: first, version, len: (12 + id_len + 12) as u64 })
}

/// Cuts a stream of records into frames of whole requests: a frame is closed once it
/// holds `max_records` records or `max_bytes` bytes, but only where the next record
/// starts another request (`K`: the request's key), because recovery and followers
/// rebuild the idempotency index frame by frame. Used wherever records are framed again
/// rather than as the writer grouped them (a restore, a node's own tail put into the
/// replicated database).
pub struct RequestFrames<K> {
    frame: Vec<Vec<u8>>,
    bytes: usize,
    last: Option<K>,
    max_records: usize,
    max_bytes: usize,
}

impl<K: PartialEq> RequestFrames<K> {
    pub fn new(max_records: usize, max_bytes: usize) -> RequestFrames<K> {
        RequestFrames { frame: Vec::new(), bytes: 0, last: None, max_records, max_bytes }
    }

    /// Bytes the open frame holds (8 per record of framing included).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether `record` of `request` would close the open frame first.
    pub fn closes_before(&self, request: &K) -> bool {
        (self.frame.len() >= self.max_records || self.bytes >= self.max_bytes) && self.last.as_ref() != Some(request)
    }

    /// Adds `record` of `request`; returns the frame it closed first, if it did.
    pub fn push(&mut self, record: Vec<u8>, request: K) -> Option<Vec<Vec<u8>>> {
        let closed = if self.closes_before(&request) {
            self.bytes = 0;
            Some(std::mem::take(&mut self.frame))
        } else {
            None
        };
        self.bytes += record.len() + 8;
        self.frame.push(record);
        self.last = Some(request);
        closed
    }

    /// The last frame, if it holds records.
    pub fn finish(self) -> Option<Vec<Vec<u8>>> {
        (!self.frame.is_empty()).then_some(self.frame)
    }
}

/// Appends frames to the newest segment and syncs them.
pub struct LogWriter {
    dir: PathBuf,
    ledger_id: String,
    file: File,
    segment: u64,
    offset: u64,
    buf: Vec<u8>,
    unsynced: bool,
    /// A segment is closed once it passes this (`SEGMENT_BYTES_MAX` unless set).
    segment_bytes: u64,
    /// The open segment's version: frames of one segment share its layout, so the next
    /// frame after an older one starts a new segment.
    version: u16,
    /// The largest `signed` written so far: it never decreases along the log.
    signed: u64,
}

impl LogWriter {
    /// Opens the log for appending at `end` (as found by recovery), or creates the first
    /// segment if the directory holds none.
    pub fn open(dir: &Path, ledger_id: &str, end: Option<Position>) -> Result<LogWriter, StoreError> {
        fs::create_dir_all(dir)?;
        let (segment, offset, file, version) = match end {
            Some(pos) => {
                let path = segment_path(dir, pos.segment);
                let header = read_segment_header(&path)?;
                let file = OpenOptions::new().write(true).open(&path)?;
                // An older segment holding no frame yet (a crash right after an older
                // build created it) takes the new header in place: rolling would need
                // its name.
                let version = if header.version != SEGMENT_VERSION && pos.offset == header.len {
                    use std::os::unix::fs::FileExt;
                    let new = segment_header(ledger_id, pos.segment);
                    debug_assert_eq!(new.len() as u64, header.len);
                    file.write_all_at(&new, 0)?;
                    file.sync_all()?;
                    SEGMENT_VERSION
                } else {
                    header.version
                };
                (pos.segment, pos.offset, file, version)
            }
            None => {
                let (file, off) = create_segment(dir, ledger_id, 1)?;
                (1, off, file, SEGMENT_VERSION)
            }
        };
        let mut w = LogWriter { dir: dir.to_owned(), ledger_id: ledger_id.to_owned(), file, segment, offset, buf: Vec::new(), unsynced: false, segment_bytes: SEGMENT_BYTES_MAX, version, signed: 0 };
        w.file.seek(SeekFrom::Start(w.offset))?;
        Ok(w)
    }

    /// Writes one frame holding `records` (canonical bytes), numbered from `first_seq`,
    /// recording that a checkpoint of `signed` records was durably saved before it (0:
    /// none known; a value below an earlier frame's is raised to it, and it must be below
    /// `first_seq`). Returns where it starts. Not durable until `sync`.
    pub fn append(&mut self, first_seq: u64, signed: u64, records: &[Vec<u8>]) -> Result<Position, StoreError> {
        assert!(!records.is_empty(), "a frame holds at least one record");
        assert!(signed < first_seq, "a checkpoint signed before a frame covers only records before it");
        if self.offset >= self.segment_bytes || self.version != SEGMENT_VERSION {
            self.roll(first_seq)?;
        }
        self.signed = self.signed.max(signed);
        self.buf.clear();
        self.buf.extend_from_slice(&[0u8; FRAME_HEADER]);
        self.buf.extend_from_slice(&first_seq.to_be_bytes());
        self.buf.extend_from_slice(&(records.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(&self.signed.to_be_bytes());
        for r in records {
            assert!(r.len() <= RECORD_BYTES_MAX, "records are bounded before they reach the log");
            self.buf.extend_from_slice(&(r.len() as u32).to_be_bytes());
            self.buf.extend_from_slice(&crc32fast::hash(r).to_be_bytes());
            self.buf.extend_from_slice(r);
        }
        let body_len = self.buf.len() - FRAME_HEADER;
        assert!(body_len <= FRAME_BYTES_MAX, "the writer splits groups into bounded frames");
        let crc = crc32fast::hash(&self.buf[FRAME_HEADER..]);
        self.buf[..4].copy_from_slice(&(body_len as u32).to_be_bytes());
        self.buf[4..8].copy_from_slice(&crc.to_be_bytes());
        let pos = Position { segment: self.segment, offset: self.offset };
        self.file.write_all(&self.buf)?;
        self.offset += self.buf.len() as u64;
        self.unsynced = true;
        Ok(pos)
    }

    /// Closes segments once they pass `bytes` instead of `SEGMENT_BYTES_MAX` (tests make
    /// many small segments with it).
    pub fn with_segment_bytes(mut self, bytes: u64) -> LogWriter {
        self.segment_bytes = bytes.max(1);
        self
    }

    /// The log already records a signed checkpoint of `signed` records (found by the
    /// scan that opened it): the frames written next record no less.
    pub fn with_signed_floor(mut self, signed: u64) -> LogWriter {
        self.signed = self.signed.max(signed);
        self
    }

    /// Makes every appended frame durable (one `fdatasync`).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Where the next frame will go.
    pub fn end(&self) -> Position {
        Position { segment: self.segment, offset: self.offset }
    }

    /// Takes back every frame appended since the log ended at `to` (appended, or half
    /// written by a failed write, but not yet synced): segments started since are removed
    /// and the segment `to` is in is cut back to it. The writer calls this when a write
    /// failed (a full disk), so that the log again ends where its last acknowledged
    /// record does.
    pub fn rewind(&mut self, to: Position) -> Result<(), StoreError> {
        // Also a segment whose creation failed half way (its header not whole).
        let newer: Vec<u64> = list_segments(&self.dir)?.into_iter().filter(|&first| first > to.segment).collect();
        for &first in &newer {
            fs::remove_file(segment_path(&self.dir, first))?;
        }
        if !newer.is_empty() {
            crate::fsutil::sync_dir(&self.dir)?;
        }
        if to.segment != self.segment {
            let path = segment_path(&self.dir, to.segment);
            self.version = read_segment_header(&path)?.version;
            self.file = OpenOptions::new().write(true).open(path)?;
            self.segment = to.segment;
        }
        self.file.set_len(to.offset)?;
        self.file.sync_all()?;
        self.file.seek(SeekFrom::Start(to.offset))?;
        self.offset = to.offset;
        self.unsynced = false;
        Ok(())
    }

    fn roll(&mut self, first_seq: u64) -> Result<(), StoreError> {
        self.sync()?;
        let (file, off) = create_segment(&self.dir, &self.ledger_id, first_seq)?;
        self.file = file;
        self.segment = first_seq;
        self.offset = off;
        self.version = SEGMENT_VERSION;
        Ok(())
    }
}

fn create_segment(dir: &Path, ledger_id: &str, first_seq: u64) -> Result<(File, u64), StoreError> {
    let path = segment_path(dir, first_seq);
    let mut file = OpenOptions::new().write(true).create_new(true).open(&path)?;
    let header = segment_header(ledger_id, first_seq);
    file.write_all(&header)?;
    file.sync_all()?;
    // The new file's name must be durable too.
    File::open(dir)?.sync_all()?;
    Ok((file, header.len() as u64))
}

/// What a scan found at the end of the log.
#[derive(Debug, Default)]
pub struct ScanEnd {
    /// Where the next frame goes (after cutting a torn tail).
    pub end: Option<Position>,
    /// A torn tail (cut, if the scan repaired): segment, offset, bytes.
    pub cut: Option<(u64, u64, u64)>,
    /// The torn tail is a whole segment whose creation was interrupted (its header cut
    /// short): cutting it removes the file.
    pub torn_segment: bool,
    /// The largest checkpoint size the frames read record as signed (`Frame::signed`).
    pub signed: u64,
}

/// Reads every frame from `from` (or the start of the log) to the end, handing each to
/// `f`. A torn tail is cut off (if `repair`) and reported; other damage is an error.
pub fn scan(
    dir: &Path,
    ledger_id: &str,
    from: Option<Position>,
    repair: bool,
    f: &mut dyn FnMut(Frame) -> Result<(), StoreError>,
) -> Result<ScanEnd, StoreError> {
    scan_while(dir, ledger_id, from, repair, &mut |frame| f(frame).map(|()| true))
}

/// Like `scan`, but stops as soon as `f` returns `false` (a reader that has what it
/// wanted need not read the rest of the log). A stopped scan reports no end position.
pub fn scan_while(
    dir: &Path,
    ledger_id: &str,
    from: Option<Position>,
    repair: bool,
    f: &mut dyn FnMut(Frame) -> Result<bool, StoreError>,
) -> Result<ScanEnd, StoreError> {
    let segments = list_segments(dir)?;
    let mut out = ScanEnd::default();
    let start_idx = match from {
        Some(p) => segments.iter().position(|s| *s == p.segment).ok_or_else(|| StoreError::Corruption {
            at: format!("segment {:020}.seg", p.segment),
            why: "the index refers to a segment that is missing from the log directory".into(),
        })?,
        None => 0,
    };
    let mut torn_segment = false;
    let mut newest_version = 1;
    for (i, &seg) in segments.iter().enumerate().skip(start_idx) {
        let path = segment_path(dir, seg);
        // A segment the scan starts inside (a snapshot or the index reached into it) held
        // acknowledged records: it can never be a torn tail.
        let acknowledged_inside = from.is_some_and(|p| p.segment >= seg);
        let header = match read_segment_header(&path) {
            Ok(h) => h,
            // A crash while the newest segment was being created leaves it holding part
            // of its header and nothing else: a torn tail, never acknowledged.
            Err(e) if i + 1 == segments.len() && !acknowledged_inside && std::fs::metadata(&path)?.len() <= (12 + ledger_id.len() + 12) as u64 => {
                let len = std::fs::metadata(&path)?.len();
                tracing::debug!(error = %e, "the newest segment holds only part of its header");
                out.cut = Some((seg, 0, len));
                torn_segment = true;
                break;
            }
            Err(StoreError::Corruption { at, why }) if acknowledged_inside => {
                return Err(StoreError::Corruption { at, why: format!("{why}: acknowledged records are damaged or missing (the index or a snapshot reaches into this segment); nothing was cut") })
            }
            Err(e) => return Err(e),
        };
        let (id, first, header_len, version) = (&header.ledger_id, header.first_seq, header.len, header.version);
        if id != ledger_id {
            return Err(StoreError::Corruption { at: path.display().to_string(), why: format!("belongs to ledger {id:?}, not {ledger_id:?}") });
        }
        if first != seg {
            return Err(StoreError::Corruption { at: path.display().to_string(), why: format!("header says first seq {first}") });
        }
        if version < newest_version {
            return Err(StoreError::Corruption { at: path.display().to_string(), why: format!("a version-{version} segment after a version-{newest_version} one: segments were swapped or replaced") });
        }
        newest_version = version;
        let last_segment = i + 1 == segments.len();
        let mut file = File::open(&path)?;
        let len = file.metadata()?.len();
        let mut offset = match from {
            Some(p) if p.segment == seg => p.offset,
            _ => header_len,
        };
        if offset > len {
            return Err(StoreError::Corruption {
                at: path.display().to_string(),
                why: format!("acknowledged records are damaged or missing: the index or a snapshot reaches offset {offset} but the file has {len} bytes (the log was truncated or replaced); nothing was cut"),
            });
        }
        file.seek(SeekFrom::Start(offset))?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        // Read from its header: its first frame starts at the record it is named after,
        // and only the newest segment may hold no frame (one is created with its first).
        let whole = offset == header_len;
        let mut frames = 0u64;
        loop {
            if offset == len {
                if whole && frames == 0 && !last_segment {
                    return Err(StoreError::Corruption { at: path.display().to_string(), why: "holds no records but is not the last segment: segments were replaced or cut".into() });
                }
                break;
            }
            let at = || format!("{} offset {offset}", path.display());
            let torn = |why: &str| -> Result<(), StoreError> {
                if last_segment {
                    Ok(())
                } else {
                    Err(StoreError::Corruption { at: at(), why: format!("{why} in a segment that is not the last") })
                }
            };
            if len - offset < FRAME_HEADER as u64 {
                torn("frame header cut short")?;
                out.cut = Some((seg, offset, len - offset));
                break;
            }
            let mut header = [0u8; FRAME_HEADER];
            reader.read_exact(&mut header)?;
            let body_len = u32::from_be_bytes(header[..4].try_into().expect("4")) as u64;
            let crc = u32::from_be_bytes(header[4..].try_into().expect("4"));
            if body_len as usize > FRAME_BYTES_MAX || body_len < body_fixed(version) as u64 {
                if body_len == 0 && crc == 0 {
                    torn("zero-filled frame")?;
                    out.cut = Some((seg, offset, len - offset));
                    break;
                }
                return Err(StoreError::Corruption { at: at(), why: format!("frame length {body_len} is impossible") });
            }
            if offset + FRAME_HEADER as u64 + body_len > len {
                torn("frame cut short")?;
                out.cut = Some((seg, offset, len - offset));
                break;
            }
            let mut body = vec![0u8; body_len as usize];
            reader.read_exact(&mut body)?;
            let frame_end = offset + FRAME_HEADER as u64 + body_len;
            let parsed = parse_body(&body, version, Position { segment: seg, offset }, frame_end);
            if crc32fast::hash(&body) != crc {
                // An unsynced frame torn by a crash ends in blocks that were never
                // written (zeros); a flipped bit elsewhere is damage, never cut.
                // Pages are written whole, so a torn frame ends in at least a sector of
                // zeros (or is zeros throughout, when shorter); no bit flip does that.
                let tail = body.len().min(512);
                let zero_tail = body[body.len() - tail..].iter().all(|b| *b == 0);
                if frame_end == len && zero_tail {
                    torn("last frame's CRC does not match")?;
                    out.cut = Some((seg, offset, len - offset));
                    break;
                }
                let why = match parsed {
                    Err(e) => e,
                    Ok(_) => "frame CRC does not match (the frame header was altered)".into(),
                };
                return Err(StoreError::Corruption { at: at(), why });
            }
            let frame = parsed.map_err(|why| StoreError::Corruption { at: at(), why })?;
            if frame.signed < out.signed {
                return Err(StoreError::Corruption {
                    at: at(),
                    why: format!("the frame records a signed checkpoint of {} records after one that recorded {}: frames were swapped or altered", frame.signed, out.signed),
                });
            }
            out.signed = frame.signed;
            if whole && frames == 0 && frame.first_seq != seg {
                return Err(StoreError::Corruption {
                    at: at(),
                    why: format!("the segment's first frame starts at record {} but the segment is named after record {seg}: segments were renamed or swapped", frame.first_seq),
                });
            }
            frames += 1;
            if !f(frame)? {
                return Ok(ScanEnd { signed: out.signed, ..ScanEnd::default() });
            }
            offset = frame_end;
        }
        out.end = Some(Position { segment: seg, offset: out.cut.map_or(offset, |(_, o, _)| o) });
    }
    out.torn_segment = torn_segment;
    if repair {
        cut_tail(dir, &out)?;
    }
    Ok(out)
}

/// Cuts the torn tail a scan found (`ScanEnd::cut`): truncates the segment, or removes
/// a segment whose creation was interrupted. The caller decides that it was never
/// acknowledged (recovery checks it against the signed checkpoint and the index).
///
/// # Errors
/// I/O errors.
pub fn cut_tail(dir: &Path, end: &ScanEnd) -> Result<(), StoreError> {
    match end.cut {
        Some((seg, _, bytes)) if end.torn_segment => {
            let path = segment_path(dir, seg);
            tracing::warn!(segment = %path.display(), bytes, "removed a segment whose creation a crash interrupted (never acknowledged)");
            std::fs::remove_file(&path)?;
            crate::fsutil::sync_dir(dir)?;
        }
        Some((seg, offset, bytes)) => {
            let path = segment_path(dir, seg);
            tracing::warn!(segment = %path.display(), offset, bytes, "cut a torn, never-acknowledged frame off the end of the log");
            let file = OpenOptions::new().write(true).open(&path)?;
            file.set_len(offset)?;
            file.sync_all()?;
        }
        None => {}
    }
    Ok(())
}

/// Parses a frame body whose length the caller checked to be at least `body_fixed`.
fn parse_body(body: &[u8], version: u16, pos: Position, end: u64) -> Result<Frame, String> {
    let first_seq = u64::from_be_bytes(body[..8].try_into().expect("8"));
    let count = u32::from_be_bytes(body[8..12].try_into().expect("4")) as usize;
    if count == 0 {
        return Err(format!("frame of records from {first_seq} holds no records"));
    }
    if first_seq == 0 {
        return Err("frame of records from 0: records are numbered from 1".into());
    }
    let signed = if version >= 2 { u64::from_be_bytes(body[12..20].try_into().expect("8")) } else { 0 };
    if signed >= first_seq {
        return Err(format!("frame of records from {first_seq} records a signed checkpoint of {signed} records: a checkpoint signed before the frame covers only records before it"));
    }
    let mut records = Vec::with_capacity(count.min(body.len() / 8));
    let mut at = body_fixed(version);
    for i in 0..count {
        let seq = first_seq + i as u64;
        let head = body.get(at..at + 8).ok_or_else(|| format!("record {seq}: length past the end of its frame"))?;
        let len = u32::from_be_bytes(head[..4].try_into().expect("4")) as usize;
        let crc = u32::from_be_bytes(head[4..].try_into().expect("4"));
        at += 8;
        let rec = body.get(at..at + len).ok_or_else(|| format!("record {seq}: length {len} runs past the end of its frame"))?;
        if crc32fast::hash(rec) != crc {
            return Err(format!("record {seq}: bytes do not match their checksum (the record was altered)"));
        }
        records.push(rec.to_vec());
        at += len;
    }
    if at != body.len() {
        return Err(format!("frame of records from {first_seq}: {} bytes after the last record", body.len() - at));
    }
    Ok(Frame { pos, end, first_seq, signed, records_at: pos.offset + (FRAME_HEADER + body_fixed(version)) as u64, records })
}

#[cfg(test)]
mod tests {
    use super::RequestFrames;

    #[test]
    fn a_full_frame_closes_only_where_the_next_request_starts() {
        let mut f = RequestFrames::new(2, usize::MAX);
        let mut closed = Vec::new();
        // Requests a (3 records), b (1), c (2): a overflows the frame but stays whole.
        for (i, req) in ["a", "a", "a", "b", "c", "c"].into_iter().enumerate() {
            closed.extend(f.push(vec![i as u8], req));
        }
        closed.extend(f.finish());
        assert_eq!(closed, vec![vec![vec![0], vec![1], vec![2]], vec![vec![3], vec![4], vec![5]]]);
        // By bytes too (8 bytes of framing per record).
        let mut f = RequestFrames::new(usize::MAX, 10);
        assert!(f.push(vec![0; 4], 1).is_none());
        assert_eq!(f.bytes(), 12);
        assert!(f.closes_before(&2) && !f.closes_before(&1));
        assert_eq!(f.push(vec![1], 2), Some(vec![vec![0; 4]]));
    }
}
