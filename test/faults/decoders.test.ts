// Fuzzing every decoder of network input (DESIGN.md §7): swarm frames and messages, ops (decode
// and Tree.receive), manifests, and every message of node's own protocols on node/net/rpc.ts
// (ops sync, peer exchange, membership, space, uplink, custody, place). Each decoder gets
// FUZZ_RUNS hostile inputs (random bytes, valid encodings with edits, truncations, huge length
// headers, random and edited dag-cbor values, oversized inputs) and must either decode or
// throw its documented error class; nothing else, no crash, no hang (mocha's timeout).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { decode as decodeSwarm, encode as encodeSwarm, FrameDecoder, MAX_MESSAGE_BYTES, WANT, HAVE, DONT_HAVE, CANCEL, BLOCK, PUSH, ACK, DONE, RANGE_WANT, RANGE } from '../../swarm/protocol.ts'
import type { Message } from '../../swarm/protocol.ts'
import { ProtocolError, MessageTooLargeError } from '../../swarm/errors.ts'
import { createOp, decodeOp, MAX_OP_BYTES } from '../../node/tree/op.ts'
import { InvalidOpError, MAX_INLINE_BYTES } from '../../node/tree/index.ts'
import type { OpBody, Signer } from '../../node/tree/index.ts'
import { encodeManifest, decodeManifest, encodeChunk, holeChunk, withRoots, ManifestError, CHUNK_SIZE, MAX_MANIFEST_BYTES } from '../../node/data/index.ts'
import { OPS, PEX, MEMBERSHIP, SPACE, UPLINK, RpcProtocolError, RpcTooLargeError, decodeIncoming, decodeReply, encodeCall, encodeError, encodeNext, encodeNotice, encodeOk } from '../../node/net/index.ts'
import type { RpcProtocol } from '../../node/net/index.ts'
import { CUSTODY, PLACE, RelayBusyError } from '../../node/keeper/index.ts'
import { signerFor, verify } from '../../node/net/index.ts'
import { cidOf } from '../../node/data/index.ts'
import { fuzzDecoder, fuzzInput } from '../helpers/rogue.ts'
import { Teardown } from '../../harness/tmp.ts'
import { replica } from '../helpers/tree.ts'

/**
 * Inputs per decoder. 100,000 by default (DESIGN.md §7 / issue 8); DARKFS_FUZZ_RUNS overrides
 * (the fault runner can ask for more), DARKFS_FUZZ_SEED replays a failure.
 */
const FUZZ_RUNS = Number(process.env.DARKFS_FUZZ_RUNS ?? 100_000)
/** Inputs for Tree.receive, which opens a transaction per batch (slower than a pure decode). */
const RECEIVE_RUNS = Math.ceil(FUZZ_RUNS / 10)
const SEED = process.env.DARKFS_FUZZ_SEED !== undefined ? Number(process.env.DARKFS_FUZZ_SEED) : undefined

