#!/usr/bin/env python3
"""Independent verifier of an Anxin archive (`anxin export --out FILE`).

Written from docs/FORMAT.md alone; it shares no code with the Rust ledger. Needs only the
standard library plus the `blake3` and `PyNaCl` packages:

    pip install blake3 pynacl
    python3 examples/verify_archive.py ARCHIVE [--key ed25519:<hex>]

It checks that the checkpoint is signed by the key (the pinned one if given), that every
record chains from the genesis hash with sequence numbers 1, 2, 3, ..., and that the
Merkle root over the records equals the signed root. Exit status 0 means verified.
"""
import argparse
import json
import struct
import sys

import blake3
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

RECORD_CONTEXT = "anxin v1 record"
GENESIS_CONTEXT = "anxin v1 genesis"
CHECKPOINT_PREFIX = b"anxin v1 checkpoint\x00"


def derive(context, data):
    return blake3.blake3(data, derive_key_context=context).digest()


def leaf(record_hash):
    return blake3.blake3(b"\x00" + record_hash).digest()


def node(left, right):
    return blake3.blake3(b"\x01" + left + right).digest()


class Frontier:
    """Compact range of the tree: roots of perfect subtrees, largest first."""

    def __init__(self):
        self.size = 0
        self.peaks = []  # (level, hash)

    def push(self, h):
        level = 0
        while self.peaks and self.peaks[-1][0] == level:
            _, left = self.peaks.pop()
            h = node(left, h)
            level += 1
        self.peaks.append((level, h))
        self.size += 1

    def root(self):
        if not self.peaks:
            return blake3.blake3(b"").digest()
        acc = self.peaks[-1][1]
        for _, h in reversed(self.peaks[:-1]):
            acc = node(h, acc)
        return acc


class Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, n):
        if self.at + n > len(self.data):
            raise ValueError("truncated")
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def string(self):
        return self.take(self.u64()).decode("utf-8")


def parse_signed_checkpoint(raw):
    r = Reader(raw)
    start = r.at
    version = r.u16()
    ledger_id = r.string()
    tree_size = r.u64()
    root = r.take(32)
    chain_head = r.take(32)
    timestamp_ms = r.i64()
    checkpoint_bytes = raw[start:r.at]
    sig_len = r.u64()
    signature = r.take(sig_len)
    if r.at != len(raw) or sig_len != 64:
        raise ValueError("not a signed checkpoint")
    return dict(version=version, ledger_id=ledger_id, tree_size=tree_size, root=root, chain_head=chain_head,
                timestamp_ms=timestamp_ms, bytes=checkpoint_bytes, signature=signature)


def fail(msg):
    print("verification FAILED: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("archive")
    ap.add_argument("--key", help="pinned public key, ed25519:<64 hex digits>")
    a = ap.parse_args()
    with open(a.archive, encoding="utf-8") as f:
        header = json.loads(f.readline())
        if header.get("format") != "anxin-archive" or header.get("version") != 1:
            fail("not an anxin-archive v1")
        key_text = a.key or header["public_key"]
        key = VerifyKey(bytes.fromhex(key_text.split(":", 1)[-1]))
        cp = parse_signed_checkpoint(bytes.fromhex(header["checkpoint_hex"]))
        if cp["version"] != 1:
            fail("unknown checkpoint version %d" % cp["version"])
        try:
            key.verify(CHECKPOINT_PREFIX + cp["bytes"], cp["signature"])
        except BadSignatureError:
            fail("the checkpoint's signature does not verify with the key")
        ledger_id = cp["ledger_id"]
        prev = derive(GENESIS_CONTEXT, ledger_id.encode("utf-8"))
        tree = Frontier()
        expected = 1
        for line_no, line in enumerate(f, start=2):
            rec = bytes.fromhex(json.loads(line)["hex"])
            r = Reader(rec)
            version, seq, prev_hash = r.u16(), r.u64(), r.take(32)
            if version != 1:
                fail("record %d: unknown format version %d" % (expected, version))
            if seq != expected:
                fail("record %d: carries sequence number %d (records missing or out of order)" % (expected, seq))
            if prev_hash != prev:
                fail("record %d: previous hash does not match the hash of record %d" % (seq, seq - 1))
            prev = derive(RECORD_CONTEXT, rec)
            tree.push(leaf(prev))
            expected += 1
    if tree.size != cp["tree_size"]:
        fail("the checkpoint covers %d records but the archive holds %d" % (cp["tree_size"], tree.size))
    if tree.root() != cp["root"]:
        fail("after %d records the Merkle root differs from the signed one" % tree.size)
    if tree.size > 0 and prev != cp["chain_head"]:
        fail("the signed chain head is not the hash of record %d" % tree.size)
    print("OK: %d records of ledger %s chain from genesis; root %s signed by %s" % (tree.size, ledger_id, tree.root().hex(), key_text))


if __name__ == "__main__":
    main()
