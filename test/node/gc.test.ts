import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { startCluster, startHost, type ClusterHost } from '../../harness/cluster.ts'
import { Collector } from '../../node/keeper/gc.ts'
import { GC_SINCE_FILE } from '../../node/keeper/gc-since.ts'
import { readSealed } from '../../node/keeper/sealed-file.ts'
import { sha256 } from 'multiformats/hashes/sha2'
import { guardStore } from '../../node/keeper/index.ts'
import { CID } from 'multiformats/cid'

const HOUR = 3600_000

describe('keep.collector (garbage collection)', function () {
  this.timeout(60_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('collect() removes blocks of versions past retention, keeps current ones and uncommitted writes', async () => {
    const [h] = await startCluster(t, 1, { daemon: { keep: { repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 } } })
    // a collector on the host's volume and store with a clock of its own: retention passes when
    // the test moves it, never because a loaded machine was slow between two steps
    assert.ok(h.keep.collector instanceof Collector, 'the daemon runs a Collector')
    let now = Date.now()
    const gc = new Collector({ volume: h.volume, store: h.store, now: () => now }, { retentionMs: HOUR, intervalMs: 0 })
    const v1 = randomBytes(2 << 20)
    const v2 = randomBytes((1 << 20) + 5)
    await h.volume.replaceFile('/a', [v1])
    const before = (await h.store.usage()).blocks
    await h.volume.replaceFile('/a', [v2])
    // v1 is in history within retention: nothing is unreferenced, nothing goes
    const within = await gc.collect()
    assert.deepEqual([within.removed.length, within.unreferenced], [0, 0], JSON.stringify(within))
    now += HOUR + 1000
    const first = await gc.collect()
    assert.equal(first.removed.length, 0, 'first seen unreferenced: only marked')
    assert.ok(first.unreferenced >= 3, `v1's two chunks and manifest are unreferenced: ${JSON.stringify(first)}`)
    // an uncommitted write lands now: fresh, so the next round must keep it
    const inflight = await h.volume.chunks.storeChunk(randomBytes(1 << 20), 0)
    now += HOUR + 1000
    const second = await gc.collect()
    assert.equal(second.removed.length, first.unreferenced)
    assert.ok(await h.store.has(inflight.ref.cid!), 'the uncommitted chunk is kept')
    assert.ok((await h.store.usage()).blocks < before + 3)
    h.volume.chunks.dropCache()
    assert.deepEqual(Buffer.from(await h.volume.readFile('/a')), v2)
  })

  // a writer's placement has its targets promise the fragments (custody.ts) until its commit:
  // GC deleted an unreferenced block it had seen so long enough even under such a promise
  // (bytes unreferenced for days, then written again), review31b
  it('the daemon\'s collector keeps an unreferenced block this host promised to keep, and removes one it did not', async () => {
    const [h] = await startCluster(t, 1, { daemon: { keep: { repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0, retentionMs: 0 } } })
    const kept = await h.volume.chunks.storeChunk(randomBytes(1 << 20), 0)
    const gone = await h.volume.chunks.storeChunk(randomBytes(1 << 20), 0)
    await Promise.all([kept.stored, gone.stored])
    const blocks = (r: typeof kept): CID[] => [r.ref.cid!, ...r.ref.fragments]
    // seen unreferenced in a first round (retention 0: removed in the next)
    const first = await h.keep.collector.collect()
    assert.equal(first.removed.length, 0, 'first seen unreferenced: only marked')
    const promised = await h.custody.promise(blocks(kept), 'a writer')
    assert.ok(kept.ref.fragments.every(f => promised.has(f.toString())), 'the host promised the fragments it holds')
    const second = await h.keep.collector.collect()
    for (const f of kept.ref.fragments) assert.ok(await h.store.has(f), `promised fragment ${f.toString()} kept`)
    assert.ok(!second.removed.some(c => kept.ref.fragments.some(f => f.toString() === c)), 'no promised fragment reported removed')
    for (const f of gone.ref.fragments) assert.equal(await h.store.has(f), false, `unpromised fragment ${f.toString()} removed`)
  })

  // a delete that threw was counted removed (its catch answered true), and the block's
  // unreferenced time started again: the next round only marked it
  it('collect() counts only what it deleted: a delete that fails is counted failed, and the next round deletes the block', async () => {
    const [h] = await startCluster(t, 1, { daemon: { keep: { repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 } } })
    let now = Date.now()
    // the host's store, its delete of one block failing as a disk error would, once
    let failing: string | undefined
    const store = {
      cids: h.store.cids.bind(h.store),
      has: h.store.has.bind(h.store),
      delete: async (cid: CID): Promise<void> => {
        if (cid.toString() === failing) {
          failing = undefined
          throw new Error('EIO: the disk failed this delete')
        }
        await h.store.delete(cid)
      }
    }
    const gc = new Collector({ volume: h.volume, store, now: () => now }, { retentionMs: HOUR, intervalMs: 0 })
    // two chunks written and given up (nothing references them): every block of theirs goes
    const w = await h.volume.chunks.storeChunk(randomBytes(1 << 20), 0)
    const v = await h.volume.chunks.storeChunk(randomBytes(1 << 20), 0)
    await Promise.all([w.stored, v.stored])
    const blocks = [...new Set([w.ref.cid!, ...w.ref.fragments, v.ref.cid!, ...v.ref.fragments].map(String))]
    assert.ok(blocks.length >= 2, `blocks of two chunks: ${blocks.length}`)
    const held = async (): Promise<string[]> => (await Promise.all(blocks.map(async b => await h.store.has(CID.parse(b)) ? b : ''))).filter(b => b !== '')
    assert.deepEqual(await held(), blocks, 'every block of the chunk stored')
    const first = await gc.collect()
    assert.equal(first.removed.length, 0, 'first seen unreferenced: only marked')
    assert.ok(first.unreferenced >= blocks.length, JSON.stringify(first))
    failing = w.ref.fragments[0].toString()
    now += HOUR + 1000
    const second = await gc.collect()
    assert.equal(failing, undefined, 'the failing delete was tried')
    assert.equal(second.failed, 1, JSON.stringify(second))
    assert.ok(!second.removed.includes(w.ref.fragments[0].toString()), 'the block whose delete failed is not reported removed')
    assert.deepEqual(second.removed.filter(b => blocks.includes(b)).sort(), blocks.slice().filter(b => b !== w.ref.fragments[0].toString()).sort())
    assert.deepEqual(await held(), [w.ref.fragments[0].toString()], 'only the block whose delete failed is left')
    // still unreferenced past the retention: the next round deletes it (not marked again)
    const third = await gc.collect()
    assert.ok(third.removed.includes(w.ref.fragments[0].toString()), JSON.stringify(third))
    assert.equal(third.failed, 0)
    assert.deepEqual(await held(), [])
  })

  // GC deletes through the pin guard (guardStore), whose delete spares a pinned block and
  // returns as if done: such a block was counted removed
  it('collect() does not count a block the pin guard kept as removed, and removes it a retention after no pin keeps it', async () => {
    const [h] = await startCluster(t, 1, { daemon: { keep: { repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 } } })
    let now = Date.now()
    let pinned: string | undefined
    const store = guardStore(h.store, async cid => cid.toString() === pinned)
    const gc = new Collector({ volume: h.volume, store, now: () => now }, { retentionMs: HOUR, intervalMs: 0 })
    const w = await h.volume.chunks.storeChunk(randomBytes(1 << 20), 0)
    const v = await h.volume.chunks.storeChunk(randomBytes(1 << 20), 0)
    await Promise.all([w.stored, v.stored])
    const blocks = [...new Set([w.ref.cid!, ...w.ref.fragments, v.ref.cid!, ...v.ref.fragments].map(String))]
    const held = async (): Promise<string[]> => (await Promise.all(blocks.map(async b => await h.store.has(CID.parse(b)) ? b : ''))).filter(b => b !== '')
    assert.equal((await gc.collect()).removed.length, 0, 'first seen unreferenced: only marked')
    pinned = w.ref.fragments[0].toString()
    now += HOUR + 1000
    const second = await gc.collect()
    assert.ok(!second.removed.includes(pinned), `the pinned block is not reported removed: ${JSON.stringify(second)}`)
    assert.equal(second.failed, 0)
    assert.deepEqual(await held(), [pinned], 'only the pinned block is left')
    const unpinned = pinned
    pinned = undefined
    // kept, its unreferenced time started again: only marked in the next round, removed a
    // retention later (a copy a write stored again right after the delete gets the same grace)
    const third = await gc.collect()
    assert.ok(!third.removed.includes(unpinned), JSON.stringify(third))
    assert.deepEqual(await held(), [unpinned])
    now += HOUR + 1000
    const fourth = await gc.collect()
    assert.ok(fourth.removed.includes(unpinned), JSON.stringify(fourth))
    assert.deepEqual(await held(), [])
  })
  // a block a write on this host stored new and has not committed (the store's claim) is not
  // promised until placed: GC past retention deleted it under the write (review32a)
  it('collect() never deletes a block a write in flight claims; once unclaimed it goes a retention later', async () => {
    const [h] = await startCluster(t, 1, { daemon: { keep: { repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 } } })
    let now = Date.now()
    const gc = new Collector({ volume: h.volume, store: h.store, now: () => now }, { retentionMs: HOUR, intervalMs: 0 })
    const bytes = randomBytes(4096)
    const { sha256 } = await import('multiformats/hashes/sha2')
    const cid = CID.createV1(0x55, await sha256.digest(bytes))
    const claim = {}
    await h.store.put(cid, bytes, { claim })
    assert.equal(h.store.isClaimed(cid), true, 'stored new under the claim')
    assert.ok(!(await gc.collect()).removed.includes(cid.toString()))
    now += HOUR + 1000
    const past = await gc.collect()
    assert.ok(!past.removed.includes(cid.toString()), JSON.stringify(past))
    assert.equal(await h.store.has(cid), true, 'a claimed block past retention is kept')
    h.store.unclaim(cid, claim)
    assert.ok(!(await gc.collect()).removed.includes(cid.toString()), 'unclaimed: first seen, only marked')
    now += HOUR + 1000
    assert.ok((await gc.collect()).removed.includes(cid.toString()), 'a retention after, removed')
    assert.equal(await h.store.has(cid), false)
  })

  // the unreferenced times were in memory only: a host restarted at least once a retention
  // period (7 days) never removed an unreferenced block (session 37)
  describe('the unreferenced times kept in the data dir', function () {
    /** One host (no timed rounds), a data dir for its collectors, and a 1 MiB chunk stored there that no version names: its blocks; `wall` is Date.now() just before the store. */
    async function unnamedChunk (): Promise<{ h: ClusterHost, dir: string, blocks: string[], wall: number }> {
      const [h] = await startCluster(t, 1, { daemon: { keep: { repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 } } })
      const dir = await tempDir(t)
      const wall = Date.now()
      const w = await h.volume.chunks.storeChunk(randomBytes(1 << 20), 0)
      await w.stored
      return { h, dir, blocks: [...new Set([w.ref.cid!, ...w.ref.fragments].map(String))], wall }
    }
    /** A collector over `h` keeping its times in `dir`, started (start() reads the file: intervalMs 0, no timed rounds). */
    function started (h: ClusterHost, dir: string, clocks: { now?: () => number, clock?: () => number }, opts: { retentionMs: number, self?: string }): Collector {
      const c = new Collector({ volume: h.volume, store: h.store, ...clocks }, { intervalMs: 0, dir, ...opts })
      c.start()
      return c
    }

    it('a collector over the same dir after a restart removes a block unreferenced for the retention before and after it', async () => {
      const { h, dir, blocks, wall } = await unnamedChunk()
      let now = wall
      // (3 h: a loaded time is held an hour short of the retention, GC_LOADED_GRACE_MS)
      const before = new Collector({ volume: h.volume, store: h.store, now: () => now }, { retentionMs: 3 * HOUR, intervalMs: 0, dir })
      assert.equal((await before.collect()).removed.length, 0, 'first seen unreferenced: only marked')
      now += 1.5 * HOUR
      assert.equal((await before.collect()).removed.length, 0, 'half the retention: kept')
      await before.stop()
      // the restart: a new collector, nothing in memory
      const after = new Collector({ volume: h.volume, store: h.store, now: () => now }, { retentionMs: 3 * HOUR, intervalMs: 0, dir })
      // (start() reads the file: intervalMs 0, no timed rounds)
      after.start()
      now += 1.5 * HOUR + 1000
      const r = await after.collect()
      assert.deepEqual(r.removed.filter(b => blocks.includes(b)).sort(), blocks.slice().sort(), JSON.stringify(r))
      for (const b of blocks) assert.equal(await h.store.has(CID.parse(b)), false, `${b} removed`)
      await after.stop()
    })

    it('the time the host was away does not count', async () => {
      const { h, dir, blocks, wall } = await unnamedChunk()
      let now = wall
      const gc = (): Collector => started(h, dir, { now: () => now }, { retentionMs: HOUR })
      const first = gc()
      assert.equal((await first.collect()).removed.length, 0)
      await first.stop()
      // away for longer than the retention: its tree may have missed a version naming the block
      now += 2 * HOUR
      const second = gc()
      assert.ok(!(await second.collect()).removed.some(b => blocks.includes(b)), 'away time is not unreferenced time seen')
      now += HOUR - 1000
      assert.ok(!(await second.collect()).removed.some(b => blocks.includes(b)), 'not yet the retention seen')
      now += 2000
      const r = await second.collect()
      assert.deepEqual(r.removed.filter(b => blocks.includes(b)).sort(), blocks.slice().sort(), `seen unreferenced for the retention: ${JSON.stringify(r)}`)
      await second.stop()
    })

    it('a clock behind at boot (no RTC, fake-hwclock) then stepped forward does not count the time away: only time GC saw, on a monotonic clock (review37b P2)', async () => {
      const { h, dir, blocks, wall } = await unnamedChunk()
      // the wall clock, and each process's monotonic one (from 0 at its start)
      let now = wall
      let mono = 0
      const gc = (): Collector => started(h, dir, { now: () => now, clock: () => mono }, { retentionMs: 3 * HOUR })
      const first = gc()
      await first.collect()
      now += 1.5 * HOUR
      mono += 1.5 * HOUR
      await first.collect()
      await first.stop()
      // down 2 h; the host boots with its wall clock at the shutdown time and reads the file
      const stoppedAt = now
      mono = 0
      const second = gc()
      await second.collect()
      // NTP steps the wall clock to the real time; a minute of running later, a round
      now = stoppedAt + 2 * HOUR
      mono += 60_000
      const r = await second.collect()
      assert.ok(!r.removed.some(b => blocks.includes(b)), `1.5 h and a minute seen of 3 h: kept (${JSON.stringify(r)})`)
      // and a wall clock stepped back does not hold it for longer than the retention seen
      now -= 5 * HOUR
      mono += 1.5 * HOUR
      const gone = await second.collect()
      assert.deepEqual(gone.removed.filter(b => blocks.includes(b)).sort(), blocks.slice().sort(), JSON.stringify(gone))
      await second.stop()
    })

    it('a block near the retention at the stop is not removed in the first rounds after the start: a loaded time is held an hour short of it (the tree catching up first)', async () => {
      const { h, dir, blocks } = await unnamedChunk()
      let mono = 0
      const gc = (): Collector => started(h, dir, { clock: () => mono }, { retentionMs: 3 * HOUR })
      const first = gc()
      await first.collect()
      mono += 3 * HOUR - 1000
      assert.ok(!(await first.collect()).removed.some(b => blocks.includes(b)), 'a second short of the retention: kept')
      await first.stop()
      mono = 0
      const second = gc()
      mono += 2000
      assert.ok(!(await second.collect()).removed.some(b => blocks.includes(b)), 'the first round after the start removes none of them')
      mono += HOUR - 4000
      assert.ok(!(await second.collect()).removed.some(b => blocks.includes(b)), 'nor one before the host has run for the hour')
      mono += 4000
      const r = await second.collect()
      assert.deepEqual(r.removed.filter(b => blocks.includes(b)).sort(), blocks.slice().sort(), JSON.stringify(r))
      await second.stop()
    })

    it('a round asked for (`gc`) while the collector stops does not write the file over the stop\'s save: the saves take turns', async () => {
      const [h] = await startCluster(t, 1, { daemon: { keep: { repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0 } } })
      const dir = await tempDir(t)
      // 20,000 unreferenced blocks held: the stop's save writes the file in several turns of the
      // event loop; then none (the round the `gc` asks for meets none: its save is short)
      const many = await Promise.all(Array.from({ length: 20_000 }, async (_, i) => CID.createV1(0x55, await sha256.digest(new Uint8Array([i & 255, i >> 8, 41])))))
      let held = many
      const store = { cids: async function * () { yield * held }, has: async () => true, delete: async () => {} }
      for (let i = 0; i < 3; i++) {
        held = many
        const c = new Collector({ volume: h.volume, store }, { retentionMs: 3 * HOUR, intervalMs: 0, dir })
        c.start()
        await c.collect()
        held = []
        const stopped = c.stop()
        const round = c.collect()
        await Promise.all([stopped, round])
        const read = await readSealed(join(dir, GC_SINCE_FILE), 1 << 30)
        assert.ok('head' in read, `the file is whole: ${JSON.stringify(read).slice(0, 200)}`)
        assert.equal((await readdir(dir)).filter(f => f.endsWith('.tmp')).length, 0, 'no temporary file left')
      }
    })

    it('a file written by another host (copied from another data dir) is left out: nothing is removed on its strength', async () => {
      const { h, dir, blocks } = await unnamedChunk()
      let mono = 0
      const gc = (self: string): Collector => started(h, dir, { clock: () => mono }, { retentionMs: 3 * HOUR, self })
      const other = gc('another-host')
      await other.collect()
      mono += 2 * HOUR
      await other.collect()
      await other.stop()
      mono = 0
      const here = gc('this-host')
      await here.collect()
      mono += HOUR + 1000
      const r = await here.collect()
      assert.ok(!r.removed.some(b => blocks.includes(b)), `another host's times left out: only an hour seen here (${JSON.stringify(r)})`)
      await here.stop()
      assert.match(await readFile(join(dir, GC_SINCE_FILE), 'utf8'), /^darkfs-gc-since \d+ \d+ this-host\n/, 'written again as this host\'s')
    })

    it('a damaged file is left out whole: nothing is removed on its strength', async () => {
      const { h, dir, blocks, wall } = await unnamedChunk()
      let now = wall
      const gc = (): Collector => started(h, dir, { now: () => now }, { retentionMs: HOUR })
      const file = join(dir, GC_SINCE_FILE)
      const damages: Array<[string, (text: string) => string]> = [
        ['cut short', text => text.slice(0, Math.floor(text.length * 0.7))],
        ['a time changed', text => text.replace(/^([A-Za-z0-9+/=]+) (\d)(\d*)$/m, (_m, k: string, d: string, rest: string) => `${k} ${d === '9' ? '8' : '9'}${rest}`)],
        ['not ours', () => '{"some":"json"}\n'],
        ['empty', () => '']
      ]
      for (const [what, damage] of damages) {
        const marking = gc()
        await marking.collect()
        now += HOUR / 2
        assert.equal((await marking.collect()).removed.length, 0)
        await marking.stop()
        const good = await readFile(file, 'utf8')
        const bad = damage(good)
        assert.notEqual(bad, good, what)
        await writeFile(file, bad)
        const restarted = gc()
        now += HOUR / 2 + 1000
        const r = await restarted.collect()
        assert.ok(!r.removed.some(b => blocks.includes(b)), `${what}: only marked afresh: ${JSON.stringify(r)}`)
        for (const b of blocks) assert.ok(await h.store.has(CID.parse(b)), `${what}: ${b} kept`)
        await restarted.stop()
        // the next file is written whole again
        assert.ok((await readFile(file, 'utf8')).includes('\nsum '), what)
      }
    })

    it('the daemon keeps them in its data dir: a block marked before a restart goes in the first round after it', async () => {
      const opts = { daemon: { keep: { repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0, retentionMs: 0 } } }
      const [h] = await startCluster(t, 1, opts)
      const w = await h.volume.chunks.storeChunk(randomBytes(1 << 20), 0)
      await w.stored
      const blocks = [...new Set([w.ref.cid!, ...w.ref.fragments].map(String))]
      assert.equal((await h.keep.collector.collect()).removed.length, 0, 'first seen unreferenced: only marked')
      await h.stop()
      const again = await startHost(t, h.dir, `${h.name}-again`, [], opts)
      const r = await again.keep.collector.collect()
      assert.deepEqual(r.removed.filter(b => blocks.includes(b)).sort(), blocks.slice().sort(), JSON.stringify(r))
    })
  })
})
