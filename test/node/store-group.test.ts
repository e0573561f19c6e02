// Group commit of block files (node/data/store.ts GroupCommit, erasure.c writeBlocks): blocks put
// at about the same time are written, renamed and synced in one job, and each put still resolves
// only once its own file and directory are durable, and fails alone (with its own errno) when its
// own calls fail: on a full disk, some puts of one group are stored and the others refused, none
// half-written. A put that resolved is there, whole, after the process storing it is killed.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Store, cidOf } from '../../node/data/index.ts'
import { writeBlocksNative } from '../../node/data/erasure.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { run } from '../../harness/mesh.ts'

const block = (n: number): { cid: ReturnType<typeof cidOf>, bytes: Uint8Array } => { const bytes = randomBytes(n); return { cid: cidOf(bytes), bytes } }

async function tmpFiles (dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).filter(n => n.endsWith('.tmp'))
}

describe('Store group commit', function () {
  this.timeout(60_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })
  beforeEach(function () { if (writeBlocksNative === undefined) this.skip() }) // no addon: blocks are written one by one

  it('puts in one turn share one job, each resolved durable; one whose shard directory is a file fails alone with ENOTDIR', async () => {
    const dir = await tempDir(t)
    let store = await Store.open(dir)
    await store.tally() // the index answers for new blocks: no stat before their writes (as in the daemon)
    const shardOf = (b: { cid: unknown }): string => (store as unknown as { shards: { encode: (c: unknown) => { dir: string } } }).shards.encode(b.cid).dir
    const good = Array.from({ length: 11 }, (_, i) => block(1000 + i * 20_000))
    // the shard directory of the last block is made a file: its open fails, the others do not.
    // Drawn until it is alone in its shard (random CIDs share one in about 1 set of 90: the
    // test failed then, in CI)
    let bad = block(1000 + 11 * 20_000)
    while (good.some(b => shardOf(b) === shardOf(bad))) bad = block(1000 + 11 * 20_000)
    const blocks = [...good, bad]
    const shardDir = join(dir, 'blocks', shardOf(bad))
    await writeFile(shardDir, 'not a directory')
    const before = store.groupCommits()!
    const outcomes = await Promise.allSettled(blocks.map(async b => { await store.put(b.cid, b.bytes) }))
    const after = store.groupCommits()!
    assert.equal(after.jobs - before.jobs, 1, 'the puts of one turn went out as one job')
    assert.equal(after.blocks - before.blocks, blocks.length)
    outcomes.slice(0, -1).forEach((o, i) => { assert.equal(o.status, 'fulfilled', `block ${i}`) })
    const last = outcomes[outcomes.length - 1]
    assert.equal(last.status, 'rejected')
    assert.equal((last as PromiseRejectedResult).reason.code, 'ENOTDIR')
    assert.equal(await store.has(bad.cid), false)
    assert.deepEqual(await tmpFiles(dir), [])
    await store.close()
    store = await Store.open(dir)
    t.add(async () => { await store.close() })
    await store.tally()
    for (const b of blocks.slice(0, -1)) assert.deepEqual(Buffer.from(await store.get(b.cid)), Buffer.from(b.bytes))
    assert.equal(await store.has(bad.cid), false)
  })

  it('puts arriving while commits run are grouped into later jobs, every one resolved only with its block stored', async () => {
    const dir = await tempDir(t)
    const store = await Store.open(dir)
    t.add(async () => { await store.close() })
    await store.tally()
    const blocks = Array.from({ length: 40 }, () => block(64 * 1024))
    // one put a turn (as pushes arrive): while two commits are under way the others queue
    const puts: Array<Promise<void>> = []
    for (const b of blocks) {
      puts.push(store.put(b.cid, b.bytes).then(async () => { assert.equal(await store.has(b.cid), true) }))
      await new Promise(resolve => setImmediate(resolve))
    }
    await Promise.all(puts)
    const { jobs, blocks: written } = store.groupCommits()!
    assert.equal(written, blocks.length)
    assert.ok(jobs <= blocks.length)
    for (const b of blocks) assert.deepEqual(Buffer.from(await store.get(b.cid)), Buffer.from(b.bytes))
  })

  it('on a full disk (a small tmpfs) the puts of one group are each stored whole or refused with ENOSPC, none left half-written', async function () {
    if (process.getuid?.() !== 0) this.skip() // mounting a tmpfs needs root
    const dir = await tempDir(t)
    await mkdir(join(dir, 'fs'))
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', join(dir, 'fs')])
    t.add(async () => { await run('umount', ['-l', join(dir, 'fs')]) })
    const root = join(dir, 'fs', 'store')
    let store = await Store.open(root)
    await store.tally()
    const blocks = Array.from({ length: 8 }, () => block(256 * 1024))
    const before = store.groupCommits()!
    const outcomes = await Promise.allSettled(blocks.map(async b => { await store.put(b.cid, b.bytes) }))
    assert.equal(store.groupCommits()!.jobs - before.jobs, 1)
    const stored = blocks.filter((_, i) => outcomes[i].status === 'fulfilled')
    const refused = blocks.filter((_, i) => outcomes[i].status === 'rejected')
    assert.ok(stored.length >= 1 && refused.length >= 1, `${stored.length} stored, ${refused.length} refused: the disk should hold some, not all`)
    for (const o of outcomes) if (o.status === 'rejected') assert.equal(o.reason.code, 'ENOSPC', String(o.reason))
    assert.deepEqual(await tmpFiles(root), [], 'a refused block leaves no temporary file')
    await store.close()
    store = await Store.open(root)
    t.add(async () => { await store.close() })
    await store.tally()
    for (const b of stored) assert.deepEqual(Buffer.from(await store.get(b.cid)), Buffer.from(b.bytes))
    for (const b of refused) assert.equal(await store.has(b.cid), false)
  })

  it('every put that resolved is there, whole, after the process storing blocks is killed mid-stream (SIGKILL)', async () => {
    const dir = await tempDir(t)
    const storeTs = fileURLToPath(new URL('../../node/data/index.ts', import.meta.url))
    // the child puts blocks of bytes it derives from their index, 8 at a time, and prints the
    // index of each put as it resolves; it is killed once 24 have, with puts still under way
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      import { Store, cidOf } from ${JSON.stringify(storeTs)}
      import { createHash } from 'node:crypto'
      const store = await Store.open(${JSON.stringify(dir)})
      const bytesOf = i => { const b = new Uint8Array(100_000); let h = createHash('sha256').update(String(i)).digest(); for (let o = 0; o < b.length; o += 32) b.set(h.subarray(0, Math.min(32, b.length - o)), o); return b }
      for (let i = 0; ; i += 8) {
        await Promise.all(Array.from({ length: 8 }, async (_, j) => { const b = bytesOf(i + j); await store.put(cidOf(b), b); process.stdout.write((i + j) + '\\n') }))
      }
    `], { stdio: ['ignore', 'pipe', 'inherit'] })
    const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
    const resolved: number[] = []
    let text = ''
    await new Promise<void>((resolve, reject) => {
      child.once('exit', code => { reject(new Error(`the child exited (${String(code)}) before it was killed`)) })
      child.stdout.on('data', (d: Buffer) => {
        text += d.toString()
        const lines = text.split('\n')
        text = lines.pop()!
        for (const l of lines) resolved.push(Number(l))
        if (resolved.length >= 24) { child.kill('SIGKILL'); resolve() }
      })
    })
    await exited
    const { createHash } = await import('node:crypto')
    const bytesOf = (i: number): Uint8Array => { const b = new Uint8Array(100_000); const h = createHash('sha256').update(String(i)).digest(); for (let o = 0; o < b.length; o += 32) b.set(h.subarray(0, Math.min(32, b.length - o)), o); return b }
    const store = await Store.open(dir)
    t.add(async () => { await store.close() })
    await store.tally()
    for (const i of resolved) {
      const b = bytesOf(i)
      assert.equal(await store.has(cidOf(b)), true, `block ${i}`)
      assert.deepEqual(Buffer.from(await store.get(cidOf(b))), Buffer.from(b), `block ${i}`)
    }
    // whatever else is there under a block's name is whole (get() checks it against its CID)
    for await (const cid of store.cids()) await store.get(cid)
  })
})
