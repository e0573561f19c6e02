// Offline mode and merge on reconnect (DESIGN.md §6) with real processes on the real test
// network: three `darkfs up` hosts in the namespaces of a Tinc mesh (scripts/mesh), run with
// --redundancy 1 (k=2, m=1: no host holds a whole chunk it did not write or pin). h3 is cut off
// by taking its VPN link (dk0) down in its namespace; both sides write with the CLI; the link
// comes back up and the hosts find each other again by themselves (redial; nothing restarts).
// Everything is checked through the CLI. Needs root.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { put, startDarkfsMesh, until } from '../../harness/darkfs-mesh.ts'
import type { DarkfsMesh } from '../../harness/darkfs-mesh.ts'

const HOSTS = ['h1', 'h2', 'h3']
const FLAGS = ['--redundancy', '1']
/** Longest wait for the cut to be noticed, or for the hosts to find each other after it. */
const NOTICE_TIMEOUT_MS = 90_000
/** Longest wait for the trees to converge once reconnected. */
const CONVERGE_TIMEOUT_MS = 60_000

describe('darkfs on a 3-host Tinc mesh: h3 cut off (dk0 down), both sides write, link back up', function () {
  this.timeout(300_000)
  let dm: DarkfsMesh
  const pinned = randomBytes(1_500_000)
  const offline = randomBytes(1_200_000)
  let n = 0
  /** The merged tree of every host, through the CLI (set once they converged). */
  let trees: string[][] = []

  /** darkfs ARGS on a host; throws with its stderr unless it exits 0. */
  const cli = async (host: string, args: string[]): Promise<Buffer> => {
    const r = await dm.cli(host, args)
    if (r.code !== 0) throw new Error(`${host}: darkfs ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }
  /** darkfs put of a text or bytes. */
  const putText = async (host: string, path: string, data: string | Buffer): Promise<void> => {
    const local = join(dm.root, `in-${n++}`)
    await writeFile(local, data)
    await cli(host, ['put', local, path])
  }
  const status = async (host: string): Promise<any> => JSON.parse((await cli(host, ['status', '--json'])).toString())
  const text = async (host: string, path: string): Promise<string> => (await cli(host, ['cat', path])).toString()
  const names = async (host: string, dir: string): Promise<string[]> => (await cli(host, ['ls', dir])).toString().split('\n').filter(x => x !== '')
  const link = async (host: string, state: 'up' | 'down'): Promise<void> => { await dm.mesh.exec(host, 'ip', ['link', 'set', 'dk0', state]) }

  /** The whole tree through the CLI: `ls -l` of every directory and the sha256 of every file. */
  const tree = async (host: string): Promise<string[]> => {
    const out: string[] = []
    const walk = async (dir: string): Promise<void> => {
      const long = (await cli(host, ['ls', '-l', dir])).toString().split('\n').filter(x => x !== '')
      const short = await names(host, dir)
      assert.equal(long.length, short.length)
      for (const [i, name] of short.entries()) {
        const path = (dir === '/' ? '' : dir) + '/' + name
        assert.ok(long[i].endsWith(' ' + name), long[i])
        if (long[i].startsWith('d')) {
          out.push(`${path} ${long[i]}`)
          await walk(path)
        } else {
          out.push(`${path} ${long[i]} ${createHash('sha256').update(await cli(host, ['cat', path])).digest('hex')}`)
        }
      }
    }
    await walk('/')
    return out
  }

  before(async () => {
    dm = await startDarkfsMesh(3, { name: `dkm${process.pid}`, flags: Object.fromEntries(HOSTS.map(h => [h, FLAGS])) })
    // the shared starting point, written on h1
    await putText('h1', '/same.txt', 'base')
    await putText('h1', '/dw.txt', 'to be deleted on one side')
    await putText('h1', '/r.txt', 'renamed on both sides')
    await cli('h1', ['mkdir', '/x'])
    await cli('h1', ['mkdir', '/y'])
    await put(dm, 'h1', '/remote.bin', 300_000)
    await cli('h1', ['mkdir', '/pinned'])
    await putText('h1', '/pinned/p.bin', pinned)
    await until('h3 has the starting point', async () => (await dm.cli('h3', ['stat', '/pinned/p.bin'])).code === 0 && (await dm.cli('h3', ['stat', '/remote.bin'])).code === 0, 30_000)
    await until('every chunk redundant', async () => { const c = (await status('h1')).chunks; return c.total > 0 && c.redundant === c.total }, 60_000)
    const pin = (await cli('h3', ['pin', '/pinned'])).toString()
    assert.match(pin, /^pinned \/pinned: 1 files, 2 chunks/)
  })
  after(async () => { await dm?.down() })

  it('dk0 down on h3: status --json says offline; the tree is browsable; pinned content reads; the rest fails naming the file', async () => {
    await link('h3', 'down')
    await until('h3 is offline and h1, h2 see only each other', async () =>
      (await status('h3')).offline === true && (await status('h1')).peers === 1 && (await status('h2')).peers === 1, NOTICE_TIMEOUT_MS)
    assert.deepEqual(await names('h3', '/'), ['dw.txt', 'pinned', 'r.txt', 'remote.bin', 'same.txt', 'x', 'y'])
    assert.ok((await cli('h3', ['cat', '/pinned/p.bin'])).equals(pinned))
    const r = await dm.cli('h3', ['cat', '/remote.bin'])
    assert.notEqual(r.code, 0)
    const lines = r.stderr.trim().split('\n')
    assert.equal(lines.length, 1, r.stderr)
    assert.match(lines[0], /^darkfs: .*\/remote\.bin/)
  })

  it('both sides write while cut off; h3 counts its writes local-only', async () => {
    // h1/h2 side
    await putText('h1', '/same.txt', 'from h1')
    await putText('h2', '/h2-only.txt', 'h2 was here')
    await cli('h1', ['rm', '/dw.txt'])
    await cli('h1', ['mv', '/r.txt', '/r-h1.txt'])
    await cli('h1', ['mv', '/y', '/x/y'])
    // h3, alone
    await putText('h3', '/same.txt', 'from h3')
    await putText('h3', '/h3-only.bin', offline)
    await putText('h3', '/dw.txt', 'written while deleted elsewhere')
    await cli('h3', ['mv', '/r.txt', '/r-h3.txt'])
    await cli('h3', ['mv', '/x', '/y/x'])
    const s = await status('h3')
    assert.equal(s.offline, true)
    assert.equal(s.peers, 0)
    assert.ok(s.chunks.localOnly >= 2, `h3 counts its 2 new chunks local-only: ${JSON.stringify(s.chunks)}`)
  })

  it('dk0 up: the hosts redial each other, every host shows the same tree (CLI), and nothing is local-only', async () => {
    await link('h3', 'up')
    await until('every host sees both others', async () => {
      for (const h of HOSTS) if ((await status(h)).peers !== 2) return false
      return true
    }, NOTICE_TIMEOUT_MS)
    assert.equal((await status('h3')).offline, false)
    // converge cheaply over the control socket first, then compare through the CLI
    const quick = async (h: string): Promise<string> => JSON.stringify(await dm.host(h).client.get('/v1/conflicts'), (_k, v) => typeof v === 'bigint' ? v.toString() : v) + (await names(h, '/')).join()
    await until('the trees converge', async () => {
      const [a, b, c] = await Promise.all(HOSTS.map(quick))
      return a === b && a === c && a.includes('h3-only.bin') && a.includes('h2-only.txt')
    }, CONVERGE_TIMEOUT_MS)
    await until('ls -l and content are identical on every host', async () => {
      trees = []
      for (const h of HOSTS) trees.push(await tree(h))
      return JSON.stringify(trees[0]) === JSON.stringify(trees[1]) && JSON.stringify(trees[0]) === JSON.stringify(trees[2])
    }, CONVERGE_TIMEOUT_MS)
    assert.ok(trees[0].length >= 10, trees[0].join('\n'))
    await until('h3 placed its offline chunks', async () => (await status('h3')).chunks.localOnly === 0, CONVERGE_TIMEOUT_MS)
  })

  it('same file on both sides: one keeps the name, exactly one conflict sibling, listed by darkfs conflicts', async () => {
    for (const h of HOSTS) {
      const siblings = (await names(h, '/')).filter(x => x.startsWith('same.txt.'))
      assert.equal(siblings.length, 1, `${h}: ${siblings.join(' ')}`)
      assert.match(siblings[0], /^same\.txt\.conflict-/)
      assert.deepEqual([await text(h, '/same.txt'), await text(h, '/' + siblings[0])].sort(), ['from h1', 'from h3'])
      const listed = (await cli(h, ['conflicts'])).toString().trim().split('\n')
      assert.deepEqual(listed, ['/' + siblings[0]])
    }
  })

  it('darkfs log shows every version and cat PATH@VERSION reads each back', async () => {
    for (const h of ['h2', 'h3']) {
      const versions: Array<{ version: string }> = JSON.parse((await cli(h, ['log', '--json', '/same.txt'])).toString())
      const texts = new Set<string>()
      for (const v of versions) texts.add(await text(h, `/same.txt@${v.version}`))
      for (const want of ['base', 'from h1', 'from h3']) assert.ok(texts.has(want), `${h}: history holds '${want}': ${[...texts].join(', ')}`)
    }
  })

  it('different files are both kept; write beats delete; offline bytes read back on the others', async () => {
    for (const h of HOSTS) {
      assert.equal(await text(h, '/h2-only.txt'), 'h2 was here')
      assert.equal(await text(h, '/dw.txt'), 'written while deleted elsewhere')
      assert.ok((await cli(h, ['cat', '/h3-only.bin'])).equals(offline), `${h} reads h3's offline write`)
      assert.ok((await cli(h, ['cat', '/pinned/p.bin'])).equals(pinned))
    }
  })

  it('rename vs. rename leaves one name; crossed moves leave no cycle and no orphan', async () => {
    for (const [i, h] of HOSTS.entries()) {
      const r = (await names(h, '/')).filter(x => /^r(-h1|-h3)?\.txt$/.test(x))
      assert.equal(r.length, 1, `${h}: ${r.join(' ')}`)
      assert.equal(await text(h, '/' + r[0]), 'renamed on both sides')
      const lines = trees[i]
      const dirs = lines.map(l => l.split(' ')[0]).filter((p, i) => lines[i].split(' ')[1].startsWith('d'))
      const x = dirs.filter(d => d.endsWith('/x'))
      const y = dirs.filter(d => d.endsWith('/y'))
      assert.equal(x.length, 1, `${h}: ${dirs.join(' ')}`)
      assert.equal(y.length, 1, `${h}: ${dirs.join(' ')}`)
      assert.ok(x[0] === '/y/x' || y[0] === '/x/y', `${h}: one of the crossed moves applied: ${x[0]} ${y[0]}`)
    }
  })
})
