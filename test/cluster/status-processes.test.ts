// `darkfs status` on real processes (issue 17 item 5): it answers from the health this host
// keeps (repair passes, placements, membership), sends no per-chunk or per-peer message to
// answer, counts chunks still being placed as placing, never calls a chunk lost it cannot
// reach, and gives the age of every figure. `status --survey` asks the holders now.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up, upNetwork } from '../../harness/proc.ts'
import type { Up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'
import { Story } from '../../harness/story.ts'
import { ControlClient } from '../../node/cli/index.ts'
import { PROTOCOL, PROTOCOL_ORIGINS, PROTOCOL_RANGES } from '../../swarm/index.ts'

/** Small files written (one chunk each, above the inline limit): more than 1,000 chunks. */
const SMALL_FILES = 1100
const SMALL_SIZE = 5000
/** The large write status is asked during. */
const LARGE_BYTES = 160 << 20
/** The swarm's protocol ids (1.1.0 adds range reads; a peer of an older version speaks 1.0.0). */
const SWARM = [PROTOCOL, PROTOCOL_RANGES, PROTOCOL_ORIGINS]

interface Counts { total: number, redundant: number, degraded: number, localOnly: number, lost: number, placing?: number, unreachable?: number, unknown?: number, ageMs?: Record<string, number | null>, surveys?: number, surveying?: boolean, surveyedAt?: number | null }
interface Status { peers: number, offline: boolean, chunks: Counts }

describe('darkfs status (3 real `darkfs up --redundancy 1 --failure-timeout 2` processes)', function () {
  this.timeout(600_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let dirs: string[] = []
  let hosts: Up[] = []
  let work: string
  const story = new Story()

  const status = async (i: number, ...flags: string[]): Promise<Status> => {
    const r = await darkfs(['--data', dirs[i], 'status', '--json', ...flags], { timeoutMs: 300_000 })
    assert.equal(r.code, 0, r.stderr)
    return JSON.parse(r.stdout)
  }
  /** Streams this host opened on the swarm protocol (have-queries, fetches, pushes). */
  const swarmStreams = async (i: number): Promise<number> => {
    const traffic = await new ControlClient(dirs[i]).get('/v1/traffic')
    return SWARM.reduce((n, p) => n + (traffic.host.protocols[p]?.streams ?? 0), 0)
  }

  /** When host `i` declared every one of `peers` gone (the latest of its peer-gone events). */
  const declaredGone = async (i: number, peers: string[]): Promise<number> => {
    const ac = new AbortController()
    const timer = setTimeout(() => { ac.abort() }, 60_000)
    const at = new Map<string, number>()
    try {
      // ?since=0: every event the host kept, then the new ones
      for await (const m of new ControlClient(dirs[i]).stream('/v1/events?since=0', {}, { signal: ac.signal })) {
        if (m.event === 'reset') continue
        const e = JSON.parse(m.data)
        if (e.type === 'peer-gone' && peers.includes(e.peer)) at.set(e.peer, e.at)
        if (at.size === peers.length) break
      }
    } catch (err) {
      // the deadline ended the stream: the assertion below says what was missing
      if (!ac.signal.aborted) throw err
    } finally {
      clearTimeout(timer)
      ac.abort()
    }
    assert.equal(at.size, peers.length, `host ${i} declared ${at.size} of ${peers.length} peers gone within 60 s`)
    return Math.max(...at.values())
  }

  before(async () => {
    const net = await upNetwork(t, await tempDir(t, 'darkfs-status-procs-'), 3, ['--redundancy', '1', '--failure-timeout', '2'])
    dirs = net.dirs
    hosts = net.hosts
    work = await tempDir(t)
    await until('every host has 2 peers', async () => (await Promise.all(dirs.map(async d => (await new ControlClient(d).get('/v1/status?chunks=0')).peers))).every(p => p === 2), 60_000)
  })

  it(`status on a host of ${SMALL_FILES} chunks answers from kept state: no swarm message, whatever the chunk count`, story.step(async () => {
    const client = new ControlClient(dirs[0])
    await client.mkdir('/small')
    let next = 0
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < SMALL_FILES) await client.writeFile(`/small/f${next++}`, randomBytes(SMALL_SIZE))
    }))
    const big = join(work, 'three.bin')
    await writeFile(big, randomBytes(3 << 20))
    const r = await darkfs(['--data', dirs[0], 'put', big, '/three.bin'])
    assert.equal(r.code, 0, r.stderr)
    // host 1 wrote none of them: it learns their health from its own passes and lookups
    await until('host 1 has seen every chunk', async () => {
      const s = await status(1)
      return s.chunks.total >= SMALL_FILES && s.chunks.unknown === 0 && s.chunks.surveying !== true
    }, 300_000)
    for (let attempt = 0; ; attempt++) {
      const before = await status(1)
      const streams = await swarmStreams(1)
      const answers = await Promise.all(Array.from({ length: 5 }, async () => await status(1)))
      const after = await status(1)
      const sent = await swarmStreams(1) - streams
      // a background pass that ran meanwhile sends its own have-queries: measure again
      if ((after.chunks.surveys !== before.chunks.surveys || after.chunks.surveying === true) && attempt < 5) continue
      assert.equal(sent, 0, `7 status calls opened ${sent} swarm stream(s)`)
      for (const s of answers) {
        assert.ok(s.chunks.total >= SMALL_FILES, `total ${s.chunks.total}`)
        assert.equal(s.chunks.lost, 0)
        assert.equal(typeof s.chunks.ageMs?.redundant, 'number', 'every figure carries its age')
      }
      break
    }
    // the explicit survey asks the holders (and so does send have-queries)
    const streams = await swarmStreams(1)
    const fresh = await status(1, '--survey')
    assert.ok(await swarmStreams(1) > streams, 'status --survey asked the peers')
    assert.equal(fresh.chunks.lost, 0)
    assert.equal(fresh.chunks.total, (await status(1)).chunks.total)
    // the human form says how old its figures are
    const text = await darkfs(['--data', dirs[1], 'status'])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /as of \d+s ago|now/)
    assert.match(text.stdout, /--survey/)
  }))

  it('status during a large write shows no chunk lost (placement in flight is placing)', story.step(async () => {
    const local = join(work, 'large.bin')
    await writeFile(local, randomBytes(LARGE_BYTES))
    let done = false
    const put = darkfs(['--data', dirs[0], 'put', local, '/large.bin'], { timeoutMs: 500_000 }).finally(() => { done = true })
    const seen: Status[] = []
    while (!done) {
      for (const i of [0, 1]) {
        const s = await status(i)
        seen.push(s)
        assert.equal(s.chunks.lost, 0, `host ${i} during the write: ${JSON.stringify(s.chunks)}`)
      }
    }
    const r = await put
    assert.equal(r.code, 0, r.stderr)
    assert.ok(seen.length >= 2, 'status answered during the write')
    for (const i of [0, 1]) assert.equal((await status(i)).chunks.lost, 0)
  }))

  it('an offline host (its peers stopped) reports remote chunks unreachable or unknown, never lost', story.step(async () => {
    const ids: string[] = await Promise.all([0, 1].map(async i => (await new ControlClient(dirs[i]).get('/v1/status?chunks=0')).peerId))
    await hosts[0].stop()
    await hosts[1].stop()
    await until('host 2 is alone', async () => (await new ControlClient(dirs[2]).get('/v1/status?chunks=0')).peers === 0, 30_000)
    // the peers are declared gone 2 s after host 2 saw them disconnect, which starts a full
    // repair pass: wait for one that started after that. The time of the stop is no bound: a
    // host closes its connections before its store and exits, and a pass the declaration started
    // half a second later could come before `stop + 2 s` (the passes after it, with nothing
    // changed, are incremental: they do not count as surveys of every chunk)
    const goneAt = await declaredGone(2, ids)
    let s: Status | undefined
    await until('a full survey on host 2 started once its peers were declared gone', async () => {
      s = await status(2)
      return s.chunks.lost > 0 || (s.chunks.surveyedAt ?? 0) >= goneAt
    }, 120_000)
    assert.equal(s!.chunks.lost, 0, JSON.stringify(s!.chunks))
    assert.ok((s!.chunks.unreachable ?? 0) + (s!.chunks.unknown ?? 0) > 0, `remote chunks counted unreachable/unknown: ${JSON.stringify(s!.chunks)}`)
    // a fresh survey cannot know either
    const fresh = await status(2, '--survey')
    assert.equal(fresh.chunks.lost, 0, JSON.stringify(fresh.chunks))
    assert.ok((fresh.chunks.unreachable ?? 0) > 0, JSON.stringify(fresh.chunks))
    // restarted alone, with nothing seen yet: unknown or unreachable, never lost
    await hosts[2].stop()
    const again = await up(t, ['--data', dirs[2], '--listen', '/ip4/127.0.0.1/tcp/0', '--redundancy', '1'])
    hosts[2] = again
    const alone = await status(2)
    assert.equal(alone.chunks.lost, 0, JSON.stringify(alone.chunks))
    assert.ok((alone.chunks.unreachable ?? 0) + (alone.chunks.unknown ?? 0) > 0, JSON.stringify(alone.chunks))
    const text = await darkfs(['--data', dirs[2], 'status'])
    assert.doesNotMatch(text.stdout, /[1-9]\d* lost/)
  }))
})
