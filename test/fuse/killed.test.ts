// A caller killed while its request waits on the Volume (kill -9, or Ctrl-C of a program that
// does not handle SIGINT): the kernel interrupts the request (FUSE_INTERRUPT) and will not let the
// caller exit before it is answered. The binding sees the caller dying (its pending signals) and
// JS answers EINTR at once: a read or an fsync has its signal aborted, a write runs on to its end
// (done whole, never cut). Lock waits (F_SETLKW, flock) are the kernel's own on this mount, and a
// signal ends them as on a local disk; the killed waiter never gets the lock.
// The callers are other processes (cat, flock(1), python3), real mounts over an in-memory Volume
// whose handles hold their calls until the test lets them go.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import type { AbortOptions } from '@libp2p/interface'
import { teardown, tempDir, ok } from '../helpers/fuse-mount.ts'
import type { Teardown } from '../helpers/fuse-mount.ts'
import { mount } from '../../fuse/index.ts'
import type { Mount } from '../../fuse/index.ts'
import { until } from '../../harness/cluster.ts'
import { createMemoryVolume } from '../../harness/memory-volume.ts'
import { wrapHandles } from '../helpers/wrap-handles.ts'

const BLOCK = 4096
/** How long a killed caller may take to be gone: far below the request deadline (30 s). */
const GONE_MS = 5_000

/** A promise and its resolver. */
function later<T = void> (): { promise: Promise<T>, resolve: (v: T) => void } {
  let resolve!: (v: T) => void
  const promise = new Promise<T>(res => { resolve = res })
  return { promise, resolve }
}

/** Waits until `signal` aborts (or the test lets it go with `release`). */
async function held (signal: AbortSignal | undefined, release: Promise<void>): Promise<void> {
  await Promise.race([release, new Promise<void>(resolve => {
    if (signal?.aborted === true) resolve()
    signal?.addEventListener('abort', () => { resolve() }, { once: true })
  })])
}

interface Proc { child: ChildProcess, out: () => string, exited: Promise<{ code: number | null, signal: string | null }> }

/** /f's reads wait in the Volume for `release` (or their signal's abort); each read's signal goes to `signals`. */
function holdReads (volume: ReturnType<typeof createMemoryVolume>, signals: Array<AbortSignal | undefined>, release: Promise<void>): void {
  wrapHandles(volume, path => path === '/f', fh => ({
    readBytes: undefined,
    read: async (buffer, offset, length, position, options?: AbortOptions) => {
      signals.push(options?.signal)
      await held(options?.signal, release)
      options?.signal?.throwIfAborted()
      return await fh.read(buffer, offset, length, position)
    }
  }))
}

function start (t: Teardown, argv: string[]): Proc {
  const child = spawn(argv[0], argv.slice(1), { cwd: '/', stdio: ['pipe', 'pipe', 'pipe'] })
  t.add(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { out += s })
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { out += s })
  const exited = new Promise<{ code: number | null, signal: string | null }>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => { resolve({ code, signal }) })
  })
  return { child, out: () => out, exited }
}

/** How long `p` takes to exit after `kill` sends it `sig`, in ms; fails past `bound`. */
async function killTime (p: Proc, sig: NodeJS.Signals, bound = 20_000): Promise<number> {
  const t0 = performance.now()
  p.child.kill(sig)
  let timer: NodeJS.Timeout | undefined
  const r = await Promise.race([p.exited, new Promise<'stuck'>(resolve => { timer = setTimeout(() => { resolve('stuck') }, bound) })])
  clearTimeout(timer)
  assert.notEqual(r, 'stuck', `the caller was still there ${bound} ms after ${sig}: ${p.out()}`)
  return performance.now() - t0
}

async function mounted (t: Teardown, volume: ReturnType<typeof createMemoryVolume>): Promise<{ dir: string, m: Mount }> {
  const dir = await tempDir(t, 'darkfs-mnt-')
  const m = await mount(volume, dir)
  t.add(async () => { await m.unmount() })
  return { dir, m }
}

/**
 * Opens argv[1] (O_DIRECT when argv[2] is 'direct'), says ready, waits for a line, then reads
 * BLOCK bytes, printing the count. SIGINT left to its default action, as cat has it (python's own
 * handler would make it a signal the caller handles, which does not cut a request short).
 */
const READER = `
import mmap, os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
fd = os.open(sys.argv[1], os.O_RDONLY | (os.O_DIRECT if sys.argv[2] == 'direct' else 0))
mem = mmap.mmap(-1, ${BLOCK})
print('ready', flush=True)
sys.stdin.readline()
print(os.readv(fd, [mem]), flush=True)
`

/** Opens argv[1], writes BLOCK bytes of 'w', says ready, then calls fsync (argv[2] == 'fsync') or writes BLOCK more at 0 (the write held). */
const WRITER = `
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
if sys.argv[2] == 'fsync':
    os.pwrite(fd, b'w' * ${BLOCK}, 0)
print('ready', flush=True)
sys.stdin.readline()
if sys.argv[2] == 'fsync':
    os.fsync(fd)
else:
    os.pwrite(fd, b'w' * ${BLOCK}, 0)
print('done', flush=True)
`

