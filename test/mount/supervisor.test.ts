// `darkfs up` supervises its host: the host runs in a worker process that `up` restarts when it
// dies, so a killed host does not leave a dead mount (node/cli/supervisor.ts). Real processes:
// the worker is killed -9 and the mount comes back by itself; SIGTERM to `up` stops both and
// unmounts; a worker that stops cleanly is not restarted.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { chmod, readFile } from 'node:fs/promises'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'
import { sh, ok } from '../helpers/fuse-mount.ts'

const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`

/** The pid of the process serving the data dir (the worker). */
async function hostPid (data: string): Promise<number> {
  return Number((await readFile(join(data, 'host.pid'), 'utf8')).trim())
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

async function until<T> (what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

describe('darkfs up supervises its host (real process)', function () {
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  async function start (): Promise<{ data: string, mnt: string, host: Awaited<ReturnType<typeof up>> }> {
    const root = await tempDir(t, 'darkfs-sup-')
    await chmod(root, 0o755)
    const data = join(root, 'data')
    const mnt = join(root, 'mnt')
    t.add(async () => { await sh(`umount -l ${q(mnt)} 2>/dev/null`) })
    assert.equal((await darkfs(['init', '--data', data, '--new-network'])).code, 0)
    const host = await up(t, ['--data', data, '--listen', '/ip4/127.0.0.1/tcp/0', '--mount', mnt])
    return { data, mnt, host }
  }

  it('kill -9 of the worker: the mount comes back without a manual restart; SIGTERM to up stops it and unmounts', async () => {
    const { data, mnt, host } = await start()
    await ok(`echo kept > ${q(join(mnt, 'f'))}`)
    const worker = await hostPid(data)
    assert.notEqual(worker, host.child.pid, 'the host runs in a worker, not in the `up` process')

    process.kill(worker, 'SIGKILL')
    await until('the worker to die', async () => alive(worker) ? undefined : true)
    assert.ok(alive(host.child.pid!), 'the supervisor lives on')
    // a new worker mounts again; reads and writes work through the same mount dir
    await until('a second "mounted" line', async () => host.lines.filter(l => l === `mounted ${mnt}`).length >= 2 ? true : undefined)
    const second = await hostPid(data)
    assert.notEqual(second, worker)
    assert.equal((await ok(`stat -c %s ${q(join(mnt, 'f'))}`)).trim(), '5')
    assert.equal(await ok(`cat ${q(join(mnt, 'f'))}`), 'kept\n')
    await ok(`echo again > ${q(join(mnt, 'g'))} && ls ${q(mnt)}`)
    assert.equal((await ok(`findmnt -n -o SOURCE --mountpoint ${q(mnt)}`)).trim(), 'darkfs', 'one live mount, not one stacked on the dead one')

    assert.equal(await host.stop('SIGTERM'), 0)
    assert.ok(!alive(second), 'the worker stopped with its supervisor')
    assert.equal((await sh(`findmnt -n --mountpoint ${q(mnt)}`)).stdout, '')
  })

  it('a worker stopped by SIGTERM exits cleanly and is not restarted; up exits 0', async () => {
    const { data, mnt, host } = await start()
    const worker = await hostPid(data)
    process.kill(worker, 'SIGTERM')
    const code = await new Promise<number | null>(resolve => { host.child.once('exit', resolve); if (host.child.exitCode !== null) resolve(host.child.exitCode) })
    assert.equal(code, 0)
    assert.equal(host.lines.filter(l => l === `mounted ${mnt}`).length, 1)
    assert.equal((await sh(`findmnt -n --mountpoint ${q(mnt)}`)).stdout, '')
  })

  it('a worker that dies before it is ready (a second up on a busy data dir) is not restarted: up fails', async () => {
    const { data } = await start()
    const r = await darkfs(['up', '--data', data, '--listen', '/ip4/127.0.0.1/tcp/0'], { timeoutMs: 60_000 })
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /already running|not restarting/)
    assert.doesNotMatch(r.stderr, /restarting it in/)
  })
})
