#!/usr/bin/env python3
"""Independent verifier of an Anxin archive (`anxin export --out FILE`).

Written from docs/FORMAT.md alone; it shares no code with the Rust ledger. Needs only the
standard library plus the `blake3` and `PyNaCl` packages:

    pip install blake3 pynacl
    python3 examples/verify_archive.py ARCHIVE --key <verifier key, or ed25519:<64 hex digits>>

It reads archive versions 2 (an RFC 6962 SHA-256 tree over the records' bytes and a C2SP
signed-note checkpoint, FORMAT.md sections 6 to 9) and 1 (the BLAKE3 tree and binary
checkpoint of format 1, section 8.2).

It checks that the checkpoint is signed by the pinned key, that the header's plain copies
(ledger id, key, tree size, root) say what is signed, that every record decodes fully by
FORMAT.md sections 1 to 3 (every field, every value rule, no byte left over), that the
records chain from the genesis hash with sequence numbers 1, 2, 3, ... (each line's `seq`
saying the same), and that the Merkle root and chain head over the records equal the
signed ones.

Exit status:
    0  verified, against the pinned key (`OK: ...` on stdout);
    1  not verified: one line `FAILED: <what and where>` on stderr;
    2  internally consistent, but no key was pinned: the checkpoint was checked only
       against the key the archive itself names, so this proves nothing about who made it.
"""
import argparse
import base64
import binascii
import datetime
import hashlib
import json
import os
import re
import struct
import sys
import unicodedata

import blake3
import nacl.exceptions
from nacl.signing import VerifyKey

RECORD_CONTEXT = "anxin v1 record"
GENESIS_CONTEXT = "anxin v1 genesis"
CHECKPOINT_PREFIX = b"anxin v1 checkpoint\x00"
RECORD_BYTES_MAX = 1 << 20  # section 1: decoders refuse a longer record
MONEY_FEN_MAX = 10 ** 17  # section 1: a Money outside 0..=10^17 does not decode
YEARS = range(2000, 2200)  # section 1: dates and periods fall in the years 2000 to 2199
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
HEX = re.compile(r"[0-9a-fA-F]*\Z")

EXIT_OK, EXIT_FAILED, EXIT_UNPINNED = 0, 1, 2


class Refused(Exception):
    """The archive fails a check; the message says what and where."""


class DecodeError(Exception):
    """A record's bytes are not a canonical record; the message names the field."""


class BadValue(Exception):
    """A value read from a record breaks its rule; `read` adds the field and offset."""


def derive(context, data):
    return blake3.blake3(data, derive_key_context=context).digest()


def sha256(data):
    return hashlib.sha256(data).digest()


class Tree:
    """The tree of section 6 (version 2: RFC 6962 with SHA-256, the leaf of a record is
    SHA-256(00 || its canonical bytes)) or of format 1 (BLAKE3, the leaf of a record is
    BLAKE3(00 || its hash)), as a compact range: roots of perfect subtrees, largest first."""

    def __init__(self, version):
        self.h = sha256 if version == 2 else (lambda d: blake3.blake3(d).digest())
        self.v1 = version == 1
        self.size = 0
        self.peaks = []  # (level, hash)

    def push_record(self, rec_bytes, rec_hash):
        h = self.h(b"\x00" + (rec_hash if self.v1 else rec_bytes))
        level = 0
        while self.peaks and self.peaks[-1][0] == level:
            _, left = self.peaks.pop()
            h = self.h(b"\x01" + left + h)
            level += 1
        self.peaks.append((level, h))
        self.size += 1

    def root(self):
        if not self.peaks:
            return self.h(b"")
        acc = self.peaks[-1][1]
        for _, h in reversed(self.peaks[:-1]):
            acc = self.h(b"\x01" + h + acc)
        return acc


# --- Canonical decoding (FORMAT.md section 1) -----------------------------------------


class Reader:
    """Reads canonical bytes front to back; every read checks that the bytes are there."""

    def __init__(self, data):
        self.data, self.at = data, 0

    def left(self):
        return len(self.data) - self.at

    def take(self, n):
        if n > self.left():
            raise BadValue("needs %d bytes, only %d left" % (n, self.left()))
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def unpack(self, fmt, n):
        return struct.unpack(fmt, self.take(n))[0]


# Each type below is a function (reader, path) -> value. Scalar types raise BadValue;
# composite ones read their parts through `read`, which names the part in the error.


def read(r, path, typ):
    """Reads one value of `typ` at `path` (e.g. `event.lines[3].amount_due`)."""
    start = r.at
    try:
        return typ(r, path)
    except BadValue as e:
        raise DecodeError("%s (at byte %d): %s" % (path, start, e))


def u8(r, path):
    return r.unpack(">B", 1)


def u16(r, path):
    return r.unpack(">H", 2)


def u32(r, path):
    return r.unpack(">I", 4)


def u64(r, path):
    return r.unpack(">Q", 8)


def i64(r, path):
    return r.unpack(">q", 8)


def boolean(r, path):
    """`bool`: one byte, `00` false or `01` true."""
    b = r.unpack(">B", 1)
    if b > 1:
        raise BadValue("bool byte %02x is neither 00 nor 01" % b)
    return b == 1


