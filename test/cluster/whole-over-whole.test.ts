// A whole version built while a peer's whole version of the same file arrives (whole37, found by
// review36g finding 3): host 0 has writes pending on /f, host 1 writes /f at a position and closes
// (its close, acknowledged, is a whole version too: an inline file, or a whole chunk rewritten),
// and that version reaches host 0 while host 0's close is being built. The close was built again
// over the peer's version, keeping only its appends, and stamped with it as a parent: the CRDT took
// host 0's version as having seen host 1's, whose bytes were gone from the tree on both hosts
// (history kept them). The two versions are concurrent (neither read the other): crdt.ts keeps the
// one that sorts first as a conflict sibling, on every host alike.
import assert from 'node:assert/strict'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import { agreed, shared, treeOf } from '../helpers/file-pair.ts'
import { mkdir } from '../helpers/tree.ts'
import { MAX_OWN_EXTENTS } from 'darkfs'

const dec = new TextDecoder()
const enc = new TextEncoder()
const MiB = 1 << 20

type Host = Awaited<ReturnType<typeof startMesh>>[number]

async function inlinePeer (h1: Host, name: string): Promise<void> {
  const fp = await h1.volume.open(`/${name}`, 'r+')
  await fp.write(enc.encode('Y'), 0, 1, 3)
  await fp.close()
}

/**
 * Host 0's close of its open /name (`fh`), with host 1's `peer` change of /name made, closed and
 * received by host 0 right before host 0's first stamp of its version (the close in flight):
 * `first` runs before host 1's change, `then` after host 0 has it, `again` at each later commit
 * of a `write` of the file (before it is stamped). Returns how many of host 0's commits named the
 * file as a `write`.
 */
async function closeWhilePeerWrites (h0: Host, h1: Host, name: string, fh: { close: () => Promise<void> }, peer: () => Promise<void>, hooks: { first?: () => Promise<void>, then?: () => Promise<void>, again?: (opts: { at?: unknown } | undefined) => void } = {}): Promise<number> {
  const id = h0.tree.lookup('root', name)?.inode as string
  const tree = h0.tree as unknown as { commitMany: (bodies: any[], ...rest: unknown[]) => Promise<unknown> }
  const commitMany = tree.commitMany.bind(tree)
  let writes = 0
  tree.commitMany = async (bodies, ...rest) => {
    const write = bodies.some(b => b.inode === id && b.type === 'write')
    if (write && writes++ === 0) {
      await hooks.first?.()
      const before = h0.tree.fileMark(id)?.version
      await peer()
      await until('host 0 has host 1\'s version', () => h0.tree.fileMark(id)?.version !== before, 60_000)
      await hooks.then?.()
    } else if (write) {
      hooks.again?.(rest[1] as { at?: unknown } | undefined)
    }
    return await commitMany(bodies, ...rest)
  }
  try {
    await fh.close()
  } finally {
    tree.commitMany = commitMany
  }
  return writes
}

/** The bytes of /name's conflict siblings, once both hosts have the same ones and read them alike. */
async function siblings (h0: Host, h1: Host, name: string): Promise<Uint8Array[]> {
  const of = (h: Host): string[] => h.tree.conflicts().filter(c => c.path.startsWith(`/${name}.conflict-`)).map(c => c.path).sort()
  let out: Uint8Array[] = []
  await until(`both hosts have /${name}'s siblings alike`, async () => {
    const a = of(h0)
    const b = of(h1)
    if (a.length === 0 || a.join() !== b.join()) return false
    const bytes = await Promise.all(a.map(async p => await Promise.all([h0.volume.readFile(p), h1.volume.readFile(p)])))
    if (!bytes.every(([x, y]) => Buffer.compare(x, y) === 0)) return false
    out = bytes.map(([x]) => x)
    return true
  }, 60_000)
  return out
}

