// Who may have a holder delete a block (keeper/release.ts, session 34): a release deletes only
// blocks the asker put here (pushed them) or was promised here, or that another peer pushed here
// a moment ago (a hop of the asker's push chain), that no other writer was promised here (and
// has not released since), and that no retained version this host knows of names. Before, any member's release deleted any block nothing here needed: a fragment of a
// version another host committed, whose commit this host had not heard of yet (or whose writer's
// promise had ended), went at a stranger's word. Each refusal is counted.
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { readFile, writeFile, access } from 'node:fs/promises'
import { join } from 'node:path'
import { Release, releasingSink, PUT_REMEMBER_MAX, PUT_NAMES_MAX, PENDING_ORIGIN_MS, RELEASE_REMEMBER_MS } from '../../node/keeper/release.ts'
import { saveReleaseRecords, takeReleaseRecords, RELEASE_RECORDS_FILE } from '../../node/keeper/release-records.ts'
import { ReleaseOpening, OPENING_CALLS_MAX } from '../../node/keeper/release-opening.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import type { ReleaseComponents } from '../../node/keeper/release.ts'
import { Custody } from '../../node/keeper/custody.ts'
import type { Retained } from '../../node/keeper/retained.ts'
import { FEATURES, FEATURE_ORIGINS } from '../../node/net/features.ts'

const HOUR = 3600_000

async function block (n: number): Promise<CID> {
  return CID.createV1(0x55, await sha256.digest(new Uint8Array([n, n, n])))
}

/** A holder: blocks held until deleted, the retained versions it knows naming `named`, promises given by `promisedTo`. */
function holder (opts: { named?: CID[], promisedTo?: Map<string, string>, relayedFreshMs?: number, relayedRecheckMs?: number, originsByAll?: () => boolean, member?: (peer: string) => boolean } = {}): { release: Release, held: Set<string> } {
  const held = new Set<string>()
  const promisedTo = opts.promisedTo ?? new Map<string, string>()
  let release: Release | undefined
  const c: ReleaseComponents = {
    host: { peerId: 'H' } as unknown as ReleaseComponents['host'],
    store: {
      has: async (cid: CID) => held.has(cid.toString()),
      // the store tells the release of a block gone (Store onGone), as the daemon's does
      delete: async (cid: CID) => { held.delete(cid.toString()); release?.gone(cid) },
      isClaimed: () => false
    } as unknown as ReleaseComponents['store'],
    volume: {} as unknown as ReleaseComponents['volume'],
    promised: (cid, except) => { const p = promisedTo.get(cid.toString()); return p !== undefined && p !== except },
    disown: (cids, peer) => { for (const c of cids) if (promisedTo.get(c.toString()) === peer) promisedTo.delete(c.toString()) },
    retentionMs: HOUR,
    relayedFreshMs: opts.relayedFreshMs,
    relayedRecheckMs: opts.relayedRecheckMs,
    originsByAll: opts.originsByAll,
    member: opts.member
  }
  release = new Release(c)
  const r: Retained = {
    manifests: new Map((opts.named ?? []).map(c => [c.toString(), c])),
    chunks: new Map(),
    unreadable: 0,
    byManifest: new Map(),
    missing: new Set()
  }
  ;(release as any).walks = { get: async () => r }
  return { release, held }
}

/** A sink over `held` whose first put waits in the store until `unblock()`; `entered` resolves once it waits there. */
function gatedSink (held: Set<string>, teller: () => ReturnType<ReleaseOpening['teller']>): { sink: ReturnType<typeof releasingSink>, entered: Promise<void>, unblock: () => void } {
  let unblock!: () => void
  const gate = new Promise<void>(resolve => { unblock = resolve })
  let enter!: () => void
  const entered = new Promise<void>(resolve => { enter = resolve })
  let first = true
  const store = {
    has: async (cid: CID) => held.has(cid.toString()),
    put: async (cid: CID) => {
      if (first) { first = false; enter(); await gate }
      held.add(cid.toString())
    }
  } as unknown as Parameters<typeof releasingSink>[0]
  return { sink: releasingSink(store, teller), entered, unblock }
}

/** The i-th block of the full table of put records a last stop saved (the puts spanning open() tests). */
async function tableFiller (i: number): Promise<CID> {
  return CID.createV1(0x55, await sha256.digest(new Uint8Array([i & 255, (i >> 8) & 255, (i >> 16) & 255, 7, 7])))
}

/** The last stop's saved records in `dir`: a full table (PUT_REMEMBER_MAX records of 64 other peers, 1,024 each); returns its blocks. */
async function saveFullTable (dir: string): Promise<CID[]> {
  const before = holder({ relayedFreshMs: 0 })
  const fill: CID[] = []
  for (let i = 0; i < PUT_REMEMBER_MAX; i++) {
    const c = await tableFiller(i)
    fill.push(c)
    before.held.add(c.toString())
    before.release.arriving(c, `F${i >> 10}`, `F${i >> 10}`)
  }
  await saveReleaseRecords(dir, before.release.records(), 'H')
  return fill
}

