// Merge on reconnect (DESIGN.md §6) on three in-process hosts: one is cut off, both sides
// change the same tree, and after reconnecting every host shows the same tree, the merge rules
// hold, and nothing written is lost. `darkfs conflicts`, `log` and `cat PATH@VERSION` are run
// against the hosts' control sockets.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { isConflictName } from '../../node/tree/index.ts'
import { startCluster, until } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'
import { darkfs } from '../../harness/proc.ts'
import { Teardown } from '../../harness/tmp.ts'
import { exists, isolate, reconnect, snapshot } from '../../harness/partition.ts'

describe('merge on reconnect: three hosts, one cut off, both sides write', function () {
  const t = new Teardown()
  let a: ClusterHost, b: ClusterHost, c: ClusterHost
  const big = { a: randomBytes(1_500_000), c: randomBytes(1_200_000) }
  /** The same bytes written on both sides: stored with the erasure parameters of each side. */
  const same = randomBytes(1_300_000)
  /** Zeros: written as bytes on one side, a hole made by truncate on the other. */
  const zeros = 2_621_440
  /** The manifest each side's version of a file was stored under, before the merge. */
  const stored: Record<string, { a?: string, c?: string }> = {}
  const manifestOf = (h: ClusterHost, name: string): string | undefined => {
    const e = h.tree.lookup(h.tree.root, name)
    const content = e === undefined ? null : h.tree.get(e.inode)?.content ?? null
    return content !== null && 'manifest' in content ? content.manifest.toString() : undefined
  }

  before(async () => {
    [a, b, c] = await startCluster(t, 3)
    await until('the three hosts see each other', () => [a, b, c].every(h => h.host.peers().length === 2))
    // the shared starting point
    await a.volume.writeFile('/same.txt', 'base')
    await a.volume.writeFile('/dw.txt', 'to be deleted on one side')
    await a.volume.writeFile('/r.txt', 'renamed twice')
    await a.volume.mkdir('/x')
    await a.volume.mkdir('/y')
    await a.volume.writeFile('/identical.txt', 'base')
    await a.volume.writeFile('/runs.txt', 'base')
    await until('c has the starting point', async () => await exists(c.volume, '/identical.txt') && await exists(c.volume, '/y'))
    await until('b has the starting point', async () => await exists(b.volume, '/identical.txt') && await exists(b.volume, '/y'))

    c = await isolate(t, c, [a, b])
    // side 1: a and b
    await a.volume.replaceFile('/same.bin', [big.a], { wait: 'safe' })
    await a.volume.writeFile('/same.txt', 'from a')
    await b.volume.writeFile('/b-only.txt', 'b was here')
    await a.volume.rm('/dw.txt')
    await a.volume.rename('/r.txt', '/r-a.txt')
    await a.volume.rename('/y', '/x/y')
    await a.volume.mkdir('/m')
    await a.volume.writeFile('/m/from-a', 'a')
    await a.volume.chmod('/identical.txt', 0o600)
    await a.volume.writeFile('/identical.txt', 'same on both')
    await a.volume.replaceFile('/identical.bin', [same], { wait: 'safe' })
    await a.volume.replaceFile('/zeros.bin', [new Uint8Array(zeros)], { wait: 'safe' })
    // side 2: c, offline
    await c.volume.replaceFile('/same.bin', [big.c], { wait: 'safe' })
    await c.volume.writeFile('/same.txt', 'from c')
    await c.volume.writeFile('/c-only.txt', 'c was here')
    await c.volume.writeFile('/dw.txt', 'written while deleted elsewhere')
    await c.volume.rename('/r.txt', '/r-c.txt')
    await c.volume.rename('/x', '/y/x')
    await c.volume.mkdir('/m')
    await c.volume.writeFile('/m/from-c', 'c')
    await c.volume.utimes('/identical.txt', new Date(1_000_000_000_000), new Date(1_000_000_000_000))
    await c.volume.writeFile('/identical.txt', 'same on both')
    await c.volume.replaceFile('/identical.bin', [same], { wait: 'safe' })
    const fh = await c.volume.open('/zeros.bin', 'w')
    await fh.truncate(zeros)
    await fh.close()
    for (const name of ['identical.bin', 'zeros.bin']) stored[name] = { a: manifestOf(a, name), c: manifestOf(c, name) }

    for (let i = 0; i < 4; i++) {
      await a.volume.writeFile('/runs.txt', `a${i}`)
      await c.volume.writeFile('/runs.txt', `c${i}`)
    }

    await reconnect(c, a, [a, b, c])
    await until('every host shows the same tree', async () => {
      const [sa, sb, sc] = await Promise.all([a, b, c].map(async h => await snapshot(h.volume).catch(() => [])))
      return sa.length > 0 && JSON.stringify(sa) === JSON.stringify(sb) && JSON.stringify(sa) === JSON.stringify(sc)
    }, 60_000)
  })
  after(async () => { await t.run() })

  it('every host holds the same op set (heads)', () => {
    const heads = [a, b, c].map(h => h.tree.heads().map(x => x.toString()).sort().join())
    assert.equal(heads[1], heads[0])
    assert.equal(heads[2], heads[0])
  })

  it('different files: both kept', async () => {
    for (const h of [a, b, c]) {
      assert.equal(new TextDecoder().decode(await h.volume.readFile('/b-only.txt')), 'b was here')
      assert.equal(new TextDecoder().decode(await h.volume.readFile('/c-only.txt')), 'c was here')
    }
  })

  it('same file, different content: one keeps the name, exactly one conflict sibling holds the other', async () => {
    for (const path of ['/same.txt', '/same.bin']) {
      const name = path.slice(1)
      for (const h of [a, b, c]) {
        const siblings = (await h.volume.readdir('/')).filter(n => n.startsWith(name + '.conflict-'))
        assert.equal(siblings.length, 1, `${h.name}: one conflict sibling of ${path}: ${siblings.join(' ')}`)
        assert.ok(isConflictName(siblings[0]))
        const both = [Buffer.from(await h.volume.readFile(path)), Buffer.from(await h.volume.readFile('/' + siblings[0]))]
        if (path === '/same.txt') {
          assert.deepEqual(both.map(x => x.toString()).sort(), ['from a', 'from c'])
        } else {
          assert.ok(both.some(x => x.equals(big.a)) && both.some(x => x.equals(big.c)), `${h.name}: both versions of ${path} readable`)
        }
      }
    }
  })

  it('runs of writes on both sides: one conflict sibling, with the losing side\'s latest', async () => {
    for (const h of [a, b, c]) {
      const siblings = (await h.volume.readdir('/')).filter(n => n.startsWith('runs.txt.conflict-'))
      assert.equal(siblings.length, 1, `${h.name}: ${siblings.join(' ')}`)
      const texts = [await h.volume.readFile('/runs.txt'), await h.volume.readFile('/' + siblings[0])].map(x => new TextDecoder().decode(x))
      assert.deepEqual(texts.sort(), ['a3', 'c3'])
    }
  })

  it('identical concurrent writes are one version; attribute changes merge without a conflict', async () => {
    for (const h of [a, b, c]) {
      const names = await h.volume.readdir('/')
      assert.equal(names.filter(n => n.startsWith('identical.txt.conflict-')).length, 0)
      const st = await h.volume.stat('/identical.txt')
      assert.equal(st.mode & 0o777, 0o600)
      assert.equal(new TextDecoder().decode(await h.volume.readFile('/identical.txt')), 'same on both')
    }
  })

  it('identical bytes stored differently (other k/m on each side; written zeros vs. a hole) are one version, no conflict', async () => {
    for (const [name, bytes] of [['identical.bin', same], ['zeros.bin', new Uint8Array(zeros)]] as const) {
      // the two sides' manifests differ: the merge cannot tell them equal by manifest CID
      const { a: ma, c: mc } = stored[name]
      assert.ok(ma !== undefined && mc !== undefined && ma !== mc, `${name}: the sides stored different manifests (${ma}, ${mc})`)
      const shown = new Set<string | undefined>()
      for (const h of [a, b, c]) {
        const names = await h.volume.readdir('/')
        assert.deepEqual(names.filter(n => n.startsWith(name + '.conflict-')), [], `${h.name}: a conflict copy of ${name}`)
        assert.ok(Buffer.from(await h.volume.readFile('/' + name)).equals(bytes), `${h.name}: ${name} reads the bytes both wrote`)
        assert.equal((await h.volume.log('/' + name)).length, 1, `${h.name}: ${name} has one version`)
        shown.add(manifestOf(h, name))
      }
      // every host references the same one of the two manifests (the other's blocks go to GC)
      assert.equal(shown.size, 1, `${name}: hosts show different manifests: ${[...shown].join(' ')}`)
      assert.ok(shown.has(ma) || shown.has(mc))
    }
  })

  it('write vs. delete: the write wins', async () => {
    for (const h of [a, b, c]) {
      assert.equal(new TextDecoder().decode(await h.volume.readFile('/dw.txt')), 'written while deleted elsewhere')
    }
  })

  it('rename vs. rename: one name survives, content intact, no copy and no loss', async () => {
    for (const h of [a, b, c]) {
      const names = (await h.volume.readdir('/')).filter(n => /^r(-a|-c)?\.txt/.test(n))
      assert.equal(names.length, 1, `${h.name}: ${names.join(' ')}`)
      assert.equal(new TextDecoder().decode(await h.volume.readFile('/' + names[0])), 'renamed twice')
    }
  })

  it('crossed moves (x into y, y into x): no cycle, nothing orphaned', async () => {
    for (const h of [a, b, c]) {
      const tree = await snapshot(h.volume)
      const dirs = tree.filter(l => / dir$/.test(l)).map(l => l.slice(0, -4))
      const x = dirs.filter(d => d.endsWith('/x'))
      const y = dirs.filter(d => d.endsWith('/y'))
      assert.equal(x.length, 1, `${h.name}: x reachable once: ${dirs.join(' ')}`)
      assert.equal(y.length, 1, `${h.name}: y reachable once: ${dirs.join(' ')}`)
      assert.ok(x[0] === '/y/x' || y[0] === '/x/y', `${h.name}: one move applied: ${x[0]} ${y[0]}`)
    }
  })

  it('concurrent mkdir of one name: the directories merge', async () => {
    for (const h of [a, b, c]) {
      assert.deepEqual((await h.volume.readdir('/')).filter(n => n.startsWith('m')), ['m'])
      assert.deepEqual(await h.volume.readdir('/m'), ['from-a', 'from-c'])
    }
  })

  it('darkfs conflicts lists the siblings on every host', async () => {
    for (const h of [a, b, c]) {
      const r = await darkfs(['--data', h.dir, 'conflicts'])
      assert.equal(r.code, 0, r.stderr)
      const lines = r.stdout.trim().split('\n').sort()
      assert.equal(lines.length, 3, r.stdout)
      assert.ok(lines[0].startsWith('/runs.txt.conflict-') && lines[1].startsWith('/same.bin.conflict-') && lines[2].startsWith('/same.txt.conflict-'), r.stdout)
    }
  })

  it('darkfs log PATH keeps every version; darkfs cat PATH@VERSION reads each', async () => {
    const r = await darkfs(['--data', b.dir, 'log', '--json', '/same.txt'])
    assert.equal(r.code, 0, r.stderr)
    const versions: Array<{ version: string }> = JSON.parse(r.stdout)
    const texts = new Set<string>()
    for (const v of versions) {
      const cat = await darkfs(['--data', b.dir, 'cat', `/same.txt@${v.version}`])
      assert.equal(cat.code, 0, cat.stderr)
      texts.add(cat.stdout)
    }
    for (const want of ['base', 'from a', 'from c']) assert.ok(texts.has(want), `history of /same.txt holds '${want}': ${[...texts].join(', ')}`)
  })
})
