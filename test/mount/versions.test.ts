// Versions made through real mounts (DESIGN.md §6, issue 17 item 7): history shows the versions
// a user made and nothing else, and identical content written on two hosts is one version.
// Real `darkfs up --mount` processes on loopback TCP, driven with shell commands; the two
// hosts start apart (neither knows the other), both write, then one restarts joining the other.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { Teardown } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'
import type { Up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'
import { sh, ok } from '../helpers/fuse-mount.ts'
import { initHosts, startMounted } from '../helpers/mounted-hosts.ts'

/** How long a change may take to show on the other host before the test fails (liveness only). */
const SEEN_WITHIN_MS = 30_000

const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`

describe('versions through `darkfs up --mount`', function () {
  this.timeout(180_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let root: string
  const data: string[] = []
  const mnt: string[] = []
  const hosts: Up[] = []

  const start = async (i: number, join_: string[]): Promise<Up> => await startMounted(t, { data, mnt }, i, join_)

  before(async () => {
    const made = await initHosts(t, 'darkfs-versions-', 2)
    root = made.root
    data.push(...made.data)
    mnt.push(...made.mnt)
    // apart: neither host knows the other yet
    for (let i = 0; i < 2; i++) hosts.push(await start(i, []))
  })

  const log = async (i: number, path: string): Promise<Array<{ size: number, author: string, version: string }>> => {
    const r = await darkfs(['--data', data[i], 'log', '--json', path])
    assert.equal(r.code, 0, r.stderr)
    return JSON.parse(r.stdout)
  }
  const sizes = async (i: number, path: string): Promise<number[]> => (await log(i, path)).map(v => v.size)

  it('`echo hi > f` is one version (hi), not an empty one and then hi', async () => {
    await ok(`echo hi > ${q(join(mnt[0], 'one.txt'))}`)
    assert.deepEqual(await sizes(0, '/one.txt'), [3])
    // rewriting it (O_TRUNC, then the bytes, in one open) adds one version
    await ok(`echo again > ${q(join(mnt[0], 'one.txt'))}`)
    assert.deepEqual(await sizes(0, '/one.txt'), [3, 6])
  })

  it('`touch f` (an empty file left empty) is a version', async () => {
    await ok(`touch ${q(join(mnt[0], 'empty'))}`)
    assert.deepEqual(await sizes(0, '/empty'), [0])
    // and a later write in another open is a version of its own
    await ok(`echo later >> ${q(join(mnt[0], 'empty'))}`)
    assert.deepEqual(await sizes(0, '/empty'), [0, 6])
  })

  it('create, truncate to 0 and write in one open (dd) is one version', async () => {
    await ok(`printf 'by dd' | dd of=${q(join(mnt[0], 'dd.txt'))} status=none`)
    assert.deepEqual(await sizes(0, '/dd.txt'), [5])
    await ok(`printf 'by dd, again' | dd of=${q(join(mnt[0], 'dd.txt'))} status=none`)
    assert.deepEqual(await sizes(0, '/dd.txt'), [5, 12])
    assert.equal(await ok(`cat ${q(join(mnt[0], 'dd.txt'))}`), 'by dd, again')
  })

  it('identical content written on two hosts apart (mount and put) is one version, no conflict copy', async () => {
    const big = join(root, 'big.bin')
    await writeFile(big, randomBytes(300_000))
    const small = join(root, 'small.txt')
    await writeFile(small, 'put on both\n')
    const write = async (i: number): Promise<void> => {
      await ok(`printf 'same bytes\\n' > ${q(join(mnt[i], `first-${i}.txt`))}`)
      await ok(`printf 'same bytes\\n' > ${q(join(mnt[i], 'same.txt'))}`)
      await ok(`cp ${q(big)} ${q(join(mnt[i], 'same.bin'))}`)
      for (const [local, path] of [[small, '/put.txt'], [big, '/put.bin']]) {
        const r = await darkfs(['--data', data[i], 'put', local, path])
        assert.equal(r.code, 0, r.stderr)
      }
    }
    // host 0 writes first, host 1 later; and for `later.txt` the other way round
    await write(0)
    await write(1)
    await ok(`printf 'other order\\n' > ${q(join(mnt[1], 'later.txt'))}`)
    await ok(`printf 'other order\\n' > ${q(join(mnt[0], 'later.txt'))}`)

    // host 1 restarts joining host 0
    await hosts[1].stop('SIGTERM')
    await sh(`umount -l ${q(mnt[1])} 2>/dev/null`)
    hosts[1] = await start(1, ['--join', hosts[0].addresses[0]])
    const names = ['first-0.txt', 'first-1.txt', 'later.txt', 'put.bin', 'put.txt', 'same.bin', 'same.txt']
    for (const i of [0, 1]) {
      await until(`host ${i} lists both hosts' files`, async () => {
        const r = await sh(`ls -A ${q(mnt[i])}`)
        return r.code === 0 && names.every(n => r.stdout.split('\n').includes(n))
      }, SEEN_WITHIN_MS)
    }
    for (const i of [0, 1]) {
      const listing = (await ok(`ls -A ${q(mnt[i])}`)).split('\n').filter(s => s !== '' && !['one.txt', 'empty', 'dd.txt'].includes(s)).sort()
      assert.deepEqual(listing, names, `host ${i} lists a conflict copy`)
      const conflicts = await darkfs(['--data', data[i], 'conflicts'])
      assert.equal(conflicts.code, 0, conflicts.stderr)
      assert.equal(conflicts.stdout, '', `host ${i} has conflicts`)
      for (const n of ['same.txt', 'later.txt', 'put.txt']) assert.equal((await log(i, `/${n}`)).length, 1, `${n} on host ${i}: ${JSON.stringify(await log(i, `/${n}`))}`)
      for (const n of ['same.bin', 'put.bin']) assert.deepEqual(await sizes(i, `/${n}`), [300_000], `${n} on host ${i}`)
      assert.equal(await ok(`cat ${q(join(mnt[i], 'same.txt'))}`), 'same bytes\n')
    }
    // both hosts show the same history
    for (const n of names) assert.deepEqual(await log(0, `/${n}`), await log(1, `/${n}`))
  })
})