describe('fuzz: decoders of network input', function () {
  this.timeout(10 * 60_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  let signers: Signer[]
  let peers: string[]
  let rawCids: CID[]
  let cborCids: CID[]
  let ops: Uint8Array[]

  before(async () => {
    const keys = await Promise.all([1, 2, 3].map(async () => await generateKeyPair('Ed25519')))
    signers = keys.map(k => signerFor(k))
    peers = keys.map(k => peerIdFromPrivateKey(k).toString())
    rawCids = [1, 2, 3].map(() => cidOf(randomBytes(100)))
    cborCids = [1, 2].map(() => cidOf(dagCbor.encode({ x: randomBytes(8) }), dagCbor.code))
    ops = await opSeeds(signers[0])
  })

  async function opSeeds (signer: Signer): Promise<Uint8Array[]> {
    const time = 1_700_000_000_000_000_000n
    const first = await createOp(signer, { type: 'create', parent: 'root', name: 'dir', kind: 'dir', mode: 0o755, uid: 1000, gid: 1000, time }, [1_700_000_000_000, 0], [])
    const inode = first.cid.toString()
    const bodies: OpBody[] = [
      { type: 'create', parent: inode, name: 'f.txt', kind: 'file', mode: 0o644, uid: 0, gid: 0, time, content: { inline: randomBytes(40) }, size: 40 },
      { type: 'create', parent: inode, name: 'big', kind: 'file', mode: 0o644, uid: 0, gid: 0, time, content: { inline: randomBytes(MAX_INLINE_BYTES) }, size: MAX_INLINE_BYTES },
      { type: 'create', parent: 'root', name: 'ln', kind: 'symlink', mode: 0o777, uid: 0, gid: 0, time, target: '/a/b' },
      { type: 'link', parent: 'root', name: 'hard', inode, time },
      { type: 'move', entry: inode, parent: 'root', name: 'moved', time, replace: inode },
      { type: 'unlink', entry: inode, time },
      { type: 'setattr', inode, time, mode: 0o600, uid: 5, gid: 6, atime: time, mtime: time },
      { type: 'write', inode, content: { manifest: cborCids[0] }, size: 5_000_000, time },
      { type: 'write', inode, content: null, size: 0, time },
      { type: 'append', inode, content: { inline: randomBytes(20) }, at: 0, size: 20, time },
      { type: 'append', inode, content: { manifest: cborCids[0] }, at: 100, size: 5000, offset: 123_456, time },
      // a multi-extent op (issue 15 item 1): inline and stored extents in `more`
      { type: 'append', inode, content: { inline: randomBytes(12) }, at: 0, size: 12, offset: 4096, more: [{ content: { inline: randomBytes(7) }, at: 0, size: 7, offset: 0 }, { content: { manifest: cborCids[0] }, at: 10, size: 300, offset: 90_000 }], time },
      { type: 'setxattr', inode, name: 'user.x', value: randomBytes(30), time },
      { type: 'removexattr', inode, name: 'user.x', time }
    ]
    const out = [first.bytes]
    let parents = [first.cid]
    for (const [i, body] of bodies.entries()) {
      const op = await createOp(signer, body, [1_700_000_000_000 + i + 1, 0], parents)
      out.push(op.bytes)
      parents = [op.cid]
    }
    return out
  }

  function swarmSeeds (): Uint8Array[] {
    const block = randomBytes(64)
    const cid = cidOf(block)
    const msgs: Message[] = [
      { type: WANT, cids: rawCids, haveOnly: false },
      { type: WANT, cids: [cborCids[0]], haveOnly: true },
      { type: HAVE, cids: rawCids },
      { type: DONT_HAVE, cids: [rawCids[0]] },
      { type: CANCEL, cids: cborCids },
      { type: BLOCK, cid, bytes: block },
      { type: PUSH, cid, hops: [{ peer: peers[0], via: -1 }, { peer: peers[1], via: 0 }, { peer: peers[2], via: -1 }], bytes: block },
      { type: ACK, cid, holder: peers[1] },
      { type: DONE, cid },
      { type: RANGE_WANT, cid, first: 3, end: 9 },
      { type: RANGE, cid, first: 0, end: 1, bytes: block, proof: [randomBytes(32), randomBytes(32)] },
      { type: RANGE, cid, first: 2, end: 4 }
    ]
    // decode() takes the body: drop the frame's length prefix
    return msgs.map(m => { const f = encodeSwarm(m).subarray(); return f.subarray(f[0] < 0x80 ? 1 : 2) })
  }

  it('swarm decode(body): only ProtocolError or MessageTooLargeError', async () => {
    const seeds = swarmSeeds()
    for (const s of seeds) decodeSwarm(s) // the seeds themselves are valid
    const input = fuzzInput({ seeds, maxRandomBytes: 200, oversized: [new Uint8Array(MAX_MESSAGE_BYTES + 1).fill(4), Buffer.concat([seeds[5], new Uint8Array(MAX_MESSAGE_BYTES)])] })
    const r = await fuzzDecoder('swarm decode', decodeSwarm, [ProtocolError, MessageTooLargeError], input, FUZZ_RUNS, SEED)
    assert.equal(r.accepted + r.rejected, FUZZ_RUNS)
    assert.ok(r.rejected > FUZZ_RUNS / 2, `most hostile inputs are rejected (${r.rejected})`)
  })

  it('swarm FrameDecoder.push(chunks): bounded buffer, only ProtocolError or MessageTooLargeError', async () => {
    const seeds = swarmSeeds().map(body => { const f = new Uint8Array(body.byteLength + 2); f.set([body.byteLength & 0x7f | 0x80, body.byteLength >> 7]); f.set(body, 2); return f })
    const stream = fuzzInput({ seeds, maxRandomBytes: 400 })
    let frames = 0
    await fc.assert(fc.property(fc.array(stream, { minLength: 1, maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 8 }), (parts, cuts) => {
      const dec = new FrameDecoder()
      const all = Buffer.concat(parts)
      let pos = 0
      try {
        for (let i = 0; pos < all.byteLength; i++) {
          const n = cuts[i % cuts.length]
          for (const body of dec.push(all.subarray(pos, pos + n))) {
            frames++
            assert.ok(body.byteLength <= MAX_MESSAGE_BYTES)
            try { decodeSwarm(body) } catch (err) { if (!(err instanceof ProtocolError || err instanceof MessageTooLargeError)) throw err }
          }
          pos += n
          assert.ok(dec.buffered <= MAX_MESSAGE_BYTES + 4, `holds ${dec.buffered} bytes`)
        }
      } catch (err) {
        if (!(err instanceof ProtocolError || err instanceof MessageTooLargeError)) throw err
      }
    }), { numRuns: Math.ceil(FUZZ_RUNS / 4), seed: SEED })
    assert.ok(frames > 0)
  })

  it('decodeOp(bytes, verify): only InvalidOpError', async () => {
    for (const s of ops) await decodeOp(s, verify)
    const input = fuzzInput({ seeds: ops, cbor: true, cids: [...cborCids, ...rawCids], maxRandomBytes: 300, oversized: [new Uint8Array(MAX_OP_BYTES + 1)] })
    const signed = new Set(ops.map(b => Buffer.from(b).toString('hex')))
    const r = await fuzzDecoder('decodeOp', async b => {
      await decodeOp(b, verify)
      // only the signed seeds themselves (an input may be one, unedited) pass
      if (!signed.has(Buffer.from(b).toString('hex'))) throw new Error('an edited op passed its signature check')
    }, [InvalidOpError], input, FUZZ_RUNS, SEED)
    assert.ok(r.rejected > FUZZ_RUNS / 2)
  })

  it('tree.receive([bytes]) of hostile ops: InvalidOpError, nothing stored, the tree keeps working', async () => {
    const target = await replica(t)
    const valid = await target.tree.receive(ops.slice(0, 3))
    assert.equal(valid.applied, 3)
    const heads = target.tree.heads().map(c => c.toString())
    const input = fuzzInput({ seeds: ops, cbor: true, cids: cborCids, maxRandomBytes: 300 })
    const signed = new Set(ops.map(b => Buffer.from(b).toString('hex')))
    const hostile = input.filter(b => !signed.has(Buffer.from(b).toString('hex')))
    const r = await fuzzDecoder('tree.receive', async b => await target.tree.receive([ops[3], b]), [InvalidOpError], hostile, RECEIVE_RUNS, SEED)
    assert.equal(r.accepted, 0)
    assert.deepEqual(target.tree.heads().map(c => c.toString()), heads, 'no op of a rejected batch was stored')
    const rest = await target.tree.receive(ops.slice(3))
    assert.equal(rest.applied, ops.length - 3)
  })

  it('decodeManifest(bytes): only ManifestError', async () => {
    const a = encodeChunk(randomBytes(1000), 0, 1, 2).ref
    const b = encodeChunk(randomBytes(3000), 0, 2, 1).ref
    const seeds = [
      encodeManifest({ v: 1, size: 1000, chunkSize: CHUNK_SIZE, chunks: [a] }).bytes,
      encodeManifest({ v: 1, size: 3000, chunkSize: CHUNK_SIZE, chunks: [b] }).bytes,
      encodeManifest({ v: 1, size: CHUNK_SIZE + 3000, chunkSize: CHUNK_SIZE, chunks: [holeChunk(0, CHUNK_SIZE), { ...b, offset: CHUNK_SIZE }] }).bytes,
      encodeManifest({ v: 1, size: 0, chunkSize: CHUNK_SIZE, chunks: [] }).bytes,
      // a ref with the Merkle roots of its data fragments
      encodeManifest({ v: 1, size: 3000, chunkSize: CHUNK_SIZE, chunks: [withRoots(encodeChunk(randomBytes(3000), 0, 2, 1)).ref] }).bytes
    ]
    for (const s of seeds) decodeManifest(s)
    const input = fuzzInput({ seeds, cbor: true, cids: [...rawCids, ...cborCids], maxRandomBytes: 300, oversized: [new Uint8Array(MAX_MANIFEST_BYTES + 1)] })
    await fuzzDecoder('decodeManifest', decodeManifest, [ManifestError], input, FUZZ_RUNS, SEED)
  })

  /**
   * One protocol on rpc.ts: valid frames of every kind it takes (calls, notices, replies to
   * `requests`, progress, errors), fuzzed through both decoders (what an answering side and a
   * caller read). Only the protocol's malformed class or RpcTooLargeError may be thrown.
   */
  interface RpcCase { p: RpcProtocol<any, any, any, any>, calls?: unknown[], notices?: unknown[], replies?: unknown[], nexts?: unknown[], requests?: unknown[] }

  function rpcCases (): Array<[string, RpcCase]> {
    const holder = peers[1]
    const place = { chunk: rawCids[0], size: 3000, k: 2, m: 1, fragments: rawCids, targets: peers, pinners: [peers[0]] }
    const pex = { peers: [{ id: peers[0], addrs: ['/ip4/10.0.0.1/tcp/4001', '/ip6/fd00::1/tcp/4001/p2p/' + peers[0]] }, { id: peers[1], addrs: [] }] }
    return [
      ['ops (sync)', {
        p: OPS,
        calls: [{ t: 'heads' }, { t: 'get', want: cborCids, have: [cborCids[0]] }],
        notices: [{ t: 'push', ops: ops.slice(0, 3) }],
        requests: [{ t: 'heads' }, { t: 'get', want: cborCids, have: [] }],
        replies: [{ t: 'heads', heads: cborCids }, { t: 'ops', ops: [ops[5]] }]
      }],
      ['peer exchange', {
        p: PEX,
        calls: [pex, { peers: [] }],
        requests: [pex],
        replies: [{ peers: peers.map(id => ({ id, addrs: ['/ip4/100.64.0.9/tcp/1/p2p/' + id, '/dns4/x.example/tcp/5'] })) }]
      }],
      ['membership', { p: MEMBERSHIP, notices: [{ t: 'leave' }, { t: 'drain' }, { t: 'stay' }, { t: 'gone', ids: peers }] }],
      ['space', { p: SPACE, notices: [{ full: true, seq: 1_700_000_000_000_000 }, { full: false, seq: 0 }, { full: false, seq: 2, disk: { total: 2 ** 40, free: 2 ** 39, avail: 2 ** 38 } }] }],
      ['uplink', { p: UPLINK, calls: [null], requests: [null], replies: [{ uplink: 125_000 }, { uplink: null }] }],
      ['custody', { p: CUSTODY, calls: [rawCids, []], requests: [rawCids], replies: [[true, false, true]] }],
      ['place', {
        p: PLACE,
        calls: [place],
        requests: [place],
        nexts: [{ t: 'got', n: 2 }, { t: 'ack', i: 1, holder }],
        replies: [{ t: 'done', bytes: 2048, ms: 12.5 }]
      }]
    ]
  }

  for (const name of ['ops (sync)', 'peer exchange', 'membership', 'space', 'uplink', 'custody', 'place']) {
    it(`rpc ${name}: decodeIncoming and decodeReply only throw the protocol's RpcProtocolError or RpcTooLargeError`, async () => {
      const c = rpcCases().find(([n]) => n === name)![1]
      const p = c.p
      const seeds = [
        ...(c.calls ?? []).map(v => encodeCall(p, v)),
        ...(c.notices ?? []).map(v => encodeNotice(p, v)),
        ...(c.replies ?? []).map(v => encodeOk(p, v)),
        ...(c.nexts ?? []).map(v => encodeNext(p, v)),
        encodeError(p, new RelayBusyError('busy'))
      ]
      const requests = c.requests ?? [undefined]
      // the seeds themselves are valid, each for what it is
      for (const s of seeds) {
        let ok = 0
        try { decodeIncoming(p, s); ok++ } catch (err) { if (!(err instanceof RpcProtocolError)) throw err }
        for (const r of requests) { try { decodeReply(p, s, r); ok++ } catch (err) { if (!(err instanceof RpcProtocolError)) throw err } }
        assert.ok(ok > 0, 'a seed decodes')
      }
      const allowed = [p.malformed ?? RpcProtocolError, RpcTooLargeError]
      const input = fuzzInput({ seeds, cbor: true, cids: [...cborCids, ...rawCids], maxRandomBytes: 300, oversized: [new Uint8Array(p.maxMessageBytes + 1)] })
      const r = await fuzzDecoder(`rpc ${name}`, (b) => {
        // the caller's decoder (a reply, read with each sample request) must throw only allowed
        // errors too; what is counted is the answering side's decodeIncoming
        for (const req of requests) {
          try { decodeReply(p, b, req) } catch (err) { if (!allowed.some(C => err instanceof C)) throw err }
        }
        return decodeIncoming(p, b)
      }, allowed, input, FUZZ_RUNS, SEED)
      assert.ok(r.rejected > FUZZ_RUNS / 2, `most hostile inputs are rejected (${r.rejected})`)
    })
  }
})