describe('release authority: who may have a holder delete a block', function () {
  it('a member that never put a block here cannot have it deleted: another writer\'s fragment, its commit unheard of here', async () => {
    const x = await block(1)
    // B pushed X here (a fragment of a version B committed, not yet heard of here); the push is
    // no longer fresh and B's promise ended
    const { release, held } = holder({ relayedFreshMs: 0 })
    held.add(x.toString())
    assert.equal(await release.arrived(x, 'B'), false)
    assert.deepEqual(await release.answer([x], 'W'), [false], 'W\'s release of B\'s block refused')
    assert.equal(held.has(x.toString()), true, 'X kept')
    assert.equal(release.refusals.notPut, 1, 'the refusal counted')
    // B itself may (its own write given up)
    assert.deepEqual(await release.answer([x], 'B'), [true], 'B\'s own release deletes it')
    assert.equal(held.has(x.toString()), false)
  })

  it('a block promised here to B (the promise since ended) is refused to W and released to B', async () => {
    const x = await block(2)
    const { release, held } = holder({ relayedFreshMs: 0 })
    held.add(x.toString())
    // B pushed it here (a block held with no record of who put it is nobody's: promised or not)
    await release.arrived(x, 'B')
    // the custody promise to B, recorded through Custody's promisedTo hook
    const custody = new Custody({ host: { peerId: 'H' } as any, store: { has: async () => true, delete: async () => {} } as any, promisedTo: (cids, peer) => { release.noted(cids, peer) } })
    assert.equal((await custody.promise([x], 'B')).size, 1)
    assert.deepEqual(await release.answer([x], 'W'), [false])
    assert.equal(held.has(x.toString()), true)
    assert.equal(release.refusals.claimed, 1, 'counted: promised to another writer')
    assert.deepEqual(await release.answer([x], 'B'), [true])
  })

  it('a member that pushes another writer\'s block here, or has it promised, then releases it, deletes nothing', async () => {
    const x = await block(8)
    const { release, held } = holder({ relayedFreshMs: 0 })
    held.add(x.toString())
    // B placed X here: pushed it and was promised it (the promise since ended)
    await release.arrived(x, 'B')
    release.noted([x], 'B')
    // M pushes the same bytes and asks a promise of them, then releases them
    await release.arrived(x, 'M')
    release.noted([x], 'M')
    assert.deepEqual(await release.answer([x], 'M'), [false], 'M\'s release refused')
    assert.equal(held.has(x.toString()), true, 'X kept')
    assert.equal(release.refusals.claimed, 1, 'counted: another writer holds it')
    // B gives its write up too: the last writer's release deletes it
    assert.deepEqual(await release.answer([x], 'B'), [true])
    assert.equal(held.has(x.toString()), false)
  })

  it('two writers of the same bytes: the first one\'s release keeps the block for the second, whose own release deletes it', async () => {
    const x = await block(9)
    const { release, held } = holder({ relayedFreshMs: 0 })
    held.add(x.toString())
    await release.arrived(x, 'W1')
    release.noted([x], 'W1')
    await release.arrived(x, 'W2')
    release.noted([x], 'W2')
    assert.deepEqual(await release.answer([x], 'W1'), [false])
    assert.equal(held.has(x.toString()), true)
    assert.deepEqual(await release.answer([x], 'W2'), [true])
    assert.equal(held.has(x.toString()), false)
  })

  it('a block held with no record of who put it (pulled here: repair, a pin) is refused to every asker', async () => {
    const x = await block(3)
    const { release, held } = holder()
    held.add(x.toString())
    assert.deepEqual(await release.answer([x], 'W'), [false])
    assert.equal(held.has(x.toString()), true)
    assert.equal(release.refusals.notPut, 1)
  })

  it('a block the asker put that a retained version here names is refused, and counted', async () => {
    const x = await block(4)
    const { release, held } = holder({ named: [x], relayedFreshMs: 0 })
    held.add(x.toString())
    await release.arrived(x, 'W')
    assert.deepEqual(await release.answer([x], 'W'), [false])
    assert.equal(held.has(x.toString()), true)
    assert.deepEqual(release.refusals, { notPut: 0, claimed: 0, named: 1, promised: 0 })
  })

  it('a block the asker put that is promised to another writer of the same bytes is refused, and counted', async () => {
    const x = await block(5)
    const { release, held } = holder({ promisedTo: new Map([[x.toString(), 'B']]), relayedFreshMs: 0 })
    held.add(x.toString())
    await release.arrived(x, 'W')
    assert.deepEqual(await release.answer([x], 'W'), [false])
    assert.equal(held.has(x.toString()), true)
    assert.deepEqual(release.refusals, { notPut: 0, claimed: 0, named: 0, promised: 1 })
  })

  it('a block another peer pushed here a moment ago (a hop of the asker\'s chain) is released; once not fresh, refused', async () => {
    const x = await block(6)
    const fresh = holder({ relayedFreshMs: HOUR })
    fresh.held.add(x.toString())
    await fresh.release.arrived(x, 'Q')
    assert.deepEqual(await fresh.release.answer([x], 'W'), [true], 'freshly relayed: W\'s release deletes it')
    const stale = holder({ relayedFreshMs: 0 })
    stale.held.add(x.toString())
    await stale.release.arrived(x, 'Q')
    assert.deepEqual(await stale.release.answer([x], 'W'), [false], 'relayed long ago: refused')
    assert.equal(stale.release.refusals.notPut, 1)
  })

  it('a push naming its origin (swarm PROTOCOL_ORIGINS) is that writer\'s put: released to it, refused to others however fresh', async () => {
    const x = await block(10)
    const { release, held } = holder({ relayedFreshMs: HOUR })
    held.add(x.toString())
    // Q forwards W's block (a hop of W's chain, or a relay)
    await release.arrived(x, 'Q', 'W')
    assert.deepEqual(await release.answer([x], 'M'), [false], 'a stranger\'s release refused, the push fresh as it is')
    assert.deepEqual(await release.answer([x], 'Q'), [false], 'the hop\'s own refused: not its block')
    assert.equal(release.refusals.notPut, 2)
    assert.deepEqual(await release.answer([x], 'W'), [true], 'W\'s deletes it')
    // a writer's own push names itself
    const y = await block(11)
    held.add(y.toString())
    await release.arrived(y, 'B', 'B')
    assert.deepEqual(await release.answer([y], 'M'), [false])
    assert.equal(held.has(y.toString()), true)
  })

  it('a block not held yet (the asker\'s push still in flight) is remembered: its late arrival from the asker is dropped', async () => {
    const x = await block(7)
    const { release, held } = holder({ relayedFreshMs: 0 })
    assert.deepEqual(await release.answer([x], 'W'), [false])
    held.add(x.toString())
    assert.equal(await release.arrived(x, 'W'), true, 'dropped on arrival')
    assert.equal(held.has(x.toString()), false)
    assert.equal(release.refusals.notPut, 0)
  })

  it('a pushed block already in the store before the sink told the release (a release answered in between) is the pusher\'s: its release deletes it', async () => {
    // the Ctrl-C put flake (session 34): a writer's release reached a holder while its push was
    // being stored there; the store's index had it, the put had not returned, and the holder,
    // knowing no one who put it, refused the writer's release and kept the block
    const x = await block(12)
    const { release, held } = holder({ relayedFreshMs: 0 })
    let landed!: () => void
    const inStore = new Promise<void>(resolve => { landed = resolve })
    let finish!: () => void
    const returned = new Promise<void>(resolve => { finish = resolve })
    const store = {
      has: async (cid: CID) => held.has(cid.toString()),
      put: async (cid: CID) => {
        held.add(cid.toString())
        landed()
        await returned
      }
    } as unknown as Parameters<typeof releasingSink>[0]
    const sink = releasingSink(store, () => release)
    const putting = sink.put(x, new Uint8Array([12, 12, 12]), { from: 'W', origin: 'W', verified: true }).then(() => 'acknowledged', () => 'not acknowledged')
    await inStore
    assert.deepEqual(await release.answer([x], 'W'), [true], 'W\'s release of its own block, stored here a moment ago, deletes it')
    finish()
    assert.equal(await putting, 'not acknowledged', 'the push is not acknowledged: the block is gone')
    assert.equal(held.has(x.toString()), false)
    assert.equal(release.refusals.notPut, 0)
  })

  it('the second look at a block arriving after its release deletes it only when the asker may: not a push naming another writer', async () => {
    const x = await block(13)
    const y = await block(14)
    const { release, held } = holder({ relayedFreshMs: HOUR, relayedRecheckMs: 1 })
    // (serving: a stopped release looks at nothing again)
    ;(release as any).unserve = async () => {}
    // M releases X and Y before either is here
    assert.deepEqual(await release.answer([x, y], 'M'), [false, false])
    // X: W's block, forwarded by Q naming W; Y: an older host Q's push naming no one (maybe a
    // hop of M's chain: its release may delete it while fresh)
    held.add(x.toString())
    assert.equal(await release.arrived(x, 'Q', 'W'), false)
    held.add(y.toString())
    assert.equal(await release.arrived(y, 'Q'), false)
    const bound = Date.now() + 10_000
    while (held.has(y.toString()) && Date.now() < bound) await new Promise(resolve => setImmediate(resolve))
    assert.equal(held.has(y.toString()), false, 'the older host\'s fresh push went at M\'s word')
    assert.equal(held.has(x.toString()), true, 'W\'s block stays: M did not put it')
    await release.stop()
  })
})

describe('release authority with the holder\'s real custody (review35c)', function () {
  /** A holder wired as the daemon wires it: a real Custody whose promises are noted by the Release. */
  function custodian (): { release: Release, custody: Custody, held: Set<string> } {
    const held = new Set<string>()
    let release: Release | undefined
    const store = {
      has: async (cid: CID) => held.has(cid.toString()),
      // the store tells the release of a block gone (Store onGone), as the daemon's does
      delete: async (cid: CID) => { held.delete(cid.toString()); release?.gone(cid) },
      isClaimed: () => false
    }
    const custody = new Custody({ host: { peerId: 'H' } as unknown as ConstructorParameters<typeof Custody>[0]['host'], store, promisedTo: (cids, peer) => { release?.noted(cids, peer) } })
    const c: ReleaseComponents = {
      host: { peerId: 'H' } as unknown as ReleaseComponents['host'],
      store: store as unknown as ReleaseComponents['store'],
      volume: {} as unknown as ReleaseComponents['volume'],
      promised: (cid, except) => custody.promised(cid, except),
      deleteUnpromised: async (cid, except, del) => await custody.deleteUnpromised(cid, except, del),
      disown: (cids, peer) => { custody.disown(cids, peer) },
      retentionMs: HOUR,
      relayedFreshMs: 0
    }
    release = new Release(c)
    const r: Retained = { manifests: new Map(), chunks: new Map(), unreadable: 0, byManifest: new Map(), missing: new Set() }
    ;(release as any).walks = { get: async () => r }
    return { release, custody, held }
  }

  it('two writers of the same bytes, both promised, both give up: the first is refused (the second holds it), the second\'s release deletes it', async () => {
    const x = await block(31)
    const { release, custody, held } = custodian()
    held.add(x.toString())
    await release.arrived(x, 'W1', 'W1')
    await custody.promise([x], 'W1')
    await release.arrived(x, 'W2', 'W2')
    await custody.promise([x], 'W2')
    assert.deepEqual(await release.answer([x], 'W1'), [false], 'kept for W2')
    // W1's refused release ended its promise: it no longer keeps the block from W2's release
    assert.deepEqual(await release.answer([x], 'W2'), [true], 'the last writer\'s release deletes it')
    assert.equal(held.has(x.toString()), false)
  })

  it('the holder\'s promise to itself (its own fragment of a chunk it placed) is no writer\'s claim: once it ends, another writer\'s release of the same bytes deletes them', async () => {
    const x = await block(32)
    const { release, custody, held } = custodian()
    held.add(x.toString())
    await custody.promise([x], 'H')
    custody.disown([x], 'H')
    await release.arrived(x, 'W', 'W')
    await custody.promise([x], 'W')
    assert.deepEqual(await release.answer([x], 'W'), [true])
  })

  it('a block deleted by a release is put afresh: who pushed it before is forgotten with it (a pusher of the old copy cannot release the new one)', async () => {
    const x = await block(33)
    const { release, custody, held } = custodian()
    held.add(x.toString())
    // (W2's push names no origin: one naming W2 would keep the block from W1's release)
    await release.arrived(x, 'W1', 'W1')
    await release.arrived(x, 'W2')
    await custody.promise([x], 'W1')
    assert.deepEqual(await release.answer([x], 'W1'), [true])
    // W3 writes the same bytes later (past W1's release memory: not a late arrival of W1's);
    // its promise round has not come yet
    ;(release as any).released.clear()
    ;(release as any).releasedFor.clear()
    held.add(x.toString())
    await release.arrived(x, 'W3')
    assert.deepEqual(await release.answer([x], 'W2'), [false], 'W2 pushed the copy that went, not this one')
    assert.equal(held.has(x.toString()), true)
  })
})