describe('identical content through `darkfs up --mount` on a three-host side and a lone host', function () {
  this.timeout(240_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let root: string
  const data: string[] = []
  const mnt: string[] = []
  const hosts: Up[] = []
  /** Hosts 0 and 3 mount; 1 and 2 only hold fragments. */
  const mounted = [0, 3]

  const start = async (i: number, join_: string[]): Promise<Up> => {
    if (mounted.includes(i)) return await startMounted(t, { data, mnt }, i, join_)
    return await up(t, ['--data', data[i], '--listen', '/ip4/127.0.0.1/tcp/0', ...join_])
  }
  const peers = async (i: number): Promise<number> => {
    const r = await darkfs(['--data', data[i], 'peers', '--json'])
    return r.code === 0 ? (JSON.parse(r.stdout) as unknown[]).length : -1
  }

  before(async () => {
    const made = await initHosts(t, 'darkfs-identity-', 4)
    root = made.root
    data.push(...made.data)
    mnt.push(...made.mnt)
    // hosts 0, 1 and 2 together (new chunks get k = 1, m = 2); host 3 alone (k = 1, m = 0)
    hosts.push(await start(0, []))
    for (const i of [1, 2]) hosts.push(await start(i, ['--join', hosts[0].addresses[0]]))
    hosts.push(await start(3, []))
    await until('host 0 sees hosts 1 and 2', async () => await peers(0) === 2, SEEN_WITHIN_MS)
  })

  const log = async (i: number, path: string): Promise<Array<{ size: number, author: string, version: string }>> => {
    const r = await darkfs(['--data', data[i], 'log', '--json', path])
    assert.equal(r.code, 0, r.stderr)
    return JSON.parse(r.stdout)
  }

  it('the same bytes written on both sides (cp, put; written zeros vs. truncate) are one version after the sides meet', async () => {
    const big = join(root, 'big.bin')
    await writeFile(big, randomBytes(1_300_000))
    const zeros = 2_621_440
    for (const i of mounted) {
      await ok(`cp ${q(big)} ${q(join(mnt[i], 'same.bin'))}`)
      const r = await darkfs(['--data', data[i], 'put', big, '/put.bin'])
      assert.equal(r.code, 0, r.stderr)
    }
    await ok(`head -c ${zeros} /dev/zero > ${q(join(mnt[0], 'zeros.bin'))}`)
    await ok(`truncate -s ${zeros} ${q(join(mnt[3], 'zeros.bin'))}`)

    // host 3 restarts joining host 0
    await hosts[3].stop('SIGTERM')
    await sh(`umount -l ${q(mnt[3])} 2>/dev/null`)
    hosts[3] = await start(3, ['--join', hosts[0].addresses[0]])
    const names = ['put.bin', 'same.bin', 'zeros.bin']
    const want = (await ok(`sha256sum < ${q(big)}`)).split(' ')[0]
    const wantZeros = (await ok(`head -c ${zeros} /dev/zero | sha256sum`)).split(' ')[0]
    // each host writes a marker after the restart: an op made after all of its own, so a host
    // holding the other's marker holds every op the other made
    for (const i of mounted) await ok(`echo ${i} > ${q(join(mnt[i], `marker-${i}`))}`)
    for (const i of mounted) {
      const other = i === 0 ? 3 : 0
      await until(`host ${i} has host ${other}'s ops`, async () => (await darkfs(['--data', data[i], 'stat', `/marker-${other}`])).code === 0, SEEN_WITHIN_MS)
    }
    for (const i of mounted) {
      const listing = (await ok(`ls -A ${q(mnt[i])}`)).split('\n').filter(s => s !== '' && !s.startsWith('marker-')).sort()
      assert.deepEqual(listing, names, `host ${i} lists a conflict copy`)
      const conflicts = await darkfs(['--data', data[i], 'conflicts'])
      assert.equal(conflicts.code, 0, conflicts.stderr)
      assert.equal(conflicts.stdout, '', `host ${i} has conflicts`)
      for (const n of ['same.bin', 'put.bin']) {
        assert.deepEqual((await log(i, `/${n}`)).map(v => v.size), [1_300_000], `${n} on host ${i}`)
        assert.equal((await ok(`sha256sum < ${q(join(mnt[i], n))}`)).split(' ')[0], want, `${n} on host ${i}`)
      }
      assert.deepEqual((await log(i, '/zeros.bin')).map(v => v.size), [zeros], `zeros.bin on host ${i}`)
      assert.equal((await ok(`sha256sum < ${q(join(mnt[i], 'zeros.bin'))}`)).split(' ')[0], wantZeros)
    }
    for (const n of names) assert.deepEqual(await log(0, `/${n}`), await log(3, `/${n}`))
  })
})
