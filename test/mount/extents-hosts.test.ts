// Positioned writes across hosts (issue 15 items 1 and 5): two real `darkfs up --mount`
// processes share a file, then work apart (each one up while the other is down, so neither
// hears of the other's writes) and join again. Pages written in place (`dd conv=notrunc`, a
// positioned extent each) on disjoint ranges by both hosts merge into one file, no conflict
// copy; pages written on one host over a version the other rewrote whole (a VACUUM, a `cp` over)
// never land in that new version: it keeps the name, and the pages stay as written, over the
// version their host saw, in one conflict copy. Both mounts read the same bytes.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs } from '../../harness/proc.ts'
import type { Up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'
import { sh, ok } from '../helpers/fuse-mount.ts'
import { q } from '../helpers/mount-scripts.ts'
import { initHosts, startMounted } from '../helpers/mounted-hosts.ts'

/** How long the hosts may take to converge before the test fails (liveness only). */
const CONVERGE_WITHIN_MS = 90_000
const PAGE = 4096
const PAGES = 16

/** `PAGES` pages, page i filled with byte `fill(i)`. */
const pages = (fill: (i: number) => number): Buffer => Buffer.concat(Array.from({ length: PAGES }, (_, i) => Buffer.alloc(PAGE, fill(i))))
const sum = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

describe('positioned writes across two hosts, each `darkfs up --mount`', function () {
  this.timeout(900_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  afterEach(function () {
    if (this.currentTest?.state === 'failed') for (const [i, h] of hosts.entries()) console.error(`--- host ${i} stderr ---\n${h?.stderr()}`)
  })
  const data: string[] = []
  const mnt: string[] = []
  const hosts: Array<Up | undefined> = [undefined, undefined]
  let scratch = ''

  const start = async (i: number, join_: string[] = []): Promise<Up> => {
    const h = await startMounted(t, { data, mnt }, i, join_)
    hosts[i] = h
    return h
  }
  const stop = async (i: number): Promise<void> => {
    await hosts[i]?.stop('SIGTERM')
    await sh(`umount -l ${q(mnt[i])} 2>/dev/null`)
    hosts[i] = undefined
  }
  /** Both hosts up and connected. */
  const joined = async (): Promise<void> => {
    if (hosts[0] === undefined) await start(0)
    if (hosts[1] === undefined) await start(1, ['--join', (hosts[0] as Up).addresses[0]])
    await until('the hosts see each other', async () => {
      const r = await darkfs(['--data', data[1], 'peers', '--json'])
      return r.code === 0 && JSON.parse(r.stdout).length === 1
    }, CONVERGE_WITHIN_MS)
  }
  /** Page `i` of `file` on host `h` becomes byte `fill` (in place, one pwrite, flushed). */
  const page = async (h: number, file: string, i: number, fill: number): Promise<void> => {
    const src = join(scratch, `page-${fill}`)
    await writeFile(src, Buffer.alloc(PAGE, fill))
    await ok(`dd if=${q(src)} of=${q(join(mnt[h], file))} bs=${PAGE} seek=${i} count=1 conv=notrunc,fdatasync status=none`)
  }
  /** The live names of the mount's root on host h that start with `prefix`. */
  const named = async (h: number, prefix: string): Promise<string[]> =>
    (await sh(`ls -A ${q(mnt[h])}`)).stdout.split('\n').filter(n => n.startsWith(prefix)).sort()
  /** Wait until both mounts list the same `prefix`* names, `count` of them, with the same bytes each. */
  const converged = async (prefix: string, count: number): Promise<Map<string, Buffer>> => {
    let out = new Map<string, Buffer>()
    await until(`both hosts read the same ${count} file(s) ${prefix}*`, async () => {
      const [a, b] = [await named(0, prefix), await named(1, prefix)]
      if (a.length !== count || JSON.stringify(a) !== JSON.stringify(b)) return false
      const m = new Map<string, Buffer>()
      for (const n of a) {
        const [x, y] = await Promise.all([readFile(join(mnt[0], n)), readFile(join(mnt[1], n))]).catch(() => [Buffer.alloc(0), Buffer.alloc(1)])
        if (!x.equals(y)) return false
        m.set(n, x)
      }
      out = m
      return true
    }, CONVERGE_WITHIN_MS)
    return out
  }

  before(async () => {
    const made = await initHosts(t, 'darkfs-extents-hosts-', 2)
    data.push(...made.data)
    mnt.push(...made.mnt)
    scratch = await tempDir(t, 'darkfs-extents-hosts-src-')
    await joined()
  })

  it('pages written apart on disjoint ranges by both hosts merge into one file, no conflict copy', async () => {
    await writeFile(join(mnt[0], 'db'), pages(() => 0x61))
    const first = await converged('db', 1)
    assert.equal(sum(first.get('db') as Buffer), sum(pages(() => 0x61)))
    // apart: host 1 down while host 0 writes pages 1 and 5, then host 0 down while host 1 writes 2 and 9
    await stop(1)
    await page(0, 'db', 1, 0x41)
    await page(0, 'db', 5, 0x42)
    await stop(0)
    await start(1)
    await page(1, 'db', 2, 0x43)
    await page(1, 'db', 9, 0x44)
    await stop(1)
    await joined()
    const got = await converged('db', 1)
    const want = pages(i => ({ 1: 0x41, 5: 0x42, 2: 0x43, 9: 0x44 } as Record<number, number>)[i] ?? 0x61)
    assert.equal(sum(got.get('db') as Buffer), sum(want), 'both hosts\' pages, over the file they shared')
    for (const i of [0, 1]) {
      const r = await darkfs(['--data', data[i], 'conflicts'])
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout, '', `host ${i} has conflict copies`)
    }
  })

  it('pages written on one host over a version the other rewrote whole stay in one conflict copy, never in the new version', async () => {
    await writeFile(join(mnt[0], 'vac'), pages(() => 0x61))
    await converged('vac', 1)
    // host 0, host 1 down: the whole file rewritten (a VACUUM, a cp over)
    await stop(1)
    const vacuumed = pages(() => 0x56)
    await writeFile(join(mnt[0], 'vac'), vacuumed)
    // host 1, host 0 down: two pages in place over the version it has
    await stop(0)
    await start(1)
    await page(1, 'vac', 3, 0x50)
    await page(1, 'vac', 7, 0x51)
    await stop(1)
    await joined()
    const got = await converged('vac', 2)
    const copy = [...got.keys()].find(n => n !== 'vac') as string
    assert.match(copy, /^vac\.conflict-/)
    assert.equal(sum(got.get('vac') as Buffer), sum(vacuumed), 'the whole write, untouched by the pages')
    const paged = pages(i => i === 3 ? 0x50 : i === 7 ? 0x51 : 0x61)
    assert.equal(sum(got.get(copy) as Buffer), sum(paged), 'the pages over the version host 1 saw')
    for (const i of [0, 1]) {
      const r = await darkfs(['--data', data[i], 'conflicts'])
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout.trim().split('\n').length, 1, `host ${i} lists one conflict copy`)
    }
  })
})
