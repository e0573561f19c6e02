// A fold made while a peer's older appends arrive (append35): the lead's CI saw lines of
// test/mount/append-hosts.test.ts torn. Volume.fold reads the file at its fold point, builds the
// fold's content (seconds under load: chunk store, placement), then stamps the op; the op's
// parents are the heads at the stamp, so appends of a peer received meanwhile that sort among
// the extents it covers count as seen (crdt.ts fold()) though its content lacks them: the fold
// was read in place of them, their bytes lost and as many of this host's read twice.
import assert from 'node:assert/strict'
import { Teardown } from '../../harness/tmp.ts'
import { startMesh, until } from '../../harness/cluster.ts'
import { FOLD_EXTENTS } from 'darkfs'
import { onEachOp } from '../../harness/ops.ts'

const enc = new TextEncoder()
const dec = new TextDecoder()

describe('a fold and a peer\'s appends it did not read', function () {
  this.timeout(120_000)
  const t = new Teardown()
  after(async () => { await t.run() })

  it('appends of a peer received while a fold is built are not lost under it', async () => {
    const [h0, h1] = await startMesh(t, 2)
    await h0.volume.writeFile('/log', enc.encode('start\n'))
    await until('host 1 reads the start line', async () => {
      try { return dec.decode(await h1.volume.readFile('/log')) === 'start\n' } catch { return false }
    })
    // host 0 hears nothing from host 1 until its fold is being built (host 1's log sync, or the
    // network, slow under load): then it hears it all, before the fold's op is stamped
    const tree = h0.tree as unknown as { receive: (...args: unknown[]) => Promise<unknown> }
    const receive = tree.receive.bind(tree)
    let held: Promise<unknown> = Promise.resolve()
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    let through = false
    tree.receive = async (...args: unknown[]) => {
      if (through) return await receive(...args)
      const run = held.then(async () => { await gate; return await receive(...args) })
      held = run.catch(() => {})
      return await run
    }
    const chunks = h0.volume.chunks as unknown as { place: (refs: unknown, opts?: { safe?: boolean }) => Promise<unknown> }
    const place = chunks.place.bind(chunks)
    let folding = false
    chunks.place = async (refs, opts) => {
      // the fold places its chunks (not `safe`: a commit's placement is) before its op
      if (opts?.safe !== true && !folding) {
        folding = true
        through = true
        release()
        await held
      }
      return await place(refs, opts)
    }
    // every line one length: the fold's size matches the file's whichever extents it holds
    const line = (p: string, i: number): string => `${p}${1000 + i}`
    const append = async (h: typeof h0, text: string): Promise<void> => {
      const fh = await h.volume.open('/log', 'a')
      const b = enc.encode(text + '\n')
      await fh.write(b, 0, b.byteLength, 0)
      await fh.close()
    }
    const lines = ['start']
    // host 1's appends first: older than host 0's, they sort before them
    for (let i = 0; i < 5; i++) { await append(h1, line('C', i)); lines.push(line('C', i)) }
    for (let i = 0; i < FOLD_EXTENTS + 6; i++) { await append(h0, line('A', i)); lines.push(line('A', i)) }
    let folds = 0
    onEachOp(h0.tree, (op, local) => { if (local && op.body.type === 'fold') folds++ })
    await until('host 0 built a fold and folded', () => folding && folds > 0, 60_000)
    await until('host 0 holds every op of host 1', async () => {
      const got = dec.decode(await h0.volume.readFile('/log'))
      return got.split('\n').length - 1 === lines.length
    }, 60_000).catch(() => {})
    const got = dec.decode(await h0.volume.readFile('/log')).split('\n').slice(0, -1)
    const seen = new Map<string, number>()
    for (const l of got) seen.set(l, (seen.get(l) ?? 0) + 1)
    assert.deepEqual({ missing: lines.filter(l => !seen.has(l)), twice: [...seen].filter(([, n]) => n > 1).map(([l]) => l) }, { missing: [], twice: [] })
    assert.deepEqual([...got].sort(), [...lines].sort())
  })
})