def hash32(r, path):
    """A 32-byte hash or commitment: the bytes, no length."""
    return r.take(32)


def string(r, path):
    """`u64` byte length, then that many bytes of UTF-8."""
    n = r.unpack(">Q", 8)
    if n > r.left():
        raise BadValue("string of %d bytes, but only %d bytes are left" % (n, r.left()))
    raw = r.take(n)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadValue("string is not UTF-8 (byte %d of the string: %s)" % (e.start, e.reason))


def bounded(max_bytes, id_like, what):
    """A string with the rule of its kind: 1 to `max_bytes` bytes; an id is printable
    ASCII without spaces; free text holds no control character (Unicode category Cc)."""

    def read_bounded(r, path):
        text = string(r, path)
        n = len(text.encode("utf-8"))
        if n == 0:
            raise BadValue("%s must not be empty" % what)
        if n > max_bytes:
            raise BadValue("%s of %d bytes, more than %d" % (what, n, max_bytes))
        if id_like and not all("!" <= c <= "~" for c in text):
            raise BadValue("%s must be printable ASCII without spaces" % what)
        if any(unicodedata.category(c) == "Cc" for c in text):
            raise BadValue("%s must not contain control characters" % what)
        return text

    return read_bounded


PROJECT_ID = bounded(64, True, "project id")
BANK_CODE = bounded(64, True, "bank code")
DOC_NO = bounded(64, True, "document number")
TEXT = bounded(256, False, "text")
REQUEST_ID = bounded(64, True, "request id")


def option(typ):
    """`Option<T>`: `00` for none, `01` then `T`."""

    def read_option(r, path):
        tag = r.unpack(">B", 1)
        if tag == 0:
            return None
        if tag != 1:
            raise BadValue("option tag %02x is neither 00 (none) nor 01 (some)" % tag)
        return read(r, path, typ)

    return read_option


def vec(typ):
    """`Vec<T>`: `u64` element count, then each element."""

    def read_vec(r, path):
        n = r.unpack(">Q", 8)
        # Every element takes at least one byte: a count past the bytes left is damage,
        # refused here rather than after a long loop.
        if n > r.left():
            raise BadValue("list of %d elements, but only %d bytes are left" % (n, r.left()))
        return [read(r, "%s[%d]" % (path, i), typ) for i in range(n)]

    return read_vec


def struct_of(fields):
    """A struct: its fields in order, nothing between them."""

    def read_struct(r, path):
        return {name: read(r, "%s.%s" % (path, name), typ) for name, typ in fields}

    return read_struct


def enum_index(names):
    """A fieldless enum: the `u32` variant index, which must name a variant."""

    def read_enum(r, path):
        i = r.unpack(">I", 4)
        if i >= len(names):
            raise BadValue("variant index %d, but there are only %d variants (0 to %d)" % (i, len(names), len(names) - 1))
        return names[i]

    return read_enum


def money(r, path):
    """`i64` fen; a record holding one outside 0..=10^17 does not decode."""
    fen = r.unpack(">q", 8)
    if not 0 <= fen <= MONEY_FEN_MAX:
        raise BadValue("%d fen is not an amount of money (0 to 10^17 fen)" % fen)
    return fen


def date(r, path):
    """`u32` yyyymmdd: a real calendar day of the years 2000 to 2199."""
    v = r.unpack(">I", 4)
    y, m, d = v // 10000, v // 100 % 100, v % 100
    try:
        if y not in YEARS:
            raise ValueError
        datetime.date(y, m, d)
    except ValueError:
        raise BadValue("%d is not a date yyyymmdd (a calendar day of the years 2000 to 2199)" % v)
    return v


def period(r, path):
    """`u32` yyyymm: a month 1 to 12 of the years 2000 to 2199."""
    v = r.unpack(">I", 4)
    if v // 100 not in YEARS or not 1 <= v % 100 <= 12:
        raise BadValue("%d is not a month yyyymm (month 1 to 12, years 2000 to 2199)" % v)
    return v


def county_code_ok(n):
    """A county-level division: 6 digits, province part 11 to 82, not ending in 0000."""
    return 100000 <= n <= 999999 and 11 <= n // 10000 <= 82 and n % 10000 != 0


def county(r, path):
    """`u32` of the 6 digits of a county code."""
    n = r.unpack(">I", 4)
    if not county_code_ok(n):
        raise BadValue("%d is not a county code (6 digits, province 11 to 82, not ending in 0000)" % n)
    return n


def uscc_problem(text):
    """Why `text` is not a unified social credit code (GB 32100), or None if it is one."""
    if len(text) != 18:
        return "must be 18 characters"
    if any(c not in USCC_CHARSET for c in text):
        return "character outside 0-9 and A-Y without I, O, Z, S, V"
    total = sum(w * USCC_CHARSET.index(c) for w, c in zip(USCC_WEIGHTS, text[:17]))
    if text[17] != USCC_CHARSET[(31 - total % 31) % 31]:
        return "check character does not match"
    return None


def uscc(r, path):
    """A string holding a USCC with its check character."""
    text = string(r, path)
    why = uscc_problem(text)
    if why:
        raise BadValue("%r is not a unified social credit code: %s" % (text[:40], why))
    return text