describe('release authority gaps (session 36)', function () {
  /** A sink over `held` (the store), telling `release` as the daemon's does. */
  function sinkOver (held: Set<string>, release: Release): ReturnType<typeof releasingSink> {
    const store = {
      has: async (cid: CID) => held.has(cid.toString()),
      put: async (cid: CID) => { held.add(cid.toString()) }
    } as unknown as Parameters<typeof releasingSink>[0]
    return releasingSink(store, () => release)
  }

  it('A: once B\'s record was forgotten for room (B\'s own long put: B holds the most), M pushing B\'s block again cannot release it', async function () {
    this.timeout(60_000)
    const x = await block(41)
    const { release, held } = holder({ relayedFreshMs: 0 })
    const sink = sinkOver(held, release)
    await sink.put(x, new Uint8Array([41]), { from: 'B', origin: 'B', verified: true })
    // B's put goes on past the table (B holds the most records): X's record, its least recently
    // put, is forgotten (kept aside, B's alone)
    const bytes = new Uint8Array(4)
    const view = new DataView(bytes.buffer)
    for (let i = 0; i < 65_536; i++) {
      view.setUint32(0, i)
      release.arriving(CID.createV1(0x55, await sha256.digest(bytes)), 'B', 'B')
    }
    // M pushes X again (the store has it: kept), naming itself, then releases it
    await sink.put(x, new Uint8Array([41]), { from: 'M', origin: 'M', verified: true })
    assert.deepEqual(await release.answer([x], 'M'), [false], 'M\'s release refused')
    assert.equal(held.has(x.toString()), true, 'B\'s block kept')
    assert.equal(release.refusals.notPut, 1)
  })

  it('A: a block held with no record (a restarted holder, a block pulled here) pushed again by M is refused to M', async () => {
    const x = await block(42)
    // a restarted holder: X held, nothing recorded of who put it
    const { release, held } = holder({ relayedFreshMs: 0 })
    held.add(x.toString())
    const sink = sinkOver(held, release)
    await sink.put(x, new Uint8Array([42]), { from: 'M', origin: 'M', verified: true })
    assert.deepEqual(await release.answer([x], 'M'), [false], 'M\'s release refused')
    assert.equal(held.has(x.toString()), true, 'X kept (left to GC)')
    // M asking a promise of it does not make it M's either
    release.noted([x], 'M')
    assert.deepEqual(await release.answer([x], 'M'), [false], 'refused after a promise too')
    assert.equal(held.has(x.toString()), true)
    // a block not held before its push stays its pusher's
    const y = await block(43)
    await sink.put(y, new Uint8Array([43]), { from: 'W', origin: 'W', verified: true })
    assert.deepEqual(await release.answer([y], 'W'), [true], 'W\'s own new block released')
  })

  it('A: one member\'s flood of pushes forgets its own oldest records, not another writer\'s: B\'s release of its block still deletes it', async function () {
    this.timeout(60_000)
    const x = await block(48)
    const { release, held } = holder({ relayedFreshMs: 0 })
    const sink = sinkOver(held, release)
    await sink.put(x, new Uint8Array([48]), { from: 'B', origin: 'B', verified: true })
    // M floods: as many pushes as the table holds, from M's connection (naming B as their origin
    // changes nothing: counted against the peer that sent them)
    const bytes = new Uint8Array(4)
    const view = new DataView(bytes.buffer)
    for (let i = 0; i < 65_536; i++) {
      view.setUint32(0, i)
      release.arriving(CID.createV1(0x55, await sha256.digest(bytes)), 'M', i % 2 === 0 ? 'M' : 'B')
    }
    assert.deepEqual(await release.answer([x], 'B'), [true], 'B\'s record kept: its release deletes its block')
    assert.equal(held.has(x.toString()), false)
  })

  it('A: a block held with no record (a restarted holder) that M has promised to it, without pushing it, is refused to M', async () => {
    const x = await block(47)
    const { release, held } = holder({ relayedFreshMs: 0 })
    held.add(x.toString())
    // M asks a promise of X (custody promises what is held), then releases it
    const custody = new Custody({ host: { peerId: 'H' } as any, store: { has: async () => true, delete: async () => {} } as any, promisedTo: (cids, peer) => { release.noted(cids, peer) } })
    assert.equal((await custody.promise([x], 'M')).size, 1)
    custody.disown([x], 'M')
    assert.deepEqual(await release.answer([x], 'M'), [false], 'M\'s release refused')
    assert.equal(held.has(x.toString()), true, 'X kept (left to GC)')
    assert.equal(release.refusals.notPut, 1)
  })

  it('B: a push naming no writer is not releasable by a third peer once every member names its pushes\' origins', async () => {
    const x = await block(44)
    let everyoneNames = false
    const { release, held } = holder({ relayedFreshMs: HOUR, originsByAll: () => everyoneNames })
    held.add(x.toString())
    // Q's push names no one (fresh)
    await release.arrived(x, 'Q')
    everyoneNames = true
    assert.deepEqual(await release.answer([x], 'M'), [false], 'every member names origins: refused')
    assert.equal(held.has(x.toString()), true)
    assert.equal(release.refusals.notPut, 1)
    everyoneNames = false
    assert.deepEqual(await release.answer([x], 'M'), [true], 'some member does not: a hop of M\'s chain, fresh')
    assert.ok(FEATURES.includes(FEATURE_ORIGINS), 'this version announces it')
  })

  it('B: W\'s push naming itself is not released by a third peer because another peer pushed the block naming no one', async () => {
    const x = await block(45)
    const { release, held } = holder({ relayedFreshMs: HOUR })
    held.add(x.toString())
    await release.arrived(x, 'W', 'W')
    await release.arrived(x, 'Q')
    assert.deepEqual(await release.answer([x], 'M'), [false], 'M\'s release refused')
    assert.equal(held.has(x.toString()), true)
  })

  it('C: W pushes X naming itself, M pushes X too: M\'s release is refused before W\'s promise round; W\'s own deletes it', async () => {
    const x = await block(46)
    const { release, held } = holder({ relayedFreshMs: 0 })
    held.add(x.toString())
    await release.arrived(x, 'W', 'W')
    await release.arrived(x, 'M', 'M')
    assert.deepEqual(await release.answer([x], 'M'), [false], 'M\'s release refused')
    assert.equal(held.has(x.toString()), true, 'W\'s block kept')
    assert.equal(release.refusals.claimed, 1)
    // M gave it up: W's own release deletes it
    assert.deepEqual(await release.answer([x], 'W'), [true])
    assert.equal(held.has(x.toString()), false)
  })
})

