// O_APPEND across hosts (issue 12 item 1, DESIGN.md §6): two real `darkfs up --mount` processes
// on loopback TCP, each running shell loops of `echo LINE >> log` on its own mount of one file,
// connected the whole time, and apart (neither knows the other) then joined. Each case starts
// its own two hosts (twoHosts) and needs nothing another case did. After the merge both mounts
// show every line exactly once, whole, each writer's lines in its order, and the same bytes; no
// conflict copy.
import assert from 'node:assert/strict'
import { cp } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown } from '../../harness/tmp.ts'
import { darkfs } from '../../harness/proc.ts'
import type { Up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'
import { sh, ok } from '../helpers/fuse-mount.ts'
import { initHosts, startMounted } from '../helpers/mounted-hosts.ts'

/** How long the hosts may take to converge before the test fails (liveness only). */
const CONVERGE_WITHIN_MS = 60_000

const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`

/** The lines `prefix`1 .. `prefix`n. */
const lines = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`)

/**
 * Every line of `text` is one of the writers' lines, each exactly once, whole, and each writer's
 * lines in the order it wrote them.
 */
function assertLines (text: string, writers: string[][]): void {
  assert.ok(text.endsWith('\n'), 'the file ends with a whole line')
  const got = text.slice(0, -1).split('\n')
  const expected = new Set(writers.flat())
  const seen = new Map<string, number>()
  for (const l of got) seen.set(l, (seen.get(l) ?? 0) + 1)
  const missing = [...expected].filter(l => !seen.has(l))
  const torn = [...seen.keys()].filter(l => !expected.has(l))
  const twice = [...seen].filter(([, n]) => n > 1).map(([l]) => l)
  assert.deepEqual({ lines: got.length, missing: missing.length, torn: torn.slice(0, 5), twice: twice.slice(0, 5) },
    { lines: expected.size, missing: 0, torn: [], twice: [] })
  for (const w of writers) {
    const mine = got.filter(l => w.includes(l))
    assert.deepEqual(mine, w, 'a writer\'s lines are in the order it wrote them')
  }
}

/** A shell loop appending `lines` one `echo >>` each to `file`. */
const loop = (file: string, prefix: string, n: number): string => `s=0; for i in $(seq ${n}); do echo "${prefix}$i" >> ${q(file)} || s=1; done; exit $s`

/** `loops` run at once; fails (with their stderr) when any `echo >>` of any of them failed. */
const atOnce = (loops: string[]): string => `${loops.map((l, i) => `(${l}) & p${i}=$!`).join('; ')}; s=0; ${loops.map((_, i) => `wait $p${i} || s=1`).join('; ')}; exit $s`

/** Two hosts of one network, each `darkfs up --mount`ed: data dirs, mount points, processes. */
interface Pair { t: Teardown, data: string[], mnt: string[], hosts: Up[] }

/**
 * Make two hosts of one new network in `pair` (empty) and start both, apart (neither knows the
 * other) or, with `joined`, host 1 joining host 0 and the two seeing each other before this
 * returns. `pair` holds what it made so far when it fails part-way; everything it makes is
 * `pair.t`'s to tear down.
 */
async function twoHosts (pair: Pair, prefix: string, joined: boolean): Promise<void> {
  const made = await initHosts(pair.t, prefix, 2)
  pair.data.push(...made.data)
  pair.mnt.push(...made.mnt)
  pair.hosts.push(await startMounted(pair.t, pair, 0, []))
  pair.hosts.push(await startMounted(pair.t, pair, 1, joined ? ['--join', pair.hosts[0].addresses[0]] : []))
  if (joined) {
    await until('the hosts see each other', async () => {
      const r = await darkfs(['--data', pair.data[1], 'peers', '--json'])
      return r.code === 0 && JSON.parse(r.stdout).length === 1
    }, CONVERGE_WITHIN_MS)
  }
}

