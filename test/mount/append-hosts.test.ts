// O_APPEND across hosts (issue 12 item 1, DESIGN.md §6): two real `darkfs up --mount` processes
// on loopback TCP, each running shell loops of `echo LINE >> log` on its own mount of one file,
// connected the whole time, and apart (neither knows the other) then joined. After the merge
// both mounts show every line exactly once, whole, each writer's lines in its order, and the
// same bytes; no conflict copy.
import assert from 'node:assert/strict'
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

describe('O_APPEND across two hosts, each `darkfs up --mount`', function () {
  this.timeout(600_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  // what the hosts logged, when a case fails (a lost append leaves its trace there)
  afterEach(function () {
    if (this.currentTest?.state === 'failed') for (const [i, h] of hosts.entries()) console.error(`--- host ${i} stderr ---\n${h.stderr()}`)
  })
  const data: string[] = []
  const mnt: string[] = []
  const hosts: Up[] = []

  const start = async (i: number, join_: string[]): Promise<Up> => await startMounted(t, { data, mnt }, i, join_)

  before(async () => {
    const made = await initHosts(t, 'darkfs-appends-', 2)
    data.push(...made.data)
    mnt.push(...made.mnt)
    // apart first: neither host knows the other
    for (let i = 0; i < 2; i++) hosts.push(await start(i, []))
  })

  /** Wait until both mounts read the same bytes with `count` lines, and return them. */
  const converged = async (name: string, count: number): Promise<string> => {
    let text = ''
    await until(`both hosts read ${count} lines of ${name}, the same bytes`, async () => {
      const a = await sh(`cat ${q(join(mnt[0], name))}`)
      const b = await sh(`cat ${q(join(mnt[1], name))}`)
      text = a.stdout
      return a.code === 0 && b.code === 0 && a.stdout === b.stdout && a.stdout.split('\n').length - 1 === count
    }, CONVERGE_WITHIN_MS).catch(async (err: Error) => {
      const a = await sh(`wc -l ${q(join(mnt[0], name))}; ls -A ${q(mnt[0])}`)
      const b = await sh(`wc -l ${q(join(mnt[1], name))}; ls -A ${q(mnt[1])}`)
      throw new Error(`${err.message}; host 0: ${a.stdout.trim()}; host 1: ${b.stdout.trim()}`)
    })
    return text
  }

  const noConflicts = async (): Promise<void> => {
    for (const i of [0, 1]) {
      const r = await darkfs(['--data', data[i], 'conflicts'])
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout, '', `host ${i} has conflict copies`)
    }
  }

  it('apart, then joined: 200 appends on each host, each to its own new `log`, all kept after the join', async () => {
    await ok(atOnce([0, 1].map(i => loop(join(mnt[i], 'apart.log'), `H${i}-`, 200))))
    // host 1 restarts joining host 0
    await hosts[1].stop('SIGTERM')
    await sh(`umount -l ${q(mnt[1])} 2>/dev/null`)
    hosts[1] = await start(1, ['--join', hosts[0].addresses[0]])
    const text = await converged('apart.log', 400)
    assertLines(text, [lines('H0-', 200), lines('H1-', 200)])
    await noConflicts()
  })

  it('joined: 2 shell loops on each host, 250 `echo >> log` each, at once: all 1,000 lines, each once and whole', async () => {
    await until('the hosts see each other', async () => {
      const r = await darkfs(['--data', data[1], 'peers', '--json'])
      return r.code === 0 && JSON.parse(r.stdout).length === 1
    }, CONVERGE_WITHIN_MS)
    const file = (i: number): string => join(mnt[i], 'joined.log')
    await ok(`echo start > ${q(file(0))}`)
    await until('host 1 reads the start line', async () => (await sh(`cat ${q(file(1))}`)).stdout === 'start\n', CONVERGE_WITHIN_MS)
    await ok(atOnce([loop(file(0), 'A', 250), loop(file(0), 'B', 250), loop(file(1), 'C', 250), loop(file(1), 'D', 250)]))
    const text = await converged('joined.log', 1001)
    assertLines(text, [['start'], lines('A', 250), lines('B', 250), lines('C', 250), lines('D', 250)])
    assert.ok(text.startsWith('start\n'))
    await noConflicts()
  })
})