describe('release authority records follow their block (mend36r, review36c)', function () {
  interface Slow { cid?: CID, gate?: () => void, landed?: () => void }
  /** A sink over `held` (the store), telling `release` as the daemon's does; `slow` holds a put of that block until `gate()`. */
  function sinkOver (held: Set<string>, release: Release, slow?: Slow): ReturnType<typeof releasingSink> {
    const store = {
      has: async (cid: CID) => held.has(cid.toString()),
      put: async (cid: CID) => {
        if (slow?.cid !== undefined && cid.equals(slow.cid)) await new Promise<void>(resolve => { slow.gate = resolve; slow.landed?.() })
        held.add(cid.toString())
      }
    } as unknown as Parameters<typeof releasingSink>[0]
    return releasingSink(store, () => release)
  }
  const filler = async (i: number): Promise<CID> => {
    const bytes = new Uint8Array(5)
    new DataView(bytes.buffer).setUint32(0, i)
    bytes[4] = 36
    return CID.createV1(0x55, await sha256.digest(bytes))
  }

  it('a held block with no record (unknown) stays unknown when its pusher evicts its record (it holds the most) while its put is in flight', async function () {
    this.timeout(60_000)
    const x = await block(61)
    const { release, held } = holder({ relayedFreshMs: 0 })
    held.add(x.toString()) // W's block, its record lost in a restart
    const slow: Slow = {}
    const sink = sinkOver(held, release, slow)
    await sink.put(x, new Uint8Array([61]), { from: 'M', origin: 'M', verified: true })
    // M fills the table: X's record (unknown, made by M) is its oldest
    for (let i = 0; i < PUT_REMEMBER_MAX - 1; i++) release.arriving(await filler(i), 'M', 'M')
    // M pushes X again; while the store's put is in flight, one more push of M's lands
    slow.cid = x
    const landed = new Promise<void>(resolve => { slow.landed = resolve })
    const p = sink.put(x, new Uint8Array([61]), { from: 'M', origin: 'M', verified: true })
    await landed
    // a full table of M's pushes lands meanwhile (X, put again, is the youngest of M's records:
    // one more push alone would not reach it). Two guards keep it unknown: `landing` (not
    // forgotten while its put lands) and arrived()'s `held` (a record gone meanwhile of a held block is rebuilt unknown)
    for (let i = 0; i < PUT_REMEMBER_MAX; i++) release.arriving(await filler(1_000_000 + i), 'M', 'M')
    slow.gate!()
    await p
    assert.deepEqual(await release.answer([x], 'M'), [false], 'M\'s release refused')
    assert.equal(held.has(x.toString()), true, 'W\'s block kept')
  })

  it('a block the store deleted (GC) is put afresh: an earlier pusher\'s unknown flag or name is forgotten with it', async () => {
    const x = await block(62)
    const y = await block(63)
    const { release, held } = holder({ relayedFreshMs: 0 })
    held.add(x.toString()) // held with no record: M's push makes it unknown
    const sink = sinkOver(held, release)
    await sink.put(x, new Uint8Array([62]), { from: 'M', origin: 'M', verified: true })
    await sink.put(y, new Uint8Array([63]), { from: 'M', origin: 'M', verified: true }) // named M
    // GC deletes both (the store tells the release: Store onGone)
    for (const c of [x, y]) { held.delete(c.toString()); release.gone(c) }
    // W writes the same bytes anew, then gives its write up
    await sink.put(x, new Uint8Array([62]), { from: 'W', origin: 'W', verified: true })
    await sink.put(y, new Uint8Array([63]), { from: 'W', origin: 'W', verified: true })
    assert.deepEqual(await release.answer([x, y], 'W'), [true, true], 'W\'s own blocks released')
    assert.equal(held.size, 0)
  })

  it('a block gone while a push of it is in flight is that push\'s: the record is rebuilt with its pusher', async () => {
    const x = await block(64)
    const { release, held } = holder({ relayedFreshMs: 0 })
    const slow: Slow = { cid: x }
    const sink = sinkOver(held, release, slow)
    const landed = new Promise<void>(resolve => { slow.landed = resolve })
    const p = sink.put(x, new Uint8Array([64]), { from: 'W', origin: 'W', verified: true })
    await landed
    release.gone(x) // an older copy deleted meanwhile (the store serialises: W's put lands after)
    slow.gate!()
    await p
    assert.deepEqual(await release.answer([x], 'W'), [true])
  })

  it('an open write renewing its promises keeps its records young: past PUT_REMEMBER_MAX pushes its early blocks are still its own to release', async function () {
    this.timeout(60_000)
    const x = await block(67)
    const { release, held } = holder({ relayedFreshMs: 0 })
    const sink = sinkOver(held, release)
    await sink.put(x, new Uint8Array([67]), { from: 'W', origin: 'W', verified: true })
    release.noted([x], 'W') // the placement's promise round
    // the write goes on (one renewal of its promises half-way), past the table
    for (let i = 0; i < PUT_REMEMBER_MAX; i++) {
      if (i === PUT_REMEMBER_MAX / 2) release.noted([x], 'W')
      release.arriving(await filler(i), 'W', 'W')
    }
    release.noted([x], 'W') // the next renewal
    assert.deepEqual(await release.answer([x], 'W'), [true], 'W gives up its write: its own block deleted')
    assert.equal(held.has(x.toString()), false)
  })

  it('a record of one putter forgotten for room (its put longer than the table) comes back at that putter\'s renewal: its own release deletes it; nobody else gets it', async function () {
    this.timeout(60_000)
    const [x, y, z] = await Promise.all([block(68), block(69), block(70)])
    const { release, held } = holder({ relayedFreshMs: 0 })
    const sink = sinkOver(held, release)
    for (const c of [x, y, z]) await sink.put(c, new Uint8Array([1]), { from: 'W', origin: 'W', verified: true })
    held.add((await block(71)).toString()) // held with no record: M's push makes it nobody's
    const u = await block(71)
    await sink.put(u, new Uint8Array([1]), { from: 'W', origin: 'W', verified: true })
    // W's write goes on past the table, no renewal in between: all four records forgotten for room
    for (let i = 0; i < PUT_REMEMBER_MAX; i++) release.arriving(await filler(i), 'W', 'W')
    release.noted([x], 'W') // W's renewal: its own block again
    assert.deepEqual(await release.answer([x], 'W'), [true], 'W\'s own block, renewed, released')
    // M's promise, or its push naming W, of W's forgotten block gives M nothing
    release.noted([y], 'M')
    assert.deepEqual(await release.answer([y], 'M'), [false], 'M refused (y)')
    await sink.put(z, new Uint8Array([1]), { from: 'M', origin: 'W', verified: true })
    assert.deepEqual(await release.answer([z], 'M'), [false], 'M refused (z)')
    assert.deepEqual(await release.answer([z], 'W'), [true], 'W\'s own z still W\'s')
    // a block held before any record stays nobody's, W's renewal or not
    release.noted([u], 'W')
    assert.deepEqual(await release.answer([u], 'W'), [false], 'u refused: held before any record')
    assert.equal(held.has(x.toString()), false)
    assert.equal(held.has(y.toString()) && held.has(u.toString()), true)
  })

  it('a record names a few peers at most (PUT_NAMES_MAX <= 8): the fifth origin named makes the block nobody\'s (review36f: 64 origins of 128 B a record cost 171 MiB a sender\'s share)', async () => {
    const x = await block(68)
    const { release, held } = holder({ relayedFreshMs: 0 })
    const sink = sinkOver(held, release)
    for (const w of ['W1', 'W2', 'W3', 'W4']) await sink.put(x, new Uint8Array([68]), { from: 'M', origin: w, verified: true })
    assert.notEqual((release as any).putBy.get(x.toString()).unknown, true, 'four writers of the same bytes are listed')
    await sink.put(x, new Uint8Array([68]), { from: 'M', origin: 'W5', verified: true })
    assert.equal((release as any).putBy.get(x.toString()).unknown, true, 'a fifth makes it nobody\'s')
    assert.ok(PUT_NAMES_MAX <= 8)
  })

  it('a record holds at most PUT_NAMES_MAX peers per list: past it the block is nobody\'s (refused to all), and a flood of names costs little', async function () {
    this.timeout(60_000)
    const x = await block(65)
    const { release, held } = holder({ relayedFreshMs: 0 })
    held.add(x.toString())
    await release.arrived(x, 'W', 'W')
    const cpu = process.cpuUsage()
    for (let i = 0; i < 40_000; i++) release.arriving(x, 'M', `origin-${i}`)
    const used = process.cpuUsage(cpu)
    console.log(`      40,000 pushes of one block naming new origins: ${((used.user + used.system) / 1000).toFixed(0)} ms CPU`)
    const r = (release as any).putBy.get(x.toString())
    assert.ok(r.named.length <= PUT_NAMES_MAX && r.pushed.length <= PUT_NAMES_MAX, 'bounded lists')
    assert.equal(r.unknown, true)
    assert.deepEqual(await release.answer([x], 'W'), [false], 'W itself refused: its block kept, left to GC')
    assert.equal(held.has(x.toString()), true)
    // the bound is per record: another block's few putters are unaffected
    const y = await block(66)
    await sinkOver(held, release).put(y, new Uint8Array([66]), { from: 'W', origin: 'W', verified: true })
    assert.deepEqual(await release.answer([y], 'W'), [true])
  })
})

