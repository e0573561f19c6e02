import assert from 'node:assert/strict'
import { randomBytes, createHash } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, upNetwork } from '../../harness/proc.ts'
import type { Up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'
import { Story } from '../../harness/story.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** Hosts started; two are killed, one leaves. */
const N = 6
/** File sizes written (chunks: 3 + 3 + 1 + 1 inline-or-small). */
const SIZES = [3 << 20, (2 << 20) + 7, 1 << 20, 5000]

interface Status { peers: number, chunks: { total: number, redundant: number, degraded: number, localOnly: number, lost: number, unknown?: number } }

describe('darkfs heal and darkfs leave (6 real `darkfs up --failure-timeout 2` processes)', function () {
  this.timeout(240_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  const dirs: string[] = []
  const hosts: Up[] = []
  const files = new Map<string, Buffer>()
  let work: string
  let chunks = 0
  // the tests are the stages of one story on one fixture: each runs the stages before it (harness/story.ts)
  const story = new Story()

  const status = async (i: number, ...flags: string[]): Promise<Status> => {
    const r = await darkfs(['--data', dirs[i], 'status', '--json', ...flags])
    assert.equal(r.code, 0, r.stderr)
    return JSON.parse(r.stdout)
  }
  /** The chunk figures of a fresh survey (`status --survey`: this host asks every holder now). */
  const surveyed = async (i: number): Promise<Status['chunks']> => {
    const { total, redundant, degraded, localOnly, lost } = (await status(i, '--survey')).chunks
    return { total, redundant, degraded, localOnly, lost }
  }

  before(async () => {
    const net = await upNetwork(t, await tempDir(t, 'darkfs-keep-procs-'), N, ['--failure-timeout', '2'])
    dirs.push(...net.dirs)
    hosts.push(...net.hosts)
    work = await tempDir(t)
    await until('every host has 5 peers', async () => (await Promise.all(dirs.map(async (_, i) => (await status(i)).peers))).every(p => p === N - 1), 60_000)
    for (const [i, size] of SIZES.entries()) {
      const data = randomBytes(size)
      const local = join(work, `in${i}`)
      await writeFile(local, data)
      const path = `/k${i}.bin`
      const r = await darkfs(['--data', dirs[i], 'put', local, path])
      assert.equal(r.code, 0, r.stderr)
      files.set(path, data)
    }
  })

  it('darkfs status --json: every chunk redundant once placed', story.step(async () => {
    await until('all redundant', async () => {
      const s = await status(0)
      chunks = s.chunks.total
      return s.chunks.total >= 7 && s.chunks.redundant === s.chunks.total
    }, 60_000)
  }))

  it('two hosts SIGKILLed: status shows degraded chunks, none lost', story.step(async () => {
    await hosts[4].stop('SIGKILL')
    await hosts[5].stop('SIGKILL')
    // Membership repairs on its own 2 s after the loss: catch the degraded state before that.
    let seen: Status | undefined
    await until('status shows the loss', async () => {
      const s = await status(1)
      // a status that has not read every file's manifest yet counts each such file as one unknown chunk
      if (s.peers === N - 3 && s.chunks.degraded > 0 && (s.chunks.unknown ?? 0) === 0) seen = s
      return seen !== undefined || (s.peers === N - 3 && s.chunks.redundant === s.chunks.total)
    }, 30_000)
    assert.ok(seen !== undefined, 'status never showed degraded chunks after two of six hosts died')
    assert.equal(seen.chunks.lost, 0)
    assert.equal(seen.chunks.total, chunks)
  }))

  it('darkfs heal: progress on stderr, exit 0, every chunk redundant again', story.step(async () => {
    const r = await darkfs(['--data', dirs[1], 'heal'], { timeoutMs: 120_000 })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stderr, new RegExp(`${chunks}/${chunks} chunks, \\d+ fragments repaired`))
    // host 0 did not take part: it asks the holders now rather than answer from its last pass
    assert.deepEqual(await surveyed(0), { total: chunks, redundant: chunks, degraded: 0, localOnly: 0, lost: 0 })
  }))

  it('darkfs leave: drains the host, `up` exits 0, the rest stay redundant', story.step(async () => {
    const r = await darkfs(['--data', dirs[3], 'leave'], { timeoutMs: 120_000 })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^left: /)
    assert.match(r.stderr, /chunks, \d+ fragments repaired/)
    await hosts[3].waitFor(/^stopped$/, 30_000)
    assert.equal(await hosts[3].stop(), 0)
    await until('the others drop the leaver', async () => (await status(0)).peers === N - 4, 20_000)
    assert.deepEqual(await surveyed(0), { total: chunks, redundant: chunks, degraded: 0, localOnly: 0, lost: 0 })
  }))

  it('darkfs get: every file reads byte-identical from every remaining host', story.step(async () => {
    for (const i of [0, 1, 2]) {
      for (const [path, data] of files) {
        const out = join(work, `out-${i}-${path.slice(1)}`)
        const r = await darkfs(['--data', dirs[i], 'get', path, out])
        assert.equal(r.code, 0, r.stderr)
        assert.equal(sha(await readFile(out)), sha(data), `${path} on host ${i}`)
      }
    }
  }))
})