def principal(r, path):
    """`bank:<code>`, `contractor:<USCC>`, `county:<6 digits>`, `auditor` or `operator`."""
    text = string(r, path)
    kind, colon, rest = text.partition(":")
    if not colon and text in ("auditor", "operator"):
        return text
    if colon and kind == "bank":
        # A bank code: 1 to 64 bytes of printable ASCII without spaces.
        if 1 <= len(rest) <= 64 and all("!" <= c <= "~" for c in rest):
            return text
        raise BadValue("principal %r: the bank code must be 1 to 64 printable ASCII characters without spaces" % text[:40])
    if colon and kind == "contractor":
        why = uscc_problem(rest)
        if why is None:
            return text
        raise BadValue("principal %r: not a unified social credit code: %s" % (text[:40], why))
    if colon and kind == "county":
        if len(rest) == 6 and all(c in "0123456789" for c in rest) and county_code_ok(int(rest)):
            return text
        raise BadValue("principal %r: not a county code (6 digits, province 11 to 82, not ending in 0000)" % text[:40])
    raise BadValue("principal %r is not bank:<code>, contractor:<USCC>, county:<code>, auditor or operator" % text[:40])


# --- Records and events (FORMAT.md sections 2 and 3) ----------------------------------

PROJECT_STATUS = enum_index(["Active", "Suspended", "Completed"])
PAYROLL_LINE = struct_of([("worker", hash32), ("employer", uscc), ("days", u8), ("amount_due", money)])
DRAWDOWN_PAYEE = struct_of([("worker", hash32), ("card", hash32), ("amount", money), ("period", option(period))])

def listing_basis(r, path):
    """`u32` variant index: 0 UnmetOrder followed by the order's number, 1 MassIncident
    followed by its description (text)."""
    i = r.unpack(">I", 4)
    if i == 0:
        return {"UnmetOrder": read(r, path + ".UnmetOrder", DOC_NO)}
    if i == 1:
        return {"MassIncident": read(r, path + ".MassIncident", TEXT)}
    raise BadValue("variant index %d, but ListingBasis has 2 variants (0 and 1)" % i)


# Event variants in index order: (name, fields in order). Section 3, table "Events".
EVENTS = [
    ("ProjectRegistered", [("project", PROJECT_ID), ("county", county), ("name", TEXT), ("general_contractor", uscc),
                           ("owner", uscc), ("contract_price", money), ("contract_date", date), ("permit_date", option(date)),
                           ("start_date", date), ("planned_end", date), ("labour_ratio_bp", option(u32)),
                           ("deposit_rate_bp", option(u32))]),
    ("ProjectStatusChanged", [("project", PROJECT_ID), ("status", PROJECT_STATUS), ("date", date)]),
    ("WageAccountOpened", [("project", PROJECT_ID), ("bank", BANK_CODE), ("account_no", TEXT), ("date", date)]),
    ("WageAccountClosed", [("project", PROJECT_ID), ("date", date), ("residual", money)]),
    ("WorkerEnrolled", [("project", PROJECT_ID), ("worker", hash32), ("worker_masked", TEXT), ("employer", uscc),
                        ("card", hash32), ("card_masked", TEXT), ("date", date)]),
    ("ContractRecorded", [("project", PROJECT_ID), ("worker", hash32), ("contract_no", DOC_NO), ("date", date)]),
    ("WorkerExited", [("project", PROJECT_ID), ("worker", hash32), ("date", date)]),
    ("PayrollSubmitted", [("project", PROJECT_ID), ("period", period), ("due_date", date), ("lines", vec(PAYROLL_LINE))]),
    ("DepositPaid", [("project", PROJECT_ID), ("bank", BANK_CODE), ("payment_no", DOC_NO), ("amount", money), ("date", date)]),
    ("GuaranteeLetterIssued", [("project", PROJECT_ID), ("letter_no", DOC_NO), ("bank", BANK_CODE), ("amount", money),
                               ("valid_from", date), ("valid_to", date)]),
    ("GuaranteeLetterCancelled", [("project", PROJECT_ID), ("letter_no", DOC_NO), ("date", date)]),
    ("ProgressPaymentMade", [("project", PROJECT_ID), ("payment_no", DOC_NO), ("total", money), ("wage_share", money),
                             ("date", date)]),
    ("WageAccountToppedUp", [("project", PROJECT_ID), ("payment_no", DOC_NO), ("amount", money), ("date", date)]),
    ("WagePaid", [("project", PROJECT_ID), ("payment_no", DOC_NO), ("worker", hash32), ("card", hash32), ("amount", money),
                  ("date", date), ("period", option(period))]),
    ("DepositDrawn", [("project", PROJECT_ID), ("order_no", DOC_NO), ("date", date), ("payees", vec(DRAWDOWN_PAYEE))]),
    ("DepositReleased", [("project", PROJECT_ID), ("date", date), ("amount", money)]),
    # Format 2 only.
    ("BalanceAttested", [("project", PROJECT_ID), ("account", enum_index(["Wage", "Deposit"])), ("bank", BANK_CODE),
                         ("date", date), ("closing_balance", money), ("bank_ref", DOC_NO)]),
    # Format 3 only: the county's casework.
    ("CaseOpened", [("case_no", DOC_NO), ("county", county),
                    ("source", enum_index(["Complaint", "NationalPlatform", "ProvincialPlatform", "Inspection"])),
                    ("received_on", date), ("employer", uscc), ("project", option(PROJECT_ID)), ("workers", vec(hash32)),
                    ("amount_claimed", money), ("summary", option(TEXT))]),
    ("CaseDecided", [("case_no", DOC_NO), ("county", county), ("date", date), ("accepted", boolean), ("reason", option(TEXT))]),
    ("CaseExtended", [("case_no", DOC_NO), ("county", county), ("date", date), ("reason", TEXT)]),
    ("CaseClosed", [("case_no", DOC_NO), ("county", county), ("date", date),
                    ("outcome", enum_index(["Recovered", "NoArrears", "Withdrawn", "Transferred"])), ("recovered", money),
                    ("payouts", vec(u64)), ("note", option(TEXT))]),
    ("OrderIssued", [("order_no", DOC_NO), ("county", county), ("project", PROJECT_ID), ("employer", uscc),
                     ("case_no", option(DOC_NO)), ("issued_on", date), ("deadline", date), ("amount", money),
                     ("workers", u32), ("largest", money), ("demand", TEXT)]),
    ("OrderResolved", [("order_no", DOC_NO), ("county", county), ("date", date), ("complied", boolean),
                       ("records", vec(u64)), ("note", option(TEXT))]),
    ("OrderReferred", [("order_no", DOC_NO), ("county", county), ("date", date), ("police_ref", DOC_NO)]),
    ("EmployerListed", [("county", county), ("employer", uscc), ("listed_on", date), ("basis", listing_basis)]),
    ("EmployerDelisted", [("county", county), ("employer", uscc), ("date", date), ("note", option(TEXT))]),
    ("InspectionRecorded", [("county", county), ("employer", uscc), ("date", date), ("project", option(PROJECT_ID)),
                            ("contracts_signed", u32), ("findings", TEXT)]),
    ("CardsRecorded", [("county", county), ("bank", BANK_CODE), ("date", date), ("issued", u32), ("activated", u32)]),
    ("ReferralOutcomeRecorded", [("order_no", DOC_NO), ("county", county), ("date", date),
                                 ("outcome", enum_index(["Filed", "NotFiled", "Convicted", "Dropped"])),
                                 ("reference", option(DOC_NO)), ("note", option(TEXT))]),
]