/**
 * Opens argv[1] O_DIRECT for writing, says ready, waits for a line, then writes BLOCK bytes of
 * 'w' at 0 from an aligned buffer, in place (the file is longer): the kernel sends such a write
 * in the background (async_dio) and never interrupts it; prints the count.
 */
const DIRECT_WRITER = `
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_DIRECT)
mem = mmap.mmap(-1, ${BLOCK})
mem.write(b'w' * ${BLOCK})
print('ready', flush=True)
sys.stdin.readline()
print(os.pwritev(fd, [mem], 0), flush=True)
`

/**
 * Reads BLOCK bytes of argv[1] by kernel AIO (io_submit, O_DIRECT: the kernel sends the read in
 * the background) from a thread, then, once the thread is gone (its /proc entry with it), says
 * so and waits for the read's event, printing its result; prints no-aio and exits when io_setup
 * fails (aio-max-nr, seccomp). argv[2] says when the thread goes: 'held', it submits at once,
 * says so and exits at the next line of stdin; 'gone', the script says ready with the file open
 * and at the next line of stdin the thread submits and exits at once. x86_64 syscall numbers.
 */
const AIO = `
import ctypes, mmap, os, struct, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
SYS_io_setup, SYS_io_getevents, SYS_io_submit = 206, 208, 209
held = sys.argv[2] == 'held'
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, ${BLOCK})
ctx = ctypes.c_ulong(0)
if libc.syscall(SYS_io_setup, 1, ctypes.byref(ctx)) != 0:
    print('no-aio %d' % ctypes.get_errno(), flush=True)
    sys.exit(0)
iocb = ctypes.create_string_buffer(struct.pack('=QIIHhIQQqQII', 1, 0, 0, 0, 0, fd, ctypes.addressof(ctypes.c_char.from_buffer(buf)), ${BLOCK}, 0, 0, 0, 0), 64)
iocbs = (ctypes.c_void_p * 1)(ctypes.addressof(iocb))
if not held:
    print('ready', flush=True)
    sys.stdin.readline()
tids = []
def submit():
    tids.append(threading.get_native_id())
    assert libc.syscall(SYS_io_submit, ctx, 1, iocbs) == 1, ctypes.get_errno()
    if held:
        print('submitted', flush=True)
        sys.stdin.readline()
th = threading.Thread(target=submit)
th.start()
th.join()
bound = time.monotonic() + 10
while os.path.exists('/proc/self/task/%d' % tids[0]) and time.monotonic() < bound:
    time.sleep(0.01)
assert not os.path.exists('/proc/self/task/%d' % tids[0]), 'the submitting thread is still there'
print('gone', flush=True)
event = ctypes.create_string_buffer(32)
assert libc.syscall(SYS_io_getevents, ctx, 1, 1, event, None) == 1, ctypes.get_errno()
print(struct.unpack('=QQqq', event.raw)[2], flush=True)
`

/** argv[2] threads each readlink(argv[1]) (held in the Volume: each holds one of libfuse's workers). */
const HOLDER = `
import os, sys, threading
def one():
    try:
        os.readlink(sys.argv[1])
    except OSError:
        pass
threads = [threading.Thread(target=one) for _ in range(int(sys.argv[2]))]
for th in threads:
    th.start()
for th in threads:
    th.join()
`

/** libfuse's workers at most (fuse/binding.c MAX_THREADS): as many held requests leave none to read the device. */
const MAX_THREADS = 64

/** Starts AIO on `file` ('held': its thread exits once the read reached JS); skips the test when this host gives no AIO (io_setup fails: aio-max-nr, seccomp). */
async function startAio (t: Teardown, ctx: Mocha.Context, file: string, held: () => boolean): Promise<Proc> {
  const aio = start(t, ['python3', '-c', AIO, file, 'held'])
  await until('the AIO read held (or no AIO here)', () => aio.out().startsWith('no-aio') || (held() && aio.out().includes('submitted\n')), 20_000)
  if (aio.out().startsWith('no-aio')) {
    console.log(`    (skipped: io_setup failed here: ${aio.out().trim()})`)
    ctx.skip()
  }
  // the submitting thread exits only once its read has reached JS (the binding noted its
  // process when the read arrived)
  aio.child.stdin!.end('go\n')
  await until('the submitting thread gone', () => aio.out().includes('gone\n'), 20_000)
  return aio
}