describe('release authority: held blocks stay nobody\'s across gaps (mend36r2, review36f)', function () {
  /** A sink over `held`; a put of `slow.cid` waits for `slow.gate()` (told by `slow.landed`). */
  function sinkOf (held: Set<string>, release: () => Release | undefined, slow: { cid?: CID, gate?: () => void, landed?: () => void } = {}): ReturnType<typeof releasingSink> {
    const store = {
      has: async (cid: CID) => held.has(cid.toString()),
      put: async (cid: CID) => {
        if (slow.cid !== undefined && cid.equals(slow.cid)) await new Promise<void>(resolve => { slow.gate = resolve; slow.landed?.() })
        held.add(cid.toString())
      }
    } as unknown as Parameters<typeof releasingSink>[0]
    return releasingSink(store, release)
  }

  it('a held block whose record goes while M\'s push of it lands (a failed delete told onGone, a quarantine) is nobody\'s, not M\'s alone', async () => {
    const x = await block(71)
    const { release, held } = holder({ relayedFreshMs: 0 })
    const slow: { cid?: CID, gate?: () => void, landed?: () => void } = {}
    const sink = sinkOf(held, () => release, slow)
    await sink.put(x, new Uint8Array([71]), { from: 'W', origin: 'W', verified: true }) // W's fragment
    slow.cid = x
    const landed = new Promise<void>(resolve => { slow.landed = resolve })
    const p = sink.put(x, new Uint8Array([71]), { from: 'M', origin: 'M', verified: true })
    await landed
    release.gone(x) // its record forgotten while the block stays held
    slow.gate!()
    await p
    assert.deepEqual(await release.answer([x], 'M'), [false], 'M\'s release refused')
    assert.equal(held.has(x.toString()), true, 'W\'s block kept')
  })

  it('a push landing while the daemon makes its release (none at the push\'s stat) of a block held before any record is nobody\'s', async () => {
    const x = await block(72)
    const { release: made, held } = holder({ relayedFreshMs: 0 })
    held.add(x.toString()) // W's block, its record lost in a restart
    let release: Release | undefined
    const slow: { cid?: CID, gate?: () => void, landed?: () => void } = { cid: x }
    const landed = new Promise<void>(resolve => { slow.landed = resolve })
    const p = sinkOf(held, () => release, slow).put(x, new Uint8Array([72]), { from: 'M', origin: 'M', verified: true })
    await landed
    release = made // the daemon made its release meanwhile
    slow.gate!()
    await p
    assert.deepEqual(await release.answer([x], 'M'), [false], 'M\'s release refused')
    assert.equal(held.has(x.toString()), true, 'W\'s block kept')
  })

  it('a re-push landing right after a release\'s delete keeps its fresh record: the release does not forget it again (onGone did)', async () => {
    const x = await block(73)
    const { release, held } = holder({ relayedFreshMs: 0 })
    const sink = sinkOf(held, () => release)
    const c = (release as any).c as ReleaseComponents
    const store = c.store as any
    // custody's lock: W2's push of the same bytes lands once the delete is done, before the drop goes on
    let repushed = false
    c.deleteUnpromised = async (_cid, _except, del) => {
      const ok = await del()
      if (!repushed) { repushed = true; await sink.put(x, new Uint8Array([73]), { from: 'W2', origin: 'W2', verified: true }) }
      return ok
    }
    await sink.put(x, new Uint8Array([73]), { from: 'W', origin: 'W', verified: true })
    assert.deepEqual(await release.answer([x], 'W'), [true], 'W\'s release deletes its block')
    assert.equal(held.has(x.toString()), true, 'W2\'s push stored it again')
    assert.deepEqual(await release.answer([x], 'W2'), [true], 'W2\'s own release deletes its copy')
    assert.equal(held.has(x.toString()), false)
  })
})

describe('release authority: a long put keeps its own records (mend36r3, review36h)', function () {
  this.timeout(120_000)
  const fragment = async (n: number): Promise<CID> => {
    const b = new Uint8Array(6)
    new DataView(b.buffer).setUint32(0, n)
    b[4] = 36
    b[5] = 3
    return CID.createV1(0x55, await sha256.digest(b))
  }
  /** A push of `cid` from `from` naming `origin`, as the sink makes it (held before or not). */
  async function push (release: Release, held: Set<string>, cid: CID, from: string, origin: string): Promise<void> {
    const had = held.has(cid.toString())
    release.arriving(cid, from, origin, { held: had })
    held.add(cid.toString())
    await release.arrived(cid, from, origin, { held: had })
  }

  it('one writer abandons a put of 20,000 fragments here (5 GiB of 256 KiB), its promise round made: its release deletes all of them', async () => {
    const { release, held } = holder({ relayedFreshMs: 0 })
    const cids: CID[] = []
    for (let i = 0; i < 20_000; i++) { const c = await fragment(i); cids.push(c); await push(release, held, c, 'W', 'W') }
    release.noted(cids, 'W')
    const out = await release.answer(cids, 'W')
    assert.equal(out.filter(x => !x).length, 0, `kept: refusals ${JSON.stringify(release.refusals)}`)
    assert.equal(held.size, 0)
  })

  it('two writers push 10,000 fragments each through one relay R (the sender): W1 abandons, its release deletes all of its own and none of W2\'s', async () => {
    const { release, held } = holder({ relayedFreshMs: 0 })
    const w1: CID[] = []
    for (let i = 0; i < 10_000; i++) { const c = await fragment(i); w1.push(c); await push(release, held, c, 'R', 'W1') }
    for (let i = 0; i < 10_000; i++) await push(release, held, await fragment(100_000 + i), 'R', 'W2')
    const out = await release.answer(w1, 'W1')
    assert.equal(out.filter(x => !x).length, 0, `kept: refusals ${JSON.stringify(release.refusals)}`)
    assert.equal(held.size, 10_000, 'W2\'s fragments kept')
  })

  it('a put longer than the table: its early blocks, forgotten for room (kept aside), are its own to release, nobody else\'s; another peer\'s put of one makes it nobody\'s', async () => {
    const { release, held } = holder({ relayedFreshMs: 0 })
    const [x, y, z] = await Promise.all([fragment(1_000_000), fragment(1_000_001), fragment(1_000_002)])
    for (const c of [x, y, z]) await push(release, held, c, 'W', 'W')
    // W's put goes on past the table, no renewal: x, y, z forgotten for room (kept aside)
    for (let i = 0; i < PUT_REMEMBER_MAX; i++) release.arriving(await fragment(i), 'W', 'W')
    assert.equal((release as any).putBy.has(x.toString()), false, 'x\'s record forgotten for room')
    // M asks the release of W's forgotten block: refused
    assert.deepEqual(await release.answer([y], 'M'), [false], 'M refused (y)')
    // M pushes z (held: W's), naming itself: z is nobody's now, W's release refused too
    await push(release, held, z, 'M', 'M')
    assert.deepEqual(await release.answer([z], 'M'), [false], 'M refused (z)')
    assert.deepEqual(await release.answer([z], 'W'), [false], 'z nobody\'s after M\'s put')
    // W's own release of x and y deletes them
    assert.deepEqual(await release.answer([x, y], 'W'), [true, true], 'W\'s own forgotten blocks released')
    assert.equal(held.has(z.toString()), true)
  })

  it('a flood of M\'s pushes while M holds more records than B forgets M\'s own: all of B\'s 1,000 records kept, B\'s release deletes them', async () => {
    const { release, held } = holder({ relayedFreshMs: 0 })
    const mine: CID[] = []
    for (let i = 0; i < 1_000; i++) { const c = await fragment(2_000_000 + i); mine.push(c); await push(release, held, c, 'B', 'B') }
    // M floods: twice the table, naming B or itself (counted against the sender)
    for (let i = 0; i < 2 * PUT_REMEMBER_MAX; i++) release.arriving(await fragment(i), 'M', i % 2 === 0 ? 'M' : 'B')
    assert.equal((release as any).putBy.size, PUT_REMEMBER_MAX)
    for (const c of mine) assert.equal((release as any).putBy.has(c.toString()), true, 'B\'s records all kept')
    const out = await release.answer(mine, 'B')
    assert.equal(out.filter(x => !x).length, 0, 'B\'s release deletes all of its blocks')
  })
})

