#!/usr/bin/env python3
"""A month end posted to Anxin from Python: what a bank's or a platform's integration does.

    pip install grpcio grpcio-tools grpcio-status blake3 pynacl
    python3 examples/clients/python/month_end.py --server http://127.0.0.1:50051 \
        --token "$ANXIN_TOKEN" --key "$(anxin public-key)" --receipts ./receipts

It generates the gRPC stubs from proto/anxin/v1/ledger.proto when it starts (grpcio-tools
bundles protoc), then:

- posts the month end of examples/month-end/ (the project, its wage account and deposit,
  the workers and their contracts, the payroll, the progress payment with its wage share,
  the payouts to the workers' cards), one atomic batch a step, each under a request id of
  its own that a rerun reuses, so that a retry is never recorded twice;
- follows the leader of a replicated ledger: given every node (`--server a,b,c`), it
  sends to the one that answers, and on NOT_LEADER to the address in `anxin-leader`;
- handles every refusal by its reason code, through the standard rich error details
  (`google.rpc.ErrorInfo`, `BadRequest`, `RetryInfo`): it retries what the server says
  to retry with the same request id, reports what must be fixed (the command, the field,
  the message) and goes on, and stops on what needs a person (README, "Errors");
- keeps an offline receipt for the payouts (c2sp.org/tlog-proof) in --receipts and checks
  it with the independent verifier (examples/verify_archive.py) against the pinned key.

`--extra FILE` posts one more batch from a JSON-lines file of commands (the shape of
examples/month-end/workers.jsonl), to see how a refusal is handled. Exit status: 0 when
every batch was recorded or refused for its input, 3 when a refusal stopped it, 4 when a
receipt does not check.
"""

import argparse
import csv
import importlib
import json
import os
import sys
import tempfile
import time

import grpc
from grpc_status import rpc_status
from google.rpc import error_details_pb2

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "examples"))


def stubs():
    """Compiles the proto into a temporary directory and imports the generated modules."""
    from grpc_tools import protoc
    import grpc_tools
    out = tempfile.mkdtemp(prefix="anxin-stubs-")
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main(["protoc", "-I" + os.path.join(ROOT, "proto"), "-I" + include, "--python_out=" + out,
                      "--grpc_python_out=" + out, os.path.join(ROOT, "proto", "anxin", "v1", "ledger.proto")])
    if rc != 0:
        raise SystemExit("protoc failed on proto/anxin/v1/ledger.proto")
    sys.path.insert(0, out)
    return importlib.import_module("anxin.v1.ledger_pb2"), importlib.import_module("anxin.v1.ledger_pb2_grpc")


class Refused(Exception):
    """A refusal the client does not retry: `action` is "fix" or "stop"."""

    def __init__(self, code, reason, action, message, index=None, field=None):
        super().__init__(message)
        self.code, self.reason, self.action, self.index, self.field = code, reason, action, index, field


def refusal_of(err):
    """The facts of a failed call: the standard details, else the metadata keys. What to
    do (retry, fix or stop) is the server's to say, in ErrorInfo.metadata["action"]
    (README, "Errors"): this client keeps no list of reason codes."""
    reason, index, leader, delay, field, action = None, None, None, None, None, None
    status = rpc_status.from_call(err)
    if status is not None:
        for any_detail in status.details:
            if any_detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                any_detail.Unpack(info)
                reason = info.reason
                index = int(info.metadata["command_index"]) if "command_index" in info.metadata else None
                leader = info.metadata.get("leader")
                action = info.metadata.get("action")
            elif any_detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                any_detail.Unpack(retry)
                delay = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
            elif any_detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                any_detail.Unpack(bad)
                field = ", ".join(v.field for v in bad.field_violations)
    if reason is None:  # a server before rich details: the metadata keys
        trailers = dict(err.trailing_metadata() or ())
        reason = trailers.get("anxin-reason")
        index = int(trailers["anxin-command-index"]) if "anxin-command-index" in trailers else None
        leader = trailers.get("anxin-leader")
    if action is None:  # a server that does not say: retry what it gives a delay for, else stop
        action = "retry" if delay is not None else "stop"
    return reason, index, leader, delay, field, action


class Ledger:
    """Calls a ledger of one or more nodes, following its leader and retrying what the
    server says to retry."""

    def __init__(self, pb, rpc, servers, token, attempts=30):
        self.pb, self.rpc = pb, rpc
        self.servers = [s.strip() for s in servers.split(",") if s.strip()]
        self.metadata = (("authorization", "Bearer " + token),)
        self.at, self.attempts = 0, attempts
        self.channels = {}

    def stub(self, service):
        target = self.servers[self.at].split("://", 1)[-1]
        if target not in self.channels:
            self.channels[target] = grpc.insecure_channel(target)
        return getattr(self.rpc, service + "Stub")(self.channels[target])

    def call(self, service, method, request):
        for attempt in range(self.attempts):
            try:
                return getattr(self.stub(service), method)(request, metadata=self.metadata, timeout=30)
            except grpc.RpcError as err:
                code = err.code()
                if code == grpc.StatusCode.UNAVAILABLE and not err.trailing_metadata():
                    # No answer from this node at all: the next one.
                    self.at = (self.at + 1) % len(self.servers)
                    time.sleep(min(0.05 * 2 ** attempt, 1.0))
                    continue
                reason, index, leader, delay, field, action = refusal_of(err)
                if action == "retry":
                    if reason == "NOT_LEADER":
                        self.follow(leader)
                    print("  %s on %s: %s, retrying with the same request id" % (reason, method, err.details()), file=sys.stderr)
                    time.sleep(delay if delay is not None else 0.5)
                    continue
                raise Refused(code.name, reason, action, err.details(), index, field)
        raise Refused("UNAVAILABLE", None, "stop", "no node answered after %d attempts" % self.attempts)

    def follow(self, leader):
        if leader:
            if leader not in self.servers:
                self.servers.append(leader)
            self.at = self.servers.index(leader)
        else:
            self.at = (self.at + 1) % len(self.servers)


