#!/usr/bin/env node
// The raw bound: the cheapest possible pipeline that still does the unavoidable work of a sync. The sender
// serialises the documents as JSON batches over one node-datachannel data channel; the receiver parses each batch
// and appends it to an NDJSON file. No store, no checkpoints, no replication protocol.
//
// The runner relays signaling between the two processes over stdin/stdout (NDJSON), so no signaling server or
// WebSocket is in the measurement. Events on stdout: signal{payload}  ready  open  start{count}  done{count,ms}
// Flags: --role send|recv  --count N  --batch N  --file PATH (recv)  --prefix P (send)
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { openSync, writeSync, closeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { PeerConnection, cleanup } from 'node-datachannel';
import { makeDocs } from '../lib/docs.mjs';

const { values: args } = parseArgs({
  options: {
    role: { type: 'string' },
    count: { type: 'string', default: '10000' },
    batch: { type: 'string', default: '200' },
    file: { type: 'string' },
    prefix: { type: 'string', default: 'raw' },
  },
  strict: true,
});
const count = Number(args.count);
const batchSize = Number(args.batch);

/**
 * Sender-side flow control. node-datachannel has no backpressure towards the peer, and an unbounded send queue
 * only moves the cost into memory: pause above HIGH buffered bytes and resume when the buffer falls to LOW.
 */
const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;

function emit(ev) {
  process.stdout.write(JSON.stringify(ev) + '\n');
}

function exit(code) {
  try {
    cleanup();
  } catch {
    /* already cleaned up */
  }
  process.stdout.write('', () => process.exit(code));
}
process.on('SIGTERM', () => exit(0));
process.on('SIGINT', () => exit(130));

const pc = new PeerConnection(args.role, { iceServers: [], bindAddress: '127.0.0.1' });
pc.onLocalDescription((sdp, type) => emit({ event: 'signal', payload: { sdp, type } }));
pc.onLocalCandidate((candidate, mid) => emit({ event: 'signal', payload: { candidate, mid } }));

// Remote candidates that arrive before the remote description cannot be added yet: keep them until it is set.
let haveRemote = false;
const early = [];
const input = createInterface({ input: process.stdin });
// The runner holds our stdin: when it goes away (even killed), so do we.
input.on('close', () => exit(0));
input.on('line', (line) => {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    return;
  }
  const p = msg.payload;
  if (!p) return;
  if (p.sdp) {
    pc.setRemoteDescription(p.sdp, p.type);
    haveRemote = true;
    for (const c of early.splice(0)) pc.addRemoteCandidate(c.candidate, c.mid);
  } else if (p.candidate) {
    if (haveRemote) pc.addRemoteCandidate(p.candidate, p.mid);
    else early.push(p);
  }
});

if (args.role === 'send') {
  const docs = makeDocs(args.prefix, count);
  const dc = pc.createDataChannel('raw-bound');
  dc.setBufferedAmountLowThreshold(LOW_WATER);
  let resume;
  dc.onBufferedAmountLow(() => resume?.());
  dc.onOpen(async () => {
    emit({ event: 'open' });
    emit({ event: 'start', count });
    for (let i = 0; i < docs.length; i += batchSize) {
      dc.sendMessage(JSON.stringify(docs.slice(i, i + batchSize)));
      if (dc.bufferedAmount() > HIGH_WATER) await new Promise((r) => (resume = r));
    }
    emit({ event: 'sent', count });
  });
  emit({ event: 'ready' });
} else if (args.role === 'recv') {
  const fd = openSync(args.file, 'a');
  let received = 0;
  let firstAt;
  // Keep a reference: node-datachannel closes a channel whose JS object is garbage-collected.
  let channel;
  pc.onDataChannel((dc) => {
    channel = dc;
    emit({ event: 'open' });
    dc.onMessage((msg) => {
      firstAt ??= performance.now();
      const batch = JSON.parse(typeof msg === 'string' ? msg : msg.toString());
      let out = '';
      for (const doc of batch) out += JSON.stringify(doc) + '\n';
      writeSync(fd, out);
      received += batch.length;
      if (received >= count) {
        closeSync(fd);
        emit({ event: 'done', count: received, ms: performance.now() - firstAt, label: channel.getLabel() });
      }
    });
  });
  emit({ event: 'ready' });
} else {
  emit({ event: 'error', message: '--role must be send or recv' });
  exit(2);
}
