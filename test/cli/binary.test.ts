// The single binary: scripts/build-bin.ts builds it once (into a temp dir, not dist/), then it
// runs as a user would run it on a machine without Node: PATH is an empty dir (no `node`), the
// working dir and the binary sit outside the repo (no node_modules near), the environment holds
// nothing else. The native addons must load from inside the binary (the temp files they pass
// through are gone once loaded), and `up --mount` must serve a real FUSE mount.
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { request } from 'node:http'
import { randomBytes } from 'node:crypto'
import { access, mkdir, open, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { buildBinary, findEsbuild, ESBUILD_VERSION } from '../../scripts/build-bin.ts'
import type { BuildResult } from '../../scripts/build-bin.ts'

interface Result { code: number, stdout: string, bytes: Buffer, stderr: string }

interface Running {
  pid: number
  lines: string[]
  /** Sends the signal and resolves with the exit code and stderr. */
  stop: (signal?: NodeJS.Signals) => Promise<{ code: number | null, stderr: string }>
}

/** How long a CLI command or the start of `up` may take before the test fails. */
const COMMAND_TIMEOUT_MS = 60_000

describe('dist/darkfs, the single binary (scripts/build-bin.ts)', function () {
  const t = new Teardown()
  after(async () => { await t.run() })
  let build: BuildResult
  let work: string
  let addonTmp: string
  let env: NodeJS.ProcessEnv

  const run = async (args: string[]): Promise<Result> => await new Promise(resolve => {
    execFile(build.out, args, { env, cwd: work, timeout: COMMAND_TIMEOUT_MS, maxBuffer: 1 << 28, encoding: 'buffer' }, (err: any, stdout, stderr) => {
      resolve({ code: err == null ? 0 : (typeof err.code === 'number' ? err.code : 1), stdout: stdout.toString(), bytes: stdout, stderr: stderr.toString() })
    })
  })
  // Each test that needs a data dir makes its own: none relies on what another created or left.
  let dirs = 0
  const fresh = (): string => join(work, `data-${dirs++}`)
  const initialised = async (): Promise<string> => {
    const data = fresh()
    const r = await run(['init', '--data', data, '--new-network'])
    assert.equal(r.code, 0, r.stderr)
    return data
  }
  const cli = async (data: string, ...args: string[]): Promise<string> => {
    const r = await run(['--data', data, ...args])
    assert.equal(r.code, 0, `darkfs ${args.join(' ')} failed: ${r.stderr}`)
    return r.stdout
  }

  /** `darkfs up ARGS` in the background, once it has printed `ready`; `pid` is the host's (the worker's). */
  const up = async (data: string, args: string[], upEnv: NodeJS.ProcessEnv = env): Promise<Running> => {
    const child = spawn(build.out, ['up', '--data', data, ...args], { env: upEnv, cwd: work, stdio: ['ignore', 'pipe', 'pipe'] })
    const exit = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
    t.add(async () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); await exit })
    const lines: string[] = []
    let stderr = ''
    let buf = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`no ready line; stdout: ${lines.join(' | ')}; stderr: ${stderr}`)) }, COMMAND_TIMEOUT_MS)
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString()
        let i
        while ((i = buf.indexOf('\n')) >= 0) {
          lines.push(buf.slice(0, i))
          buf = buf.slice(i + 1)
          if (lines.at(-1) === 'ready') { clearTimeout(timer); resolve() }
        }
      })
      void exit.then(code => { clearTimeout(timer); reject(new Error(`darkfs up exited (${String(code)}) before ready: ${stderr}`)) })
    })
    return {
      // the host itself: the worker `up` supervises (node/cli/supervisor.ts), named in its pid file
      pid: Number((await readFile(join(data, 'host.pid'), 'utf8')).trim()),
      lines,
      stop: async (signal = 'SIGTERM') => { child.kill(signal); return { code: await exit, stderr } }
    }
  }

  /** Paths of the files mapped into process `pid` whose path matches `re`. */
  const mapped = async (pid: number, re: RegExp): Promise<string[]> => {
    const maps = await readFile(`/proc/${pid}/maps`, 'utf8')
    return [...new Set(maps.split('\n').map(l => l.split(/\s+/).slice(5).join(' ')).filter(p => re.test(p)))]
  }

  before(async function () {
    if (await findEsbuild() === undefined) {
      process.stderr.write(`      (skipped: esbuild is not installed; add esbuild@${ESBUILD_VERSION} or set ESBUILD=/path/to/esbuild)\n`)
      this.skip()
    }
    this.timeout(600_000) // bundling and injecting a ~115 MiB executable, on a shared machine
    work = await tempDir(t, 'darkfs-bin-')
    build = await buildBinary({ out: join(work, 'darkfs') })
    const emptyPath = join(work, 'empty-path')
    addonTmp = join(work, 'tmp')
    await mkdir(emptyPath)
    await mkdir(addonTmp)
    await mkdir(join(work, 'home'))
    env = { PATH: emptyPath, HOME: join(work, 'home'), TMPDIR: addonTmp }
  })

  it('the build is one ELF executable that runs `darkfs help` with no node on PATH', async () => {
    const head = Buffer.alloc(4)
    const f = await open(build.out)
    try { await f.read(head, 0, 4, 0) } finally { await f.close() }
    assert.deepEqual([...head], [0x7f, 0x45, 0x4c, 0x46]) // \x7fELF, not a script
    assert.ok(build.assets.includes('fuse/build/fuse.node'))
    await assert.rejects(access(join(env.PATH!, 'node')))
    const r = await run(['help'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^usage:\n\s+darkfs init/)
    assert.equal(r.stderr, '', 'no experimental-feature warning or other noise')
  })

  it('darkfs frobnicate exits 2 with one clear line and the usage', async () => {
    const r = await run(['frobnicate'])
    assert.equal(r.code, 2)
    assert.match(r.stderr.split('\n')[0], /^darkfs: unknown command 'frobnicate'/)
  })

  it('darkfs init --data D --new-network', async () => {
    const data = fresh()
    const out = await run(['init', '--data', data, '--new-network'])
    assert.equal(out.code, 0, out.stderr)
    assert.match(out.stdout, /^initialised /)
    assert.match(await readFile(join(data, 'network.key'), 'utf8'), /^\/key\/swarm\/psk\/1\.0\.0\//)
  })

  it('darkfs up, then put, ls, cat, get, stat round-trip a multi-chunk file; SIGTERM stops it cleanly', async () => {
    const data = await initialised()
    const host = await up(data, ['--listen', '/ip4/127.0.0.1/tcp/0'])
    assert.ok(host.lines.some(l => /^listening \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\w+$/.test(l)), host.lines.join('\n'))

    if (build.assets.includes('node/data/native/build/erasure.node')) {
      // the ISA-L kernel came out of the binary: mapped from a temp file already deleted
      const addon = await mapped(host.pid, /erasure\.node/)
      assert.equal(addon.length, 1, `erasure.node not loaded: ${addon.join(', ')}`)
      assert.match(addon[0], /^.*\/darkfs-addon-[^/]+\/erasure\.node \(deleted\)$/)
    }
    assert.deepEqual(await readdir(addonTmp), [], 'addon temp dirs are removed once loaded')

    const bytes = randomBytes(3 * (1 << 20) + 77)
    await writeFile(join(work, 'in.bin'), bytes)
    await cli(data, 'mkdir', '-p', '/a/b')
    await cli(data, 'put', join(work, 'in.bin'), '/a/b/file.bin')
    assert.equal(await cli(data, 'ls', '/a/b'), 'file.bin\n')
    const cat = await run(['--data', data, 'cat', '/a/b/file.bin'])
    assert.equal(cat.code, 0, cat.stderr)
    assert.deepEqual(cat.bytes, bytes)
    await cli(data, 'get', '/a/b/file.bin', join(work, 'out.bin'))
    assert.deepEqual(await readFile(join(work, 'out.bin')), bytes)
    const st = JSON.parse(await cli(data, 'stat', '--json', '/a/b/file.bin'))
    assert.equal(Number(st.size), bytes.length)
    assert.equal(st.kind, 'file')

    // the dashboard's files come out of the binary's assets (no repo near it)
    for (const [path, file] of [['/', 'index.html'], ['/ui/app.js', 'app.js'], ['/ui/style.css', 'style.css']]) {
      const page = await new Promise<{ status: number, body: Buffer }>((resolve, reject) => {
        const req = request({ socketPath: join(data, 'control.sock'), path }, res => {
          const parts: Buffer[] = []
          res.on('data', (d: Buffer) => parts.push(d))
          res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }) })
        })
        req.on('error', reject)
        req.end()
      })
      assert.equal(page.status, 200, `GET ${path}: ${page.body.toString().slice(0, 200)}`)
      assert.deepEqual(page.body, await readFile(new URL(`../../node/api/dashboard/${file}`, import.meta.url)), `GET ${path} is node/api/dashboard/${file}`)
    }

    const missing = await run(['--data', data, 'cat', '/nope'])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /^darkfs: /)

    const { code, stderr } = await host.stop('SIGTERM')
    assert.equal(code, 0, stderr)
    assert.equal(host.lines.at(-1), 'stopped')
  })

  it('darkfs up --mount DIR: bytes written through the mount read back through it and through darkfs get; SIGTERM unmounts', async function () {
    if (await access('/dev/fuse').then(() => false, () => true)) {
      process.stderr.write('      (skipped: no /dev/fuse on this machine)\n')
      this.skip()
    }
    const mnt = join(work, 'mnt')
    await mkdir(mnt)
    t.add(async () => { // if the host died mounted, leave no mount behind
      const mounts = await readFile('/proc/self/mounts', 'utf8')
      if (mounts.includes(` ${mnt} `)) await new Promise(resolve => { execFile('umount', ['-l', mnt], resolve) })
    })
    // a file put by an earlier run of the host, without the mount
    const data = await initialised()
    const first = await up(data, ['--listen', '/ip4/127.0.0.1/tcp/0'])
    await writeFile(join(work, 'earlier.bin'), randomBytes(10_000))
    await cli(data, 'mkdir', '-p', '/a/b')
    await cli(data, 'put', join(work, 'earlier.bin'), '/a/b/file.bin')
    assert.equal((await first.stop('SIGTERM')).code, 0)
    const host = await up(data, ['--listen', '/ip4/127.0.0.1/tcp/0', '--mount', mnt])
    assert.ok(host.lines.includes(`mounted ${mnt}`), host.lines.join('\n'))
    assert.match((await mapped(host.pid, /fuse\.node/))[0] ?? '', /\/darkfs-addon-[^/]+\/fuse\.node \(deleted\)$/)
    assert.deepEqual(await readdir(addonTmp), [])

    assert.ok((await readdir(join(mnt, 'a', 'b'))).includes('file.bin'), 'the earlier put shows in the mount')
    const bytes = randomBytes(200_000)
    await writeFile(join(mnt, 'through-mount.bin'), bytes)
    assert.deepEqual(await readFile(join(mnt, 'through-mount.bin')), bytes)
    await cli(data, 'get', '/through-mount.bin', join(work, 'from-mount.bin'))
    assert.deepEqual(await readFile(join(work, 'from-mount.bin')), bytes)

    const { code, stderr } = await host.stop('SIGTERM')
    assert.equal(code, 0, stderr)
    assert.equal(host.lines.at(-1), 'stopped')
    assert.ok(!(await readFile('/proc/self/mounts', 'utf8')).includes(` ${mnt} `), 'unmounted on SIGTERM')
  })

  it('darkfs up --mount with TMPDIR on a noexec filesystem loads the fuse addon from the next dir', async function () {
    if (await access('/dev/fuse').then(() => false, () => true)) {
      process.stderr.write('      (skipped: no /dev/fuse on this machine)\n')
      this.skip()
    }
    const noexec = join(work, 'noexec')
    await mkdir(noexec)
    const mountTmpfs = await new Promise<Error | null>(resolve => { execFile('mount', ['-t', 'tmpfs', '-o', 'noexec,size=8m', 'tmpfs', noexec], resolve) })
    if (mountTmpfs !== null) {
      process.stderr.write(`      (skipped: cannot mount a noexec tmpfs: ${mountTmpfs.message.split('\n')[0]})\n`)
      this.skip()
    }
    t.add(async () => { await new Promise(resolve => { execFile('umount', ['-l', noexec], resolve) }) })
    const mnt = join(work, 'mnt-noexec')
    await mkdir(mnt)
    t.add(async () => {
      const mounts = await readFile('/proc/self/mounts', 'utf8')
      if (mounts.includes(` ${mnt} `)) await new Promise(resolve => { execFile('umount', ['-l', mnt], resolve) })
    })
    const data = await initialised()
    const host = await up(data, ['--listen', '/ip4/127.0.0.1/tcp/0', '--mount', mnt], { ...env, TMPDIR: noexec })
    const loaded = await mapped(host.pid, /fuse\.node/)
    assert.ok(loaded.some(p => p.startsWith(join(work, 'darkfs-addon-'))), `fuse.node not loaded beside the binary: ${loaded.join(', ')}`)
    assert.deepEqual(await readdir(noexec), [])
    assert.ok(!(await readdir(work)).some(n => n.startsWith('darkfs-addon-')), 'the fallback temp dir is removed')
    await writeFile(join(mnt, 'noexec.txt'), 'served\n')
    assert.equal(await cli(data, 'cat', '/noexec.txt'), 'served\n')
    const { code, stderr } = await host.stop('SIGTERM')
    assert.equal(code, 0, stderr)
  })
})