describe('a whole version and a peer\'s whole version that arrives while it is built', function () {
  this.timeout(180_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let hosts: Host[]
  before(async () => { hosts = await startMesh(t, 2) })

  it('an inline file: host 1\'s positioned write, closed, stays as a conflict sibling on both hosts', async () => {
    const [h0, h1] = hosts
    await shared(h0, h1, 'inline', enc.encode('aaaa\n'))
    const fh = await h0.volume.open('/inline', 'r+')
    await fh.write(enc.encode('X'), 0, 1, 0)
    assert.equal(await closeWhilePeerWrites(h0, h1, 'inline', fh, async () => { await inlinePeer(h1, 'inline') }), 2)
    // host 0's version sorts last: it keeps the name; host 1's is the sibling
    assert.equal(dec.decode(await agreed(h0, h1, 'inline')), 'Xaaa\n')
    const sibs = await siblings(h0, h1, 'inline')
    assert.deepEqual(sibs.map(s => dec.decode(s)), ['aaaY\n'])
    // nothing else: the file is one version of host 0 over one of host 1, not rebuilt over it
    assert.equal(treeOf(h0, 'inline').size, 5)
  })

  it('host 0 stamped another file\'s ops after its read, before host 1\'s version came: still a conflict sibling', async () => {
    const [h0, h1] = hosts
    await shared(h0, h1, 'inline-busy', enc.encode('aaaa\n'))
    const fh = await h0.volume.open('/inline-busy', 'r+')
    await fh.write(enc.encode('X'), 0, 1, 0)
    // host 0's ops since its read of the file: its next op names the newest of them too
    await h0.volume.writeFile('/busy-before', enc.encode('other\n'))
    await closeWhilePeerWrites(h0, h1, 'inline-busy', fh, async () => { await inlinePeer(h1, 'inline-busy') })
    assert.equal(dec.decode(await agreed(h0, h1, 'inline-busy')), 'Xaaa\n')
    const sibs = await siblings(h0, h1, 'inline-busy')
    assert.deepEqual(sibs.map(s => dec.decode(s)), ['aaaY\n'])
  })

  it('host 0 stamped another file\'s op after host 1\'s version came (so saw it): host 0\'s writes go over it as extents, host 1\'s bytes kept but where host 0 wrote', async () => {
    const [h0, h1] = hosts
    await shared(h0, h1, 'inline-saw', enc.encode('aaaa\n'))
    const fh = await h0.volume.open('/inline-saw', 'r+')
    await fh.write(enc.encode('X'), 0, 1, 0)
    const writes = await closeWhilePeerWrites(h0, h1, 'inline-saw', fh, async () => { await inlinePeer(h1, 'inline-saw') }, {
      then: async () => { await h0.volume.writeFile('/busy-after', enc.encode('other\n')) }
    })
    // no stamp can leave host 1's version out of the close's past: no second whole version,
    // host 0's byte positioned over host 1's version
    assert.equal(writes, 1)
    assert.equal(dec.decode(await agreed(h0, h1, 'inline-saw')), 'XaaY\n')
    assert.equal(h0.tree.conflicts().filter(c => c.path.startsWith('/inline-saw.conflict-')).length, 0)
    assert.equal(h1.tree.conflicts().filter(c => c.path.startsWith('/inline-saw.conflict-')).length, 0)
  })

  it('the same with host 0\'s file truncated (no extents can hold that): built again over host 1\'s version, which history keeps', async () => {
    const [h0, h1] = hosts
    await shared(h0, h1, 'inline-saw-cut', enc.encode('aaaa\n'))
    const fh = await h0.volume.open('/inline-saw-cut', 'r+')
    await fh.truncate(2)
    await fh.write(enc.encode('X'), 0, 1, 0)
    const writes = await closeWhilePeerWrites(h0, h1, 'inline-saw-cut', fh, async () => { await inlinePeer(h1, 'inline-saw-cut') }, {
      then: async () => { await h0.volume.writeFile('/busy-after-cut', enc.encode('other\n')) }
    })
    assert.equal(writes, 2)
    assert.equal(dec.decode(await agreed(h0, h1, 'inline-saw-cut')), 'Xa')
    for (const h of [h0, h1]) {
      const id = h.tree.lookup('root', 'inline-saw-cut')?.inode as string
      const kept = h.tree.history(id).some(v => v.content !== null && 'inline' in v.content && dec.decode(v.content.inline) === 'aaaY\n')
      assert.ok(kept, 'host 1\'s version in history')
    }
  })

  it('host 0 stamps an op that sees host 1\'s version after the close chose to stamp at its cut, before its stamp: refused there, its writes go over as extents', async () => {
    const [h0, h1] = hosts
    await shared(h0, h1, 'inline-between', enc.encode('aaaa\n'))
    const fh = await h0.volume.open('/inline-between', 'r+')
    await fh.write(enc.encode('X'), 0, 1, 0)
    let between: Promise<unknown> | undefined
    let atCut = false
    const writes = await closeWhilePeerWrites(h0, h1, 'inline-between', fh, async () => { await inlinePeer(h1, 'inline-between') }, {
      again: opts => {
        if (between !== undefined) return
        atCut = opts?.at !== undefined
        // the close's build at the cut is about to be stamped: an op of host 0 that sees host 1's
        // version (applied here) takes the tree's queue first
        between = h0.tree.commitMany([mkdir(h0.tree.root, 'between-dir')], 'durable')
      }
    })
    await between
    assert.equal(atCut, true, 'the close chose to stamp at its cut')
    // the stamp at the cut refused (it would have named the op that saw host 1's version)
    assert.equal(writes, 2)
    assert.equal(dec.decode(await agreed(h0, h1, 'inline-between')), 'XaaY\n')
    assert.equal(h0.tree.conflicts().filter(c => c.path.startsWith('/inline-between.conflict-')).length, 0)
  })

  it('host 0\'s op on another file stamped before host 1\'s version came, its fsync not back when the close decides: still a conflict sibling', async () => {
    const [h0, h1] = hosts
    await shared(h0, h1, 'inline-inflight', enc.encode('aaaa\n'))
    const fh = await h0.volume.open('/inline-inflight', 'r+')
    await fh.write(enc.encode('X'), 0, 1, 0)
    // host 0's mkdir is written to its log, but its fsync is back only once released: at the
    // close's next build (its decision taken while the mkdir is in flight)
    const log = (h0.tree as unknown as { log: { append: (records: Uint8Array[], d?: string) => Promise<void> } }).log
    const append = log.append.bind(log)
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    let reached!: () => void
    const held = new Promise<void>(resolve => { reached = resolve })
    let other: Promise<unknown> | undefined
    let inFlight: boolean | undefined
    try {
      await closeWhilePeerWrites(h0, h1, 'inline-inflight', fh, async () => { await inlinePeer(h1, 'inline-inflight') }, {
        first: async () => {
          log.append = async (records, d) => {
            const p = append(records, d)
            if (!records.some(r => Buffer.from(r.buffer, r.byteOffset, r.byteLength).includes('inflight-dir'))) return await p
            log.append = append
            reached()
            await p
            await gate
          }
          other = h0.volume.mkdir('/inflight-dir')
          // stamped (its append reached) before host 1's version is made
          await held
        },
        again: () => {
          inFlight ??= h0.tree.lookup('root', 'inflight-dir') === undefined
          release()
        }
      })
    } finally {
      log.append = append
      release()
      await other
    }
    assert.equal(inFlight, true, 'the mkdir not applied yet when the close built its version again')
    assert.equal(dec.decode(await agreed(h0, h1, 'inline-inflight')), 'Xaaa\n')
    const sibs = await siblings(h0, h1, 'inline-inflight')
    assert.deepEqual(sibs.map(s => dec.decode(s)), ['aaaY\n'])
  })

  it('the same with host 0\'s file truncated, host 1 appending after its version: built again over it, host 1\'s append kept after host 0\'s bytes', async () => {
    const [h0, h1] = hosts
    await shared(h0, h1, 'cut-app', enc.encode('aaaa\n'))
    const fh = await h0.volume.open('/cut-app', 'r+')
    await fh.truncate(2)
    await fh.write(enc.encode('X'), 0, 1, 0)
    const writes = await closeWhilePeerWrites(h0, h1, 'cut-app', fh, async () => {
      await inlinePeer(h1, 'cut-app')
      const fa = await h1.volume.open('/cut-app', 'a')
      await fa.write(enc.encode('ZZ'), 0, 2, null as unknown as number)
      await fa.close()
    }, {
      then: async () => {
        await until('host 0 has host 1\'s append', () => treeOf(h0, 'cut-app').size === 7, 60_000)
        await h0.volume.writeFile('/busy-cut-app', enc.encode('other\n'))
      }
    })
    // (the version host 0 built again over host 1's: its append, made over a version that did not
    // see host 0's truncate, lands after host 0's bytes)
    assert.equal(writes, 2)
    assert.equal(dec.decode(await agreed(h0, h1, 'cut-app')), 'XaZZ')
  })

  it('host 0 wrote more ranges than its extents may list (MAX_OWN_EXTENTS) and saw host 1\'s version: host 1\'s bytes kept between them', async () => {
    const [h0, h1] = hosts
    const n = MAX_OWN_EXTENTS + 1
    const size = 3 * n + 16
    await shared(h0, h1, 'span', new Uint8Array(size).fill(0x61))
    const fh = await h0.volume.open('/span', 'r+')
    for (let i = 0; i < n; i++) await fh.write(new Uint8Array([0x58]), 0, 1, 2 * i)
    await closeWhilePeerWrites(h0, h1, 'span', fh, async () => {
      await h1.volume.writeFile('/span', new Uint8Array(size).fill(0x62))
    }, { then: async () => { await h0.volume.writeFile('/busy-span', enc.encode('other\n')) } })
    const got = await agreed(h0, h1, 'span')
    assert.equal(got.byteLength, size)
    let bad = 0
    for (let i = 0; i < size; i++) if (got[i] !== (i % 2 === 0 && i < 2 * n ? 0x58 : 0x62)) bad++
    assert.equal(bad, 0, `${bad} bytes not as written; the first 16: ${dec.decode(got.subarray(0, 16))}`)
  })

  it('a large file: host 1\'s whole chunk, closed, stays as a conflict sibling on both hosts', async () => {
    const [h0, h1] = hosts
    await shared(h0, h1, 'dense', new Uint8Array(2 * MiB).fill(0x61))
    const fh = await h0.volume.open('/dense', 'r+')
    // a whole chunk rewritten on each host: past the patch bounds, a whole version each
    await fh.write(new Uint8Array(MiB).fill(0x62), 0, MiB, 0)
    await closeWhilePeerWrites(h0, h1, 'dense', fh, async () => {
      const fp = await h1.volume.open('/dense', 'r+')
      await fp.write(new Uint8Array(MiB).fill(0x63), 0, MiB, MiB)
      await fp.close()
    })
    const got = await agreed(h0, h1, 'dense')
    assert.equal(got.byteLength, 2 * MiB)
    assert.ok(got.subarray(0, MiB).every(b => b === 0x62), 'host 0\'s chunk')
    assert.ok(got.subarray(MiB).every(b => b === 0x61), 'the old second chunk')
    const sibs = await siblings(h0, h1, 'dense')
    assert.equal(sibs.length, 1)
    assert.equal(sibs[0].byteLength, 2 * MiB)
    assert.ok(sibs[0].subarray(0, MiB).every(b => b === 0x61), 'the old first chunk in host 1\'s version')
    assert.ok(sibs[0].subarray(MiB).every(b => b === 0x63), 'host 1\'s chunk')
  })
})
