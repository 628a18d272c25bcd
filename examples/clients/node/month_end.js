#!/usr/bin/env node
// A month end posted to Anxin from Node.js, with @grpc/grpc-js: what a platform's
// integration does.
//
//   npm ci --prefix examples/clients/node
//   node examples/clients/node/month_end.js --server http://127.0.0.1:50051 \
//       --token "$ANXIN_TOKEN" --key "$(anxin public-key)" --receipts ./receipts
//
// It loads proto/anxin/v1/ledger.proto when it starts (@grpc/proto-loader: no generated
// code), then, as the Python example does (examples/clients/python/month_end.py):
// - posts the month end of examples/month-end/, one atomic batch a step, each under a
//   request id that a rerun reuses, so that a retry is never recorded twice;
// - follows the leader of a replicated ledger (`--server a,b,c`; NOT_LEADER names it in
//   `anxin-leader`);
// - handles every refusal by its reason code, read from the standard rich error details
//   (google.rpc.Status in `grpc-status-details-bin`: ErrorInfo, BadRequest, RetryInfo):
//   retry with the same request id, report what must be fixed and go on, or stop
//   (README, "Errors");
// - keeps the payouts' offline receipt (c2sp.org/tlog-proof) in --receipts and checks it
//   here, with nothing but the file and the pinned key: the records chain (BLAKE3), the
//   last one's inclusion proof leads to the root (RFC 9162, SHA-256), and the
//   checkpoint's signed note verifies (Ed25519).
//
// `--extra FILE` posts one more batch from a JSON-lines file of commands. Exit status: 0
// when every batch was recorded or refused for its input, 3 when a refusal stopped it, 4
// when a receipt does not check.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');
const { blake3 } = require('@noble/hashes/blake3');

const ROOT = path.resolve(__dirname, '..', '..', '..');

const loaded = protoLoader.loadSync(path.join(ROOT, 'proto', 'anxin', 'v1', 'ledger.proto'), {
  keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true,
});
const anxin = grpc.loadPackageDefinition(loaded).anxin.v1;
const rpcTypes = protobuf.loadSync(path.join(__dirname, 'proto', 'google', 'rpc', 'status.proto'));
const RpcStatus = rpcTypes.lookupType('google.rpc.Status');
const DETAILS = {
  'type.googleapis.com/google.rpc.ErrorInfo': rpcTypes.lookupType('google.rpc.ErrorInfo'),
  'type.googleapis.com/google.rpc.RetryInfo': rpcTypes.lookupType('google.rpc.RetryInfo'),
  'type.googleapis.com/google.rpc.BadRequest': rpcTypes.lookupType('google.rpc.BadRequest'),
};

class Refused extends Error {
  constructor(code, reason, action, message, index, field) {
    super(message);
    Object.assign(this, { code, reason, action, index, field });
  }
}

// The facts of a failed call: the standard details, else the metadata keys. What to do
// (retry, fix or stop) is the server's to say, in ErrorInfo.metadata.action (README,
// "Errors"): this client keeps no list of reason codes.
function refusalOf(err) {
  const out = { reason: null, index: null, leader: null, delay: null, field: null, action: null };
  const bin = err.metadata && err.metadata.get('grpc-status-details-bin')[0];
  if (bin) {
    const status = RpcStatus.decode(bin);
    for (const any of status.details) {
      const type = DETAILS[any.type_url || any.typeUrl];
      if (!type) continue;
      const d = type.decode(any.value);
      if (d.reason !== undefined) {
        out.reason = d.reason;
        if (d.metadata.command_index !== undefined) out.index = Number(d.metadata.command_index);
        out.leader = d.metadata.leader || null;
        out.action = d.metadata.action || null;
      } else if (d.retry_delay || d.retryDelay) {
        const r = d.retry_delay || d.retryDelay;
        out.delay = Number(r.seconds || 0) + (r.nanos || 0) / 1e9;
      } else if (d.field_violations || d.fieldViolations) {
        out.field = (d.field_violations || d.fieldViolations).map((v) => v.field).join(', ');
      }
    }
  }
  if (out.reason === null && err.metadata) { // a server before rich details
    out.reason = err.metadata.get('anxin-reason')[0] || null;
    const i = err.metadata.get('anxin-command-index')[0];
    out.index = i === undefined ? null : Number(i);
    out.leader = err.metadata.get('anxin-leader')[0] || null;
  }
  // A server that does not say: retry what it gives a delay for, else stop.
  if (out.action === null) out.action = out.delay === null ? 'stop' : 'retry';
  return out;
}

