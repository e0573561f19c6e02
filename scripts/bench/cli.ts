// CLI command latency (issue 17): `darkfs stat PATH` against a running host, as a user runs it
// (bin/darkfs: the pinned Node, straight, with its compile cache), p50 of 20 runs beside its goal.
// Wall time depends on the machine's load; so does the floor under any command, the pinned
// runtime starting with nothing to do, reported beside it. The CPU time the CLI process itself
// used (user + system, from sh's `times`, 10 ms ticks) depends less on what else runs.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up, DARKFS } from '../../harness/proc.ts'

/** Runs of each timed command (the median is reported). */
const RUNS = 20
/** What a command that talks to a running host should take of its own (issue 17). */
const GOAL_MS = 100
const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url))

export async function run (): Promise<Record<string, number | string>> {
  const t = new Teardown()
  try {
    const data = join(await tempDir(t, 'darkfs-bench-cli-'), 'data')
    await must(['init', '--data', data, '--new-network'])
    await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0'])
    await must(['--data', data, 'mkdir', '/x'])
    await must(['--data', data, 'stat', '/x']) // the first run fills the compile cache, as a user's first command does
    const stat = await runs(DARKFS, ['--data', data, 'stat', '/x'])
    const bare = await runs(NODE, ['-e', '0'])
    return {
      'cli.stat.p50.ms': stat.wall,
      'cli.stat.goal.ms': GOAL_MS,
      'cli.stat.cpu.p50.ms': stat.cpu,
      'cli.node-start.p50.ms': bare.wall,
      'cli.node-start.cpu.p50.ms': bare.cpu
    }
  } finally {
    await t.run()
  }
}

async function must (args: string[]): Promise<void> {
  const r = await darkfs(args)
  if (r.code !== 0) throw new Error(`darkfs ${args.join(' ')}: ${r.stderr}`)
}

/** Median wall-clock and CPU ms of RUNS sequential runs of `file args`. */
async function runs (file: string, args: string[]): Promise<{ wall: number, cpu: number }> {
  const wall: number[] = []
  const cpu: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now()
    cpu.push(await once(file, args))
    wall.push(performance.now() - start)
  }
  return { wall: median(wall), cpu: median(cpu) }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return Math.round(s[Math.floor(s.length / 2)] * 10) / 10
}

/**
 * Run `file args` once under sh, whose `times` then prints the CPU its children used
 * (second line: `0m0.050000s 0m0.020000s`, user and system); the sh itself adds about 1 ms of wall time.
 */
async function once (file: string, args: string[]): Promise<number> {
  const out = await new Promise<string>((resolve, reject) => {
    execFile('sh', ['-c', '"$0" "$@" >/dev/null; s=$?; times; exit $s', file, ...args], (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${file} ${args.join(' ')}: ${stderr}`)); else resolve(stdout)
    })
  })
  const children = out.trim().split('\n').at(-1) ?? ''
  const secs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map(m => Number(m[1]) * 60 + Number(m[2]))
  if (secs.length !== 2) throw new Error(`sh times printed ${JSON.stringify(out)}`)
  return (secs[0] + secs[1]) * 1000
}
