// Pins' catch-up (node/pins.ts) on one local volume, with the network replaced by a recording
// fetch: what it asks for, what it leaves to a relay that is delivering the chunk here, and that
// a peer's write under the pin (ops received here) starts a catch-up by itself.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { Volume } from 'darkfs'
import { Pins } from '../../node/keeper/pins.ts'
import { until } from '../../harness/cluster.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { sync } from '../helpers/tree.ts'
import { PIN_XATTR_PREFIX } from '../../node/index.ts'

describe('Pins.refresh(): the catch-up of a pinning host', function () {
  const t = new Teardown()
  after(async () => { await t.run() })

  it('skips the chunks this host is relaying (they land here with the relay), fetches the rest, and those later', async () => {
    const vol = await Volume.open({ dir: await tempDir(t), localParams: { k: 2, m: 1 } })
    t.add(async () => { await vol.close() })
    await vol.mkdir('/p')
    await vol.writeFile('/p/a.bin', randomBytes(3 << 20))
    const content = vol.tree.byIno((await vol.stat('/p/a.bin')).ino)!.content
    assert.ok(content !== null && 'manifest' in content)
    const refs = (await vol.chunks.readManifest(content.manifest)).chunks
    assert.equal(refs.length, 3)
    const relayed = new Set([refs[1].cid!.toString()])
    const asked: CID[][] = []
    const pins = new Pins({
      peerId: 'self',
      volume: vol,
      tree: vol.tree,
      // nothing is held here: every chunk is to be fetched or is arriving
      chunks: { readManifest: async (cid, o) => await vol.chunks.readManifest(cid, o), hasLocally: async () => false },
      store: { has: async () => false, putMany: async () => {} },
      fetch: async (cids) => { asked.push(cids); return new Map() },
      arriving: chunk => relayed.has(chunk.toString())
    })
    const first = await pins.pin('/p')
    assert.deepEqual(first, { files: 1, chunks: 3, fetched: 2, missing: 0, arriving: 1 })
    const wanted = (ref: typeof refs[number]): string[] => ref.fragments.map(String).sort()
    assert.deepEqual(asked.map(c => c.map(String).sort()).sort(), [wanted(refs[0]), wanted(refs[2])].sort())
    // the relay is done (or gave up): the next catch-up fetches it like any other
    relayed.clear()
    asked.length = 0
    const second = await pins.refresh()
    assert.deepEqual(second, { files: 1, chunks: 3, fetched: 3, missing: 0, arriving: 0 })
    assert.ok(asked.some(c => c.map(String).sort().join() === wanted(refs[1]).join()), 'the once-relayed chunk is fetched now')
  })

  it('a peer\'s write under the pin, received here, starts a catch-up that fetches it (the tree\'s ops event kicks it)', async () => {
    // a: the writer; b: the pinning host, its network replaced by a recording fetch (nothing
    // arrives). No peer connects and no relay retries here: only the ops event can start the
    // catch-up that asks for the new file
    const a = await Volume.open({ dir: await tempDir(t), localParams: { k: 2, m: 1 } })
    t.add(async () => { await a.close() })
    const b = await Volume.open({ dir: await tempDir(t), localParams: { k: 2, m: 1 } })
    t.add(async () => { await b.close() })
    await a.mkdir('/p')
    await a.writeFile('/p/one.bin', randomBytes(1 << 20))
    await sync(a.tree, b.tree)
    // b pinned /p before it started (as after a restart): start() runs one catch-up at once
    await b.setxattr('/p', PIN_XATTR_PREFIX + 'self', new TextEncoder().encode('1'))
    const asked: CID[][] = []
    const pins = new Pins({
      peerId: 'self',
      volume: b,
      tree: b.tree,
      chunks: { readManifest: async (cid, o) => await a.chunks.readManifest(cid, o), hasLocally: async () => false },
      store: { has: async () => false, putMany: async () => {} },
      fetch: async (cids) => { asked.push(cids); return new Map() }
    })
    t.add(async () => { await pins.stop() })
    const fragmentsOf = async (path: string): Promise<Set<string>> => {
      const content = a.tree.byIno((await a.stat(path)).ino)!.content
      assert.ok(content !== null && 'manifest' in content)
      return new Set((await a.chunks.readManifest(content.manifest)).chunks.flatMap(r => r.fragments.map(String)))
    }
    const askedFor = (fragments: Set<string>): boolean => asked.some(c => c.some(f => fragments.has(f.toString())))
    pins.start()
    const one = await fragmentsOf('/p/one.bin')
    await until('the starting catch-up asks for /p/one.bin', () => askedFor(one), 10_000)
    // that catch-up has ended (its timer is spent): nothing is scheduled now
    await pins.refresh()
    asked.length = 0
    // the peer writes under the pinned dir; b receives its ops
    await a.writeFile('/p/two.bin', randomBytes(1 << 20))
    const two = await fragmentsOf('/p/two.bin')
    await sync(a.tree, b.tree)
    await until('a catch-up asks for the peer\'s new file', () => askedFor(two), 10_000)
  })
})