// a push names any string as its origin: made-up ones filled the records table (~1.3 KB a record
// listing PUT_NAMES_MAX of 128 B, ~80 MiB at PUT_REMEMBER_MAX), and let the name release the
// block (gc37). Only members known here are taken; a push naming another makes its block nobody's.
describe('release authority: a push\'s origin is taken only when it is a member here (gc37)', function () {
  const members = new Set(['W', 'M', 'B'])
  function sinkOn (held: Set<string>, release: Release): ReturnType<typeof releasingSink> {
    const store = {
      has: async (cid: CID) => held.has(cid.toString()),
      put: async (cid: CID) => { held.add(cid.toString()) }
    } as unknown as Parameters<typeof releasingSink>[0]
    return releasingSink(store, () => release)
  }

  it('a push naming a made-up origin lists no name, and its block is refused to every asker, the made-up name and the sender too', async () => {
    const x = await block(201)
    const { release, held } = holder({ relayedFreshMs: 0, member: p => members.has(p) })
    await sinkOn(held, release).put(x, new Uint8Array([201]), { from: 'M', origin: 'made-up', verified: true })
    assert.equal(held.has(x.toString()), true, 'stored (left to GC)')
    const r = (release as any).putBy.get(x.toString())
    // (no peer id: not even kept pending, mend37g)
    assert.deepEqual([r.named, r.pushed, r.unknown, r.pending], [[], [], true, undefined], JSON.stringify(r))
    assert.equal(release.strangeOrigins, 1)
    assert.deepEqual(await release.answer([x], 'made-up'), [false], 'the made-up name may not release it')
    assert.deepEqual(await release.answer([x], 'M'), [false], 'nor its sender')
    assert.equal(held.has(x.toString()), true)
  })

  it('a flood of pushes naming made-up origins keeps no name: the records table holds none of them', async () => {
    const { release, held } = holder({ relayedFreshMs: 0, member: p => members.has(p) })
    const sink = sinkOn(held, release)
    for (let i = 0; i < 2000; i++) await sink.put(await block(1000 + i), new Uint8Array([1]), { from: 'M', origin: `origin-${'x'.repeat(100)}-${i}`, verified: true })
    let names = 0
    for (const r of (release as any).putBy.values()) names += r.named.length + r.pushed.length + r.claimed.length
    assert.equal(names, 0, 'no made-up name kept')
    assert.deepEqual([...(release as any).madeBy.keys()], ['M'], 'the records count against their sender')
  })

  it('a member named as origin, or the sender itself, is taken as before: it may release its block', async () => {
    const { release, held } = holder({ relayedFreshMs: 0, member: p => members.has(p) })
    const sink = sinkOn(held, release)
    const x = await block(202)
    const y = await block(203)
    await sink.put(x, new Uint8Array([202]), { from: 'M', origin: 'W', verified: true })
    // (a sender is connected: a member whose record has not come yet is still taken as its own origin)
    await sink.put(y, new Uint8Array([203]), { from: 'N', origin: 'N', verified: true })
    assert.equal(release.strangeOrigins, 0)
    assert.deepEqual(await release.answer([x], 'M'), [false], 'M relayed W\'s block: not M\'s')
    assert.deepEqual(await release.answer([x], 'W'), [true])
    assert.deepEqual(await release.answer([y], 'N'), [true])
  })
})

// a new member writing through a relay before its record reached the holder: its blocks were
// nobody's for ever, its own release refused once it joined (review37b P4)
describe('release authority: an origin not yet a member here is kept pending a while (mend37g)', function () {
  function sinkOn (held: Set<string>, release: Release): ReturnType<typeof releasingSink> {
    const store = {
      has: async (cid: CID) => held.has(cid.toString()),
      put: async (cid: CID) => { held.add(cid.toString()) }
    } as unknown as Parameters<typeof releasingSink>[0]
    return releasingSink(store, () => release)
  }

  it('C, not yet a member, writes through relay R: refused to all while C is none; once C is a member (within PENDING_ORIGIN_MS) C\'s release deletes it', async () => {
    const members = new Set(['R', 'W'])
    const { release, held } = holder({ relayedFreshMs: 0, member: p => members.has(p) })
    const sink = sinkOn(held, release)
    const x = await block(241)
    await sink.put(x, new Uint8Array([1]), { from: 'R', origin: 'C', verified: true })
    assert.deepEqual(await release.answer([x], 'C'), [false], 'C is no member yet')
    assert.deepEqual(await release.answer([x], 'R'), [false], 'nor is it R\'s, the relay')
    members.add('C')
    assert.deepEqual(await release.answer([x], 'W'), [false], 'another member may not')
    assert.deepEqual(await release.answer([x], 'C'), [true], 'C, a member now, releases its own block')
    assert.equal(held.has(x.toString()), false)
  })

  it('a pending origin that is still no member after PENDING_ORIGIN_MS, or a second one, makes the block nobody\'s', async () => {
    const members = new Set(['R'])
    const { release, held } = holder({ relayedFreshMs: 0, member: p => members.has(p) })
    // (none: a pending origin is past its time at once)
    ;(release as any).c.pendingOriginMs = 0
    const sink = sinkOn(held, release)
    const [x, y] = await Promise.all([block(242), block(243)])
    await sink.put(x, new Uint8Array([1]), { from: 'R', origin: 'C', verified: true })
    members.add('C')
    assert.deepEqual(await release.answer([x], 'C'), [false], 'C joined too late: nobody\'s')
    await sink.put(y, new Uint8Array([2]), { from: 'R', origin: 'D', verified: true })
    await sink.put(y, new Uint8Array([2]), { from: 'R', origin: 'E', verified: true })
    members.add('D')
    assert.deepEqual(await release.answer([y], 'D'), [false], 'two strangers named: nobody\'s')
    assert.equal(held.has(x.toString()) && held.has(y.toString()), true)
  })
})