def commands_of(pb, rows):
    """Commands from rows of the month-end files (`type` names the command)."""
    out = []
    payroll = {}
    for row in rows:
        kind = row.pop("type")
        row = {k: v for k, v in row.items() if v not in ("", None)}
        if kind == "payroll_line":
            key = (row["project"], row["period"], row.get("due_date", ""))
            line = pb.PayrollLine(national_id=row["national_id"], employer=row["employer"], days=int(row["days"]), amount_due=row["amount_due"])
            if key not in payroll:
                payroll[key] = pb.SubmitPayroll(project=key[0], period=key[1], due_date=key[2])
                out.append(key)  # in its place; the message is made when its lines are read
            payroll[key].lines.append(line)
            continue
        message = getattr(pb, "".join(w.capitalize() for w in kind.split("_")))
        fields = {f.name for f in message.DESCRIPTOR.fields}
        args = {k: (int(v) if message.DESCRIPTOR.fields_by_name[k].type in (13, 4) else v) for k, v in row.items() if k in fields}
        out.append(pb.Command(**{kind: message(**args)}))
    return [pb.Command(submit_payroll=payroll[c]) if isinstance(c, tuple) else c for c in out]


def read_rows(path):
    with open(path, encoding="utf-8") as f:
        if path.endswith(".jsonl"):
            return [json.loads(line) for line in f if line.strip()]
        return list(csv.DictReader(f))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default=os.environ.get("ANXIN_SERVER", "http://127.0.0.1:50051"), help="every node, comma-separated")
    ap.add_argument("--token", default=os.environ.get("ANXIN_TOKEN"))
    ap.add_argument("--key", required=True, help="the ledger's verifier key (anxin public-key), pinned")
    ap.add_argument("--check", help="only check a kept receipt, offline, and exit")
    ap.add_argument("--files", default=os.path.join(ROOT, "examples", "month-end"))
    ap.add_argument("--receipts", help="where the receipts are kept (required to post)")
    ap.add_argument("--run", default="month-end", help="the request ids' prefix: a rerun with the same one replays")
    ap.add_argument("--extra", help="one more batch, from a JSON-lines file of commands")
    a = ap.parse_args(argv)
    import verify_archive
    if a.check:
        try:
            lo, hi, size, _ = verify_archive.verify_receipt(a.check, a.key, [], 0)
        except verify_archive.Refused as e:
            print("receipt %s does NOT check: %s" % (a.check, e))
            return 4
        print("receipt %s: records %d to %d are in the checkpoint of %d records signed by the pinned key" % (a.check, lo, hi, size))
        return 0
    if not a.token or not a.receipts:
        ap.error("--token (or ANXIN_TOKEN) and --receipts are required to post")
    pb, rpc = stubs()
    ledger = Ledger(pb, rpc, a.server, a.token)
    steps = [("setup", "setup.csv"), ("workers", "workers.jsonl"), ("payroll", "payroll.csv"),
             ("progress", "progress.csv"), ("payouts", "payouts.csv")]
    if a.extra:
        steps.append(("extra", a.extra))
    receipts = {}
    for name, file in steps:
        commands = commands_of(pb, read_rows(os.path.join(a.files, file)))
        request = pb.SubmitRequest(request_id="%s-%s" % (a.run, name), commands=commands)
        try:
            r = ledger.call("LedgerPosting", "Submit", request)
        except Refused as e:
            where = "" if e.index is None else " at command %d" % e.index
            field = "" if not e.field else " (field %s)" % e.field
            print("%s: refused %s %s%s%s, action %s: %s" % (name, e.code, e.reason, where, field, e.action, e))
            if e.action == "stop":
                return 3
            continue
        print("%s: recorded %d commands as records %d to %d%s" % (name, len(commands), r.first_seq, r.last_seq, " (replayed)" if r.replayed else ""))
        receipts[name] = (r.first_seq, r.last_seq)
    balance = ledger.call("LedgerQuery", "GetBalance", pb.GetBalanceRequest(account="wage:P01"))
    print("wage:P01 holds %s" % balance.balance)
    if "payouts" not in receipts:
        return 0
    first, last = receipts["payouts"]
    # The receipt proves records against a signed checkpoint: retried until one covers them.
    receipt = ledger.call("LedgerAudit", "GetReceipt", pb.GetReceiptRequest(first_seq=first, last_seq=last))
    os.makedirs(a.receipts, exist_ok=True)
    path = os.path.join(a.receipts, "%s-payouts-%d-%d.tlog-proof" % (a.run, first, last))
    with open(path, "w", encoding="utf-8") as f:
        f.write(receipt.proof)
    try:
        lo, hi, size, _ = verify_archive.verify_receipt(path, a.key, [], 0)
    except verify_archive.Refused as e:
        print("receipt %s does NOT check: %s" % (path, e))
        return 4
    print("receipt kept in %s: records %d to %d are in the checkpoint of %d records signed by the pinned key" % (path, lo, hi, size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
