// Real darkfs processes for tests: `darkfs up` in the background, CLI commands to completion.
import { spawn, execFile } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import type { Teardown } from './tmp.ts'

export const DARKFS = fileURLToPath(new URL('../bin/darkfs', import.meta.url))

export interface CliResult { code: number, stdout: string, stderr: string }

/** Run `darkfs ARGS` to completion (never throws on a non-zero exit). */
export async function darkfs (args: string[], opts: { env?: NodeJS.ProcessEnv, input?: string, timeoutMs?: number } = {}): Promise<CliResult> {
  return await new Promise(resolve => {
    const child = execFile(DARKFS, args, { env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 1 << 30, encoding: 'buffer' }, (err: any, stdout, stderr) => {
      resolve({ code: err == null ? 0 : (typeof err.code === 'number' ? err.code : 1), stdout: stdout.toString(), stderr: stderr.toString() })
    })
    if (opts.input !== undefined) child.stdin?.end(opts.input)
  })
}

export interface Up {
  child: ChildProcess
  lines: string[]
  addresses: string[]
  /** What the process wrote on stderr so far. */
  stderr: () => string
  /** Resolves with the first line matching re (rejects if the process exits first). */
  waitFor: (re: RegExp, timeoutMs?: number) => Promise<string>
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** Start `darkfs up ARGS` and wait until it prints `ready`. */
export async function up (t: Teardown, args: string[], opts: { env?: NodeJS.ProcessEnv, ready?: RegExp } = {}): Promise<Up> {
  const child = spawn(DARKFS, ['up', ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  const waiters: Array<{ re: RegExp, resolve: (l: string) => void }> = []
  let stderr = ''
  let exited = false
  const exit = new Promise<number | null>(resolve => child.once('exit', code => { exited = true; resolve(code) }))
  let buf = ''
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString()
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      lines.push(line)
      for (const w of [...waiters]) if (w.re.test(line)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(line) }
    }
  })
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (!exited) child.kill(signal)
    return await exit
  }
  t.add(async () => { await stop('SIGKILL') })
  const waitFor = async (re: RegExp, timeoutMs = 30_000): Promise<string> => {
    const seen = lines.find(l => re.test(l))
    if (seen !== undefined) return seen
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`darkfs up: no line matching ${re} in ${timeoutMs} ms; stdout: ${lines.join(' | ')}; stderr: ${stderr}`)) }, timeoutMs)
      waiters.push({ re, resolve: l => { clearTimeout(timer); resolve(l) } })
      void exit.then(code => { clearTimeout(timer); reject(new Error(`darkfs up exited (${String(code)}) before ${re}: ${stderr}`)) })
    })
  }
  await waitFor(opts.ready ?? /^ready$/)
  const addresses = lines.filter(l => l.startsWith('listening ')).map(l => l.slice('listening '.length))
  return { child, lines, addresses, waitFor, stop, stderr: () => stderr }
}

/**
 * `darkfs init` n data dirs under root (the first makes the network, the others share its key),
 * then `darkfs up` each on loopback TCP, every one joining the first. `flags` go to every `up`,
 * `hostFlags(i)` to the i-th only (e.g. `--mount DIR`).
 */
export async function upNetwork (t: Teardown, root: string, n: number, flags: string[] = [], hostFlags: (i: number) => string[] = () => []): Promise<{ dirs: string[], hosts: Up[] }> {
  const dirs = Array.from({ length: n }, (_, i) => join(root, `h${i}`))
  for (const [i, dir] of dirs.entries()) {
    const r = await darkfs(i === 0 ? ['init', '--data', dir, '--new-network'] : ['init', '--data', dir, '--network-key', join(dirs[0], 'network.key')])
    if (r.code !== 0) throw new Error(`darkfs init ${dir}: ${r.stderr}`)
  }
  const hosts: Up[] = []
  const listen = ['--listen', '/ip4/127.0.0.1/tcp/0', ...flags]
  hosts.push(await up(t, ['--data', dirs[0], ...listen, ...hostFlags(0)]))
  for (const [i, dir] of dirs.entries()) {
    if (i > 0) hosts.push(await up(t, ['--data', dir, ...listen, '--join', hosts[0].addresses[0], ...hostFlags(i)]))
  }
  return { dirs, hosts }
}