# The events each record format holds: 0-15 in format 1, 16 from format 2, 17-28 from 3.
EVENTS_IN_FORMAT = {1: 16, 2: 17, 3: 29}


def deposit_basis(r, path):
    """`u32` variant index: 0 ByPrice, 1 Required, 2 Exempt followed by its basis (text)."""
    i = r.unpack(">I", 4)
    if i == 0:
        return "ByPrice"
    if i == 1:
        return "Required"
    if i == 2:
        return {"Exempt": read(r, path + ".Exempt", TEXT)}
    raise BadValue("variant index %d, but DepositBasis has 3 variants (0 to 2)" % i)


# Format 2 (FORMAT.md section 3): fields added at the end of four events.
EVENTS_V2_FIELDS = {
    "ProjectRegistered": [("registered_on", option(date)), ("deposit_basis", deposit_basis),
                          ("funding", enum_index(["Unstated", "Government", "Other"]))],
    "PayrollSubmitted": [("payroll_no", option(DOC_NO)), ("submitted_on", option(date))],
    "GuaranteeLetterIssued": [("issued_on", option(date)), ("applicant", option(uscc)), ("beneficiary", option(TEXT))],
    "DepositDrawn": [("order_date", option(date)), ("reason", option(TEXT))],
}


def event_of(version):
    """The event reader of a record format: `u32` variant index (0 to 15 in format 1, to
    16 in format 2, to 28 in format 3), then the variant's fields (from format 2, with the
    fields EVENTS_V2_FIELDS adds)."""

    def event(r, path):
        i = r.unpack(">I", 4)
        known = EVENTS_IN_FORMAT[version]
        if i >= known:
            raise BadValue("variant index %d is not an event of format %d (0 to %d)" % (i, version, known - 1))
        name, fields = EVENTS[i]
        if version >= 2:
            fields = fields + EVENTS_V2_FIELDS.get(name, [])
        return dict(read(r, "%s %d %s" % (path, i, name), struct_of(fields)), variant=name)

    return event


def decode_record(raw):
    """Decodes a record's canonical bytes completely (sections 1 to 3).

    Returns its fields as a dict; raises DecodeError naming the field and byte offset if
    anything does not decode, breaks a value rule, or if bytes remain after the event.
    """
    if len(raw) > RECORD_BYTES_MAX:
        raise DecodeError("%d bytes, more than the %d a record may have" % (len(raw), RECORD_BYTES_MAX))
    r = Reader(raw)
    rec = {"version": read(r, "version", u16)}
    if rec["version"] not in EVENTS_IN_FORMAT:
        raise DecodeError("unknown format version %d (this verifier knows versions 1 to 3)" % rec["version"])
    for name, typ in [("seq", u64), ("prev_hash", hash32), ("recorded_at_ms", i64), ("principal", principal),
                      ("request_id", REQUEST_ID), ("event", event_of(rec["version"]))]:
        rec[name] = read(r, name, typ)
    if r.left():
        raise DecodeError("%d byte(s) remain after the event (a record has exactly one encoding)" % r.left())
    return rec


