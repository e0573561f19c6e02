// Test helpers for real FUSE mounts: a temp mountpoint over a Volume (the real one when
// node/index.ts exports it, else the in-memory one; DARKFS_TEST_VOLUME=memory forces it),
// teardown registered as things are created, and shell commands run asynchronously,
// optionally as an unprivileged user. A teardown step that fails fails the test, with its reason,
// once every step has run: a mount left behind (unmount failed, the mountpoint still mounted)
// shows where it was made, not as a stray mount in a later test.
import { mkdtemp, rm, chmod, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mount } from '../../fuse/index.ts'
import type { Mount, MountOptions } from '../../fuse/index.ts'
import type { VolumeApi } from '../../node/index.ts'
import { Volume } from '../../node/index.ts'
import { createMemoryVolume } from '../../harness/memory-volume.ts'

const exec = promisify(execFile)

/** Name of the unprivileged user the mount tests act as. */
export const TEST_USER = 'darkfs-test'

export interface Teardown { add: (fn: () => Promise<void> | void) => void, run: () => Promise<void> }

/**
 * Steps run last-added first; every step runs even when one before it failed, and run() then
 * throws the failures (one: itself; more: an AggregateError naming each).
 */
export function teardown (): Teardown {
  const fns: Array<() => Promise<void> | void> = []
  return {
    add (fn) { fns.push(fn) },
    async run () {
      const failed: unknown[] = []
      while (fns.length > 0) {
        try { await fns.pop()!() } catch (err) { failed.push(err) }
      }
      if (failed.length === 1) throw failed[0]
      if (failed.length > 1) throw new AggregateError(failed, `${failed.length} teardown steps failed: ${failed.map(e => String((e as Error)?.message ?? e)).join('; ')}`)
    }
  }
}

/** Tries of a plain umount(8) of a mount left behind while it answers EBUSY (something still uses it), and the pause between them. */
const UNMOUNT_TRIES = 20
const UNMOUNT_PAUSE_MS = 100

/** Is `dir` a mount point now (/proc/self/mountinfo: its fifth field, spaces and such octal-escaped)? */
export async function isMounted (dir: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8')
  return info.split('\n').some(line => line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) === dir)
}

/**
 * Fails (with the reason) when `dir` is still mounted after `how` should have unmounted it. The
 * mount left behind is unmounted first, so later tests do not inherit it: umount(8), tried again
 * while it answers EBUSY (a process of the test still inside it, on its way out), up to
 * UNMOUNT_TRIES times, then detached (umount -l).
 */
export async function checkUnmounted (dir: string, how: string): Promise<void> {
  if (!await isMounted(dir)) return
  let reason = 'still mounted'
  for (let i = 0; i < UNMOUNT_TRIES && await isMounted(dir); i++) {
    const r = await sh(`umount -- '${dir.replaceAll("'", "'\\''")}'`)
    if (r.code === 0) break
    reason = r.stderr.trim() !== '' ? r.stderr.trim() : `umount exited ${r.code}`
    if (!/busy/i.test(reason)) break
    await new Promise(resolve => setTimeout(resolve, UNMOUNT_PAUSE_MS))
  }
  if (await isMounted(dir)) {
    const r = await sh(`umount -l -- '${dir.replaceAll("'", "'\\''")}'`)
    if (r.code !== 0) reason += `; umount -l: ${r.stderr.trim()}`
  }
  throw new Error(`${dir} was still mounted after ${how} (${reason})`)
}

export async function tempDir (t: Teardown, prefix = 'darkfs-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  await chmod(dir, 0o755) // let the unprivileged user reach the mountpoint
  t.add(async () => { await removeTree(dir) })
  return dir
}

/**
 * Removes `dir` and all below it, a tree whose paths pass PATH_MAX too (longpath.test.ts's 30
 * directories of 255 bytes): fs.rm() names each entry by its full path and fails on such a tree
 * with ENAMETOOLONG, leaving it in /tmp; rm(1) walks down by directory descriptors.
 */
async function removeTree (dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true })
  } catch (err: any) {
    if (err?.code !== 'ENAMETOOLONG') throw err
    await exec('rm', ['-rf', '--', dir])
  }
}

