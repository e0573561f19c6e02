// The op log (node/tree/log.ts) frames appends into a buffer it keeps and reuses once an append's
// write is done: appends of any sizes (no records, small, large), durable or written, many in
// flight at once, one after another or while earlier ones are still being written, come back from
// the file whole and in order after a reopen (property, real files). An append of no records
// leaves the log working (it used to leave it waiting for a flush that had ended: every later
// append and close() hung).
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { HEADER_BYTES, LOG_FILE, openLog } from '../../node/tree/log.ts'

const PROP_SEED = process.env.DARKFS_PROP_SEED === 'random' ? Date.now() : Number(process.env.DARKFS_PROP_SEED ?? 20261203)
const RUNS = Math.max(1, Number(process.env.DARKFS_PROP_RUNS ?? 1))

/** One append: `n` records of `size` bytes each (bytes from `seed`), durable or not, awaited before the next or not. */
const append = fc.record({ n: fc.integer({ min: 0, max: 20 }), size: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1000, max: 20_000 })), seed: fc.nat(255), durable: fc.integer({ min: 0, max: 3 }).map(x => x === 0), wait: fc.boolean() })

function records (a: { n: number, size: number, seed: number }, k: number): Uint8Array[] {
  return Array.from({ length: a.n }, (_, i) => {
    const r = new Uint8Array(a.size).fill((a.seed + k * 7 + i * 31) & 255)
    r[0] = k
    r[r.length - 1] = i
    return r
  })
}

describe('node/tree op log', () => {
  it('an append of no records, written or durable, leaves later appends and close() working', async () => {
    for (const durability of ['written', 'durable'] as const) {
      const dir = await mkdtemp(join(tmpdir(), 'darkfs-tree-log-'))
      try {
        const { log } = await openLog(dir)
        await log.append([], durability)
        await log.append([new Uint8Array([1, 2, 3])], 'written')
        await log.append([], durability)
        await log.sync()
        await log.close()
        const again = await openLog(dir)
        await again.log.close()
        assert.deepEqual(again.records.map(r => [...r]), [[1, 2, 3]])
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    }
  })

  it('appends past the size of the buffer the log keeps, and appends while an earlier one holds it, read back in order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'darkfs-tree-log-'))
    try {
      const { log } = await openLog(dir)
      const big = (k: number): Uint8Array[] => Array.from({ length: 90 }, (_, i) => new Uint8Array(60_000).fill((k + i) & 255))
      const small = (k: number): Uint8Array[] => [new Uint8Array(100).fill(k)]
      const order = [small(1), big(2), small(3), big(4), small(5)]
      try {
        await Promise.all(order.map(async (rs, k) => await log.append(rs, k === 3 ? 'durable' : 'written')))
        await log.append(small(6))
      } finally {
        await log.close()
      }
      const again = await openLog(dir)
      await again.log.close()
      const want = [...order.flat(), ...small(6)]
      assert.equal(again.records.length, want.length)
      for (let i = 0; i < want.length; i++) assert.ok(Buffer.from(again.records[i]).equals(Buffer.from(want[i])), `record ${i}`)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('an append of more buffers than one system call writes (a merge\'s receive, payloads written where they are) reads back whole and in order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'darkfs-tree-log-'))
    try {
      const { log } = await openLog(dir)
      // 6,000 records of 50-250 bytes (over a megabyte, 12,000 buffers to write), some views
      // into one shared buffer at odd offsets, as received blocks can be
      const shared = new Uint8Array(300_000)
      for (let i = 0; i < shared.length; i++) shared[i] = (i * 7919) & 255
      const recs = Array.from({ length: 6_000 }, (_, i) => {
        const n = 50 + (i * 37) % 201
        if (i % 3 === 0) return shared.subarray((i * 41) % 290_000, (i * 41) % 290_000 + n)
        const r = new Uint8Array(n).fill(i & 255)
        r[0] = i >> 8
        return r
      })
      try {
        await Promise.all([log.append(recs.slice(0, 10), 'written'), log.append(recs.slice(10), 'written'), log.append([new Uint8Array(3).fill(9)])])
      } finally {
        await log.close()
      }
      const again = await openLog(dir)
      await again.log.close()
      const want = [...recs, new Uint8Array(3).fill(9)]
      assert.equal(again.truncated, 0)
      assert.equal(again.records.length, want.length)
      for (let i = 0; i < want.length; i++) assert.ok(Buffer.from(again.records[i]).equals(Buffer.from(want[i])), `record ${i}`)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('written() resolves once every append made before it is in the file (a hold answers on it), syncing nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'darkfs-tree-log-'))
    try {
      const { log } = await openLog(dir, { writtenSyncMs: 3_600_000 })
      try {
        await log.written() // nothing queued: at once
        const recs = Array.from({ length: 40 }, (_, i) => new Uint8Array(20_000).fill(i + 1))
        // appends in flight (not awaited), written and one durable among them, then the barrier
        const appends = recs.map(async (r, i) => { await log.append([r], i === 20 ? 'durable' : 'written') })
        const syncs = log.counters().syncs
        await log.written()
        const file = await readFile(join(dir, LOG_FILE))
        let at = 0
        for (const [i, r] of recs.entries()) {
          assert.equal(file.readUInt32BE(at), r.byteLength, `record ${i}'s frame`)
          assert.ok(file.subarray(at + HEADER_BYTES, at + HEADER_BYTES + r.byteLength).equals(Buffer.from(r)), `record ${i}`)
          at += HEADER_BYTES + r.byteLength
        }
        assert.equal(at, file.byteLength)
        await Promise.all(appends)
        // the durable one synced what came before it; written() added no sync of its own
        assert.equal(log.counters().syncs, syncs + 1)
        // written alone: no sync
        await log.append([new Uint8Array(10).fill(99)], 'written')
        await log.written()
        assert.equal(log.counters().syncs, syncs + 1)
        assert.ok(log.counters().unsynced > 0)
      } finally {
        await log.close()
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('appends of any sizes, in flight together or not, read back whole and in order (property)', async () => {
    await fc.assert(fc.asyncProperty(fc.array(append, { minLength: 1, maxLength: 12 }), async appends => {
      const dir = await mkdtemp(join(tmpdir(), 'darkfs-tree-log-'))
      try {
        const { log } = await openLog(dir)
        const want: Uint8Array[] = []
        try {
          const inFlight: Array<Promise<void>> = []
          for (let k = 0; k < appends.length; k++) {
            const rs = records(appends[k], k)
            want.push(...rs)
            const p = log.append(rs, appends[k].durable ? 'durable' : 'written')
            if (appends[k].wait) await p
            else inFlight.push(p)
          }
          await Promise.all(inFlight)
        } finally {
          await log.close()
        }
        const again = await openLog(dir)
        await again.log.close()
        assert.equal(again.truncated, 0)
        assert.equal(again.records.length, want.length)
        for (let i = 0; i < want.length; i++) assert.deepEqual(Buffer.from(again.records[i]), Buffer.from(want[i]), `record ${i}`)
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    }), { seed: PROP_SEED, numRuns: 15 * RUNS })
  })
})
