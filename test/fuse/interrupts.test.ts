// Reads and writes answered from the JS thread (fuse/binding.c read_direct, write_direct) and the
// kernel's interrupts and deadlines: a caller a signal reaches while its request waits on the
// Volume (the kernel's FUSE_INTERRUPT, for any signal it handles) is not cut short: the request
// is answered by JS, once; a request JS never answers (its event loop stuck) is answered EIO by
// the binding's own deadline. The callers are other processes (python3, libc's read/write
// through ctypes: no retry on EINTR), which open the file, say so, and make their one call when told.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { AbortOptions } from '@libp2p/interface'
import { teardown, tempDir, ok, sh } from '../helpers/fuse-mount.ts'
import type { Teardown } from '../helpers/fuse-mount.ts'
import { mount } from '../../fuse/index.ts'
import { until } from '../../harness/cluster.ts'
import { createMemoryVolume } from '../../harness/memory-volume.ts'
import { wrapHandles } from '../helpers/wrap-handles.ts'

const BLOCK = 4096

/**
 * The event loop stuck (as a bug or a long synchronous task would make it: JS's own deadline
 * timers cannot run) until `done()`, polled through the binding, which answers from its own
 * threads; 90 s at most.
 */
function stuckUntil (done: () => boolean): void {
  const cell = new Int32Array(new SharedArrayBuffer(4))
  const bound = Date.now() + 90_000
  while (!done() && Date.now() < bound) Atomics.wait(cell, 0, 0, 20)
}

/**
 * `volume` mounted at `dir` with short deadlines (200 ms, sync requests 300 ms) whose event loop,
 * once armed (`arm()`), is stuck right after the first request `after(op, errno)` picks is
 * answered (stuckUntil()), until the binding has given up `requests` requests
 * (writeStats().expiredOthers); `stuck()`: how many it had given up then (0 before).
 */
async function mountStuckAfter (t: Teardown, volume: ReturnType<typeof createMemoryVolume>, dir: string, after: (op: string, errno: number) => boolean, requests: number): Promise<{ arm: () => void, stuck: () => number }> {
  let armed = false
  let stuck = 0
  const m = await mount(volume, dir, {
    requestTimeoutMs: 200,
    syncTimeoutMs: 300,
    onOp: (op, _s, errno) => {
      if (!armed || !after(op, errno)) return
      armed = false
      stuckUntil(() => m.writeStats().expiredOthers >= requests)
      stuck = m.writeStats().expiredOthers
    }
  })
  t.add(async () => { await m.unmount() })
  return { arm: () => { armed = true }, stuck: () => stuck }
}

/** A process that opens `path`, says `ready`, and on `go` makes one read(2) or write(2) of BLOCK bytes, printing its result or errno name. */
const CALLER = `
import ctypes, errno, mmap, os, signal, sys
signal.signal(signal.SIGUSR1, lambda s, f: None)
libc = ctypes.CDLL(None, use_errno=True)
op, path, direct = sys.argv[1], sys.argv[2], sys.argv[3] == 'direct'
fd = os.open(path, (os.O_RDONLY if op == 'read' else os.O_WRONLY) | (os.O_DIRECT if direct else 0))
mem = mmap.mmap(-1, ${BLOCK})
mem.write(b'w' * ${BLOCK})
buf = ctypes.c_void_p(ctypes.addressof(ctypes.c_char.from_buffer(mem)))
print('ready', flush=True)
sys.stdin.readline()
n = (libc.read if op == 'read' else libc.write)(fd, buf, ctypes.c_size_t(${BLOCK}))
print(n if n >= 0 else errno.errorcode[ctypes.get_errno()], flush=True)
`

/** A process that opens `path` O_DIRECT, says `ready`, and on `go` makes two write(2)s of BLOCK bytes, one after the other, printing each result or errno name. */
const TWO_WRITES = `
import ctypes, errno, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_DIRECT)
mem = mmap.mmap(-1, ${BLOCK})
mem.write(b'w' * ${BLOCK})
buf = ctypes.c_void_p(ctypes.addressof(ctypes.c_char.from_buffer(mem)))
print('ready', flush=True)
sys.stdin.readline()
for _ in range(2):
    n = libc.write(fd, buf, ctypes.c_size_t(${BLOCK}))
    print(n if n >= 0 else errno.errorcode[ctypes.get_errno()], flush=True)
`

interface Caller { pid: number, ready: Promise<void>, go: () => void, result: Promise<string> }

