// The event stream on real processes (issue 13 item 3): GET /v1/events on 4 `darkfs up
// --redundancy 1 --failure-timeout 2` hosts. A peer killed gives peer-gone and chunk-degraded,
// then repair-progress and repair-done; Last-Event-ID resumes with exactly what was missed; the
// --on-event hook gets every event as JSON on stdin, and a hook that hangs stalls nothing;
// `darkfs events --json` prints lines and exits 130 on Ctrl-C; a host cut off says offline,
// online when a peer is back, and two writers apart make a conflict-created (its removal a
// conflict-resolved).
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { DARKFS, darkfs, up, upNetwork } from '../../harness/proc.ts'
import type { Up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'
import { Story } from '../../harness/story.ts'
import { ControlClient, loadConfig, saveConfig } from '../../node/cli/index.ts'

interface Ev { id: string, type: string, at: number, [k: string]: any }
interface Watch { events: Ev[], reset?: Ev, ended: boolean }

const FLAGS = ['--redundancy', '1', '--failure-timeout', '2']
/** The hook that never ends (a marker to find its processes by). */
const HANGING = 'sleep 99999.25'

/** Pids of the hanging hook's processes. */
async function hanging (): Promise<number[]> {
  return await new Promise(resolve => {
    execFile('pgrep', ['-f', `^${HANGING}$`], (_err, stdout) => { resolve(String(stdout).split('\n').filter(l => l !== '').map(Number)) })
  })
}

describe('events (4 real `darkfs up --redundancy 1 --failure-timeout 2` processes)', function () {
  this.timeout(600_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  const story = new Story()
  let dirs: string[] = []
  let hosts: Up[] = []
  let ids: string[] = []
  let work: string
  let hookOut: string
  const watches: Watch[] = []

  /**
   * Every event host `i` streams, kept in order: by default everything it kept since it started
   * (`?since=0`: a reset first, which says the stream is open), then each new one.
   */
  const watch = (i: number, headers: Record<string, string> = {}, path = '/v1/events?since=0'): Watch => {
    const w: Watch = { events: [], ended: false }
    const ac = new AbortController()
    t.add(async () => { ac.abort() })
    void (async () => {
      for await (const m of new ControlClient(dirs[i]).stream(path, headers, { signal: ac.signal })) {
        if (m.event === 'reset') w.reset = JSON.parse(m.data)
        else w.events.push(JSON.parse(m.data))
      }
    })().catch(() => {}).finally(() => { w.ended = true }) // ignored: a stream ends when its host stops or the test ends; `ended` says so
    return w
  }
  const of = (w: Watch, type: string, pred: (e: Ev) => boolean = () => true): Ev | undefined => w.events.find(e => e.type === type && pred(e))
  const index = (w: Watch, e: Ev | undefined): number => e === undefined ? -1 : w.events.indexOf(e)

  before(async () => {
    work = await tempDir(t, 'darkfs-events-procs-')
    hookOut = join(work, 'hook.out')
    const net = await upNetwork(t, work, 4, FLAGS, i => i === 0 ? ['--on-event', `cat >> '${hookOut}'`] : i === 1 ? ['--on-event', HANGING] : [])
    // the hook's processes are in groups of their own: whatever a killed host leaves is ended here
    t.add(async () => { for (const pid of await hanging()) { try { process.kill(pid, 'SIGKILL') } catch { /* gone meanwhile */ } } })
    dirs = net.dirs
    hosts = net.hosts
    await until('every host has 3 peers', async () => (await Promise.all(dirs.map(async d => (await new ControlClient(d).get('/v1/status?chunks=0')).peers))).every(p => p === 3), 60_000)
    ids = await Promise.all(dirs.map(async d => (await new ControlClient(d).get('/v1/status?chunks=0')).peerId))
    for (let i = 0; i < 4; i++) watches.push(watch(i))
    await until('every stream is open', () => watches.every(w => w.reset !== undefined), 30_000)
  })

  it('a peer killed: peer-gone and chunk-degraded, then repair-progress and repair-done', story.step(async () => {
    const local = join(work, 'big.bin')
    await writeFile(local, randomBytes(8 << 20))
    const r = await darkfs(['--data', dirs[0], 'put', local, '/big.bin'], { timeoutMs: 300_000 })
    assert.equal(r.code, 0, r.stderr)
    await hosts[3].stop('SIGKILL')
    const live = [0, 1, 2]
    await until('every live host says peer-gone for the killed one', () => live.every(i => of(watches[i], 'peer-gone', e => e.peer === ids[3]) !== undefined), 60_000)
    await until('a host finds chunks degraded after the peer is gone', () => live.some(i => index(watches[i], of(watches[i], 'chunk-degraded')) > index(watches[i], of(watches[i], 'peer-gone', e => e.peer === ids[3]))), 60_000)
    await until('a host repairs: repair-progress, then repair-done', () => live.some(i => {
      const w = watches[i]
      const gone = index(w, of(w, 'peer-gone', e => e.peer === ids[3]))
      const progress = index(w, of(w, 'repair-progress'))
      const done = index(w, of(w, 'repair-done'))
      return gone >= 0 && progress > gone && done > progress
    }), 120_000)
    for (const i of live) {
      const w = watches[i]
      for (const e of w.events) {
        assert.match(e.id, /^[0-9a-z]+-\d+$/)
        assert.equal(typeof e.at, 'number')
      }
      // ids count up in a run
      const ns = w.events.map(e => Number(e.id.split('-')[1]))
      assert.deepEqual(ns, [...ns].sort((a, b) => a - b))
      const degraded = of(w, 'chunk-degraded')
      if (degraded !== undefined) {
        assert.ok(degraded.chunks > 0)
        assert.equal(typeof degraded.reason, 'string')
      }
      const p = of(w, 'repair-progress')
      if (p !== undefined) for (const k of ['done', 'total', 'bytes']) assert.equal(typeof p[k], 'number', `repair-progress.${k}`)
      const d = of(w, 'repair-done')
      if (d !== undefined) {
        assert.ok(d.repaired > 0)
        for (const k of ['bytes', 'seconds']) assert.equal(typeof d[k], 'number', `repair-done.${k}`)
      }
    }
  }))

  it('Last-Event-ID resumes with exactly the events missed; an unknown id gets a reset first', story.step(async () => {
    const w = watches[0]
    const gone = of(w, 'peer-gone', e => e.peer === ids[3])!
    // host 0 may keep none of the chunks the killed host held, so it need not have streamed
    // anything since: a pin gives it an event (pin-complete) after the one resumed from
    await new ControlClient(dirs[0]).pin('/big.bin')
    await until('host 0 streamed pin-complete', () => index(w, of(w, 'pin-complete', e => e.path === '/big.bin')) > index(w, gone), 60_000)
    const missed = w.events.slice(w.events.indexOf(gone) + 1)
    assert.ok(missed.length > 0)
    const again = watch(0, { 'last-event-id': gone.id }, '/v1/events')
    await until('the resumed stream caught up', () => again.events.length >= missed.length, 30_000)
    assert.deepEqual(again.events.slice(0, missed.length), missed)
    assert.equal(again.reset, undefined, 'nothing was lost: no reset')
    const fresh = watch(0, { 'last-event-id': 'nosuchboot-1' }, '/v1/events')
    const kept = w.events.slice()
    await until('the reset stream has the ring', () => fresh.events.length >= kept.length, 30_000)
    assert.equal(fresh.reset?.reason, 'unknown-id')
    assert.deepEqual(fresh.events.slice(0, kept.length), kept)
  }))

  it('the --on-event hook gets each event as JSON on its stdin', story.step(async () => {
    const seen = watches[0].events.slice()
    await until('the hook saw every event', async () => {
      const text = await readFile(hookOut, 'utf8').catch(() => '')
      return seen.every(e => text.includes(`"id":"${e.id}"`))
    }, 60_000)
    const lines = (await readFile(hookOut, 'utf8')).split('\n').filter(l => l !== '').map(l => JSON.parse(l))
    for (const e of seen) assert.deepEqual(lines.find(l => l.id === e.id), e)
  }))

  it('a hook that hangs stalls nothing: the host answers and its events flow', story.step(async () => {
    // host 1's hook never ends: its two slots are taken since its second event
    assert.ok(watches[1].events.length >= 3, `host 1 streamed ${watches[1].events.length} events`)
    assert.equal((await hanging()).length, 2, 'two hook commands hang (the concurrency bound)')
    const r = await darkfs(['--data', dirs[1], 'status', '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).peers, 2)
    const before = watches[1].events.length
    await new ControlClient(dirs[1]).pin('/big.bin')
    await until('host 1 still streams events (pin-complete)', () => watches[1].events.length > before && of(watches[1], 'pin-complete', e => e.path === '/big.bin') !== undefined, 60_000)
    const pin = of(watches[1], 'pin-complete')!
    assert.ok(pin.files >= 1 && pin.chunks >= 1)
  }))

  it('darkfs events --json prints one JSON object per line; Ctrl-C exits 130', story.step(async () => {
    const child = spawn(DARKFS, ['--data', dirs[0], 'events', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
    t.add(async () => { child.kill('SIGKILL') })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const exit = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
    // every pin makes a pin-complete: pin until the tail (which connects when it has started) prints one
    await until('darkfs events printed a line', async () => {
      if (out.includes('\n')) return true
      const r = await darkfs(['--data', dirs[0], 'pin', '/big.bin'])
      assert.equal(r.code, 0, r.stderr)
      return out.includes('\n')
    }, 60_000)
    const line = JSON.parse(out.split('\n')[0])
    assert.equal(line.type, 'pin-complete')
    assert.equal(line.path, '/big.bin')
    assert.match(line.id, /^[0-9a-z]+-\d+$/)
    child.kill('SIGINT')
    assert.equal(await exit, 130, err)
  }))

  it('a host cut off says offline, online when a peer is back; two writers apart make conflict-created, its removal conflict-resolved', story.step(async () => {
    const w = watches[0]
    await hosts[2].stop()
    await hosts[1].stop()
    await until('host 0 is offline', () => of(w, 'offline') !== undefined, 60_000)
    await until('host 0 declared host 1 gone', () => of(w, 'peer-gone', e => e.peer === ids[1]) !== undefined, 60_000)
    const a = new ControlClient(dirs[0])
    await a.writeFile('/c.txt', 'from host 0')
    // host 1 alone: no join address, a new port host 0 does not know
    await saveConfig(dirs[1], { ...(await loadConfig(dirs[1])), join: [] })
    const alone = await up(t, ['--data', dirs[1], '--listen', '/ip4/127.0.0.1/tcp/0', ...FLAGS])
    await new ControlClient(dirs[1]).writeFile('/c.txt', 'from host 1')
    await alone.stop()
    const offlineAt = w.events.length
    hosts[1] = await up(t, ['--data', dirs[1], '--listen', '/ip4/127.0.0.1/tcp/0', ...FLAGS, '--join', hosts[0].addresses[0]])
    await until('host 0 says online, peer-joined and conflict-created', () => {
      const after = w.events.slice(offlineAt)
      return after.some(e => e.type === 'online') && after.some(e => e.type === 'peer-joined' && e.peer === ids[1]) && after.some(e => e.type === 'conflict-created')
    }, 60_000)
    const created = w.events.slice(offlineAt).find(e => e.type === 'conflict-created')!
    assert.match(created.path, /^\/c\.txt\.conflict-/)
    assert.equal(typeof created.author, 'string')
    const r = await darkfs(['--data', dirs[0], 'rm', created.path])
    assert.equal(r.code, 0, r.stderr)
    await until('host 0 says conflict-resolved', () => of(w, 'conflict-resolved', e => e.path === created.path) !== undefined, 30_000)
  }))
})