/** Wait until both mounts read the same bytes of `name` with `count` lines, and return them. */
async function converged (p: Pair, name: string, count: number): Promise<string> {
  let text = ''
  await until(`both hosts read ${count} lines of ${name}, the same bytes`, async () => {
    const a = await sh(`cat ${q(join(p.mnt[0], name))}`)
    const b = await sh(`cat ${q(join(p.mnt[1], name))}`)
    text = a.stdout
    return a.code === 0 && b.code === 0 && a.stdout === b.stdout && a.stdout.split('\n').length - 1 === count
  }, CONVERGE_WITHIN_MS).catch(async (err: Error) => {
    const a = await sh(`wc -l ${q(join(p.mnt[0], name))}; ls -A ${q(p.mnt[0])}`)
    const b = await sh(`wc -l ${q(join(p.mnt[1], name))}; ls -A ${q(p.mnt[1])}`)
    throw new Error(`${err.message}; host 0: ${a.stdout.trim()}; host 1: ${b.stdout.trim()}`)
  })
  return text
}

async function noConflicts (p: Pair): Promise<void> {
  for (const i of [0, 1]) {
    const r = await darkfs(['--data', p.data[i], 'conflicts'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, '', `host ${i} has conflict copies`)
  }
}

describe('O_APPEND across two hosts, each `darkfs up --mount`', function () {
  this.timeout(600_000)
  // each case makes its own two hosts (twoHosts) and they go after it, whatever it did
  let pair: Pair | undefined
  let kept = 0
  afterEach(async function () {
    const p = pair
    pair = undefined
    if (p === undefined) return
    try {
      if (this.currentTest?.state !== 'failed') return
      // what the hosts logged (a lost append leaves its trace there), of those started
      console.error(`--- ${p.hosts.length} of 2 hosts started, data dirs: ${p.data.join(' ') || 'none'} ---`)
      for (const [i, h] of p.hosts.entries()) console.error(`--- host ${i} stderr ---\n${h.stderr()}`)
      // DARKFS_KEEP_FAILED=DIR: a failed case's data dirs (op logs, blocks) copied to DIR/<n>-<case>/data<i>,
      // the hosts stopped first
      const keep = process.env.DARKFS_KEEP_FAILED
      if (keep !== undefined && keep !== '' && p.data.length > 0) {
        const into = join(keep, `${++kept}-${(this.currentTest.title).replace(/[^A-Za-z0-9]+/g, '-').slice(0, 60).replace(/-$/, '')}`)
        for (const h of p.hosts) await h.stop('SIGTERM')
        for (const [i, d] of p.data.entries()) await cp(d, join(into, `data${i}`), { recursive: true })
        console.error(`data dirs kept in ${into}`)
      }
    } finally {
      await p.t.run()
    }
  })
  const begin = async (prefix: string, joined: boolean): Promise<Pair> => {
    // torn down by afterEach, with what twoHosts started, even when it fails part-way
    const p: Pair = { t: new Teardown(), data: [], mnt: [], hosts: [] }
    pair = p
    await twoHosts(p, prefix, joined)
    return p
  }

  it('apart, then joined: 200 appends on each host, each to its own new `log`, all kept after the join', async () => {
    const p = await begin('darkfs-appends-apart-', false)
    await ok(atOnce([0, 1].map(i => loop(join(p.mnt[i], 'apart.log'), `H${i}-`, 200))))
    // host 1 restarts joining host 0
    await p.hosts[1].stop('SIGTERM')
    await sh(`umount -l ${q(p.mnt[1])} 2>/dev/null`)
    p.hosts[1] = await startMounted(p.t, p, 1, ['--join', p.hosts[0].addresses[0]])
    const text = await converged(p, 'apart.log', 400)
    assertLines(text, [lines('H0-', 200), lines('H1-', 200)])
    await noConflicts(p)
  })

  it('joined: 2 shell loops on each host, 250 `echo >> log` each, at once: all 1,000 lines, each once and whole', async () => {
    const p = await begin('darkfs-appends-joined-', true)
    const file = (i: number): string => join(p.mnt[i], 'joined.log')
    await ok(`echo start > ${q(file(0))}`)
    await until('host 1 reads the start line', async () => (await sh(`cat ${q(file(1))}`)).stdout === 'start\n', CONVERGE_WITHIN_MS)
    await ok(atOnce([loop(file(0), 'A', 250), loop(file(0), 'B', 250), loop(file(1), 'C', 250), loop(file(1), 'D', 250)]))
    const text = await converged(p, 'joined.log', 1001)
    assertLines(text, [['start'], lines('A', 250), lines('B', 250), lines('C', 250), lines('D', 250)])
    assert.ok(text.startsWith('start\n'))
    await noConflicts(p)
  })
})