function caller (t: Teardown, op: 'read' | 'write' | 'two-writes', path: string, mode: 'direct' | 'cached' = 'cached'): Caller {
  const args = op === 'two-writes' ? ['-c', TWO_WRITES, path] : ['-c', CALLER, op, path, mode]
  const child = spawn('python3', args, { cwd: '/', stdio: ['pipe', 'pipe', 'inherit'] })
  t.add(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let out = ''
  let readyNow!: () => void
  const ready = new Promise<void>(resolve => { readyNow = resolve })
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s
    if (out.startsWith('ready\n')) readyNow()
  })
  const result = new Promise<string>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', code => {
      if (code !== 0) reject(new Error(`the ${op} caller exited ${String(code)}: ${out}`))
      else resolve(out.replace(/^ready\n/, '').trim())
    })
  })
  return { pid: child.pid!, ready, go: () => { child.stdin.end('go\n') }, result }
}

/** A promise and its resolver. */
function later<T = void> (): { promise: Promise<T>, resolve: (v: T) => void } {
  let resolve!: (v: T) => void
  const promise = new Promise<T>(res => { resolve = res })
  return { promise, resolve }
}

describe('fuse interrupts and native deadlines of direct reads and writes', function () {
  let t: Teardown
  beforeEach(function () { t = teardown() })
  afterEach(async function () { await t.run() })

  it('a write held in JS, its writer sent a signal it handles: the write is not cut short (no EINTR, which an O_APPEND writer retrying would append twice), JS answers it with the count, written once', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/f', '')
    const arrived = later<AbortSignal | undefined>()
    const release = later()
    wrapHandles(volume, path => path === '/f', fh => ({
      // a write behind a slow store: it finishes when the test lets it go
      write: async (buffer, offset, length, position, options?: AbortOptions) => {
        arrived.resolve(options?.signal)
        await release.promise
        return await fh.write(buffer, offset, length, position)
      }
    }))
    t.add(() => { release.resolve() })
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir)
    t.add(async () => { await m.unmount() })
    const writer = caller(t, 'write', `${dir}/f`)
    await writer.ready
    writer.go()
    const signal = await arrived.promise
    process.kill(writer.pid, 'SIGUSR1')
    // the kernel's interrupt reaches the binding, which counts it and leaves the write be
    await until('the interrupt counted', () => m.writeStats().interrupted === 1, 20_000)
    assert.equal(signal?.aborted, false, 'the write\'s signal is not aborted by an interrupt')
    assert.equal(m.writeStats().writes, 1, 'the write is still unanswered')
    release.resolve()
    assert.equal(await writer.result, String(BLOCK))
    assert.equal(await ok(`wc -c < "${dir}/f"`), `${BLOCK}\n`)
    assert.equal(m.writeStats().late, 0, 'answered once, by JS')
  })

  it('a read held in JS, its reader sent a signal it handles (as a Go program\'s preemption signal, or during a page fault of a mapped file): the read is not cut short, the reader gets the bytes', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/f', 'r'.repeat(BLOCK))
    const arrived = later<AbortSignal | undefined>()
    const release = later()
    let reads = 0
    wrapHandles(volume, path => path === '/f', fh => ({
      readBytes: undefined,
      read: async (buffer, offset, length, position, options?: AbortOptions) => {
        reads++
        // the first (the kernel's readahead, which no signal interrupts) fails at once: the
        // kernel then reads the page itself, in the reader's call, which a signal interrupts
        if (reads === 1) throw Object.assign(new Error('a transient failure'), { code: 'EIO' })
        if (reads === 2) {
          arrived.resolve(options?.signal)
          await release.promise
        }
        return await fh.read(buffer, offset, length, position)
      }
    }))
    t.add(() => { release.resolve() })
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir)
    t.add(async () => { await m.unmount() })
    const reader = caller(t, 'read', `${dir}/f`)
    await reader.ready
    reader.go()
    const signal = await arrived.promise
    process.kill(reader.pid, 'SIGUSR1')
    await until('the interrupt counted', () => m.writeStats().interrupted === 1, 20_000)
    assert.equal(signal?.aborted, false)
    release.resolve()
    assert.equal(await reader.result, String(BLOCK))
    assert.equal(m.writeStats().late, 0, 'answered once, by JS')
    assert.equal(await ok(`head -c 4 "${dir}/f"; echo; echo ok > "${dir}/g"; cat "${dir}/g"`), 'rrrr\nok\n')
  })

  it('a read JS never answers (its event loop stuck past the deadline and grace): the binding answers it EIO, the late answer is dropped, and the mount goes on', async function () {
    this.timeout(120_000)
    const volume = createMemoryVolume()
    await volume.writeFile('/f', 'r'.repeat(BLOCK))
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir, { requestTimeoutMs: 200 })
    t.add(async () => { await m.unmount() })
    // O_DIRECT: one read request, which the kernel does not retry
    const reader = caller(t, 'read', `${dir}/f`, 'direct')
    await reader.ready
    reader.go()
    // the event loop stuck (as a bug or a long synchronous task would): JS's own deadline timer
    // cannot run. Polled through the binding, which answers from its own thread
    stuckUntil(() => m.writeStats().expired > 0)
    assert.equal(m.writeStats().expired, 1)
    assert.equal(await reader.result, 'EIO')
    assert.equal(await ok(`head -c 4 "${dir}/f"`), 'rrrr')
    assert.equal(m.writeStats().late, 1, 'the read reached JS after its answer, and was not answered again')
  })

  it('a mkdir JS never answers (its event loop stuck past the sync deadline and grace): the binding answers it EIO, and JS, getting it late, does not make the directory', async function () {
    this.timeout(120_000)
    const volume = createMemoryVolume()
    const dir = await tempDir(t, 'darkfs-mnt-')
    // the kernel's lookup of /d is answered (ENOENT, the only failing getattr here); right after
    // its answer, before mkdir's request reaches JS, the event loop is stuck until the binding
    // has given the mkdir up
    const { arm, stuck } = await mountStuckAfter(t, volume, dir, (op, errno) => op === 'getattr' && errno === 2, 1)
    arm()
    const made = await new Promise<{ code: number | null, err: string }>((resolve, reject) => {
      const child = spawn('mkdir', [`${dir}/d`], { stdio: ['ignore', 'ignore', 'pipe'] })
      let err = ''
      child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s })
      child.on('error', reject)
      child.on('close', code => { resolve({ code, err }) })
    })
    assert.equal(stuck(), 1, 'the mkdir was given up while the event loop was stuck')
    assert.notEqual(made.code, 0)
    assert.match(made.err, /Input\/output error/)
    assert.equal(await ok(`ls -a "${dir}"`), '.\n..\n', 'the directory the caller was told was not made')
  })

  it('a close whose FLUSH and RELEASE the binding gave up (the event loop stuck) still closes the Volume handle once JS runs again: what it holds is not left open until unmount', async function () {
    this.timeout(120_000)
    const volume = createMemoryVolume()
    await volume.writeFile('/f', 'x')
    let closed = 0
    wrapHandles(volume, p => p === '/f', fh => ({
      close: async () => { closed++; await fh.close() }
    }))
    const dir = await tempDir(t, 'darkfs-mnt-')
    // right after the caller's open is answered, the event loop is stuck until the binding has
    // given up both requests its close sends, the FLUSH (close waits for it) and then the RELEASE
    const { arm, stuck } = await mountStuckAfter(t, volume, dir, op => op === 'open', 2)
    arm()
    const r = await sh(`python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_RDONLY))' "${dir}/f"`)
    assert.equal(stuck(), 2, 'the FLUSH and the RELEASE were given up while the event loop was stuck')
    assert.match(r.stderr, /Input\/output error/, 'the close was answered EIO (its FLUSH given up)')
    await until('the handle the caller opened is closed in JS', () => closed === 1, 10_000)
    assert.equal(await ok(`cat "${dir}/f"`), 'x')
  })

  it('a write the deadline answered while the event loop is stuck stays counted against the cap on direct writes until JS has taken it: the next write goes to a libfuse worker, not one more into the queue', async function () {
    this.timeout(120_000)
    const volume = createMemoryVolume()
    await volume.writeFile('/f', '')
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir, { requestTimeoutMs: 200, syncTimeoutMs: 200, directWrites: 1 })
    t.add(async () => { await m.unmount() })
    const writer = caller(t, 'two-writes', `${dir}/f`)
    await writer.ready
    writer.go()
    // the event loop stuck: the first write is answered EIO by the binding's deadline, and the
    // writer makes its second while the first still waits in the queue to JS
    const second = (): boolean => m.writeStats().copied + m.writeStats().overCap >= 2
    stuckUntil(() => m.writeStats().expired === 1 && second())
    const stuck = m.writeStats()
    assert.equal(stuck.expired, 1)
    assert.equal(stuck.copied, 1, 'one write went the direct way')
    assert.equal(stuck.overCap, 1, 'the second found the cap taken by the first, answered but not taken by JS')
    assert.equal(stuck.writes, 1)
    assert.equal(stuck.writeBytes, BLOCK)
    // the loop runs again: the first reaches JS already answered (dropped), the second is written
    assert.deepEqual((await writer.result).split('\n'), ['EIO', String(BLOCK)])
    assert.equal(m.writeStats().late, 1)
    assert.equal(m.writeStats().writes, 0)
    assert.equal(m.writeStats().writeBytes, 0)
    assert.equal(await ok(`wc -c < "${dir}/f"`), `${BLOCK}\n`)
  })
})