const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));

// Calls a ledger of one or more nodes, following its leader and retrying what the server
// says to retry.
class Ledger {
  constructor(servers, token, attempts = 30) {
    this.servers = servers.split(',').map((s) => s.trim()).filter(Boolean);
    this.metadata = new grpc.Metadata();
    this.metadata.set('authorization', `Bearer ${token}`);
    this.at = 0;
    this.attempts = attempts;
    this.clients = new Map();
  }

  client(service) {
    const target = this.servers[this.at].replace(/^[a-z]+:\/\//, '');
    const key = `${service}@${target}`;
    if (!this.clients.has(key)) this.clients.set(key, new anxin[service](target, grpc.credentials.createInsecure()));
    return this.clients.get(key);
  }

  unary(service, method, request) {
    const c = this.client(service);
    return new Promise((resolve, reject) => {
      c[method](request, this.metadata, { deadline: Date.now() + 30000 }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  async call(service, method, request) {
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      try {
        return await this.unary(service, method, request);
      } catch (err) {
        const r = refusalOf(err);
        if (err.code === grpc.status.UNAVAILABLE && r.reason === null) {
          // No answer from this node at all: the next one.
          this.at = (this.at + 1) % this.servers.length;
          await sleep(Math.min(0.05 * 2 ** attempt, 1));
          continue;
        }
        if (r.action === 'retry') {
          if (r.reason === 'NOT_LEADER') this.follow(r.leader);
          process.stderr.write(`  ${r.reason} on ${method}: ${err.details}, retrying with the same request id\n`);
          await sleep(r.delay === null ? 0.5 : r.delay);
          continue;
        }
        throw new Refused(grpc.status[err.code], r.reason, r.action, err.details, r.index, r.field);
      }
    }
    throw new Refused('UNAVAILABLE', null, 'stop', `no node answered after ${this.attempts} attempts`, null, null);
  }

  follow(leader) {
    if (leader) {
      if (!this.servers.includes(leader)) this.servers.push(leader);
      this.at = this.servers.indexOf(leader);
    } else {
      this.at = (this.at + 1) % this.servers.length;
    }
  }
}

// Rows of the month-end files (CSV with a header and no quoted fields, or JSON lines).
function readRows(file) {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n').filter((l) => l.trim());
  if (file.endsWith('.jsonl')) return lines.map((l) => JSON.parse(l));
  const head = lines[0].split(',');
  return lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [head[i], v])));
}

// Commands from rows (`type` names the command; payroll lines gather into payrolls).
function commandsOf(rows) {
  const out = [];
  const payrolls = new Map();
  for (const row of rows) {
    const { type, ...rest } = row;
    const fields = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== '' && v !== null));
    if (type === 'payroll_line') {
      const key = `${fields.project}/${fields.period}/${fields.due_date || ''}`;
      if (!payrolls.has(key)) {
        const p = { project: fields.project, period: fields.period, due_date: fields.due_date || '', lines: [] };
        payrolls.set(key, p);
        out.push({ submit_payroll: p });
      }
      payrolls.get(key).lines.push({ national_id: fields.national_id, employer: fields.employer, days: Number(fields.days), amount_due: fields.amount_due });
      continue;
    }
    const message = loaded[`anxin.v1.${type.split('_').map((w) => w[0].toUpperCase() + w.slice(1)).join('')}`];
    const known = new Set(message.type.field.map((f) => f.name));
    out.push({ [type]: Object.fromEntries(Object.entries(fields).filter(([k]) => known.has(k))) });
  }
  return out;
}