/** A Volume for tests: the real Volume in a temp data dir when available, else in-memory. */
export async function testVolume (t: Teardown): Promise<{ volume: VolumeApi, kind: 'real' | 'memory' }> {
  if (process.env.DARKFS_TEST_VOLUME !== 'memory') {
    const door: any = await import('../../node/index.ts')
    if (typeof door.Volume?.open === 'function') {
      const data = await tempDir(t, 'darkfs-data-')
      const volume = await door.Volume.open({ dir: data })
      t.add(async () => { await volume.close?.() })
      return { volume, kind: 'real' }
    }
  }
  return { volume: createMemoryVolume(), kind: 'memory' }
}

export interface Mounted { dir: string, mount: Mount, volume: VolumeApi, kind: 'real' | 'memory' }

export async function mountTemp (t: Teardown, opts?: MountOptions): Promise<Mounted> {
  const { volume, kind } = await testVolume(t)
  const dir = await tempDir(t, 'darkfs-mnt-')
  const m = await mount(volume, dir, opts)
  t.add(async () => { await m.unmount(); await checkUnmounted(dir, 'unmount()') })
  return { dir, mount: m, volume, kind }
}

/**
 * A real Volume with no background sync, mounted: every log write and sync its counters show is
 * one a request through the mount made (held attribute changes too: committed by a request, never
 * by their timer, however slow the machine).
 */
export async function mountQuiet (t: Teardown): Promise<{ vol: Volume, dir: string }> {
  const vol = await Volume.open({ dir: await tempDir(t, 'darkfs-data-'), writtenSyncMs: 3600_000, heldAttrsMs: 3600_000 })
  t.add(async () => { await vol.close() })
  const dir = await tempDir(t, 'darkfs-mnt-')
  const m = await mount(vol, dir)
  t.add(async () => { await m.unmount(); await checkUnmounted(dir, 'unmount()') })
  return { vol, dir }
}

/**
 * A mount of its own for each test of the calling describe() (mountTemp in its beforeEach, torn
 * down in its afterEach): `here()` gives the running test's mount and teardown.
 */
export function mountEach (opts?: MountOptions): () => { m: Mounted, t: Teardown } {
  let state: { m: Mounted, t: Teardown } | undefined
  beforeEach(async function () {
    const t = teardown()
    state = { t, m: await mountTemp(t, opts) }
  })
  afterEach(async function () {
    await state?.t.run()
    state = undefined
  })
  return () => {
    if (state === undefined) throw new Error('mountEach: no mount outside a test')
    return state
  }
}

export interface Run { stdout: string, stderr: string, code: number }

/**
 * Runs a bash script (in `cwd`), as root or as `user`; never throws on a non-zero exit.
 * The script changes into `cwd` itself: spawning with a cwd inside our own mount would make
 * the child's chdir wait on this process while spawn() blocks the event loop (a deadlock).
 */
export async function sh (script: string, opts: { cwd?: string, user?: { uid: number, gid: number } } = {}): Promise<Run> {
  if (opts.cwd !== undefined) script = `cd '${opts.cwd.replaceAll("'", "'\\''")}' || exit 99\n${script}`
  const argv = opts.user !== undefined
    ? ['setpriv', '--reuid', String(opts.user.uid), '--regid', String(opts.user.gid), '--clear-groups', 'bash', '-c', script]
    : ['bash', '-c', script]
  try {
    const r = await exec(argv[0], argv.slice(1), { cwd: '/', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } })
    return { stdout: r.stdout, stderr: r.stderr, code: 0 }
  } catch (err: any) {
    if (typeof err.code !== 'number') throw err
    return { stdout: err.stdout ?? '', stderr: err.stderr ?? '', code: err.code }
  }
}

/** Like sh, but fails with the output when the script fails. */
export async function ok (script: string, opts: { cwd?: string, user?: { uid: number, gid: number } } = {}): Promise<string> {
  const r = await sh(script, opts)
  if (r.code !== 0) throw new Error(`script failed (${r.code}): ${script}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** The unprivileged test user, created (useradd) when missing. */
export async function testUser (): Promise<{ uid: number, gid: number }> {
  let r = await sh(`id -u ${TEST_USER} && id -g ${TEST_USER}`)
  if (r.code !== 0) {
    await sh(`useradd --no-create-home --shell /usr/sbin/nologin ${TEST_USER}`)
    r = await sh(`id -u ${TEST_USER} && id -g ${TEST_USER}`)
  }
  const [uid, gid] = r.stdout.trim().split('\n').map(Number)
  return { uid, gid }
}