// a restarted holder had no record of who put the blocks it held: every one was nobody's, its
// writer's own release refused (gc37). A clean stop keeps them; a start takes them once.
describe('release records kept across a clean restart (gc37)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })
  function sinkOn (held: Set<string>, release: Release): ReturnType<typeof releasingSink> {
    const store = {
      has: async (cid: CID) => held.has(cid.toString()),
      put: async (cid: CID) => { held.add(cid.toString()) }
    } as unknown as Parameters<typeof releasingSink>[0]
    return releasingSink(store, () => release)
  }

  it('records restored from the file are the table as it was: the writer releases its block, another writer\'s stays claimed, a block held with no record stays nobody\'s', async () => {
    const dir = await tempDir(t)
    const before = holder({ relayedFreshMs: 0 })
    const [x, y, z, gone] = await Promise.all([block(211), block(212), block(213), block(214)])
    const sink = sinkOn(before.held, before.release)
    await sink.put(x, new Uint8Array([1]), { from: 'W', origin: 'W', verified: true })
    await sink.put(y, new Uint8Array([2]), { from: 'M', origin: 'M', verified: true })
    before.release.noted([y], 'B')
    // held before any record (pulled here), then pushed: nobody's
    before.held.add(z.toString())
    await sink.put(z, new Uint8Array([3]), { from: 'W', origin: 'W', verified: true })
    await sink.put(gone, new Uint8Array([4]), { from: 'W', origin: 'W', verified: true })
    await saveReleaseRecords(dir, before.release.records(), 'H')

    // the restart: the same blocks held (but `gone`, deleted meanwhile), a new release
    const after = holder({ relayedFreshMs: 0 })
    for (const c of [x, y, z]) after.held.add(c.toString())
    const kept = await takeReleaseRecords(dir, 'H')
    assert.equal(kept.length, 4)
    assert.equal(await after.release.restore(kept), 3, 'the record of a block no longer held is left out')
    await assert.rejects(access(join(dir, RELEASE_RECORDS_FILE)), 'the file is taken: removed')
    assert.deepEqual(await takeReleaseRecords(dir, 'H'), [], 'a second start reads nothing')
    assert.deepEqual(await after.release.answer([y], 'M'), [false], 'B\'s promise record kept: M refused')
    assert.deepEqual(await after.release.answer([z], 'W'), [false], 'nobody\'s stays nobody\'s')
    assert.deepEqual(await after.release.answer([x], 'M'), [false], 'M never put X')
    assert.deepEqual(await after.release.answer([x], 'W'), [true], 'W releases its own block after the restart')
    assert.equal(after.held.has(x.toString()), false)
  })

  it('a push and a promise of B landing while the daemon starts (before its release is made) are not erased by the restored records: W\'s release keeps B\'s block (review37b P1)', async () => {
    const dir = await tempDir(t)
    const x = await block(231)
    // before the stop: W pushed X here
    const before = holder({ relayedFreshMs: 0 })
    await sinkOn(before.held, before.release).put(x, new Uint8Array([1]), { from: 'W', origin: 'W', verified: true })
    await saveReleaseRecords(dir, before.release.records(), 'H')
    // the start, as the daemon runs it: the records taken before the swarm starts, the sink,
    // custody and the store telling the opening until the release is made
    const promisedTo = new Map<string, string>()
    const after = holder({ relayedFreshMs: 0, promisedTo })
    after.held.add(x.toString())
    const opening = new ReleaseOpening()
    await opening.take(dir, 'H')
    const store = { has: async (cid: CID) => after.held.has(cid.toString()), put: async (cid: CID) => { after.held.add(cid.toString()) } } as unknown as Parameters<typeof releasingSink>[0]
    const sink = releasingSink(store, () => opening.teller())
    // B's write places X here: custody promises it to B, and B pushes it naming itself
    promisedTo.set(x.toString(), 'B')
    opening.teller().noted([x], 'B')
    await sink.put(x, new Uint8Array([1]), { from: 'B', origin: 'B', verified: true })
    assert.equal(await opening.open(after.release), 1, 'W\'s record restored')
    assert.equal(opening.teller(), after.release, 'the release is told from now on')
    // B's promise ends (B's commit not heard of here yet): W gives up its old write
    promisedTo.delete(x.toString())
    assert.deepEqual(await after.release.answer([x], 'W'), [false], 'B pushed X too: W may not have it deleted')
    assert.equal(after.held.has(x.toString()), true)
    // (W gave it up: B's own release then deletes it, as for two writers of the same bytes)
    assert.deepEqual(await after.release.answer([x], 'B'), [true], 'B\'s own release deletes it')
    assert.equal(after.held.has(x.toString()), false)
  })

  it('past OPENING_CALLS_MAX calls while the daemon starts, no record is restored: every block held is nobody\'s, as before gc37', async () => {
    const dir = await tempDir(t)
    const x = await block(232)
    const before = holder({ relayedFreshMs: 0 })
    await sinkOn(before.held, before.release).put(x, new Uint8Array([1]), { from: 'W', origin: 'W', verified: true })
    await saveReleaseRecords(dir, before.release.records(), 'H')
    const after = holder({ relayedFreshMs: 0 })
    after.held.add(x.toString())
    const opening = new ReleaseOpening()
    await opening.take(dir, 'H')
    const other = await block(233)
    for (let i = 0; i <= OPENING_CALLS_MAX; i++) opening.teller().gone(other)
    assert.equal(await opening.open(after.release), 0)
    assert.deepEqual(await after.release.answer([x], 'W'), [false], 'W\'s record left out')
    assert.equal(after.held.has(x.toString()), true)
  })

  it('a file written by another host (copied from another data dir) is left out and removed', async () => {
    const dir = await tempDir(t)
    const { release, held } = holder({ relayedFreshMs: 0 })
    const x = await block(224)
    await sinkOn(held, release).put(x, new Uint8Array([1]), { from: 'W', origin: 'W', verified: true })
    await saveReleaseRecords(dir, release.records(), 'another-host')
    assert.deepEqual(await takeReleaseRecords(dir, 'H'), [])
    await assert.rejects(access(join(dir, RELEASE_RECORDS_FILE)), 'removed all the same')
  })

  it('a damaged file is left out whole (every block nobody\'s) and removed', async () => {
    const dir = await tempDir(t)
    const { release, held } = holder({ relayedFreshMs: 0 })
    const x = await block(221)
    await sinkOn(held, release).put(x, new Uint8Array([1]), { from: 'W', origin: 'W', verified: true })
    await saveReleaseRecords(dir, release.records(), 'H')
    const file = join(dir, RELEASE_RECORDS_FILE)
    const text = await readFile(file, 'utf8')
    // another writer named as the pusher: the sum no longer matches
    await writeFile(file, text.replace('"W"', '"M"'))
    assert.deepEqual(await takeReleaseRecords(dir, 'H'), [])
    await assert.rejects(access(file), 'removed all the same')
  })
})

describe('release opening: puts spanning open() (mend37g2, review37f)', function () {

  for (const overflow of [false, true]) {
    it(`B's put of Y spans open(), C's put of Y lands before open()${overflow ? ', the opening past its bound' : ''}: B may not have C's copy deleted`, async () => {
      const { release, held } = holder({ relayedFreshMs: 0 })
      const opening = new ReleaseOpening()
      const y = await block(250)
      if (overflow) {
        const other = await block(251)
        for (let i = 0; i <= OPENING_CALLS_MAX; i++) opening.teller().gone(other)
      }
      const { sink, entered, unblock } = gatedSink(held, () => opening.teller())
      // B's put asked the store (not held) and waits in its put
      const bPut = sink.put(y, new Uint8Array([1]), { from: 'B', origin: 'B', verified: true })
      await entered
      await sink.put(y, new Uint8Array([1]), { from: 'C', origin: 'C', verified: true })
      await opening.open(release)
      unblock()
      await bPut
      assert.deepEqual(await release.answer([y], 'B'), [false], 'C pushed Y too: B may not have it deleted')
      assert.equal(held.has(y.toString()), true)
    })
  }

  it('a put begun before open() keeps its block\'s record from being forgotten for room until it lands (the opening hands its landing on)', async function () {
    this.timeout(120_000)
    const { release, held } = holder({ relayedFreshMs: 0 })
    const opening = new ReleaseOpening()
    const y = await block(252)
    const { sink, entered, unblock } = gatedSink(held, () => opening.teller())
    const bPut = sink.put(y, new Uint8Array([1]), { from: 'B', origin: 'B', verified: true })
    await entered
    await sink.put(y, new Uint8Array([1]), { from: 'C', origin: 'C', verified: true })
    await opening.open(release)
    // the table filled by other peers' records (PUT_REMEMBER_MAX of them, 64 a peer), then B's
    // write goes on: its newer blocks land, and the peer with the most records is B
    for (let i = 0; i < PUT_REMEMBER_MAX; i++) {
      const c = await tableFiller(i)
      held.add(c.toString())
      release.arriving(c, `F${i >> 6}`, `F${i >> 6}`)
    }
    for (let i = 0; i < 100; i++) {
      const c = CID.createV1(0x55, await sha256.digest(new Uint8Array([i, 9, 9, 9])))
      held.add(c.toString())
      release.arriving(c, 'B', 'B')
    }
    unblock()
    await bPut
    assert.deepEqual(await release.answer([y], 'B'), [false], 'C pushed Y too: B may not have it deleted')
    assert.equal(held.has(y.toString()), true)
  })
})