// --- The offline receipt (docs/FORMAT.md sections 6 to 8.4), checked with the pinned key.

const sha256 = (...parts) => crypto.createHash('sha256').update(Buffer.concat(parts)).digest();
const recordHash = (rec) => Buffer.from(blake3(rec, { context: 'anxin v1 record' }));

function b64(text, what) {
  const raw = Buffer.from(text, 'base64');
  if (raw.toString('base64') !== text) throw new Error(`${what} is not canonical base64`);
  return raw;
}

// A verifier key `<name>+<key id>+<base64(01 || key)>`.
function parseVkey(text) {
  const [name, id, material] = text.trim().split('+');
  const raw = b64(material || '', 'the key');
  if (raw.length !== 33 || raw[0] !== 1) throw new Error('not an Ed25519 verifier key');
  const kid = sha256(Buffer.from(`${name}\n`), raw).subarray(0, 4);
  if (kid.toString('hex') !== id) throw new Error('the key ID is not the one of its name and key');
  const key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.subarray(1).toString('base64url') }, format: 'jwk' });
  return { name, kid, key };
}

// RFC 9162 2.1.3.2: the inclusion of `leaf` at `index` in the tree of `size` with `root`.
function included(leaf, index, size, proof, root) {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  const node = (a, b) => sha256(Buffer.from([1]), a, b);
  for (const p of proof) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = node(p, r);
      if ((fn & 1n) === 0n) while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = node(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && r.equals(root);
}

// Checks a receipt; returns [first seq, last seq, tree size] or throws why not.
function checkReceipt(text, vkeyText) {
  const vkey = parseVkey(vkeyText);
  const lines = text.split('\n');
  if (lines[0] !== 'c2sp.org/tlog-proof@v1' || !lines[1].startsWith('extra ') || !lines[2].startsWith('index ')) {
    throw new Error('not a c2sp.org/tlog-proof@v1 receipt');
  }
  const extra = b64(lines[1].slice(6), 'the extra line');
  const index = BigInt(lines[2].slice(6));
  const proof = [];
  let i = 3;
  for (; lines[i]; i++) proof.push(b64(lines[i], 'a proof line'));
  const note = lines.slice(i + 1).join('\n');
  const cut = note.lastIndexOf('\n\n');
  const body = note.slice(0, cut + 1);
  const [origin, size, root] = body.split('\n');
  if (origin !== vkey.name) throw new Error(`the checkpoint is of ${origin}, the pinned key of ${vkey.name}`);
  const sigs = note.slice(cut + 2).split('\n').filter(Boolean)
    .map((l) => l.match(/^\u2014 (\S+) (\S+)$/)).filter((m) => m && m[1] === vkey.name)
    .map((m) => b64(m[2], 'a signature')).filter((s) => s.length === 68 && s.subarray(0, 4).equals(vkey.kid));
  if (sigs.length === 0) throw new Error('no signature of the pinned key');
  for (const s of sigs) {
    if (!crypto.verify(null, Buffer.from(body, 'utf8'), vkey.key, s.subarray(4))) throw new Error('the checkpoint signature does not verify');
  }
  const records = [];
  for (let at = 0; at < extra.length;) {
    const n = extra.readUInt32BE(at);
    records.push(extra.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  if (records.length === 0) throw new Error('no record');
  const seqOf = (rec) => rec.readBigUInt64BE(2);
  for (let k = 1; k < records.length; k++) {
    if (seqOf(records[k]) !== seqOf(records[k - 1]) + 1n || !records[k].subarray(10, 42).equals(recordHash(records[k - 1]))) {
      throw new Error(`record ${seqOf(records[k])} does not follow the one before in the chain`);
    }
  }
  const last = records[records.length - 1];
  if (seqOf(last) !== index + 1n) throw new Error(`the proof is of leaf ${index}, not of record ${seqOf(last)}`);
  if (!included(sha256(Buffer.from([0]), last), index, BigInt(size), proof, b64(root, 'the root'))) {
    throw new Error(`record ${seqOf(last)} is not in the signed tree of ${size} records`);
  }
  return [seqOf(records[0]), seqOf(last), BigInt(size)];
}

function args(argv) {
  const a = { server: process.env.ANXIN_SERVER || 'http://127.0.0.1:50051', token: process.env.ANXIN_TOKEN, files: path.join(ROOT, 'examples', 'month-end'), run: 'month-end' };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    if (!['server', 'token', 'key', 'files', 'receipts', 'run', 'extra', 'check'].includes(k) || argv[i + 1] === undefined) {
      throw new Error(`usage: month_end.js --token T --key VKEY --receipts DIR [--server a,b] [--run ID] [--extra FILE] [--check RECEIPT]`);
    }
    a[k] = argv[i + 1];
  }
  return a;
}

async function main() {
  const a = args(process.argv.slice(2));
  if (a.check) { // check a kept receipt, offline
    let lo, hi, size;
    try {
      [lo, hi, size] = checkReceipt(fs.readFileSync(a.check, 'utf8'), a.key);
    } catch (e) {
      console.log(`receipt ${a.check} does NOT check: ${e.message}`);
      return 4;
    }
    console.log(`receipt ${a.check}: records ${lo} to ${hi} are in the checkpoint of ${size} records signed by the pinned key`);
    return 0;
  }
  const ledger = new Ledger(a.server, a.token);
  const steps = [['setup', 'setup.csv'], ['workers', 'workers.jsonl'], ['payroll', 'payroll.csv'], ['progress', 'progress.csv'], ['payouts', 'payouts.csv']];
  if (a.extra) steps.push(['extra', a.extra]);
  const receipts = {};
  for (const [name, file] of steps) {
    const commands = commandsOf(readRows(path.resolve(a.files, file)));
    let r;
    try {
      r = await ledger.call('LedgerPosting', 'Submit', { request_id: `${a.run}-${name}`, commands });
    } catch (e) {
      if (!(e instanceof Refused)) throw e;
      const where = e.index === null ? '' : ` at command ${e.index}`;
      const field = e.field ? ` (field ${e.field})` : '';
      console.log(`${name}: refused ${e.code} ${e.reason}${where}${field}, action ${e.action}: ${e.message}`);
      if (e.action === 'stop') return 3;
      continue;
    }
    console.log(`${name}: recorded ${commands.length} commands as records ${r.first_seq} to ${r.last_seq}${r.replayed ? ' (replayed)' : ''}`);
    receipts[name] = [r.first_seq, r.last_seq];
  }
  const balance = await ledger.call('LedgerQuery', 'GetBalance', { account: 'wage:P01' });
  console.log(`wage:P01 holds ${balance.balance}`);
  if (!receipts.payouts) return 0;
  const [first, last] = receipts.payouts;
  const receipt = await ledger.call('LedgerAudit', 'GetReceipt', { first_seq: first, last_seq: last });
  fs.mkdirSync(a.receipts, { recursive: true });
  const file = path.join(a.receipts, `${a.run}-payouts-${first}-${last}.tlog-proof`);
  fs.writeFileSync(file, receipt.proof);
  try {
    const [lo, hi, size] = checkReceipt(receipt.proof, a.key);
    console.log(`receipt kept in ${file}: records ${lo} to ${hi} are in the checkpoint of ${size} records signed by the pinned key`);
  } catch (e) {
    console.log(`receipt ${file} does NOT check: ${e.message}`);
    return 4;
  }
  return 0;
}

main().then((code) => process.exit(code), (e) => {
  console.error(`FAILED: ${e.message}`);
  process.exit(e instanceof Refused ? 3 : 1);
});