ORIGIN_PREFIX = "anxin/"
SIG_ED25519 = 1
DASH = "\u2014 "


def key_id(name, sig_type, public):
    """signed-note: SHA-256(name || 0x0A || type || public key)[:4], big-endian."""
    return sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public)[:4]


def b64(text, what):
    """Standard base64 (RFC 4648 section 4), padded, in its one canonical spelling."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise DecodeError("%s is not base64" % what)
    if base64.b64encode(raw).decode("ascii") != text:
        raise DecodeError("%s is not in canonical base64" % what)
    return raw


def origin_of(ledger_id):
    return ORIGIN_PREFIX + ledger_id.replace("%", "%25").replace("+", "%2B")


def decimal(text, what):
    if not re.fullmatch(r"0|[1-9][0-9]*", text):
        raise DecodeError("the %s %r is not a decimal without leading zeros" % (what, text[:24]))
    return int(text)


def parse_note_checkpoint(text):
    """A checkpoint of format 2 (section 8): a C2SP signed note. Returns the checkpoint's
    fields, its text and its signature lines as (name, key id, signature). Raises
    DecodeError."""
    if any(ord(c) < 0x20 and c != "\n" or c == "\x7f" for c in text):
        raise DecodeError("a control character other than the newline")
    if not text.endswith("\n") or "\n\n" not in text:
        raise DecodeError("not a signed note (text, blank line, signature lines)")
    cut = text.rindex("\n\n")
    body, sig_text = text[:cut + 1], text[cut + 2:]
    sigs = []
    for line in sig_text[:-1].split("\n") if sig_text else []:
        if not line.startswith(DASH) or " " not in line[len(DASH):]:
            raise DecodeError("a signature line is not an em dash, a key name and a signature")
        name, sig = line[len(DASH):].split(" ", 1)
        if not name or "+" in name or any(c.isspace() for c in name):
            raise DecodeError("a signature line's key name is empty or has a space or a plus")
        raw = b64(sig, "the signature of " + name)
        if len(raw) < 5:
            raise DecodeError("the signature of %s is too short" % name)
        sigs.append((name, raw[:4], raw[4:]))
    if not sigs:
        raise DecodeError("no signature")
    lines = body[:-1].split("\n")
    if len(lines) != 5:
        raise DecodeError("%d lines, not the 5 of an Anxin checkpoint" % len(lines))
    origin, size, root, head, time = lines
    escaped = origin[len(ORIGIN_PREFIX):] if origin.startswith(ORIGIN_PREFIX) else None
    ledger_id = escaped.replace("%2B", "+").replace("%25", "%") if escaped is not None else None
    if ledger_id is None or origin_of(ledger_id) != origin:
        raise DecodeError("the origin %r is not anxin/<ledger id>" % origin[:80])
    root = b64(root, "the root hash")
    if len(root) != 32:
        raise DecodeError("the root hash is not 32 bytes")
    if not head.startswith("chain-head ") or not re.fullmatch(r"[0-9a-f]{64}", head[len("chain-head "):]):
        raise DecodeError("the fourth line is not chain-head <64 lowercase hex digits>")
    if not time.startswith("timestamp-ms "):
        raise DecodeError("the fifth line is not timestamp-ms <milliseconds>")
    return {"ledger_id": ledger_id, "origin": origin, "tree_size": decimal(size, "tree size"), "root": root,
            "chain_head": bytes.fromhex(head[len("chain-head "):]),
            "timestamp_ms": decimal(time[len("timestamp-ms "):], "timestamp"),
            "text": body.encode("utf-8"), "signatures": sigs}


def parse_signed_checkpoint(raw):
    """A signed checkpoint of format 1 (section 8.2): canonical checkpoint bytes, then the signature as a
    byte string of 64 bytes, and nothing after. Raises DecodeError."""
    r = Reader(raw)
    cp = {}
    for name, typ in [("version", u16), ("ledger_id", string), ("tree_size", u64), ("root", hash32),
                      ("chain_head", hash32), ("timestamp_ms", i64)]:
        cp[name] = read(r, name, typ)
    if cp["version"] != 1:
        raise DecodeError("unknown checkpoint version %d" % cp["version"])
    cp["bytes"] = raw[:r.at]
    sig_len = read(r, "signature length", u64)
    if sig_len != 64:
        raise DecodeError("the signature is %d bytes, not 64" % sig_len)
    cp["signature"] = read(r, "signature", lambda r, _: r.take(64))
    if r.left():
        raise DecodeError("%d byte(s) remain after the signature" % r.left())
    return cp


# --- The archive (FORMAT.md section 9) ------------------------------------------------


def no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError("duplicate key %r" % dup[0])
    return dict(pairs)


def no_constant(name):
    raise ValueError("%s is not JSON" % name)


def json_object(raw, where):
    """One line of the archive as a JSON object (UTF-8, no duplicate keys)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Refused("%s: not UTF-8 (byte %d)" % (where, e.start))
    if not text.strip():
        raise Refused("%s: empty line" % where)
    try:
        obj = json.loads(text, object_pairs_hook=no_duplicate_keys, parse_constant=no_constant)
    except (ValueError, RecursionError) as e:  # RecursionError: nested past Python's limit
        raise Refused("%s: not JSON: %s" % (where, e))
    if not isinstance(obj, dict):
        raise Refused("%s: not a JSON object" % where)
    return obj


