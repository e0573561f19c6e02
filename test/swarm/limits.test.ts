import assert from 'node:assert/strict'
import { SwarmStoppedError, tokenBucket } from '../../swarm/index.ts'
import { Net, block, randomBytes } from './net.ts'
import { until } from '../../harness/cluster.ts'

const KiB = 1024
/** How often heldBack() looks at the count (ms). */
const SAMPLE_MS = 50

/**
 * Samples `count()` (bytes arrived) every SAMPLE_MS while `transfer` runs, and counts the samples
 * strictly between the cap's burst (a quarter second of `rate` passes at once) and the total:
 * bytes held back and let through over time show up there many times, bytes let through at once
 * almost never.
 */
async function heldBack<T extends { size: number }> (count: () => number, rate: number, transfer: Promise<T>): Promise<{ got: T, between: number, samples: number }> {
  const seen: number[] = []
  const timer = setInterval(() => { seen.push(count()) }, SAMPLE_MS)
  let got: T
  try {
    got = await transfer
  } finally {
    clearInterval(timer)
  }
  const total = count()
  return { got, between: seen.filter(n => n > rate * 0.25 && n < total).length, samples: seen.length }
}

describe('swarm caps and lifecycle', function () {
  let net: Net
  beforeEach(() => { net = new Net() })
  afterEach(async () => { await net.stop() })

  it('tokenBucket({ rate, burst }).take(n) admits a burst at once, then waits for the debt to be repaid', async () => {
    let t = 0
    const bucket = tokenBucket({ rate: 1000, burst: 500, now: () => t })
    assert.equal(bucket.take(500), undefined, 'the burst passes at once')
    const wait = bucket.take(50)
    assert.ok(wait instanceof Promise, 'past the burst, the caller waits')
    await wait
    t += 1000 // a second later the bucket is full again, but no fuller than the burst
    assert.equal(bucket.take(500), undefined)
    assert.ok(bucket.take(1) instanceof Promise)
  })

  it('tokenBucket().take(n, { signal }) rejects and refunds when aborted', async () => {
    const t = 0
    const bucket = tokenBucket({ rate: 100, burst: 100, now: () => t })
    assert.equal(bucket.take(100), undefined)
    const ctl = new AbortController()
    const wait = bucket.take(1000, { signal: ctl.signal })
    ctl.abort(new Error('no more'))
    await assert.rejects(wait as Promise<void>, /no more/)
  })

  // The caps' rates are figures of `npm run bench` (scripts/bench/swarm.ts, swarm.cap.*): a
  // test asserts that a cap holds bytes back past its burst, not how many seconds it takes.
  it('createSwarm({ maxUploadBytesPerSecond }) holds a server\'s upload back past the burst', async () => {
    const rate = 512 * KiB
    const a = await net.node()
    const b = await net.node({ maxUploadBytesPerSecond: rate })
    await net.mesh()
    const blocks = await Promise.all(Array.from({ length: 6 }, async (_, i) => {
      const bytes = randomBytes(256 * KiB, 70 + i)
      return { bytes, cid: await block(bytes) }
    }))
    for (const x of blocks) b.store.map.set(x.cid.toString(), x.bytes)
    const start = a.swarm.stats().bytesReceived
    const held = await heldBack(() => a.swarm.stats().bytesReceived - start, rate, a.swarm.pullAny(blocks.map(x => x.cid), blocks.length, [b.id]))
    assert.equal(held.got.size, blocks.length)
    assert.ok(held.between >= 5, `bytes past the burst seen arriving ${held.between} times (of ${held.samples}): not held back`)
  })

  it('createSwarm({ maxUploadBytesPerSecond }) sends a block in slices as the cap admits them, not in one burst', async () => {
    const rate = 128 * KiB
    const a = await net.node()
    const b = await net.node({ maxUploadBytesPerSecond: rate })
    await net.mesh()
    const bytes = randomBytes(256 * KiB, 90)
    const cid = await block(bytes)
    b.store.map.set(cid.toString(), bytes)
    const start = a.swarm.stats().bytesReceived
    const seen = new Set<number>()
    const timer = setInterval(() => { seen.add(a.swarm.stats().bytesReceived - start) }, 50)
    try {
      const got = await a.swarm.pullAny([cid], 1, [b.id])
      assert.deepEqual(got.get(cid.toString()), bytes)
    } finally {
      clearInterval(timer)
    }
    // about 1.75 s at the cap: the receiver saw the block grow, not appear whole after a wait
    const partial = [...seen].filter(n => n > 0 && n < bytes.byteLength)
    assert.ok(partial.length >= 5, `received counts seen while it arrived: ${[...seen].sort((x, y) => x - y).join(', ')}`)
  })

  it('createSwarm({ maxDownloadBytesPerSecond }) holds a reader\'s download back past the burst', async () => {
    const rate = 512 * KiB
    const a = await net.node({ maxDownloadBytesPerSecond: rate })
    const b = await net.node()
    await net.mesh()
    const blocks = await Promise.all(Array.from({ length: 6 }, async (_, i) => {
      const bytes = randomBytes(256 * KiB, 80 + i)
      return { bytes, cid: await block(bytes) }
    }))
    for (const x of blocks) b.store.map.set(x.cid.toString(), x.bytes)
    // what the reader has taken in: blocks it has handed on (the cap delays each message)
    let taken = 0
    const pulls = Promise.all(blocks.map(async x => { const bytes = await a.swarm.pull(x.cid, [b.id]); taken += bytes.byteLength; return [x.cid.toString(), bytes] as const }))
    const held = await heldBack(() => taken, rate, pulls.then(entries => new Map(entries)))
    assert.equal(held.got.size, blocks.length)
    assert.ok(held.between >= 5, `blocks past the burst seen arriving ${held.between} times (of ${held.samples}): not held back`)
  })

  it('swarm.start() and swarm.stop() are idempotent, and calls after stop() reject', async () => {
    const a = await net.node()
    const b = await net.node()
    await net.mesh()
    await a.swarm.start()
    await a.swarm.stop()
    await a.swarm.stop()
    const bytes = randomBytes(100, 1)
    const cid = await block(bytes)
    b.store.map.set(cid.toString(), bytes)
    await assert.rejects(a.swarm.pull(cid, [b.id]), (err: Error) => err.name === SwarmStoppedError.name)
    await assert.rejects(a.swarm.push([{ cid, bytes, to: [b.id] }]), (err: Error) => err.name === SwarmStoppedError.name)
    await a.swarm.start()
    await a.swarm.start()
    assert.deepEqual(await a.swarm.pull(cid, [b.id]), bytes)
  })

  it('swarm.stop() rejects pulls in progress', async () => {
    const a = await net.node()
    const b = await net.node({ maxUploadBytesPerSecond: 64 * KiB })
    await net.mesh()
    const bytes = randomBytes(1024 * KiB, 2)
    const cid = await block(bytes)
    b.store.map.set(cid.toString(), bytes)
    const pulling = a.swarm.pull(cid, [b.id])
    await until('the block is on its way', () => a.swarm.stats().bytesReceived > 0)
    await a.swarm.stop()
    await assert.rejects(pulling, (err: Error) => err.name === SwarmStoppedError.name)
  })
})
