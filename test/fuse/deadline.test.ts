// Every request has a deadline: a Volume call that never finishes becomes EIO for the caller,
// and the mount keeps serving everything else. The deadline is the request's signal: the Volume
// call behind a request that passed it is aborted, down to the network fetch.
import assert from 'node:assert/strict'
import type { AbortOptions } from '@libp2p/interface'
import { teardown, tempDir, ok, sh } from '../helpers/fuse-mount.ts'
import type { Teardown } from '../helpers/fuse-mount.ts'
import { remoteVolume } from '../helpers/remote-volume.ts'
import { mount } from '../../fuse/index.ts'
import { until } from '../../harness/cluster.ts'
import { createMemoryVolume } from '../../harness/memory-volume.ts'
import { Volume } from '../../node/index.ts'
import { wrapHandles } from '../helpers/wrap-handles.ts'

/** Settles with the signal's reason once it aborts. */
async function abortOf (signal: AbortSignal | undefined): Promise<unknown> {
  assert.ok(signal !== undefined, 'the call got no signal')
  if (signal.aborted) return signal.reason
  return await new Promise(resolve => { signal.addEventListener('abort', () => { resolve(signal.reason) }, { once: true }) })
}

describe('fuse request deadlines', function () {
  let t: Teardown
  beforeEach(function () { t = teardown() })
  afterEach(async function () { await t.run() })

  it('mount(volume, dir, { requestTimeoutMs }) answers a hung Volume call with EIO and keeps serving', async function () {
    const volume = createMemoryVolume()
    const hung: Array<() => void> = []
    const signals: Array<AbortSignal | undefined> = []
    volume.readlink = async (_path: string, options?: AbortOptions) => {
      signals.push(options?.signal)
      return await new Promise<string>((resolve) => { hung.push(() => { resolve('late') }) })
    }
    t.add(() => { for (const release of hung) release() })
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir, { requestTimeoutMs: 200 })
    t.add(async () => { await m.unmount() })
    await ok(`cd "${dir}" && echo ok > f && ln -s f s`)
    const [slow, fast] = await Promise.all([sh(`readlink "${dir}/s"`), ok(`cat "${dir}/f"`)])
    assert.equal(fast, 'ok\n')
    assert.notEqual(slow.code, 0)
    assert.equal(hung.length, 1)
    assert.equal((await abortOf(signals[0]) as Error).name, 'TimeoutError')
    assert.equal(await ok(`cat "${dir}/f"; ls "${dir}"`), 'ok\nf\ns\n')
  })

  it('a read past its deadline: the kernel gets EIO and the read\'s signal aborts', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/slow', 'never read\n')
    await volume.writeFile('/fast', 'ok\n')
    const reads: Array<AbortSignal | undefined> = []
    wrapHandles(volume, path => path === '/slow', () => ({
      // a read that waits on its signal, as a fetch from peers does
      read: async (_buffer, _offset, _length, _position, options) => {
        reads.push(options?.signal)
        await abortOf(options?.signal)
        throw options?.signal?.reason
      }
    }))
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir, { requestTimeoutMs: 300 })
    t.add(async () => { await m.unmount() })
    const [slow, fast] = await Promise.all([sh(`cat "${dir}/slow"`), ok(`cat "${dir}/fast"`)])
    assert.equal(fast, 'ok\n')
    assert.notEqual(slow.code, 0)
    assert.match(slow.stderr, /Input\/output error/)
    assert.ok(reads.length >= 1)
    for (const signal of reads) assert.equal((await abortOf(signal) as Error).name, 'TimeoutError')
    assert.equal(await ok(`ls "${dir}"`), 'fast\nslow\n')
  })

  it('an fsync slower than the request deadline waits (the sync deadline), and gets EIO only past that', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/f', '')
    await volume.writeFile('/g', '')
    await volume.writeFile('/h', 'x\n')
    const held: Array<() => void> = []
    const syncs: Array<AbortSignal | undefined> = []
    let synced!: () => void
    const firstSync = new Promise<void>(resolve => { synced = resolve })
    wrapHandles(volume, path => path !== '/h', () => ({
      // an fsync that waits until the test lets it go (a slow disk), or until its deadline
      sync: async (options) => {
        syncs.push(options?.signal)
        await new Promise<void>((resolve, reject) => {
          held.push(resolve)
          synced()
          options?.signal?.addEventListener('abort', () => { reject(options.signal?.reason) }, { once: true })
        })
      }
    }))
    t.add(() => { for (const release of held) release() })
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir, { requestTimeoutMs: 300, syncTimeoutMs: 20_000 })
    t.add(async () => { await m.unmount() })
    const fsync = (name: string): Promise<{ code: number | null, stderr: string }> =>
      sh(`python3 -c 'import os; fd = os.open("${dir}/${name}", os.O_WRONLY); os.write(fd, b"data"); os.fsync(fd); os.close(fd)'`)
    const slow = fsync('f')
    await firstSync
    // an ordinary request past its 300 ms deadline gets EIO meanwhile: the fsync is held longer
    const hung = volume.readlink
    volume.readlink = async (_p: string, o?: AbortOptions) => await new Promise<string>((_resolve, reject) => { o?.signal?.addEventListener('abort', () => { reject(o.signal?.reason) }, { once: true }) })
    await ok(`ln -s h "${dir}/s"`)
    assert.notEqual((await sh(`readlink "${dir}/s"`)).code, 0)
    volume.readlink = hung
    assert.equal(held.length, 1, 'the fsync is held')
    assert.equal(syncs[0]?.aborted, false, 'the fsync outlived the request deadline')
    held[0]()
    const done = await slow
    assert.equal(done.code, 0, done.stderr)

    // past the sync deadline: EIO, and the call's signal aborts
    const m2dir = await tempDir(t, 'darkfs-mnt-')
    const m2 = await mount(volume, m2dir, { requestTimeoutMs: 200, syncTimeoutMs: 400 })
    t.add(async () => { await m2.unmount() })
    const late = await sh(`python3 -c 'import os; fd = os.open("${m2dir}/g", os.O_WRONLY); os.write(fd, b"data"); os.fsync(fd)'`)
    assert.notEqual(late.code, 0)
    assert.match(late.stderr, /Input\/output error|Errno 5/)
    assert.equal((await abortOf(syncs.at(-1)) as Error).name, 'TimeoutError')
  })

  it('a rename the Volume is applying when the deadline passes (past its point of no return): the signal aborts, and mv gets the real answer, success, not an EIO while the name moves', async function () {
    const volume = createMemoryVolume()
    await volume.writeFile('/a', 'x\n')
    const rename = volume.rename.bind(volume)
    const signals: Array<AbortSignal | undefined> = []
    let release!: () => void
    const released = new Promise<void>(resolve => { release = resolve })
    let entered!: () => void
    const enteredP = new Promise<void>(resolve => { entered = resolve })
    // a rename whose op is stamped and on its way to the log (a slow disk): the abort no longer
    // stops it, it is applied once the test lets it go
    volume.rename = async (from: string, to: string, options?: AbortOptions) => {
      signals.push(options?.signal)
      entered()
      await released
      await rename(from, to)
    }
    t.add(() => { release() })
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir, { requestTimeoutMs: 300, syncTimeoutMs: 20_000 })
    t.add(async () => { await m.unmount() })
    const mv = sh(`mv "${dir}/a" "${dir}/b"`)
    await enteredP
    assert.equal((await abortOf(signals[0]) as Error).name, 'TimeoutError')
    release()
    const done = await mv
    assert.equal(done.code, 0, `mv was told the rename failed while it was applied: ${done.stderr}`)
    assert.equal(await ok(`ls "${dir}"; cat "${dir}/b"`), 'b\nx\n')
  })

  it('a mkdir of the real Volume stamped when the deadline passes (its signing held) is made and answered success; one queued behind it in the tree is cancelled: EIO, and it never appears', async function () {
    const vol = await Volume.open({ dir: await tempDir(t, 'darkfs-data-'), writtenSyncMs: 3600_000, heldAttrsMs: 3600_000 })
    t.add(async () => { await vol.close() })
    // the tree's signer, held once armed: the op being stamped then waits there (under way),
    // and every op after it waits for its turn in the tree's queue
    const tree = vol.tree as unknown as { signer: { author: unknown, sign: (bytes: Uint8Array) => Promise<unknown> } }
    const signer = tree.signer
    let holding = false
    let entered = 0
    let letGo: (() => void) | undefined
    tree.signer = {
      author: signer.author,
      sign: async (bytes: Uint8Array) => {
        if (holding) {
          holding = false
          entered++
          await new Promise<void>(resolve => { letGo = resolve })
        }
        return await signer.sign(bytes)
      }
    }
    t.add(() => { letGo?.() })
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(vol, dir, { requestTimeoutMs: 300, syncTimeoutMs: 20_000 })
    t.add(async () => { await m.unmount() })
    await vol.mkdir('/x')
    await vol.mkdir('/y')
    await ok(`ls "${dir}/x" "${dir}/y"`)
    holding = true
    const a = sh(`mkdir "${dir}/x/a"`)
    await until('the first mkdir is being signed', () => entered === 1, 10_000)
    const b = await sh(`mkdir "${dir}/y/b"`)
    assert.notEqual(b.code, 0)
    assert.match(b.stderr, /Input\/output error/)
    assert.equal(m.writeStats().expiredOthers, 0, 'the queued mkdir was cancelled (its signal), not given up by the binding\'s own deadline')
    letGo!()
    const done = await a
    assert.equal(done.code, 0, `mkdir was told the directory was not made while it was: ${done.stderr}`)
    assert.equal(await ok(`ls "${dir}/x" "${dir}/y"`), `${dir}/x:\na\n\n${dir}/y:\n`)
    assert.deepEqual(await vol.readdir('/y'), [])
  })

  it('a create whose Volume call outlives the binding\'s own deadline (the sync deadline and a grace): the caller gets EIO, the file made after stays, and the handle the late answer gives is released, none left open', async function () {
    this.timeout(120_000)
    const volume = createMemoryVolume()
    let letGo!: () => void
    const held = new Promise<void>(resolve => { letGo = resolve })
    t.add(() => { letGo() })
    // the create of /new is held, and then goes on past its point of no return: its signal,
    // aborted at the deadline by then, no longer stops it (as the real Volume's stamped change)
    let entered = 0
    const open = volume.open.bind(volume)
    volume.open = async (...args: Parameters<typeof open>) => {
      if (args[0] !== '/new') return await open(...args)
      entered++
      await held
      return await open(args[0], args[1], args[2], args[3])
    }
    let made = 0
    let closed = 0
    wrapHandles(volume, p => p === '/new', fh => {
      made++
      return { close: async () => { closed++; await fh.close() } }
    })
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(volume, dir, { requestTimeoutMs: 300, syncTimeoutMs: 1000 })
    t.add(async () => { await m.unmount() })
    const r = await sh(`: > "${dir}/new"`)
    assert.equal(entered, 1)
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /Input\/output error/)
    assert.equal(m.writeStats().expiredOthers, 1)
    letGo()
    await until('the late create made its handle', () => made === 1, 10_000)
    await until('the late create\'s handle is released', () => closed === 1, 10_000)
    assert.equal(await ok(`ls "${dir}"`), 'new\n')
    assert.equal(await ok(`cat "${dir}/new"`), '')
    // the kernel sends RELEASE after close(2) has returned to cat: wait for it
    await until('every handle of /new is released', () => closed === made, 10_000)
  })

  it('a read of the real Volume past its deadline aborts the network fetch behind it', async function () {
    const data = await tempDir(t, 'darkfs-data-')
    const r = await remoteVolume(t, data, 100_000, '/remote')
    await r.volume.writeFile('/local', 'ok\n')
    const dir = await tempDir(t, 'darkfs-mnt-')
    const m = await mount(r.volume, dir, { requestTimeoutMs: 300 })
    t.add(async () => { await m.unmount() })
    const reading = sh(`cat "${dir}/remote"`)
    const fetch = await r.nextFetch()
    assert.equal(fetch.signal?.aborted, false)
    const slow = await reading
    assert.notEqual(slow.code, 0)
    assert.match(slow.stderr, /Input\/output error/)
    assert.equal((await fetch.aborted as Error).name, 'TimeoutError')
    assert.equal(await ok(`cat "${dir}/local"`), 'ok\n')
  })
})
