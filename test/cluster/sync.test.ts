import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { lpStream } from '@libp2p/utils'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { createHost } from '../../node/net/index.ts'
import type { Host } from '../../node/net/index.ts'
import { createNetworkKey } from '../../node/net/index.ts'
import { BYID_MAX_BYTES, HANDED_RECHECK_TRIES, LACK_MAX_IDS, call, createSync, decodeReply, encodeCall, encodeNotice, HOLD, HOLD_PROTOCOL, OPS, OPS_PROTOCOL, serve, SyncProtocolError } from '../../node/net/index.ts'
import type { OpsReply, Sync, SyncHost } from '../../node/net/index.ts'
import { Tree, ROOT, LOG_FILE, rbsrRespond } from '../../node/tree/index.ts'
import { signerFor, verify } from '../../node/net/index.ts'

interface Node { host: Host, tree: Tree, sync: Sync, key: PrivateKey, dir: string }

async function until (what: string, check: () => boolean | Promise<boolean>, boundMs = 30_000): Promise<void> {
  for (let i = 0; ; i++) {
    if (await check()) return
    if (i > boundMs / 50) throw new Error(`never happened: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** h as its sync sees it, with some of its calls replaced. */
const syncView = (h: Host, over: Partial<SyncHost> = {}): SyncHost => ({
  peerId: h.peerId,
  peers: () => h.peers(),
  handle: h.handle.bind(h),
  unhandle: h.unhandle.bind(h),
  newStream: h.newStream.bind(h),
  addEventListener: h.addEventListener.bind(h),
  removeEventListener: h.removeEventListener.bind(h),
  gossip: h.gossip,
  beyondFullMesh: () => h.beyondFullMesh(),
  ...over
})
/** h as a host of the version before HOLD_PROTOCOL sees it: that protocol neither served nor unserved by its sync. */
const withoutHoldProtocol = (h: Host): SyncHost => syncView(h, {
  handle: async (protocol, handler, o) => { if (protocol !== HOLD_PROTOCOL) await h.handle(protocol, handler, o) },
  unhandle: async (protocol) => { if (protocol !== HOLD_PROTOCOL) await h.unhandle(protocol) }
})
const headIds = (t: Tree): string => t.heads().map(c => c.toString()).sort().join(',')
const names = (t: Tree): string[] => t.children(ROOT).map(e => e.name).sort()
const mkdir = async (t: Tree, name: string): Promise<void> => {
  await t.commit({ type: 'create', parent: ROOT, name, kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: BigInt(Date.now()) * 1_000_000n })
}

describe('node/sync (cluster)', function () {
  const teardown: Array<() => Promise<void>> = []
  afterEach(async function () {
    while (teardown.length > 0) await teardown.pop()!().catch(() => {})
  })

  const memAddr = (): string => `/memory/sync-${randomBytes(6).toString('hex')}`

  async function node (networkKey: Uint8Array, join_: string[] = [], opts: { maxBatch?: number, view?: (h: Host) => SyncHost, key?: PrivateKey, writtenSyncMs?: number, bothWays?: boolean, servedWaitMs?: number, handedQuietMs?: number, requestTimeoutMs?: number, byDigest?: boolean } = {}): Promise<Node> {
    const dir = await mkdtemp(join(tmpdir(), 'darkfs-sync-'))
    teardown.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const key = opts.key ?? await generateKeyPair('Ed25519')
    const tree = await Tree.open({ dir, signer: signerFor(key), verify, writtenSyncMs: opts.writtenSyncMs })
    teardown.push(async () => { await tree.close() })
    const host = await createHost({ privateKey: key, networkKey, listen: [memAddr()], join: join_ })
    teardown.push(async () => { await host.stop() })
    const sync = createSync({ maxBatch: opts.maxBatch, bothWays: opts.bothWays, servedWaitMs: opts.servedWaitMs, handedQuietMs: opts.handedQuietMs, requestTimeoutMs: opts.requestTimeoutMs, byDigest: opts.byDigest })({ host: opts.view?.(host) ?? host, tree })
    await sync.start()
    teardown.push(async () => { await sync.stop() })
    return { host, tree, sync, key, dir }
  }

  it('sync gossips every op to all 5 hosts of a cluster joined through one address', async function () {
    const key = createNetworkKey()
    const first = await node(key)
    const rest = await Promise.all(Array.from({ length: 4 }, async () => await node(key, [first.host.addresses()[0]])))
    const all = [first, ...rest]
    await until('mesh', () => all.every(n => n.host.peers().length === 4))
    await Promise.all(all.map(async (n, i) => { await mkdir(n.tree, `dir-${i}`) }))
    await until('every host has every op', () => all.every(n => n.tree.size === 5))
    for (const n of all) {
      assert.deepEqual(names(n.tree), ['dir-0', 'dir-1', 'dir-2', 'dir-3', 'dir-4'])
      assert.equal(headIds(n.tree), headIds(first.tree))
    }
    // a full mesh: an op that came straight from its author is not sent on (its author sent it to all)
    assert.ok(all.some(n => n.sync.stats().gossipUnforwarded > 0), 'no host kept a message from its author to itself')
  })

  it('sync in a full mesh: a host the author\'s gossip missed gets the op from the heads another host publishes', async function () {
    const key = createNetworkKey()
    const ka = await generateKeyPair('Ed25519')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const aId = peerIdFromPrivateKey(ka).toString()
    // c's sync never hears a's gossip nor talks to a (no push, no reconcile): only b can tell it
    // (gossip messages name no publisher: a message of a's ops without a heads nonce, whoever
    // forwarded it, is a's own)
    const byA = (data: Uint8Array): boolean => {
      const m = dagCbor.decode(data) as { ops: Uint8Array[], n?: Uint8Array }
      return m.n === undefined && m.ops.some(op => (dagCbor.decode(op) as { author: string }).author === aId)
    }
    const deaf = (h: Host): SyncHost => ({
      peerId: h.peerId,
      peers: () => h.peers().filter(p => p.id !== aId),
      handle: async (protocol, handler, o) => {
        await h.handle(protocol, async (stream, peer) => {
          if (peer === aId) { stream.abort(new Error('deaf to a')); return }
          await handler(stream, peer)
        }, o)
      },
      unhandle: h.unhandle.bind(h),
      newStream: async (peer, protocol, o) => {
        if (peer === aId) throw new Error('deaf to a')
        return await h.newStream(peer, protocol, o)
      },
      addEventListener: (type: any, listener: any) => {
        h.addEventListener(type, (e: any) => { if (e.detail !== aId) listener(e) })
      },
      removeEventListener: () => {},
      gossip: {
        ...h.gossip,
        handle: (handler) => {
          h.gossip.handle(handler === undefined ? undefined : async (data, from) => from === aId || byA(data) ? 'ignore' : await handler(data, from))
        }
      },
      beyondFullMesh: () => h.beyondFullMesh()
    })
    const b = await node(key)
    const a = await node(key, [b.host.addresses()[0]], { key: ka })
    const c = await node(key, [b.host.addresses()[0]], { view: deaf })
    await until('full mesh', () => [a, b, c].every(n => n.host.peers().length === 2 && n.host.gossip.subscribers().length === 2))
    await mkdir(a.tree, 'from-a')
    await until('b has a\'s op', () => b.tree.size === 1)
    await until('c got a\'s op from b\'s heads', () => c.tree.size === 1)
    assert.deepEqual(names(c.tree), ['from-a'])
    assert.ok(b.sync.stats().gossipUnforwarded > 0, 'b sent a\'s message on')
    // nothing is forwarded in a full mesh, so no host sends IDONTWANT for what it got (host.ts)
    assert.ok([a, b, c].every(n => n.host.idontwantMinBytes() === Number.MAX_SAFE_INTEGER), 'no IDONTWANT in a full mesh')
    assert.equal(headIds(c.tree), headIds(a.tree))
  })

  it('sync.hold: a peer gossip missed takes the op (its parents fetched from the asker); one gossip reached answers at once', async function () {
    const key = createNetworkKey()
    const ka = await generateKeyPair('Ed25519')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const aId = peerIdFromPrivateKey(ka).toString()
    // b never takes a's gossip nor its pushes: only a hold brings it a's ops
    const deafToGossip = (h: Host): SyncHost => ({
      peerId: h.peerId,
      peers: () => h.peers(),
      handle: async (protocol, handler, o) => {
        await h.handle(protocol, async (stream, peer) => { await handler(stream, peer) }, o)
      },
      unhandle: h.unhandle.bind(h),
      newStream: h.newStream.bind(h),
      addEventListener: (type: any, listener: any) => {
        // no reconcile with a on connect either
        h.addEventListener(type, (e: any) => { if (e.detail !== aId) listener(e) })
      },
      removeEventListener: () => {},
      gossip: {
        ...h.gossip,
        handle: (handler) => {
          h.gossip.handle(handler === undefined ? undefined : async (data, from) => from === aId ? 'ignore' : await handler(data, from))
        }
      },
      beyondFullMesh: () => h.beyondFullMesh()
    })
    const b = await node(key, [], { view: deafToGossip })
    const a = await node(key, [b.host.addresses()[0]], { key: ka })
    await until('connected and subscribed', () => a.host.peers().length === 1 && a.host.gossip.subscribers().length === 1)
    await mkdir(a.tree, 'one')
    await mkdir(a.tree, 'two')
    await mkdir(a.tree, 'three')
    const newest = a.tree.heads()[0]
    assert.equal(b.tree.size, 0, 'gossip did not bring b anything')
    assert.equal(await a.sync.hold(newest, [b.host.peerId]), b.host.peerId)
    // held means applied, with every op below it
    assert.ok(b.tree.hasOp(newest))
    assert.deepEqual(names(b.tree), ['one', 'three', 'two'])
    // a host gossip reaches holds the op by the time it answers the first ask
    const c = await node(key, [a.host.addresses()[0]])
    await until('c subscribed', () => a.host.gossip.subscribers().includes(c.host.peerId) && c.tree.size === 3)
    await mkdir(a.tree, 'four')
    const next = a.tree.heads()[0]
    assert.equal(await a.sync.hold(next, [c.host.peerId]), c.host.peerId)
    assert.ok(c.tree.hasOp(next))
    // none of them answering (stopped): undefined, not an error
    await c.sync.stop()
    await c.host.stop()
    assert.equal(await a.sync.hold(next, [c.host.peerId]), undefined)
  })

  it('sync.hold: the peer answers once the op and those below it are written to its op log, not once its log is synced', async function () {
    const key = createNetworkKey()
    // b syncs what it receives only when told to (no timer within the test)
    const b = await node(key, [], { writtenSyncMs: 3_600_000 })
    const a = await node(key, [b.host.addresses()[0]])
    await until('connected', () => a.host.peers().length === 1 && b.host.peers().length === 1)
    const syncsBefore = b.tree.logCounters().syncs
    for (let i = 0; i < 3; i++) {
      await mkdir(a.tree, `d${i}`)
      const newest = a.tree.heads()[0]
      assert.equal(await a.sync.hold(newest, [b.host.peerId]), b.host.peerId)
      assert.ok(b.tree.hasOp(newest))
      // in b's op log file already (the kernel has it: it survives b's process being killed),
      // the ops below it too ...
      const file = await readFile(join(b.dir, LOG_FILE))
      for (const cid of [newest, ...a.tree.heads()]) assert.ok(file.includes(Buffer.from(a.tree.getOp(cid)!)), 'the held op is in the peer\'s log file')
      assert.equal(a.tree.logCounters().unsynced, 0, 'the asker\'s own log has it synced (its commit was durable)')
    }
    for (const [i, name] of ['d0', 'd1', 'd2'].entries()) assert.equal(names(b.tree)[i], name)
    // ... and not synced for the asks: the answer waited for no disk flush on b (its log syncs
    // them with its next sync, or within WRITTEN_SYNC_MS)
    assert.equal(b.tree.logCounters().syncs, syncsBefore, 'b made no sync to answer')
    assert.ok(b.tree.logCounters().unsynced > 0)
    await b.tree.sync()
    assert.equal(b.tree.logCounters().unsynced, 0)
  })

  it('sync.hold asks a peer on one kept stream (HOLD_PROTOCOL); a peer that does not speak it (the version before) on OPS_PROTOCOL', async function () {
    const key = createNetworkKey()
    // c is a host of the version before: 'hold' on OPS_PROTOCOL, no HOLD_PROTOCOL
    const b = await node(key)
    const c = await node(key, [], { view: withoutHoldProtocol })
    const a = await node(key, [b.host.addresses()[0], c.host.addresses()[0]])
    await until('a connected to b and c', () => a.host.peers().length === 2)
    const holdStreams = (n: Node): number => n.host.traffic().protocols[HOLD_PROTOCOL]?.streams ?? 0
    for (let i = 0; i < 4; i++) {
      await mkdir(a.tree, `b${i}`)
      const newest = a.tree.heads()[0]
      assert.equal(await a.sync.hold(newest, [b.host.peerId]), b.host.peerId)
      assert.ok(b.tree.hasOp(newest))
    }
    assert.equal(holdStreams(b), 1, 'four asks, one stream')
    for (let i = 0; i < 3; i++) {
      await mkdir(a.tree, `c${i}`)
      const newest = a.tree.heads()[0]
      assert.equal(await a.sync.hold(newest, [c.host.peerId]), c.host.peerId)
      assert.ok(c.tree.hasOp(newest))
    }
    assert.equal(holdStreams(c), 0)
    assert.equal(a.sync.stats().badMessages + b.sync.stats().badMessages + c.sync.stats().badMessages, 0)
  })

  it('sync.hold of an op held back by holding(): the holder publishes it for its author, who gossips none of it; after a holder of the version before, the author does', async function () {
    const key = createNetworkKey()
    // o answers hold asks as the version before did: it takes the op and says held, nothing more
    const b = await node(key)
    const o = await node(key, [], { view: withoutHoldProtocol })
    await serve(o.host, HOLD, { call: async (req) => { await o.tree.receive([req.op]); return { t: 'held', held: true } } })
    const c = await node(key, [b.host.addresses()[0], o.host.addresses()[0]])
    const a = await node(key, [b.host.addresses()[0], o.host.addresses()[0], c.host.addresses()[0]])
    const all = [a, b, c, o]
    await until('full mesh, every host subscribed', () => all.every(n => n.host.peers().length === 3 && n.host.gossip.subscribers().length === 3))
    // an fsync's way (node/volume.ts, net/op-hold.ts): holding() and the ask once the op is signed, before it is applied
    const heldBy = async (holder: Node, name: string): Promise<CID> => {
      let asked: Promise<string | undefined> | undefined
      const [{ cid }] = await a.tree.commitMany([{ type: 'create', parent: ROOT, name, kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: BigInt(Date.now()) * 1_000_000n }], 'durable', {
        stamped: ops => {
          a.sync.holding(ops[0].cid)
          asked = a.sync.hold(ops[0].cid, [holder.host.peerId], { op: ops[0].bytes })
        }
      })
      assert.equal(await asked, holder.host.peerId)
      return cid
    }
    const published = a.sync.stats().publishedOps
    const unforwarded = c.sync.stats().gossipUnforwarded + o.sync.stats().gossipUnforwarded
    // accepted and forwarded by gossipsub
    const forwarded = (): number => all.reduce((n, x) => n + x.sync.stats().gossipAccepted - x.sync.stats().gossipUnforwarded, 0)
    const forwardedBefore = forwarded()
    const relayed = await heldBy(b, 'relayed')
    await until('every host has the op b publishes', () => all.every(n => n.tree.hasOp(relayed)))
    // counted as the author's queue comes to the op (after its gathering, GOSSIP_PUBLISH_GATHER_MS at most)
    await until('a dropped the op from its queue', () => a.sync.stats().handedOps === 1)
    assert.equal(a.sync.stats().publishedOps, published, 'its author published nothing of it')
    assert.equal(b.sync.stats().relayedOps, 1)
    // straight from the holder that names itself: taken, not forwarded (b sent it to every member)
    await until('c and o took b\'s message', () => c.sync.stats().gossipUnforwarded + o.sync.stats().gossipUnforwarded >= unforwarded + 2)
    assert.equal(forwarded(), forwardedBefore, 'nobody forwards it')
    const own = await heldBy(o, 'published')
    await until('every host has the op o took', () => all.every(n => n.tree.hasOp(own)))
    assert.equal(a.sync.stats().publishedOps, published + 1, 'its author published the op a holder of the version before took')
    assert.equal(a.sync.stats().handedOps, 1)
    assert.equal(b.sync.stats().relayedOps + o.sync.stats().relayedOps, 1)
    assert.equal(all.reduce((n, x) => n + x.sync.stats().badMessages, 0), 0)
  })

  /**
   * a (the author) with a holder h that answers it publishes (r) and publishes nothing, as one
   * that died once it answered; c joined to a. a commits an op and asks h to hold it; then a
   * reconcile each way while the holder's message would be on its way. `aFirst`: a's peer id
   * sorts first (a's run tells c what it lacks: the lack list's filter), else c's (c's run, as the
   * rbsr client, fetches the op from a by id: the byid answer's filter).
   */
  async function handedPair (o: { aOn: boolean, cOn: boolean, aFirst: boolean, quiet: number, view?: (h: Host) => SyncHost }): Promise<{ a: Node, c: Node, x: { cid: CID } }> {
    const key = createNetworkKey()
    const h = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: [memAddr()], join: [] })
    teardown.push(async () => { await h.stop() })
    await serve(h, HOLD, { call: async () => ({ t: 'held' as const, held: true, r: true as const }) })
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    let ka: PrivateKey
    let kc: PrivateKey
    do {
      ka = await generateKeyPair('Ed25519')
      kc = await generateKeyPair('Ed25519')
    } while ((peerIdFromPrivateKey(ka).toString() < peerIdFromPrivateKey(kc).toString()) !== o.aFirst)
    const a = await node(key, [h.addresses()[0]], { bothWays: o.aOn, handedQuietMs: o.quiet, key: ka, view: o.view })
    const c = await node(key, [a.host.addresses()[0]], { bothWays: o.cOn, handedQuietMs: o.quiet, key: kc })
    assert.equal(a.host.peerId < c.host.peerId, o.aFirst)
    await until('a and c connected, subscribed', () => a.host.peers().length === 2 && c.host.peers().some(p => p.id === a.host.peerId) && a.host.gossip.subscribers().includes(c.host.peerId))
    await mkdir(a.tree, 'before')
    await until('c has a\'s first op', () => c.tree.size === 1)
    let asked: Promise<string | undefined> | undefined
    const [x] = await a.tree.commitMany([{ type: 'create', parent: ROOT, name: 'handed', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: BigInt(Date.now()) * 1_000_000n }], 'durable', {
      stamped: ops => {
        a.sync.holding(ops[0].cid)
        asked = a.sync.hold(ops[0].cid, [h.peerId], { op: ops[0].bytes })
      }
    })
    assert.equal(await asked, h.peerId)
    await a.sync.synced(c.host.peerId)
    await c.sync.synced(a.host.peerId)
    return { a, c, x }
  }

  for (const [aFirst, faults] of [[true, 1], [false, 1], [true, HANDED_RECHECK_TRIES]] as const) {
    it(`ops kept from a peer reach it when the recheck's rbsr request fails ${faults === 1 ? 'once' : `${faults} times (pushed)`} (${aFirst ? 'the author\'s' : 'the peer\'s'} id sorts first): retried, not left to the heads walk`, async function () {
      this.timeout(60_000)
      // the first `faults` ops streams a opens to c once a's recheck has started fail (a stream
      // reset); (pushed) every one until a's recheck gives up: its push is the only way to c
      const pushed = faults === HANDED_RECHECK_TRIES
      const fail = { on: false, left: pushed ? Infinity : faults as number, peer: '', rechecks: (): number => 0 }
      const view = (h: Host): SyncHost => syncView(h, {
        newStream: async (peer, protocol, o) => {
          if (pushed && fail.rechecks() > HANDED_RECHECK_TRIES) fail.on = false
          if (fail.on && peer === fail.peer && protocol === OPS_PROTOCOL && fail.rechecks() >= 1) {
            if (--fail.left === 0) fail.on = false
            throw new Error('test: stream reset')
          }
          return await h.newStream(peer, protocol, o)
        }
      })
      const { a, c, x } = await handedPair({ aOn: true, cOn: true, aFirst, quiet: 2_000, view })
      fail.peer = c.host.peerId
      fail.rechecks = () => a.sync.stats().handedRechecks
      assert.equal(c.tree.hasOp(x.cid), false)
      fail.on = true
      await until('a\'s ops streams of the recheck failed', () => !fail.on, 20_000)
      await until('c has x', () => c.tree.hasOp(x.cid), 20_000)
      assert.ok(a.host.peers().some(p => p.id === c.host.peerId), 'a and c stayed connected')
      // past the tries, pushed without a run (the rechecks that failed, then the push)
      if (pushed) {
        assert.equal(a.sync.stats().handedRechecks, faults + 1)
        assert.equal(a.sync.stats().handedGivenUp, 1)
      }
    })
  }

  it('stop() waits for a recheck that is running: its request has settled once stop() resolves', async function () {
    this.timeout(60_000)
    // a's ops streams to c once its recheck has started open only after the stop (its abort),
    // one I/O turn later (as a real stream open does)
    const order: string[] = []
    const gate = { peer: '', rechecks: (): number => 0, entered: false }
    const view = (h: Host): SyncHost => syncView(h, {
      newStream: async (peer, protocol, o) => {
        if (peer === gate.peer && protocol === OPS_PROTOCOL && gate.rechecks() >= 1) {
          gate.entered = true
          const signal = o?.signal
          if (signal === undefined) throw new Error('test: no signal')
          await new Promise<void>(resolve => {
            if (signal.aborted) resolve()
            else signal.addEventListener('abort', () => { resolve() }, { once: true })
          })
          await new Promise(resolve => setImmediate(resolve))
          order.push('stream')
          throw new Error('test: aborted')
        }
        return await h.newStream(peer, protocol, o)
      }
    })
    const { a, c } = await handedPair({ aOn: true, cOn: true, aFirst: true, quiet: 2_000, view })
    gate.peer = c.host.peerId
    gate.rechecks = () => a.sync.stats().handedRechecks
    await until('a\'s recheck opens an ops stream to c', () => gate.entered, 20_000)
    await a.sync.stop()
    order.push('stopped')
    assert.deepEqual(order, ['stream', 'stopped'])
  })

  for (const aFirst of [true, false]) {
    it(`an op a holder publishes for its author is given by id to no peer meanwhile (one run both ways on, ${aFirst ? 'the author\'s id sorts first: its lack list leaves it out' : 'the peer\'s id sorts first: a byid answer leaves it out'}), and a holder that publishes nothing strands it nowhere`, async function () {
      this.timeout(60_000)
      // the quiet time long enough that the reconciles and the call below run within it however loaded the machine
      const { a, c, x } = await handedPair({ aOn: true, cOn: true, aFirst, quiet: 5_000 })
      const rbsrServed = { a: a.sync.stats().rbsrServed, c: c.sync.stats().rbsrServed }
      // the run of the host whose id sorts first served both: the other's stopped at its first message
      assert.ok((aFirst ? rbsrServed.c : rbsrServed.a) >= 1, `the ${aFirst ? 'peer' : 'author'}'s run was served`)
      assert.equal(c.tree.hasOp(x.cid), false, 'c took the op from its author while its holder publishes it')
      assert.ok(a.sync.stats().handedKept >= 1, 'a kept the op from c')
      // the byid filter on its own: c (its run offered, so it takes a's offer) asks a for the op by id
      const reply = await call(c.host, a.host.peerId, OPS, { t: 'byid', ids: [x.cid] }, { timeoutMs: 10_000 })
      assert.deepEqual(reply, { t: 'ops', ops: [] }, 'a gave the op by id while its holder publishes it')
      // nothing came from the holder: a reconciles with c again once the quiet time is over
      await until('c has the op', () => c.tree.hasOp(x.cid))
      assert.ok(a.sync.stats().handedRechecks >= 1)
      assert.equal(a.sync.stats().badMessages + c.sync.stats().badMessages, 0)
    })
  }

  it('an op whose hold ask never ends is kept from peers by id for HANDED_PENDING_TIMEOUTS of the configured request timeout, not of the default one', async function () {
    this.timeout(60_000)
    const key = createNetworkKey()
    // a request timeout of 2 s: its ops are kept 6 s while their ask runs (30 s at the default 10 s)
    const a = await node(key, [], { handedQuietMs: 500, requestTimeoutMs: 2_000 })
    const c = await node(key, [a.host.addresses()[0]])
    await until('a and c connected, subscribed', () => a.host.peers().length === 1 && c.host.peers().some(p => p.id === a.host.peerId) && a.host.gossip.subscribers().includes(c.host.peerId))
    await mkdir(a.tree, 'before')
    await until('c has a\'s first op', () => c.tree.size === 1)
    // marked for a hold ask that is never made: the op stays held back from gossip, its ask "under way"
    const [x] = await a.tree.commitMany([{ type: 'create', parent: ROOT, name: 'pending', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: BigInt(Date.now()) * 1_000_000n }], 'durable', {
      stamped: ops => { a.sync.holding(ops[0].cid) }
    })
    await c.sync.synced(a.host.peerId)
    assert.equal(c.tree.hasOp(x.cid), false, 'c took the op from a while its ask runs')
    assert.ok(a.sync.stats().handedKept >= 1)
    // the rechecks give it once 3 request timeouts (6 s) are over: well within 20 s (the 30 s of
    // the default timeout are not)
    await until('c has the op', () => c.tree.hasOp(x.cid), 20_000)
    assert.equal(a.sync.stats().badMessages + c.sync.stats().badMessages, 0)
  })

  for (const [aOn, cOn] of [[true, false], [false, true]]) {
    it(`an op a holder publishes for its author is kept from no peer that does not take its author's offer (${aOn ? 'the peer' : 'the author'} with one run both ways off): the peer's run gets it by id, whichever id sorts first`, async function () {
      this.timeout(120_000)
      for (const aFirst of [true, false]) {
        const { a, c, x } = await handedPair({ aOn, cOn, aFirst, quiet: 5_000 })
        // c's run (the rbsr client, its ops not told by a) learnt it lacks the op and fetched it
        // from a: a byid answer left out nothing (a peer that does not take a's offer would never
        // be told it after the quiet time)
        assert.equal(c.tree.hasOp(x.cid), true, `c lacks the op after its run (a's id sorts ${aFirst ? 'first' : 'second'})`)
        assert.equal(a.sync.stats().handedKept, 0)
        assert.equal(a.sync.stats().badMessages + c.sync.stats().badMessages, 0)
      }
    })
  }

  it('sync.hold with r carries the author\'s ops below its op not sent yet: the holder fetches none of them from the author, publishes them, and the author knows them by their bytes when they come back', async function () {
    const key = createNetworkKey()
    const b = await node(key)
    const c = await node(key, [b.host.addresses()[0]])
    const a = await node(key, [b.host.addresses()[0], c.host.addresses()[0]])
    const all = [a, b, c]
    await until('full mesh, every host subscribed', () => all.every(n => n.host.peers().length === 2 && n.host.gossip.subscribers().length === 2))
    const published = a.sync.stats().publishedOps
    const now = (): bigint => BigInt(Date.now()) * 1_000_000n
    // two ops in one commit (a fold and its write on an fsync; here two creates): the ask names
    // the newest, whose parent is the other, on its way to a's log too, not sent anywhere yet
    let asked: Promise<string | undefined> | undefined
    const made = await a.tree.commitMany([
      { type: 'create', parent: ROOT, name: 'below', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: now() },
      { type: 'create', parent: ROOT, name: 'asked', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: now() }
    ], 'durable', {
      stamped: ops => {
        const last = ops.at(-1)!
        a.sync.holding(last.cid)
        asked = a.sync.hold(last.cid, [b.host.peerId], { op: last.bytes })
      }
    })
    assert.equal(await asked, b.host.peerId)
    assert.ok(made.every(m => b.tree.hasOp(m.cid)), 'b holds both ops')
    // (the version before: b fetched the op below from a, inside the ask)
    assert.equal(b.sync.stats().holdFetches, 0, 'b fetched nothing from a: the ask carried the op below')
    assert.equal(a.sync.stats().carriedOps, 1)
    await until('c has both ops, from b', () => made.every(m => c.tree.hasOp(m.cid)) && b.sync.stats().relayedOps === 2)
    await until('a dropped both from its queue', () => a.sync.stats().handedOps === 2)
    assert.equal(a.sync.stats().publishedOps, published, 'a published neither')
    // b's message reaches a too: its ops are known by their bytes (not hashed, not taken)
    await until('a knew both ops in b\'s message', () => a.sync.stats().returnedOps === 2)

    // an fsync's op whose ask a newer fsync's superseded (OpHold asks for the newest only): held
    // back (pending), it rides in the newer ask (the commit before: b fetched it from a)
    const [older] = await a.tree.commitMany([{ type: 'create', parent: ROOT, name: 'superseded', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: now() }], 'durable', {
      stamped: ops => { a.sync.holding(ops[0].cid) }
    })
    const [newer] = await a.tree.commitMany([{ type: 'create', parent: ROOT, name: 'newest', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: now() }], 'durable', {
      stamped: ops => {
        a.sync.holding(ops[0].cid)
        asked = a.sync.hold(ops[0].cid, [b.host.peerId], { op: ops[0].bytes })
      }
    })
    assert.equal(await asked, b.host.peerId)
    assert.ok(b.tree.hasOp(older.cid) && b.tree.hasOp(newer.cid))
    assert.equal(b.sync.stats().holdFetches, 0, 'b fetched nothing from a: the ask carried the superseded op')
    assert.equal(a.sync.stats().carriedOps, 2)
    await until('c has both, from b', () => c.tree.hasOp(older.cid) && c.tree.hasOp(newer.cid) && b.sync.stats().relayedOps === 4)
    await until('a dropped both from its queue', () => a.sync.stats().handedOps === 4)
    assert.equal(a.sync.stats().publishedOps, published, 'a published neither')
    assert.equal(all.reduce((n, x) => n + x.sync.stats().badMessages, 0), 0)
  })

  it('sync reconciles a long history on connect, in batches, walking parents', async function () {
    const key = createNetworkKey()
    const a = await node(key, [], { maxBatch: 16 })
    for (let i = 0; i < 120; i++) await mkdir(a.tree, `d${i}`)
    const b = await node(key, [a.host.addresses()[0]], { maxBatch: 16 })
    await until('b has the whole history', () => b.tree.size === 120)
    assert.equal(headIds(b.tree), headIds(a.tree))
    assert.equal(names(b.tree).length, 120)
    // the reconcile ends once its last receive returns, after the ops are applied (the log write
    // of a receive runs while its ops are applied): wait for the end, not only for the ops
    await until('b\'s reconcile ended', () => b.sync.stats().reconciles >= 1)
  })

  it('sync.synced(peer) pulls what the peer has, and hosts that wrote apart merge on connect', async function () {
    const key = createNetworkKey()
    // two hosts of one network, not connected yet: both write
    const a = await node(key)
    const b = await node(key)
    await mkdir(a.tree, 'from-a')
    await mkdir(b.tree, 'from-b')
    await mkdir(b.tree, 'from-b-2')
    assert.equal(a.tree.size, 1)
    await b.host.dial(a.host.addresses()[0])
    await b.sync.synced(a.host.peerId)
    await a.sync.synced(b.host.peerId)
    for (const n of [a, b]) assert.deepEqual(names(n.tree), ['from-a', 'from-b', 'from-b-2'])
    assert.equal(headIds(a.tree), headIds(b.tree))
    // later writes reach the other side through synced() as well as gossip
    await mkdir(b.tree, 'from-b-3')
    await a.sync.synced(b.host.peerId)
    assert.ok(a.tree.lookup(ROOT, 'from-b-3') !== undefined)
  })

  it('sync forwards ops to hosts that are not directly connected (a - b - c)', async function () {
    const key = createNetworkKey()
    // each sync sees only the peers named: a and c never talk although their hosts may connect
    const hidden = new Map<string, string>()
    const view = (h: Host): SyncHost => ({
      peerId: h.peerId,
      peers: () => h.peers().filter(p => hidden.get(h.peerId) !== p.id),
      handle: async (protocol, handler, o) => {
        await h.handle(protocol, async (stream, peer) => {
          if (hidden.get(h.peerId) === peer) { stream.abort(new Error('hidden')); return }
          await handler(stream, peer)
        }, o)
      },
      unhandle: h.unhandle,
      newStream: async (peer, protocol, o) => {
        if (hidden.get(h.peerId) === peer) throw new Error('hidden')
        return await h.newStream(peer, protocol, o)
      },
      addEventListener: (type: any, listener: any) => {
        h.addEventListener(type, (e: any) => { if (hidden.get(h.peerId) !== e.detail) listener(e) })
      },
      removeEventListener: () => {}
    })
    const ka = await generateKeyPair('Ed25519')
    const kc = await generateKeyPair('Ed25519')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    hidden.set(peerIdFromPrivateKey(ka).toString(), peerIdFromPrivateKey(kc).toString())
    hidden.set(peerIdFromPrivateKey(kc).toString(), peerIdFromPrivateKey(ka).toString())
    const b = await node(key)
    const a = await node(key, [b.host.addresses()[0]], { view, key: ka })
    const c = await node(key, [b.host.addresses()[0]], { view, key: kc })
    await until('b sees both', () => b.host.peers().length >= 2)
    await mkdir(a.tree, 'from-a')
    await until('c got a\'s op through b', () => c.tree.size === 1)
    assert.deepEqual(names(c.tree), ['from-a'])
    await mkdir(c.tree, 'from-c')
    await until('a got c\'s op through b', () => a.tree.size === 2)
    assert.deepEqual(names(a.tree), ['from-a', 'from-c'])
  })

  /** A view of h whose ops streams fail while `cut.on` (a partition the connection outlives). */
  const cutView = (cut: { on: boolean, failPullsOnly?: boolean }) => (h: Host): SyncHost => ({
    peerId: h.peerId,
    peers: () => h.peers(),
    handle: async (protocol, handler, o) => {
      await h.handle(protocol, async (stream, peer) => {
        if (cut.on && cut.failPullsOnly !== true) { stream.abort(new Error('cut')); return }
        await handler(stream, peer)
      }, o)
    },
    unhandle: h.unhandle.bind(h),
    newStream: async (peer, protocol, o) => {
      if (cut.on) throw new Error('cut')
      return await h.newStream(peer, protocol, o)
    },
    addEventListener: h.addEventListener.bind(h),
    removeEventListener: h.removeEventListener.bind(h)
  })

  // issue 16: after a partition that the connection outlived (no reconnect, so no reconcile on
  // connect), the pushes that failed during it were dropped and never re-sent: the two sides
  // kept their own ops for good
  it('sync: ops whose pushes failed while the link was cut reach the peer once it answers again, with no reconnect', async function () {
    const key = createNetworkKey()
    const cut = { on: false }
    const a = await node(key, [], { view: cutView(cut) })
    const b = await node(key, [a.host.addresses()[0]], { view: cutView(cut) })
    await until('connected', () => b.host.peers().length === 1 && a.host.peers().length === 1)
    await mkdir(a.tree, 'before')
    await until('b has it', () => b.tree.size === 1)
    cut.on = true
    await mkdir(a.tree, 'from-a')
    await mkdir(b.tree, 'from-b')
    await mkdir(b.tree, 'from-b-2')
    // the pushes fail (and are retried) while the cut lasts
    await new Promise(resolve => setTimeout(resolve, 200))
    cut.on = false
    await until('both hold every op', () => a.tree.size === 4 && b.tree.size === 4)
    assert.equal(headIds(a.tree), headIds(b.tree))
    assert.deepEqual(names(a.tree), names(b.tree))
  })

  // a push arrives, but the receiver's requests (its reconcile on connect, its fetch of the
  // push's parents) fail: it must fetch them later, with no reconnect and no new push
  it('sync: a push whose parents could not be fetched is completed later, with no reconnect', async function () {
    const key = createNetworkKey()
    const a = await node(key)
    for (let i = 0; i < 3; i++) await mkdir(a.tree, `old-${i}`)
    const bCut = { on: true, failPullsOnly: true }
    const b = await node(key, [a.host.addresses()[0]], { view: cutView(bCut) })
    await until('connected', () => b.host.peers().length === 1 && a.host.peers().length === 1)
    await mkdir(a.tree, 'new')
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.equal(b.tree.size, 0)
    bCut.on = false
    await until('b fetched the parents', () => b.tree.size === 4)
    assert.equal(headIds(a.tree), headIds(b.tree))
  })

  it('sync reconciles hosts that both wrote while apart by range fingerprints: bytes for what differs, not the log', async function () {
    const key = createNetworkKey()
    const a = await node(key)
    const b = await node(key, [a.host.addresses()[0]])
    await until('connected', () => b.host.peers().length === 1)
    const mkdirs = async (t: Tree, prefix: string, n: number): Promise<void> => {
      for (let i = 0; i < n; i += 250) {
        await t.commitMany(Array.from({ length: Math.min(250, n - i) }, (_, k) => ({ type: 'create' as const, parent: ROOT, name: `${prefix}${i + k}`, kind: 'dir' as const, mode: 0o755, uid: 0, gid: 0, time: BigInt(Date.now()) * 1_000_000n })))
      }
    }
    await mkdirs(a.tree, 'common-', 1500)
    await until('b has the common log', () => b.tree.size === 1500)
    // b goes away; both write 10 ops while apart
    await b.sync.stop()
    await b.host.stop()
    await until('a saw b leave', () => a.host.peers().length === 0)
    await mkdirs(a.tree, 'a-', 10)
    await mkdirs(b.tree, 'b-', 10)
    const logBytes = 1500 * a.tree.getOp(a.tree.heads()[0])!.byteLength
    const aSentBefore = a.host.traffic().protocols[OPS_PROTOCOL]?.sent ?? 0
    const aStatsBefore = a.sync.stats()
    // b comes back (same key, same tree) and dials a: each side reconciles on connect
    const host = await createHost({ privateKey: b.key, networkKey: key, listen: [memAddr()], join: [] })
    teardown.push(async () => { await host.stop() })
    const sync = createSync()({ host, tree: b.tree })
    await sync.start()
    teardown.push(async () => { await sync.stop() })
    await host.dial(a.host.addresses()[0])
    await until('both hold all 1520 ops', () => a.tree.size === 1520 && b.tree.size === 1520)
    await until('both reconciled', () => sync.stats().reconciles >= 1 && a.sync.stats().reconciles > aStatsBefore.reconciles)
    assert.equal(headIds(a.tree), headIds(b.tree))
    assert.equal(names(a.tree).length, 1520)
    // both sides took the rbsr way, and what went over the ops protocol both ways is a few
    // KiB: the 20 ops and the fingerprints, not the common log (the heads walk sent about
    // 150 KB here: b's answers walk back from b's heads past a's, which b does not know)
    assert.equal(sync.stats().headsReconciles, 0)
    assert.equal(a.sync.stats().headsReconciles, aStatsBefore.headsReconciles)
    // (one run serves both ways: the side whose id sorts first runs it)
    assert.ok(sync.stats().rbsrRounds + a.sync.stats().rbsrRounds - aStatsBefore.rbsrRounds >= 1)
    const sent = (host.traffic().protocols[OPS_PROTOCOL]?.sent ?? 0) + (a.host.traffic().protocols[OPS_PROTOCOL]?.sent ?? 0) - aSentBefore
    assert.ok(sent < 32 * 1024 && sent < logBytes / 16, `${sent} bytes on the ops protocol (log: ${logBytes} bytes)`)
  })

  /**
   * Two hosts (`aOld`/`bOld`: as the version before, bothWays false; `digest`: whether each asks
   * by digest, byDigest) that diverged by n ops each, dialled; both hold every op.
   */
  async function divergedPair (n: number, aOld: boolean, bOld: boolean, digest: [boolean, boolean] = [true, true]): Promise<{ a: Node, b: Node }> {
    const key = createNetworkKey()
    const a = await node(key, [], { bothWays: !aOld, byDigest: digest[0] })
    const b = await node(key, [], { bothWays: !bOld, byDigest: digest[1] })
    const mkdirs = async (t: Tree, prefix: string): Promise<void> => {
      await t.commitMany(Array.from({ length: n }, (_, k) => ({ type: 'create' as const, parent: ROOT, name: `${prefix}${k}`, kind: 'dir' as const, mode: 0o755, uid: 0, gid: 0, time: BigInt(Date.now()) * 1_000_000n })))
    }
    await mkdirs(a.tree, 'a-')
    await mkdirs(b.tree, 'b-')
    await b.host.dial(a.host.addresses()[0])
    await until('both hold every op', () => a.tree.size === 2 * n && b.tree.size === 2 * n)
    await until('both reconciled', () => a.sync.stats().reconciles >= 1 && b.sync.stats().reconciles >= 1)
    assert.equal(headIds(a.tree), headIds(b.tree))
    assert.equal(names(a.tree).length, 2 * n)
    assert.equal(a.sync.stats().headsReconciles + b.sync.stats().headsReconciles, 0)
    return { a, b }
  }

  it('sync: one rbsr run serves both ways between hosts of this version: the host whose id sorts first runs it and tells the other what it lacks, the other runs none', async function () {
    const { a, b } = await divergedPair(300, false, false)
    const [first, second] = a.host.peerId < b.host.peerId ? [a, b] : [b, a]
    const f = first.sync.stats()
    const s = second.sync.stats()
    assert.ok(f.rbsrRounds >= 1)
    assert.equal(f.lackSent, 300)
    assert.equal(f.rbsrServed, 0)
    // its own run stopped at its first message (answered d): no round of its own
    assert.equal(s.rbsrServed, 1)
    assert.equal(s.rbsrRounds, 0)
    assert.equal(s.lackSent, 0)
    assert.equal(f.badMessages + s.badMessages, 0)
  })

  it('sync: a host of this version and one of the version before (no lack list) each run rbsr, and both get everything, whichever id sorts first', async function () {
    for (const [aOld, bOld] of [[true, false], [false, true]]) {
      const { a, b } = await divergedPair(200, aOld, bOld)
      for (const n of [a, b]) {
        const st = n.sync.stats()
        assert.ok(st.rbsrRounds >= 1)
        assert.equal(st.rbsrServed, 0)
        assert.equal(st.lackSent, 0)
        assert.equal(st.badMessages, 0)
      }
    }
  })

  it('sync: fetches ask by digest (bydigest) between hosts of this version, by id (byid) with a host of the version before (byDigest off), both ways of one run and each host\'s own run; all get everything', async function () {
    for (const bothWays of [true, false]) {
      for (const digest of [[true, true], [false, true], [true, false]] as Array<[boolean, boolean]>) {
        const { a, b } = await divergedPair(200, !bothWays, !bothWays, digest)
        const what = `bothWays ${String(bothWays)}, byDigest ${digest.join('/')}`
        for (const n of [a, b]) {
          const st = n.sync.stats()
          assert.ok(st.fetchRequests >= 1, `${what}: ${st.fetchRequests} fetch requests`)
          assert.equal(st.fetchByDigest, digest[0] && digest[1] ? st.fetchRequests : 0, what)
          assert.equal(st.badMessages, 0, what)
          assert.equal(st.headsReconciles, 0, what)
        }
        while (teardown.length > 0) await teardown.pop()!().catch(() => {})
      }
    }
  })

  it('sync: a run the peer said it serves (d) whose lack list never ends runs rbsr alone after servedWaitMs, and gets everything', async function () {
    const key = createNetworkKey()
    // the peer: answers an offer with d and never tells; answers the run that follows as any peer
    const dir = await mkdtemp(join(tmpdir(), 'darkfs-sync-mute-'))
    teardown.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const muteKey = await generateKeyPair('Ed25519')
    const muteTree = await Tree.open({ dir, signer: signerFor(muteKey), verify })
    teardown.push(async () => { await muteTree.close() })
    for (let i = 0; i < 5; i++) await mkdir(muteTree, `mute-${i}`)
    const muteHost = await createHost({ privateKey: muteKey, networkKey: key, listen: [memAddr()], join: [] })
    teardown.push(async () => { await muteHost.stop() })
    let offers = 0
    const unserve = await serve(muteHost, OPS, {
      call: async (req): Promise<OpsReply> => {
        if (req.t === 'rbsr' && req.b === true) { offers++; return { t: 'rbsr', m: new Uint8Array(0), d: 9 } }
        if (req.t === 'rbsr') return { t: 'rbsr', m: rbsrRespond(muteTree.opSet(), req.m) }
        if (req.t === 'byid') return { t: 'ops', ops: req.ids.map(c => muteTree.getOp(c)).filter((o): o is Uint8Array => o !== undefined) }
        throw new SyncProtocolError(`unexpected request ${req.t}`)
      },
      notice: async () => {}
    })
    teardown.push(unserve)
    const b = await node(key, [], { servedWaitMs: 300, bothWays: true })
    await mkdir(b.tree, 'b-0')
    const t0 = performance.now()
    await b.host.dial(muteHost.addresses()[0])
    await until('b has the peer\'s ops', () => b.tree.size === 6)
    assert.ok(performance.now() - t0 >= 300, 'not before the wait ran out')
    assert.equal(offers, 1)
    const st = b.sync.stats()
    assert.equal(st.rbsrServed, 1)
    assert.ok(st.rbsrRounds >= 1)
    assert.equal(st.headsReconciles, 0)
  })

  it('sync: the fields of one run both ways are checked: b and e true only, d and k tokens, lack ids 32-byte digests within LACK_MAX_IDS (none only in the last call)', function () {
    const bad: unknown[] = [
      { t: 'rbsr', m: new Uint8Array(1), b: 1 },
      { t: 'lack', k: -1, ids: new Uint8Array(32) },
      { t: 'lack', k: 1.5, ids: new Uint8Array(32) },
      { t: 'lack', k: 1, ids: new Uint8Array(31) },
      { t: 'lack', k: 1, ids: new Uint8Array(0) },
      { t: 'lack', k: 1, ids: new Uint8Array(32 * (LACK_MAX_IDS + 1)) },
      { t: 'lack', k: 1, ids: new Uint8Array(32), e: false },
      { t: 'lack', k: 1, ids: new Uint8Array(0), a: true },
      { t: 'lack', k: 1, ids: new Uint8Array(0), e: true, a: 1 },
      { t: 'rbsr', m: new Uint8Array(1), i: 1 },
      { t: 'bydigest', ids: new Uint8Array(0) },
      { t: 'bydigest', ids: new Uint8Array(33) },
      { t: 'bydigest', ids: new Uint8Array(32 * 1025) },
      { t: 'bydigest', ids: [new Uint8Array(32)] },
      { t: 'bydigest', ids: new Uint8Array(32), c: 1 }
    ]
    for (const m of bad) assert.throws(() => OPS.request?.(m), SyncProtocolError, JSON.stringify(m))
    assert.deepEqual(OPS.request?.({ t: 'lack', k: 3, ids: new Uint8Array(0), e: true }), { t: 'lack', k: 3, ids: new Uint8Array(0), e: true })
    assert.deepEqual(OPS.request?.({ t: 'lack', k: 3, ids: new Uint8Array(0), e: true, a: true }), { t: 'lack', k: 3, ids: new Uint8Array(0), e: true, a: true })
    // d answers an offer only; b in an answer likewise
    assert.throws(() => OPS.reply?.({ t: 'rbsr', d: 1 }, { t: 'rbsr', m: new Uint8Array(1) }), SyncProtocolError)
    assert.throws(() => OPS.reply?.({ t: 'rbsr', m: new Uint8Array(1), b: true }, { t: 'rbsr', m: new Uint8Array(1) }), SyncProtocolError)
    assert.equal((OPS.reply?.({ t: 'rbsr', d: 7 }, { t: 'rbsr', m: new Uint8Array(1), b: true }) as { d?: number }).d, 7)
    // i: true only, and in an answer only to a message that said it
    assert.deepEqual(OPS.request?.({ t: 'rbsr', m: new Uint8Array(1), b: true, i: true }), { t: 'rbsr', m: new Uint8Array(1), b: true, i: true })
    assert.deepEqual(OPS.request?.({ t: 'bydigest', ids: new Uint8Array(64), c: true }), { t: 'bydigest', ids: new Uint8Array(64), c: true })
    assert.throws(() => OPS.reply?.({ t: 'rbsr', m: new Uint8Array(1), i: true }, { t: 'rbsr', m: new Uint8Array(1) }), SyncProtocolError)
    assert.throws(() => OPS.reply?.({ t: 'rbsr', m: new Uint8Array(1), i: 1 }, { t: 'rbsr', m: new Uint8Array(1), i: true }), SyncProtocolError)
    assert.deepEqual(OPS.reply?.({ t: 'rbsr', d: 7, i: true }, { t: 'rbsr', m: new Uint8Array(1), b: true, i: true }), { t: 'rbsr', m: new Uint8Array(0), d: 7, i: true })
    assert.deepEqual(OPS.reply?.({ t: 'rbsr', m: new Uint8Array(1), i: true }, { t: 'rbsr', m: new Uint8Array(1), i: true }), { t: 'rbsr', m: new Uint8Array(1), i: true })
    // a host of the version before reads neither: an answer with i to it parses as one without
    assert.deepEqual(OPS.reply?.({ t: 'rbsr', m: new Uint8Array(1) }, { t: 'rbsr', m: new Uint8Array(1), i: true }), { t: 'rbsr', m: new Uint8Array(1) })
  })

  it('sync fetches what a reconcile found missing in few byid requests growing to FETCH_IDS_PER_REQUEST ids while answers come quickly; from a peer answering fewer (an older version\'s maxBatch), the rest asked again', async function () {
    const key = createNetworkKey()
    const mkdirs = async (t: Tree, prefix: string, n: number): Promise<void> => {
      for (let i = 0; i < n; i += 250) {
        await t.commitMany(Array.from({ length: Math.min(250, n - i) }, (_, k) => ({ type: 'create' as const, parent: ROOT, name: `${prefix}${i + k}`, kind: 'dir' as const, mode: 0o755, uid: 0, gid: 0, time: BigInt(Date.now()) * 1_000_000n })))
      }
    }
    // a: 2,500 ops the others lack; `old` answers at most 100 ops a byid request, as a host of
    // the version before did (its maxBatch)
    const a = await node(key)
    const old = await node(key, [], { maxBatch: 100 })
    await mkdirs(a.tree, 'a-', 2500)
    await mkdirs(old.tree, 'a-', 2500)
    for (const [from, n] of [[a, 4], [old, 25]] as const) {
      // b holds one op of its own (so it reconciles by rbsr, not by the heads walk)
      const b = await node(key)
      await mkdir(b.tree, 'b-only')
      await b.host.dial(from.host.addresses()[0])
      await until('b holds every op', () => b.tree.size === 2501)
      await until('b\'s reconcile ended', () => b.sync.stats().reconciles >= 1)
      const s = b.sync.stats()
      assert.equal(s.headsReconciles, 0)
      assert.equal(s.receivedOps, 2500)
      // 2,500 ids in requests of 256, 512, 1,024 and the 708 left (requests grow while answers
      // come quickly; 256 at a time: 10); from `old`, 100 per answer, the rest asked again, and
      // 100 a request after the first
      if (from === a) assert.ok(s.fetchRequests >= n && s.fetchRequests <= n + 1, `${s.fetchRequests} byid requests`)
      else {
        assert.ok(s.fetchRequests >= n && s.fetchRequests <= n + 1, `${s.fetchRequests} byid requests`)
        // after a short answer the requests shrink to what it brought: each id is sent about once
        // (41 bytes in a request), not again with every answer of 100
        const sent = b.host.traffic().protocols[OPS_PROTOCOL]?.sent ?? 0
        assert.ok(sent < 2500 * 41 * 2.5, `${sent} bytes of requests`)
      }
      assert.equal(s.badMessages, 0)
    }
  })

  it('sync: a byid answer holds BYID_MAX_BYTES of ops at most for an asker that asks again (c); an asker of the version before gets up to a message\'s bound', async function () {
    const key = createNetworkKey()
    const a = await node(key)
    const b = await node(key, [a.host.addresses()[0]])
    await until('connected', () => b.host.peers().length === 1)
    // 600 ops of ~4.4 KB (2.6 MB) on a alone: b is stopped from syncing them by asking a itself
    await b.sync.stop()
    const ids: CID[] = []
    for (let i = 0; i < 600; i += 100) {
      for (const { cid } of await a.tree.commitMany(Array.from({ length: 100 }, (_, k) => ({ type: 'create' as const, parent: ROOT, name: `big-${i + k}`, kind: 'file' as const, content: { inline: new Uint8Array(4096).fill(i + k) }, size: 4096, mode: 0o644, uid: 0, gid: 0, time: BigInt(Date.now()) * 1_000_000n })))) ids.push(cid)
    }
    assert.equal(ids.length, 600)
    const bytes = (r: OpsReply): number => r.t === 'ops' ? r.ops.reduce((n, o) => n + o.byteLength, 0) : -1
    const capped = await call(b.host, a.host.peerId, OPS, { t: 'byid', ids, c: true })
    assert.ok(capped.t === 'ops' && capped.ops.length > 0 && capped.ops.length < 600, `${capped.t === 'ops' ? capped.ops.length : capped.t} ops`)
    assert.ok(bytes(capped) <= BYID_MAX_BYTES && bytes(capped) > BYID_MAX_BYTES - 8192, `${bytes(capped)} bytes`)
    const whole = await call(b.host, a.host.peerId, OPS, { t: 'byid', ids })
    assert.ok(whole.t === 'ops' && whole.ops.length === 600, `${whole.t === 'ops' ? whole.ops.length : whole.t} ops`)
  })

  it('sync reconciles by heads with a peer that does not answer rbsr (an older version)', async function () {
    const key = createNetworkKey()
    // the older peer: heads and get as before, and an unknown request closes the stream with
    // SyncProtocolError, as its parser does for 'rbsr'
    const dir = await mkdtemp(join(tmpdir(), 'darkfs-sync-old-'))
    teardown.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const oldKey = await generateKeyPair('Ed25519')
    const oldTree = await Tree.open({ dir, signer: signerFor(oldKey), verify })
    teardown.push(async () => { await oldTree.close() })
    for (let i = 0; i < 5; i++) await mkdir(oldTree, `old-${i}`)
    const oldHost = await createHost({ privateKey: oldKey, networkKey: key, listen: [memAddr()], join: [] })
    teardown.push(async () => { await oldHost.stop() })
    const unserve = await serve(oldHost, OPS, {
      call: async (req): Promise<OpsReply> => {
        if (req.t === 'heads') return { t: 'heads', heads: oldTree.heads() }
        if (req.t !== 'get') throw new SyncProtocolError(`unknown request ${JSON.stringify(req.t)}`)
        // every op it has below `want` (a small log: no bound needed here)
        const out: Uint8Array[] = []
        const seen = new Set<string>()
        const queue = [...req.want]
        while (queue.length > 0) {
          const cid = queue.shift()!
          if (seen.has(cid.toString())) continue
          seen.add(cid.toString())
          const block = oldTree.getOp(cid)
          if (block === undefined) continue
          out.push(block)
          queue.push(...(dagCbor.decode(block) as { parents: CID[] }).parents)
        }
        return { t: 'ops', ops: out }
      },
      notice: async () => {}
    })
    teardown.push(unserve)
    const b = await node(key)
    await mkdir(b.tree, 'new-0') // not empty: b tries rbsr first
    await b.host.dial(oldHost.addresses()[0])
    await until('b has the older peer\'s ops', () => b.tree.size === 6)
    assert.deepEqual(names(b.tree), ['new-0', 'old-0', 'old-1', 'old-2', 'old-3', 'old-4'])
    assert.ok(b.sync.stats().headsReconciles >= 1)
  })

  it('sync answers a malformed message or a forged op by closing the stream, and keeps working', async function () {
    const key = createNetworkKey()
    const a = await node(key)
    const b = await node(key, [a.host.addresses()[0]])
    await until('connected', () => b.host.peers().length === 1)
    await mkdir(a.tree, 'before')
    await until('b has it', () => b.tree.size === 1)

    const send = async (bytes: Uint8Array): Promise<void> => {
      const stream = await b.host.newStream(a.host.peerId, OPS_PROTOCOL)
      const lp = lpStream(stream)
      await lp.write(bytes)
      // a's answer is its typed error (rpc.ts), then a reset stream: never a reply
      const answer = decodeReply(OPS, (await lp.read({ signal: AbortSignal.timeout(5000) })).subarray(), { t: 'heads' })
      assert.deepEqual(answer.kind === 'error' && answer.name, 'SyncProtocolError')
      await assert.rejects(lp.read({ signal: AbortSignal.timeout(5000) }))
    }
    await send(new Uint8Array([1, 2, 3, 4, 5]))
    await send(encodeCall(OPS, { t: 'nonsense' } as any))
    await send(encodeCall(OPS, { t: 'get', want: 'x', have: [] } as any))
    await send(encodeCall(OPS, { t: 'ops', ops: [] } as any))
    await send(dagCbor.encode({ t: 'get', want: [], have: [] })) // no envelope
    await send(encodeCall(OPS, { t: 'rbsr', m: new Uint8Array([0x62, 0]) } as any)) // unknown rbsr version
    await send(encodeCall(OPS, { t: 'rbsr', m: new Uint8Array([0x61, 0, 0, 2, 9]) } as any)) // id list past the end
    await send(encodeCall(OPS, { t: 'rbsr', m: 'x' } as any))
    await send(encodeCall(OPS, { t: 'byid', ids: [1] } as any))
    await send(encodeCall(OPS, { t: 'byid', ids: [], c: 1 } as any))
    // a hold ask's ops below its op (b): with r only, a non-empty list of blocks
    const head = b.tree.heads()[0]
    const block = b.tree.getOp(head)!
    await send(encodeCall(OPS, { t: 'hold', id: head, op: block, b: [block] } as any))
    await send(encodeCall(OPS, { t: 'hold', id: head, op: block, r: true, b: [] } as any))
    await send(encodeCall(OPS, { t: 'hold', id: head, op: block, r: true, b: 'x' } as any))

    // a forged op (right shape, wrong signature) pushed to a: rejected, nothing stored
    const real = b.tree.getOp(b.tree.heads()[0])!
    const decoded: any = dagCbor.decode(real)
    const forged = dagCbor.encode({ ...decoded, body: { ...decoded.body, name: 'forged' } })
    const stream = await b.host.newStream(a.host.peerId, OPS_PROTOCOL)
    await lpStream(stream).write(encodeNotice(OPS, { t: 'push', ops: [forged] }))
    await stream.close()
    await until('a counted the bad messages', () => a.sync.stats().badMessages >= 4)
    assert.equal(a.tree.size, 1)
    assert.deepEqual(names(a.tree), ['before'])

    // a still syncs
    await mkdir(b.tree, 'after')
    await until('a has b\'s new op', () => a.tree.size === 2)
    assert.deepEqual(names(a.tree), ['after', 'before'])
  })

  it('sync refuses forged and unsigned ops that come by gossip (messages carry no signature of their own), and keeps working', async function () {
    const key = createNetworkKey()
    const a = await node(key)
    const b = await node(key, [a.host.addresses()[0]])
    await until('subscribed', () => a.host.gossip.subscribers().length === 1 && b.host.gossip.subscribers().length === 1)
    await mkdir(b.tree, 'before')
    await until('a has it', () => a.tree.size === 1)
    const real: any = dagCbor.decode(b.tree.getOp(b.tree.heads()[0])!)
    const base = { ...real, parents: [b.tree.heads()[0]], hlc: [real.hlc[0] + 1, 0] }
    const bad = [
      // a changed body under b's signature
      { ...real, body: { ...real.body, name: 'forged' } },
      // a signature of nothing (64 zero bytes)
      { ...base, body: { ...real.body, name: 'unsigned' }, sig: new Uint8Array(64) },
      // signed by b's key, claiming a as its author
      await (async () => {
        const { sig: _sig, ...unsigned } = { ...base, body: { ...real.body, name: 'as-a' }, author: a.host.peerId }
        return { ...unsigned, sig: await b.key.sign(dagCbor.encode(unsigned)) }
      })()
    ]
    const rejected = a.sync.stats().gossipRejected
    for (const op of bad) {
      // straight onto the topic, as any member could (b's own sync would never send it)
      await b.host.gossip.publish(dagCbor.encode({ t: 'push', ops: [dagCbor.encode(op)] }))
    }
    await until('a refused all three', () => a.sync.stats().gossipRejected >= rejected + bad.length)
    assert.equal(a.tree.size, 1)
    assert.deepEqual(names(a.tree), ['before'])
    // a still takes b's real ops
    await mkdir(b.tree, 'after')
    await until('a has b\'s new op', () => a.tree.size === 2)
    assert.deepEqual(names(a.tree), ['after', 'before'])
  })

  it('sync: gossip messages taken together, one of them forged: the good ones are kept, only the forged one is refused', async function () {
    const key = createNetworkKey()
    const a = await node(key)
    const b = await node(key, [a.host.addresses()[0]])
    await until('subscribed', () => a.host.gossip.subscribers().length === 1 && b.host.gossip.subscribers().length === 1)
    // b's ops, made while b publishes nothing (its sync is stopped): a gets them only below
    await b.sync.stop()
    for (let i = 0; i < 6; i++) await mkdir(b.tree, `good-${i}`)
    const opsOf = (t: Tree): Uint8Array[] => {
      const out: Uint8Array[] = []
      for (let h = t.heads()[0]; ;) {
        const bytes = t.getOp(h)!
        out.unshift(bytes)
        const parents = (dagCbor.decode(bytes) as { parents: CID[] }).parents
        if (parents.length === 0) return out
        h = parents[0]
      }
    }
    const good = opsOf(b.tree)
    const real: any = dagCbor.decode(good[0])
    const forged = dagCbor.encode({ ...real, body: { ...real.body, name: 'forged' } })
    const rejected = a.sync.stats().gossipRejected
    // one message per op, the forged one among them, all sent at once (a validates them concurrently)
    const messages = [...good.slice(0, 3), forged, ...good.slice(3)].map(op => dagCbor.encode({ t: 'push', ops: [op] }))
    await Promise.all(messages.map(async m => await b.host.gossip.publish(m)))
    await until('a has the six good ops', () => a.tree.size === 6)
    await until('a refused the forged one', () => a.sync.stats().gossipRejected === rejected + 1)
    assert.deepEqual(names(a.tree), ['good-0', 'good-1', 'good-2', 'good-3', 'good-4', 'good-5'])
  })

  it('sync: a burst of ops made one after another goes out in fewer gossip messages, taken in fewer receives, than ops', async function () {
    const key = createNetworkKey()
    const a = await node(key)
    const b = await node(key, [a.host.addresses()[0]])
    await until('subscribed', () => a.host.gossip.subscribers().length === 1 && b.host.gossip.subscribers().length === 1)
    // one op first (a lone op goes at once), then a burst of 40, each committed after the last
    await mkdir(a.tree, 'first')
    await until('b has it', () => b.tree.size === 1)
    const sent = a.sync.stats()
    const taken = b.sync.stats()
    for (let i = 0; i < 40; i++) await mkdir(a.tree, `burst-${i}`)
    await until('b has the burst', () => b.tree.size === 41)
    assert.equal(headIds(b.tree), headIds(a.tree))
    const published = a.sync.stats().publishedOps - sent.publishedOps
    const messages = a.sync.stats().publishedMessages - sent.publishedMessages
    const receives = b.sync.stats().gossipReceives - taken.gossipReceives
    assert.equal(published, 40)
    assert.ok(messages < 40, `40 ops in ${messages} messages`)
    assert.ok(receives <= messages && receives < 40, `${messages} messages in ${receives} receives`)
  })

  it('sync.stop() is idempotent and stops serving', async function () {
    const key = createNetworkKey()
    // every ops stream a's sync opens: a push of the op below would open one
    let opened = 0
    const a = await node(key, [], {
      view: h => ({
        peerId: h.peerId,
        peers: () => h.peers(),
        handle: h.handle.bind(h),
        unhandle: h.unhandle.bind(h),
        newStream: async (peer, protocol, o) => { opened++; return await h.newStream(peer, protocol, o) },
        addEventListener: h.addEventListener.bind(h),
        removeEventListener: h.removeEventListener.bind(h)
      })
    })
    const b = await node(key, [a.host.addresses()[0]])
    await until('connected', () => b.host.peers().length === 1)
    await a.sync.stop()
    await a.sync.stop()
    await assert.rejects(b.sync.synced(a.host.peerId))
    const before = opened
    await mkdir(a.tree, 'unsent')
    // a running sync pushes from the tree's 'ops' event, in microtasks: once the event loop has
    // turned, a push would have opened its stream
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(opened, before, 'a stopped sync opened an ops stream')
    assert.equal(b.tree.size, 0)
  })
})