describe('release opening: the calls replayed at open() keep each put\'s landing where it was (mend37g3, review37i)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  for (const live of [true, false]) {
    it(`B's put of Y spans C's whole put of Y and 1,100 more of B's, all ${live ? 'told to the release itself (control)' : 'before open() (replayed)'}, the table full from the last stop: B may not have C's copy deleted`, async function () {
      this.timeout(300_000)
      // the last stop kept PUT_REMEMBER_MAX records of 64 other peers (1,024 each)
      const dir = await tempDir(t)
      const fill = await saveFullTable(dir)
      const { release, held } = holder({ relayedFreshMs: 0 })
      for (const c of fill) held.add(c.toString())
      const opening = new ReleaseOpening()
      await opening.take(dir, 'H')
      if (live) assert.equal(await opening.open(release), PUT_REMEMBER_MAX)
      const y = await block(240)
      const { sink, entered, unblock } = gatedSink(held, () => opening.teller())
      // B's put of Y asked the store (not held) and waits in its put
      const bPut = sink.put(y, new Uint8Array([1]), { from: 'B', origin: 'B', verified: true })
      await entered
      // C's put of Y, begun and ended meanwhile
      await sink.put(y, new Uint8Array([1]), { from: 'C', origin: 'C', verified: true })
      // B's write goes on: B becomes the peer with the most records
      for (let i = 0; i < 1100; i++) {
        const c = CID.createV1(0x55, await sha256.digest(new Uint8Array([i & 255, (i >> 8) & 255, 9, 9, 9])))
        await sink.put(c, new Uint8Array([2]), { from: 'B', origin: 'B', verified: true })
      }
      unblock()
      await bPut
      if (!live) assert.equal(await opening.open(release), PUT_REMEMBER_MAX)
      assert.deepEqual(await release.answer([y], 'B'), [false], 'C pushed Y too: B may not have it deleted')
      assert.equal(held.has(y.toString()), true)
    })
  }

  it('a put begun and ended while open() restores the records does not end the landing of a put begun before open() and still under way', async () => {
    const { release, held } = holder({ relayedFreshMs: 0 })
    const x = await block(241)
    const y = await block(242)
    held.add(x.toString())
    const dir = await tempDir(t)
    await saveReleaseRecords(dir, [{ block: x.toString(), by: 'W', pushed: ['W'], claimed: [], named: ['W'], unknown: false, aside: false }], 'H')
    const opening = new ReleaseOpening()
    await opening.take(dir, 'H')
    // restore() waits in its store stat until `go()`
    let go!: () => void
    const gate = new Promise<void>(resolve => { go = resolve })
    let inRestore!: () => void
    const entered = new Promise<void>(resolve => { inRestore = resolve })
    const store = (release as any).c.store
    const has = store.has
    store.has = async (cid: CID) => { inRestore(); await gate; return await has(cid) }
    const landing = (): number | undefined => (release as any).landing.get(y.toString())
    // B's put of Y, under way across open()
    const b = opening.teller().landingOf(y)
    const opened = opening.open(release)
    await entered
    assert.equal(landing(), 1, 'B\'s put handed on before restore()')
    // C's put of Y, begun and ended while restore() runs
    opening.teller().landingOf(y)()
    assert.equal(landing(), 1, 'B\'s put (under way) keeps its landing while restore() runs')
    go()
    await opened
    assert.equal(landing(), 1, 'B\'s put still under way after open()')
    b()
    assert.equal(landing(), undefined, 'B\'s put ended: no landing left')
  })
})

describe('release opening: the records taken, given back only while untold (mend37g2)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })
  it('untold gives the records taken until anything is told (then they may be stale: none)', async () => {
    const dir = await tempDir(t)
    const x = await block(253)
    const kept = { block: x.toString(), by: 'W', pushed: ['W'], claimed: [], named: ['W'], unknown: false, aside: false }
    for (const tell of ['gone', 'noted', 'landing', 'open'] as const) {
      await saveReleaseRecords(dir, [kept], 'H')
      const opening = new ReleaseOpening()
      await opening.take(dir, 'H')
      assert.deepEqual(opening.untold, [kept])
      if (tell === 'gone') opening.teller().gone(x)
      else if (tell === 'noted') opening.teller().noted([x], 'B')
      else if (tell === 'landing') opening.teller().landingOf(x)
      else await opening.open(holder().release)
      assert.deepEqual(opening.untold, [], `told (${tell}): none given back`)
    }
  })
})

describe('release authority: the pending-origin window on a monotonic clock (mend37g2)', function () {
  function sinkOn (held: Set<string>, teller: () => ReturnType<ReleaseOpening['teller']>): ReturnType<typeof releasingSink> {
    const store = {
      has: async (cid: CID) => held.has(cid.toString()),
      put: async (cid: CID) => { held.add(cid.toString()) }
    } as unknown as Parameters<typeof releasingSink>[0]
    return releasingSink(store, teller)
  }

  it('a wall clock stepped forward past PENDING_ORIGIN_MS does not end the window: C, a member a moment later, releases its block', async () => {
    const members = new Set(['R'])
    const { release, held } = holder({ relayedFreshMs: 0, member: p => members.has(p) })
    const x = await block(254)
    await sinkOn(held, () => release).put(x, new Uint8Array([1]), { from: 'R', origin: 'C', verified: true })
    const wall = Date.now
    // (NTP or fake-hwclock steps the wall clock an hour on)
    Date.now = () => wall() + 3600_000
    try {
      members.add('C')
      assert.deepEqual(await release.answer([x], 'C'), [true], 'no time passed: C, a member now, releases it')
    } finally {
      Date.now = wall
    }
    assert.equal(held.has(x.toString()), false)
  })

  it('a push told while the daemon starts is timed from when it was told, not from open()', async () => {
    const members = new Set(['R'])
    let now = 1000
    const { release, held } = holder({ relayedFreshMs: 0, member: p => members.has(p) })
    ;(release as any).clock = () => now
    const opening = new ReleaseOpening({ clock: () => now })
    const x = await block(255)
    await sinkOn(held, () => opening.teller()).put(x, new Uint8Array([1]), { from: 'R', origin: 'C', verified: true })
    // the release made past the window's end
    now += PENDING_ORIGIN_MS + 1
    await opening.open(release)
    members.add('C')
    assert.deepEqual(await release.answer([x], 'C'), [false], 'C joined after its window: nobody\'s')
    assert.equal(held.has(x.toString()), true)
  })
  // bugs38: a release was remembered (its asker's late push dropped on arrival) until a time on
  // Date.now, so a wall clock stepped forward forgot it at once and one stepped back kept it for
  // as long as the step
  it('a wall clock stepped forward a week does not forget a release made a moment ago: its asker\'s late push is dropped', async () => {
    let now = 1000
    const { release, held } = holder({ relayedFreshMs: 0 })
    ;(release as any).clock = () => now
    const x = await block(253)
    assert.deepEqual(await release.answer([x], 'W'), [false], 'not held yet: remembered')
    held.add(x.toString())
    const wall = Date.now
    Date.now = () => wall() + 7 * 24 * HOUR
    try {
      now += 1
      assert.equal(await release.arrived(x, 'W'), true, 'dropped on arrival: the release still remembered')
    } finally {
      Date.now = wall
    }
    assert.equal(held.has(x.toString()), false)
  })

  it('a wall clock stepped back a week does not keep a release past RELEASE_REMEMBER_MS: a push after it stays', async () => {
    let now = 1000
    const { release, held } = holder({ relayedFreshMs: 0 })
    ;(release as any).clock = () => now
    const x = await block(252)
    assert.deepEqual(await release.answer([x], 'W'), [false])
    held.add(x.toString())
    const wall = Date.now
    Date.now = () => wall() - 7 * 24 * HOUR
    try {
      now += RELEASE_REMEMBER_MS + 1
      assert.equal(await release.arrived(x, 'W'), false, 'the release no longer remembered: a new write\'s push, kept')
    } finally {
      Date.now = wall
    }
    assert.equal(held.has(x.toString()), true)
  })
})

describe('release opening: a put handed on at open() and ending while restore() runs ends its landing in its place in the replay (review37k)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })
  it('B\'s put of Y spans open()\'s start and lands while restore() runs, C\'s put of Y and 1,100 of B\'s before open(): B may not have C\'s copy deleted', async function () {
    this.timeout(300_000)
    const dir = await tempDir(t)
    const fill = await saveFullTable(dir)
    const { release, held } = holder({ relayedFreshMs: 0 })
    for (const c of fill) held.add(c.toString())
    const opening = new ReleaseOpening()
    await opening.take(dir, 'H')
    const y = await block(243)
    const { sink, entered, unblock } = gatedSink(held, () => opening.teller())
    const bPut = sink.put(y, new Uint8Array([1]), { from: 'B', origin: 'B', verified: true })
    await entered
    await sink.put(y, new Uint8Array([1]), { from: 'C', origin: 'C', verified: true })
    for (let i = 0; i < 1100; i++) {
      const c = CID.createV1(0x55, await sha256.digest(new Uint8Array([i & 255, (i >> 8) & 255, 9, 9, 9])))
      await sink.put(c, new Uint8Array([2]), { from: 'B', origin: 'B', verified: true })
    }
    // restore() waits in its first store stat until go()
    let go!: () => void
    const rgate = new Promise<void>(resolve => { go = resolve })
    let inRestore!: () => void
    const rEntered = new Promise<void>(resolve => { inRestore = resolve })
    const store = (release as any).c.store
    const has = store.has
    let once = true
    store.has = async (cid: CID) => { if (once) { once = false; inRestore(); await rgate } return await has(cid) }
    const opened = opening.open(release)
    await rEntered
    unblock()
    await bPut
    go()
    assert.equal(await opened, PUT_REMEMBER_MAX)
    assert.deepEqual(await release.answer([y], 'B'), [false], 'C pushed Y too: B may not have it deleted')
  })
})