/** `p`, failing with `what` past `ms` (a held call that never came, not a mocha timeout). */
async function bounded<T> (p: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what}: not within ${ms} ms`)) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}

describe('fuse: a caller killed while its request waits', function () {
  this.timeout(60_000)
  let t: Teardown
  beforeEach(function () { t = teardown() })
  afterEach(async function () { await t.run() })

  for (const [how, sig] of [['Ctrl-C (SIGINT, not handled)', 'SIGINT'], ['kill -9', 'SIGKILL']] as const) {
    it(`a read of a file whose holders do not answer, its reader sent ${how}: the reader is gone at once, the read's signal aborts, and the mount serves the next read`, async function () {
      const volume = createMemoryVolume()
      await volume.writeFile('/f', 'r'.repeat(BLOCK))
      await volume.writeFile('/g', 'ok')
      const signals: Array<AbortSignal | undefined> = []
      const release = later()
      // a fetch from holders that never answer: it ends when its signal aborts
      holdReads(volume, signals, release.promise)
      const { dir, m } = await mounted(t, volume)
      t.add(() => { release.resolve() })
      // O_DIRECT: the read is made in the reader's own call (no readahead in the background)
      const reader = start(t, ['python3', '-c', READER, `${dir}/f`, 'direct'])
      await until('the reader ready', () => reader.out().startsWith('ready\n'), 20_000)
      reader.child.stdin!.end('go\n')
      await until('the read waiting on the Volume', () => signals.length === 1, 20_000)
      const ms = await killTime(reader, sig)
      assert.ok(ms < GONE_MS, `the reader took ${Math.round(ms)} ms to go`)
      assert.equal(m.writeStats().killed, 1)
      await until('the read\'s signal aborted', () => signals[0]?.aborted === true, GONE_MS)
      assert.equal(await ok(`cat "${dir}/g"`), 'ok')
    })
  }

  it('more O_DIRECT readers held than the binding looks at in one pass (WATCH_MAX, 64), the last sent kill -9: its caller is looked at in its turn, and it is gone at once', async function () {
    this.timeout(150_000)
    const N = 70
    const volume = createMemoryVolume()
    await volume.writeFile('/f', 'r'.repeat(BLOCK))
    const release = later()
    let reads = 0
    wrapHandles(volume, path => path === '/f', fh => ({
      readBytes: undefined,
      read: async (buffer, offset, length, position, options?: AbortOptions) => {
        reads++
        await held(options?.signal, release.promise)
        options?.signal?.throwIfAborted()
        return await fh.read(buffer, offset, length, position)
      }
    }))
    const { dir, m } = await mounted(t, volume)
    t.add(() => { release.resolve() })
    // started together (each python takes ~0.2 s of CPU to start: one after another is 15 s on a loaded 2-core CI)
    const readers: Proc[] = []
    for (let i = 0; i < N; i++) readers.push(start(t, ['python3', '-c', READER, `${dir}/f`, 'direct']))
    await until('the readers have the file open', () => readers.every(r => r.out().startsWith('ready\n')), 60_000)
    // one at a time, so the last reader's read is the last in the binding's lists
    for (const [i, r] of readers.entries()) {
      r.child.stdin!.end('go\n')
      await until('its read held in the Volume', () => reads === i + 1, 20_000)
    }
    const ms = await killTime(readers[N - 1], 'SIGKILL')
    assert.ok(ms < GONE_MS, `the last reader took ${Math.round(ms)} ms to go`)
    assert.equal(m.writeStats().killed, 1)
  })

  it('an AIO O_DIRECT read whose submitting thread exited (no /proc entry), its process alive: not taken for a dying caller\'s, it is answered with the bytes; a killed reader held beside it is gone at once', async function () {
    if (process.arch !== 'x64') this.skip()
    const volume = createMemoryVolume()
    await volume.writeFile('/f', 'r'.repeat(BLOCK))
    const release = later()
    const signals: Array<AbortSignal | undefined> = []
    holdReads(volume, signals, release.promise)
    const { dir, m } = await mounted(t, volume)
    t.add(() => { release.resolve() })
    const aio = await startAio(t, this, `${dir}/f`, () => signals.length === 1)
    const reader = start(t, ['python3', '-c', READER, `${dir}/f`, 'direct'])
    await until('the reader has the file open', () => reader.out().startsWith('ready\n'), 20_000)
    reader.child.stdin!.end('go\n')
    await until('its read held in the Volume', () => signals.length === 2, 20_000)
    // the binding looks at the callers of both reads (older than READ_WATCH_MS) in one pass
    const ms = await killTime(reader, 'SIGKILL')
    assert.ok(ms < GONE_MS, `the killed reader took ${Math.round(ms)} ms to go`)
    assert.equal(signals[0]?.aborted, false, 'the AIO read was cut short')
    assert.equal(m.writeStats().killed, 1)
    release.resolve()
    await aio.exited
    assert.equal(aio.out(), `submitted\ngone\n${BLOCK}\n`)
  })

  it('cat of a file whose holders do not answer, sent Ctrl-C: cat is gone at once, and the mount serves the next cat', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/f', 'r'.repeat(BLOCK))
    await volume.writeFile('/g', 'ok')
    const signals: Array<AbortSignal | undefined> = []
    const release = later()
    holdReads(volume, signals, release.promise)
    const { dir } = await mounted(t, volume)
    t.add(() => { release.resolve() })
    const cat = start(t, ['cat', `${dir}/f`])
    await until('cat\'s read waiting on the Volume', () => signals.length >= 1, 20_000)
    const ms = await killTime(cat, 'SIGINT')
    assert.ok(ms < GONE_MS, `cat took ${Math.round(ms)} ms to go`)
    assert.equal(await ok(`cat "${dir}/g"`), 'ok')
  })

  it('cat of a file whose holders do not answer, sent kill -9: its readahead (no interrupt, its thread gone at once) is taken for a dying caller\'s: the read\'s signal aborts well before the deadline', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/f', 'r'.repeat(BLOCK))
    const signals: Array<AbortSignal | undefined> = []
    const release = later()
    holdReads(volume, signals, release.promise)
    const { dir, m } = await mounted(t, volume)
    t.add(() => { release.resolve() })
    const cat = start(t, ['cat', `${dir}/f`])
    await until('cat\'s readahead waiting on the Volume', () => signals.length >= 1, 20_000)
    const ms = await killTime(cat, 'SIGKILL')
    assert.ok(ms < GONE_MS, `cat took ${Math.round(ms)} ms to go`)
    await until('the readahead\'s signal aborted', () => signals[0]?.aborted === true, GONE_MS)
    assert.equal(m.writeStats().killed, 1)
  })

  it('an AIO O_DIRECT read whose submitting thread exited, its process then sent kill -9 (it waits for the read in exit_aio): the read is taken for a dying caller\'s, the process is gone at once', async function () {
    if (process.arch !== 'x64') this.skip()
    const volume = createMemoryVolume()
    await volume.writeFile('/f', 'r'.repeat(BLOCK))
    const release = later()
    const signals: Array<AbortSignal | undefined> = []
    holdReads(volume, signals, release.promise)
    const { dir, m } = await mounted(t, volume)
    t.add(() => { release.resolve() })
    const aio = await startAio(t, this, `${dir}/f`, () => signals.length === 1)
    const ms = await killTime(aio, 'SIGKILL')
    assert.ok(ms < GONE_MS, `the AIO reader took ${Math.round(ms)} ms to go`)
    await until('the AIO read\'s signal aborted', () => signals[0]?.aborted === true, GONE_MS)
    assert.equal(m.writeStats().killed, 1)
  })

  /**
   * An AIO read of /f whose submitting thread is gone before the read reaches the mount (every
   * libfuse worker held by a readlink meanwhile, so nothing reads the device; then one let go),
   * held in the Volume; its process alive, waiting for the read's event.
   */
  async function aioGoneAtArrival (ctx: Mocha.Context): Promise<{ aio: Proc, dir: string, m: Mount, signals: Array<AbortSignal | undefined>, release: () => void }> {
    const volume = createMemoryVolume()
    await volume.writeFile('/f', 'r'.repeat(BLOCK))
    await volume.symlink('f', '/s')
    const signals: Array<AbortSignal | undefined> = []
    const release = later()
    wrapHandles(volume, path => path === '/f', fh => ({
      readBytes: undefined,
      read: async (buffer, offset, length, position, options?: AbortOptions) => {
        signals.push(options?.signal)
        await held(options?.signal, release.promise)
        options?.signal?.throwIfAborted()
        return await fh.read(buffer, offset, length, position)
      }
    }))
    // readlinks held until let go one by one (`links`), or all at the end
    const links: Array<() => void> = []
    const readlink = volume.readlink.bind(volume)
    volume.readlink = async (path: string, options?: AbortOptions) => {
      await new Promise<void>(resolve => { links.push(resolve); void release.promise.then(resolve) })
      return await readlink(path, options)
    }
    // the kernel's attributes kept for the whole test: an AIO read with them stale first asks for
    // them (getattr, auto_inval_data) in the submitting thread, which no held worker would answer
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir, { attrTimeout: 3600 })
    t.add(async () => { await m.unmount() })
    t.add(() => { release.resolve() })
    const aio = start(t, ['python3', '-c', AIO, `${dir}/f`, 'gone'])
    await until('the AIO reader has the file open', () => aio.out() !== '', 20_000)
    if (aio.out().startsWith('no-aio')) {
      console.log(`    (skipped: io_setup failed here: ${aio.out().trim()})`)
      ctx.skip()
    }
    start(t, ['python3', '-c', HOLDER, `${dir}/s`, String(MAX_THREADS)])
    await until('every worker held by a readlink', () => links.length === MAX_THREADS, 30_000)
    aio.child.stdin!.end('go\n')
    await until('the submitting thread gone', () => aio.out().includes('gone\n'), 20_000)
    assert.equal(signals.length, 0, 'the read reached the mount while its thread lived')
    links[0]()
    await until('the read held in the Volume', () => signals.length === 1, 20_000)
    return { aio, dir, m, signals, release: () => { release.resolve() } }
  }

  it('an AIO O_DIRECT read whose submitting thread was gone before the read reached the mount (no process of its own known), its process then sent kill -9: the handle\'s opener, waiting in exit_aio, is found dying, the process is gone at once', async function () {
    if (process.arch !== 'x64') this.skip()
    this.timeout(90_000)
    const { aio, m, signals } = await aioGoneAtArrival(this)
    const ms = await killTime(aio, 'SIGKILL')
    assert.ok(ms < GONE_MS, `the AIO reader took ${Math.round(ms)} ms to go`)
    await until('the AIO read\'s signal aborted', () => signals[0]?.aborted === true, GONE_MS)
    assert.equal(m.writeStats().killed, 1)
  })

  it('an AIO O_DIRECT read whose submitting thread was gone before the read reached the mount, its process alive: not cut short (its opener lives), it is answered with the bytes; a killed reader held beside it is gone at once', async function () {
    if (process.arch !== 'x64') this.skip()
    this.timeout(90_000)
    const { aio, dir, m, signals, release } = await aioGoneAtArrival(this)
    // (one worker is free again: the reader's open is served)
    const reader = start(t, ['python3', '-c', READER, `${dir}/f`, 'direct'])
    await until('the reader has the file open', () => reader.out().startsWith('ready\n'), 20_000)
    reader.child.stdin!.end('go\n')
    await until('its read held in the Volume', () => signals.length === 2, 20_000)
    // the binding looks at the callers of both reads (older than READ_WATCH_MS) in one pass
    const ms = await killTime(reader, 'SIGKILL')
    assert.ok(ms < GONE_MS, `the killed reader took ${Math.round(ms)} ms to go`)
    assert.equal(signals[0]?.aborted, false, 'the AIO read was cut short')
    assert.equal(m.writeStats().killed, 1)
    release()
    await aio.exited
    assert.equal(aio.out(), `ready\ngone\n${BLOCK}\n`)
  })

  it('a page read in the caller\'s own call (its readahead failed), the caller sent Ctrl-C: the kernel\'s interrupt is answered EINTR at once, the read\'s signal aborts', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/f', 'r'.repeat(BLOCK))
    const signals: Array<AbortSignal | undefined> = []
    const release = later()
    let reads = 0
    wrapHandles(volume, path => path === '/f', fh => ({
      readBytes: undefined,
      read: async (buffer, offset, length, position, options?: AbortOptions) => {
        // the first (the kernel's readahead, which no signal interrupts) fails at once: the
        // kernel then reads the page itself, in the reader's call, which a signal interrupts
        if (++reads === 1) throw Object.assign(new Error('a transient failure'), { code: 'EIO' })
        signals.push(options?.signal)
        await held(options?.signal, release.promise)
        options?.signal?.throwIfAborted()
        return await fh.read(buffer, offset, length, position)
      }
    }))
    const { dir, m } = await mounted(t, volume)
    t.add(() => { release.resolve() })
    const reader = start(t, ['python3', '-c', READER, `${dir}/f`, 'cached'])
    await until('the reader ready', () => reader.out().startsWith('ready\n'), 20_000)
    reader.child.stdin!.end('go\n')
    await until('the read waiting on the Volume', () => signals.length === 1, 20_000)
    const ms = await killTime(reader, 'SIGINT')
    assert.ok(ms < GONE_MS, `the reader took ${Math.round(ms)} ms to go`)
    assert.equal(m.writeStats().interrupted, 1, 'the kernel interrupted the read')
    assert.equal(m.writeStats().killed, 1)
    await until('the read\'s signal aborted', () => signals[0]?.aborted === true, GONE_MS)
  })

  it('an fsync waiting for peers, its caller sent kill -9: the caller is gone at once, the fsync\'s signal aborts, the bytes written stay', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/f', '')
    const signals: Array<AbortSignal | undefined> = []
    const release = later()
    wrapHandles(volume, path => path === '/f', fh => ({
      sync: async (options?: AbortOptions) => {
        signals.push(options?.signal)
        await held(options?.signal, release.promise)
        options?.signal?.throwIfAborted()
        await fh.sync(options)
      }
    }))
    const { dir, m } = await mounted(t, volume)
    t.add(() => { release.resolve() })
    const writer = start(t, ['python3', '-c', WRITER, `${dir}/f`, 'fsync'])
    await until('the writer ready', () => writer.out().startsWith('ready\n'), 20_000)
    writer.child.stdin!.end('go\n')
    await until('the fsync waiting', () => signals.length === 1, 20_000)
    const ms = await killTime(writer, 'SIGKILL')
    assert.ok(ms < GONE_MS, `the writer took ${Math.round(ms)} ms to go`)
    assert.equal(m.writeStats().killed, 1)
    await until('the fsync\'s signal aborted', () => signals[0]?.aborted === true, GONE_MS)
    assert.equal(await ok(`wc -c < "${dir}/f"`), `${BLOCK}\n`)
  })

  it('an fsync whose caller a handled signal reached, then kill -9 (which brings no second interrupt): the handled one does not cut it short, the kill does', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/f', '')
    const signals: Array<AbortSignal | undefined> = []
    const release = later()
    wrapHandles(volume, path => path === '/f', fh => ({
      sync: async (options?: AbortOptions) => {
        signals.push(options?.signal)
        await held(options?.signal, release.promise)
        options?.signal?.throwIfAborted()
        await fh.sync(options)
      }
    }))
    const { dir, m } = await mounted(t, volume)
    t.add(() => { release.resolve() })
    const writer = start(t, ['python3', '-c', 'import signal\nsignal.signal(signal.SIGUSR1, lambda s, f: None)\n' + WRITER, `${dir}/f`, 'fsync'])
    await until('the writer ready', () => writer.out().startsWith('ready\n'), 20_000)
    writer.child.stdin!.end('go\n')
    await until('the fsync waiting', () => signals.length === 1, 20_000)
    writer.child.kill('SIGUSR1')
    // the kernel's interrupt reaches libfuse, and the worker sees it, but the caller lives on
    await until('the fsync seen interrupted', () => m.writeStats().interruptedOthers === 1, 20_000)
    assert.equal(m.writeStats().killed, 0)
    assert.equal(signals[0]?.aborted, false, 'a handled signal does not cut the fsync short')
    const ms = await killTime(writer, 'SIGKILL')
    assert.ok(ms < GONE_MS, `the writer took ${Math.round(ms)} ms to go`)
    assert.equal(m.writeStats().killed, 1)
    await until('the fsync\'s signal aborted', () => signals[0]?.aborted === true, GONE_MS)
  })

  it('a write held in the Volume, its writer sent kill -9: the writer is gone at once, and the write is not cut short: it runs to its end and is there whole', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/f', '')
    const arrived = later<AbortSignal | undefined>()
    const release = later()
    const written = later()
    wrapHandles(volume, path => path === '/f', fh => ({
      write: async (buffer, offset, length, position, options?: AbortOptions) => {
        arrived.resolve(options?.signal)
        await release.promise
        const r = await fh.write(buffer, offset, length, position)
        written.resolve()
        return r
      }
    }))
    const { dir, m } = await mounted(t, volume)
    t.add(() => { release.resolve() })
    const writer = start(t, ['python3', '-c', WRITER, `${dir}/f`, 'write'])
    await until('the writer ready', () => writer.out().startsWith('ready\n'), 20_000)
    writer.child.stdin!.end('go\n')
    const signal = await bounded(arrived.promise, 'the write held in the Volume')
    const ms = await killTime(writer, 'SIGKILL')
    assert.ok(ms < GONE_MS, `the writer took ${Math.round(ms)} ms to go`)
    assert.equal(m.writeStats().killed, 1)
    assert.equal(signal?.aborted, false, 'a write is not aborted by its caller\'s death')
    release.resolve()
    await written.promise
    assert.equal(await ok(`cat "${dir}/f"`), 'w'.repeat(BLOCK))
  })

  it('an in-place O_DIRECT write held in the Volume (a background request: never interrupted), its writer sent kill -9: the writer is gone at once, and the write runs to its end, there whole', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/f', 'r'.repeat(2 * BLOCK))
    const arrived = later<AbortSignal | undefined>()
    const release = later()
    const written = later()
    wrapHandles(volume, path => path === '/f', fh => ({
      write: async (buffer, offset, length, position, options?: AbortOptions) => {
        arrived.resolve(options?.signal)
        await release.promise
        const r = await fh.write(buffer, offset, length, position)
        written.resolve()
        return r
      }
    }))
    const { dir, m } = await mounted(t, volume)
    t.add(() => { release.resolve() })
    const writer = start(t, ['python3', '-c', DIRECT_WRITER, `${dir}/f`])
    await until('the writer ready', () => writer.out().startsWith('ready\n'), 20_000)
    writer.child.stdin!.end('go\n')
    const signal = await bounded(arrived.promise, 'the write held in the Volume')
    const ms = await killTime(writer, 'SIGKILL')
    assert.ok(ms < GONE_MS, `the writer took ${Math.round(ms)} ms to go`)
    assert.equal(m.writeStats().interrupted, 0, 'the kernel interrupted the write (not a background one?)')
    assert.equal(m.writeStats().killed, 1)
    assert.equal(signal?.aborted, false, 'a write is not aborted by its caller\'s death')
    release.resolve()
    await written.promise
    assert.equal(await ok(`cat "${dir}/f"`), 'w'.repeat(BLOCK) + 'r'.repeat(BLOCK))
  })

  it('a chmod of a hard-linked file held in the Volume, its caller sent kill -9: answered EINTR early, the other name\'s cached attributes are refreshed once the chmod ends (not left for attr_timeout)', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/a', 'x')
    await volume.chmod('/a', 0o644)
    await volume.link('/a', '/b')
    const arrived = later()
    const release = later()
    let ended = false
    const chmod = volume.chmod.bind(volume)
    volume.chmod = async (path, mode, o) => {
      arrived.resolve()
      await release.promise
      await chmod(path, mode, o)
      ended = true
    }
    const dir = await tempDir(t, 'darkfs-mnt-')
    // attributes cached for a minute: only a refresh shows the change within the test
    const m = await mount(volume, dir, { attrTimeout: 60 })
    t.add(async () => { await m.unmount() })
    t.add(() => { release.resolve() })
    assert.equal((await ok(`stat -c %a "${dir}/a" "${dir}/b"`)).trim(), '644\n644')
    const changer = start(t, ['chmod', '600', `${dir}/a`])
    await bounded(arrived.promise, 'the chmod held in the Volume')
    const ms = await killTime(changer, 'SIGKILL')
    assert.ok(ms < GONE_MS, `the chmod took ${Math.round(ms)} ms to go`)
    assert.equal(m.writeStats().killed, 1)
    release.resolve()
    await until('the chmod ended', () => ended, GONE_MS)
    await until('the other name shows the new mode', async () => (await ok(`stat -c %a "${dir}/b"`)).trim() === '600', GONE_MS)
  })

  it('an open held in the Volume, its caller sent kill -9: answered EINTR, and the handle the open makes once it ends is closed (the kernel never got it, so never releases it)', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/f', 'x')
    const arrived = later()
    const release = later()
    let closed = false
    const open = volume.open.bind(volume)
    volume.open = async (...args: Parameters<typeof volume.open>) => {
      if (args[0] !== '/f') return await open(...args)
      arrived.resolve()
      // a Volume call that ends on its own, whatever its signal says (it looked last before the abort)
      await release.promise
      const fh = await open(args[0], args[1], args[2], args[3])
      return { ...fh, path: fh.path, ino: fh.ino, close: async () => { await fh.close(); closed = true } }
    }
    const { dir, m } = await mounted(t, volume)
    t.add(() => { release.resolve() })
    const opener = start(t, ['python3', '-c', 'import os, sys\nos.open(sys.argv[1], os.O_RDONLY)\nprint("opened", flush=True)', `${dir}/f`])
    await bounded(arrived.promise, 'the open held in the Volume')
    const ms = await killTime(opener, 'SIGKILL')
    assert.ok(ms < GONE_MS, `the opener took ${Math.round(ms)} ms to go`)
    assert.equal(m.writeStats().killed, 1)
    release.resolve()
    await until('the handle the answered open made closed', () => closed, 20_000)
    assert.equal(await ok(`cat "${dir}/f"`), 'x')
  })

  it('a rename held in the Volume, its caller sent kill -9: answered only once applied, so libfuse moves its node: a handle open on the file reaches it by its new name, not the next file given the old one', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/a', 'old')
    await volume.chmod('/a', 0o644)
    const arrived = later()
    const release = later()
    const rename = volume.rename.bind(volume)
    volume.rename = async (...args: Parameters<typeof volume.rename>) => {
      if (args[0] !== '/a') return await rename(...args)
      arrived.resolve()
      // a Volume call that ends on its own, whatever its signal says
      await release.promise
      await rename(args[0], args[1])
    }
    const { dir, m } = await mounted(t, volume)
    t.add(() => { release.resolve() })
    const holder = start(t, ['python3', '-c', 'import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nprint("open", flush=True)\nsys.stdin.readline()\nos.fchmod(fd, 0o600)\nprint("done", flush=True)', `${dir}/a`])
    await until('the holder has /a open', () => holder.out().includes('open\n'), 20_000)
    const mover = start(t, ['python3', '-c', 'import os, sys\nos.rename(sys.argv[1], sys.argv[2])', `${dir}/a`, `${dir}/b`])
    await bounded(arrived.promise, 'the rename held in the Volume')
    mover.child.kill('SIGKILL')
    await until('the binding saw the mover dying', () => m.writeStats().killed === 1, 20_000)
    release.resolve()
    await mover.exited
    await ok(`echo new > "${dir}/a" && chmod 644 "${dir}/a"`)
    holder.child.stdin!.end('go\n')
    await holder.exited
    assert.match(holder.out(), /done/)
    assert.equal((await volume.lstat('/b')).mode & 0o777, 0o600, 'the holder\'s fchmod reached the renamed file')
    assert.equal((await volume.lstat('/a')).mode & 0o777, 0o644, 'the holder\'s fchmod reached the new /a')
    assert.equal(await ok(`cat "${dir}/a" "${dir}/b"`), 'new\nold')
  })

  it('an open(O_TRUNC) held in the Volume, its caller sent kill -9: a change, it is not cut short (its signal never aborts) and not answered early: the file is emptied, and the handle it made is closed', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/f', 'x'.repeat(BLOCK))
    const arrived = later()
    const release = later()
    let aborted = false
    let closed = false
    const open = volume.open.bind(volume)
    volume.open = async (...args: Parameters<typeof volume.open>) => {
      if (args[0] !== '/f') return await open(...args)
      const signal = args[4]?.signal
      signal?.addEventListener('abort', () => { aborted = true }, { once: true })
      arrived.resolve()
      await held(signal, release.promise)
      signal?.throwIfAborted()
      const fh = await open(...args)
      return { ...fh, path: fh.path, ino: fh.ino, close: async () => { await fh.close(); closed = true } }
    }
    const { dir, m } = await mounted(t, volume)
    t.add(() => { release.resolve() })
    const opener = start(t, ['python3', '-c', 'import os, sys\nos.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)\nprint("opened", flush=True)', `${dir}/f`])
    await bounded(arrived.promise, 'the open(O_TRUNC) held in the Volume')
    opener.child.kill('SIGKILL')
    await until('the binding saw the opener dying', () => m.writeStats().killed === 1, 20_000)
    release.resolve()
    await opener.exited
    assert.equal(aborted, false, 'the open(O_TRUNC) was cut short')
    await until('the handle the open made closed', () => closed, 20_000)
    assert.equal((await volume.lstat('/f')).size, 0)
  })

  for (const tool of ['F_SETLKW', 'flock'] as const) {
    for (const sig of ['SIGINT', 'SIGKILL'] as const) {
      it(`a ${tool} lock wait, the waiter sent ${sig}: it is gone at once, the mount serves on, and the lock is never the killed waiter's`, async function () {
        const volume = createMemoryVolume()
        await volume.writeFile('/f', '')
        const { dir } = await mounted(t, volume)
        const f = `${dir}/f`
        // the holder: takes the lock, says so, lets it go on a line of its stdin
        const holder = start(t, tool === 'flock'
          ? ['flock', '-x', f, 'sh', '-c', 'echo held; read x']
          : ['python3', '-c', 'import fcntl, sys\nf = open(sys.argv[1], "r+")\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint("held", flush=True)\nsys.stdin.readline()', f])
        await until('the holder holding', () => holder.out().includes('held\n'), 20_000)
        // the waiter: waits for the lock (SIGINT left to its default action: it is not handled)
        const waiter = start(t, tool === 'flock'
          ? ['flock', '-x', f, 'echo', 'got']
          : ['python3', '-c', 'import fcntl, signal, sys\nsignal.signal(signal.SIGINT, signal.SIG_DFL)\nf = open(sys.argv[1], "r+")\nprint("waiting", flush=True)\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint("got", flush=True)', f])
        if (tool === 'F_SETLKW') await until('the waiter waiting', () => waiter.out().includes('waiting\n'), 20_000)
        // blocked in the kernel's lock wait: its state is S (sleeping) with no lock
        await until('the waiter blocked', async () => (await ok(`cat /proc/${waiter.child.pid!}/wchan; echo`)).match(/lock|setlk/) !== null, 20_000)
        const ms = await killTime(waiter, sig)
        assert.ok(ms < GONE_MS, `the waiter took ${Math.round(ms)} ms to go`)
        assert.ok(!waiter.out().includes('got'), 'the killed waiter never had the lock')
        holder.child.stdin!.end('\n')
        await holder.exited
        // free: a try-lock gets it (the killed waiter's wait left no lock behind)
        assert.equal(await ok(`flock -xn "${f}" echo free`), 'free\n')
        assert.equal(await ok(`python3 -c 'import fcntl, sys; f = open(sys.argv[1], "r+"); fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB); print("free")' "${f}"`), 'free\n')
        assert.equal(await ok(`echo next > "${f}"; cat "${f}"`), 'next\n')
      })
    }
  }

  it('a caught signal (SIGUSR1, handled) in an F_SETLKW wait: the wait ends EINTR, as POSIX has it', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/f', '')
    const { dir } = await mounted(t, volume)
    const f = `${dir}/f`
    const holder = start(t, ['python3', '-c', 'import fcntl, sys\nf = open(sys.argv[1], "r+")\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint("held", flush=True)\nsys.stdin.readline()', f])
    await until('the holder holding', () => holder.out().includes('held\n'), 20_000)
    const waiter = start(t, ['python3', '-c', [
      'import ctypes, errno, fcntl, signal, struct, sys',
      'signal.signal(signal.SIGUSR1, lambda s, fr: None)',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'f = open(sys.argv[1], "r+")',
      'lk = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)',
      'buf = ctypes.create_string_buffer(lk)',
      'print("waiting", flush=True)',
      'r = libc.fcntl(f.fileno(), fcntl.F_SETLKW, buf)',
      'print(r if r >= 0 else errno.errorcode[ctypes.get_errno()], flush=True)'
    ].join('\n'), f])
    await until('the waiter blocked', async () => waiter.out().includes('waiting\n') && (await ok(`cat /proc/${waiter.child.pid!}/wchan; echo`)).match(/lock|setlk/) !== null, 20_000)
    waiter.child.kill('SIGUSR1')
    const r = await waiter.exited
    assert.equal(r.code, 0, waiter.out())
    assert.equal(waiter.out().trim().split('\n').pop(), 'EINTR')
    holder.child.stdin!.end('\n')
    await holder.exited
  })
})