def field(obj, name, kind, where):
    """`obj[name]`, which must be there and be of `kind` (str, or int without bool)."""
    if name not in obj:
        raise Refused("%s: no %r field" % (where, name))
    v = obj[name]
    if kind is int and (type(v) is not int or v < 0):
        raise Refused("%s: %r is %s, not a non-negative integer" % (where, name, json.dumps(v)[:40]))
    if kind is str and not isinstance(v, str):
        raise Refused("%s: %r is %s, not a string" % (where, name, json.dumps(v)[:40]))
    return v


def from_hex(text, what, where, max_bytes=None):
    if len(text) % 2 or not HEX.match(text):
        raise Refused("%s: %s is not an even number of hex digits" % (where, what))
    if max_bytes is not None and len(text) // 2 > max_bytes:
        raise Refused("%s: %s holds %d bytes, more than the %d a record may have" % (where, what, len(text) // 2, max_bytes))
    return bytes.fromhex(text)


def parse_key(text, where):
    """A verifier key `<name>+<key id>+<base64(01 || key)>` (signed-note), or `ed25519:`
    and 64 hex digits (the prefix may be left out), as a PyNaCl key."""
    if "+" in text:
        parts = text.split("+", 2)  # neither a name nor a key ID holds a plus; base64 may
        try:
            if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
                raise DecodeError("not <name>+<key id>+<key>")
            material = b64(parts[2], "the key")
        except DecodeError as e:
            raise Refused("%s: %r is not a verifier key: %s" % (where, text[:80], e))
        if len(material) != 33 or material[0] != SIG_ED25519:
            raise Refused("%s: %r is not an Ed25519 verifier key" % (where, text[:80]))
        if key_id(parts[0], SIG_ED25519, material[1:]).hex() != parts[1]:
            raise Refused("%s: %r: the key ID is not the one of its name and key" % (where, text[:80]))
        h = material[1:].hex()
    else:
        h = text[len("ed25519:"):] if text.startswith("ed25519:") else text
    if len(h) != 64 or not HEX.match(h):
        raise Refused("%s: %r is not ed25519:<64 hex digits>" % (where, text[:80]))
    try:
        return VerifyKey(bytes.fromhex(h))
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as e:
        raise Refused("%s: %r is not an Ed25519 public key: %s" % (where, text[:80], e))


def check_signature(cp, version, key, key_text, pinned):
    """The checkpoint's signature by `key`. Version 2: among the note's signature lines,
    those of key name = origin and this key's key ID (others are ignored, as the note
    specification requires); at least one, and every one must verify."""
    whose = "pinned" if pinned else "archive's own"
    if version == 1:
        messages = [(CHECKPOINT_PREFIX + cp["bytes"], cp["signature"])]
    else:
        want = key_id(cp["origin"], SIG_ED25519, bytes(key))
        messages = [(cp["text"], sig) for name, kid, sig in cp["signatures"] if name == cp["origin"] and kid == want]
        if not messages:
            raise Refused("the checkpoint carries no signature of the pinned key %s (key name %s, key ID %s)" % (
                key_text, cp["origin"], want.hex()))
    for message, sig in messages:
        try:
            key.verify(message, sig)
        except (nacl.exceptions.CryptoError, ValueError):
            raise Refused("the checkpoint's signature does not verify with the %s key %s" % (whose, key_text))


def verify(path, pinned_text):
    """Verifies the archive at `path`; returns (records, ledger id, root, key text).
    Raises Refused at the first check that fails."""
    pinned = parse_key(pinned_text, "--key") if pinned_text is not None else None
    try:
        f = open(path, "rb")
    except OSError as e:
        raise Refused("cannot open %s: %s" % (path, e.strerror or e))
    with f:
        first = f.readline()
        if not first:
            raise Refused("line 1: the file is empty")
        header = json_object(first, "line 1 (header)")
        where = "line 1 (header)"
        version = header.get("version")
        if header.get("format") != "anxin-archive" or type(version) is not int or version not in (1, 2):
            raise Refused("%s: not an anxin-archive of version 1 or 2 (format %s, version %s)" % (
                where, json.dumps(header.get("format"))[:40], json.dumps(version)[:40]))
        header_key_text = field(header, "public_key", str, where)
        header_key = parse_key(header_key_text, where + " public_key")
        if version == 1:
            try:
                cp = parse_signed_checkpoint(from_hex(field(header, "checkpoint_hex", str, where), "checkpoint_hex", where))
            except DecodeError as e:
                raise Refused("%s: checkpoint_hex is not a signed checkpoint: %s" % (where, e))
        else:
            try:
                cp = parse_note_checkpoint(field(header, "checkpoint", str, where))
            except DecodeError as e:
                raise Refused("%s: checkpoint: not a checkpoint: %s" % (where, e))
        key = pinned or header_key
        key_text = "ed25519:" + bytes(key).hex()
        check_signature(cp, version, key, key_text, pinned)
        # The header's plain copies of what is signed must say the same: a reader who
        # trusted them would be misled.
        ledger_id = cp["ledger_id"]
        if field(header, "ledger_id", str, where) != ledger_id:
            raise Refused("%s: ledger_id %r is not the signed checkpoint's %r" % (where, header["ledger_id"][:80], ledger_id))
        if bytes(header_key) != bytes(key):
            raise Refused("%s: public_key %s is not the pinned key %s that signed the checkpoint" % (
                where, header_key_text[:80], key_text))
        if field(header, "tree_size", int, where) != cp["tree_size"]:
            raise Refused("%s: tree_size %d is not the signed checkpoint's %d" % (where, header["tree_size"], cp["tree_size"]))
        if field(header, "root_hex", str, where) != cp["root"].hex():
            raise Refused("%s: root_hex %s is not the signed checkpoint's root %s" % (
                where, header["root_hex"][:64], cp["root"].hex()))

        prev = derive(GENESIS_CONTEXT, ledger_id.encode("utf-8"))
        tree = Tree(version)
        expected = 1
        for line_no, raw in enumerate(f, start=2):
            where = "line %d (record %d)" % (line_no, expected)
            obj = json_object(raw, where)
            rec_bytes = from_hex(field(obj, "hex", str, where), "hex", where, RECORD_BYTES_MAX)
            try:
                rec = decode_record(rec_bytes)
            except DecodeError as e:
                raise Refused("record %d: cannot decode: %s" % (expected, e))
            if rec["seq"] != expected:
                raise Refused("record %d: carries sequence number %d (records missing or out of order)" % (expected, rec["seq"]))
            if rec["prev_hash"] != prev:
                raise Refused("record %d: previous hash does not match the hash of record %d" % (expected, expected - 1))
            # The line's `seq` is a plain copy of the record's own: both must agree.
            if field(obj, "seq", int, where) != rec["seq"]:
                raise Refused("%s: the line says seq %d but the record is %d" % (where, obj["seq"], rec["seq"]))
            prev = derive(RECORD_CONTEXT, rec_bytes)
            tree.push_record(rec_bytes, prev)
            expected += 1
    if tree.size != cp["tree_size"]:
        raise Refused("the checkpoint covers %d records but the archive holds %d" % (cp["tree_size"], tree.size))
    if tree.root() != cp["root"]:
        raise Refused("after %d records the Merkle root differs from the signed one" % tree.size)
    if prev != cp["chain_head"]:
        raise Refused("the signed chain head is not the hash of record %d%s" % (
            tree.size, " (the genesis hash)" if tree.size == 0 else ""))
    return tree.size, ledger_id, tree.root().hex(), key_text


# --- Offline receipts (FORMAT.md sections 8.3 and 8.4) ---------------------------------


def node(left, right):
    return sha256(b"\x01" + left + right)


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 2.1.3.2 with SHA-256."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def cosigned_by(cp, witnesses):
    """The names of `witnesses` ({name: (key id, VerifyKey)}, from type-04 vkeys) whose
    cosignature on the checkpoint verifies (tlog-cosignature v1)."""
    good = []
    for name, kid, sig in cp["signatures"]:
        w = witnesses.get(name)
        if w is None or w[0] != kid or len(sig) != 72 or name in good:
            continue
        t = struct.unpack(">Q", sig[:8])[0]
        if t > 2 ** 63 - 1:
            raise Refused("the cosignature of %s has a timestamp past 2^63 - 1" % name)
        try:
            w[1].verify(b"cosignature/v1\ntime %d\n" % t + cp["text"], sig[8:])
        except (nacl.exceptions.CryptoError, ValueError):
            raise Refused("the cosignature of %s does not verify" % name)
        good.append(name)
    return good


def parse_witness(text):
    parts = text.split("+", 2)
    try:
        if len(parts) != 3:
            raise DecodeError("not <name>+<key id>+<key>")
        material = b64(parts[2], "the key")
    except DecodeError as e:
        raise Refused("--witness %r: %s" % (text[:80], e))
    if len(material) != 33 or material[0] != 4 or key_id(parts[0], 4, material[1:]).hex() != parts[1]:
        raise Refused("--witness %r is not a cosignature verifier key (type 04) with its own key ID" % text[:80])
    return parts[0], (bytes.fromhex(parts[1]), VerifyKey(material[1:]))


def verify_receipt(path, pinned_text, witness_texts, quorum):
    """An offline receipt (c2sp.org/tlog-proof): records chained, the last one's leaf
    included in the checkpoint's root, the checkpoint signed by the pinned key and
    cosigned by at least `quorum` of the witnesses. Returns (first, last, size, names)."""
    key = parse_key(pinned_text, "--key")
    witnesses = dict(parse_witness(w) for w in witness_texts)
    # One witness counts once: the same key under two names would count twice (a v1
    # cosignature does not sign its name).
    keys = [bytes(v[1]) for v in witnesses.values()]
    if len(set(keys)) != len(keys) or len(witnesses) != len(witness_texts):
        raise Refused("--witness: the same witness (name or key) given twice")
    try:
        text = open(path, "rb").read().decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("the receipt is not UTF-8")
    lines = text.split("\n")
    if len(lines) < 4 or lines[0] != "c2sp.org/tlog-proof@v1" or not lines[1].startswith("extra ") or not lines[2].startswith("index "):
        raise Refused("not an Anxin receipt (c2sp.org/tlog-proof@v1, extra, index)")
    try:
        extra = b64(lines[1][len("extra "):], "the extra line")
        index = decimal(lines[2][len("index "):], "index")
        proof, i = [], 3
        while lines[i]:
            proof.append(b64(lines[i], "a proof line"))
            i += 1
        cp = parse_note_checkpoint("\n".join(lines[i + 1:]))
    except (DecodeError, IndexError) as e:
        raise Refused("not a receipt: %s" % e)
    records, at = [], 0
    while at < len(extra):
        n = struct.unpack(">I", extra[at:at + 4])[0] if at + 4 <= len(extra) else None
        if n is None or at + 4 + n > len(extra):
            raise Refused("the extra data is not length-prefixed records")
        records.append(extra[at + 4:at + 4 + n])
        at += 4 + n
    if not records:
        raise Refused("no record in the receipt")
    prev_seq, prev_hash = None, None
    for raw in records:
        try:
            rec = decode_record(raw)
        except DecodeError as e:
            raise Refused("a record of the receipt cannot decode: %s" % e)
        if prev_seq is not None and (rec["seq"] != prev_seq + 1 or rec["prev_hash"] != prev_hash):
            raise Refused("record %d does not follow record %d in the chain" % (rec["seq"], prev_seq))
        prev_seq, prev_hash = rec["seq"], derive(RECORD_CONTEXT, raw)
    if prev_seq != index + 1:
        raise Refused("the proof is of leaf %d, not of record %d" % (index, prev_seq))
    if "+" in pinned_text and pinned_text.split("+", 1)[0] != cp["origin"]:
        raise Refused("the pinned verifier key is for %s, but the receipt's checkpoint is of %s" % (pinned_text.split("+", 1)[0], cp["origin"]))
    check_signature(cp, 2, key, "ed25519:" + bytes(key).hex(), True)
    names = cosigned_by(cp, witnesses)
    if len(names) < quorum:
        raise Refused("the checkpoint is cosigned by %d of the witnesses given (%s), fewer than %d" % (len(names), ", ".join(names) or "none", quorum))
    if not verify_inclusion(sha256(b"\x00" + records[-1]), index, cp["tree_size"], proof, cp["root"]):
        raise Refused("record %d is not in the signed tree of %d records (the inclusion proof fails)" % (prev_seq, cp["tree_size"]))
    return prev_seq - len(records) + 1, prev_seq, cp["tree_size"], names


class Arguments(argparse.ArgumentParser):
    def error(self, message):
        raise Refused("command line: %s (usage: %s ARCHIVE --key <verifier key, or ed25519:<64 hex digits>>)" % (message, self.prog))


def run(argv):
    ap = Arguments(description=__doc__.splitlines()[0])
    ap.add_argument("archive", help="an archive; with --receipt, an offline receipt (c2sp.org/tlog-proof)")
    ap.add_argument("--key", help="the ledger's public key, a verifier key or ed25519:<64 hex digits>; required for an OK verdict")
    ap.add_argument("--receipt", action="store_true", help="the file is an offline receipt")
    ap.add_argument("--witness", action="append", default=[], help="a witness's cosignature verifier key (repeatable)")
    ap.add_argument("--quorum", type=int, default=0, help="how many of the --witness keys must have cosigned")
    a = ap.parse_args(argv)
    if a.receipt:
        if a.key is None:
            raise Refused("a receipt is verified against a pinned --key")
        first, last, size, names = verify_receipt(a.archive, a.key, a.witness, a.quorum)
        print("OK: records %d to %d are in the checkpoint of %d records signed by the pinned key%s" % (
            first, last, size, ", cosigned by " + ", ".join(names) if names else ""))
        return EXIT_OK
    records, ledger_id, root, key_text = verify(a.archive, a.key)
    if a.key is not None:
        print("OK: %d records of ledger %s chain from genesis; root %s signed by %s" % (records, ledger_id, root, key_text))
        return EXIT_OK
    print("NOT PINNED: %d records of ledger %s chain from genesis; root %s signed by the archive's own key %s" % (
        records, ledger_id, root, key_text))
    print("WARNING: NO KEY PINNED. The checkpoint was checked only against the key the archive itself names,\n"
          "so this proves the archive is internally consistent, not who made it: anyone can write an archive\n"
          "that passes this way. Verify with --key ed25519:<the ledger's published key>.", file=sys.stderr)
    return EXIT_UNPINNED


def main(argv=None):
    """Runs the verifier; every failure, expected or not, is one `FAILED:` line on stderr
    and exit status 1, never a traceback."""
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except Refused as e:
        print("FAILED: %s" % e, file=sys.stderr)
    except OSError as e:
        print("FAILED: cannot read the archive: %s" % e, file=sys.stderr)
    except KeyboardInterrupt:
        print("FAILED: interrupted", file=sys.stderr)
    except Exception as e:  # a bug in this verifier: say so, and where, in one line
        tb = e.__traceback__
        while tb.tb_next:
            tb = tb.tb_next
        print("FAILED: internal error (a bug in this verifier) at %s line %d: %s: %s" % (
            os.path.basename(tb.tb_frame.f_code.co_filename), tb.tb_lineno, type(e).__name__,
            str(e).replace("\n", " ")), file=sys.stderr)
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
