// The data dir belongs to one process at a time (DESIGN.md §8): `darkfs up` and a library
// `Volume.open({ dir })` both take it, so two processes never write one store or one op log.
// The lock is a pid file created exclusively; one whose process is gone is stale and taken over.
import { open, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { AlreadyRunningError } from './errors.ts'

/** The lock file in a data dir: the pid of the process holding the dir. */
export const PID_FILE = 'host.pid'
/** How long a new taker waits for the process named in the pid file to end before AlreadyRunningError. */
export const LOCK_GRACE_MS = 2_000

/** Take the data dir for this process (a second taker fails with AlreadyRunningError); returns the release. */
export async function lockDataDir (dir: string): Promise<() => Promise<void>> {
  const file = join(dir, PID_FILE)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(file, 'wx')
      await fh.writeFile(String(process.pid))
      await fh.close()
      // ignored: the pid file may already be gone, and one left behind is stale to the next lock()
      return async () => { await unlink(file).catch(() => {}) }
    } catch (err: any) {
      if (err.code !== 'EEXIST') throw err
      // an unreadable pid file (gone meanwhile, or half written) names no live process: stale
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim())
      if (pid === process.pid) throw new AlreadyRunningError(dir, pid) // this process holds it already
      if (Number.isInteger(pid) && pid > 0 && !(await gone(pid, LOCK_GRACE_MS))) throw new AlreadyRunningError(dir, pid)
      await unlink(file).catch(() => {}) // stale: its process is gone (ignored: open(wx) reports a file still there)
    }
  }
  throw new AlreadyRunningError(dir, -1)
}

async function alive (pid: number): Promise<boolean> {
  try { process.kill(pid, 0) } catch (err: any) { return err.code === 'EPERM' } // EPERM: alive, not ours; ESRCH: gone
  // a zombie (dead, not yet reaped by its parent) holds nothing; no /proc entry: gone meanwhile
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  return !/^\d+ \(.*\) Z /s.test(stat)
}

/**
 * Does process `pid` end within `graceMs`? A host whose supervisor was killed -9 ends a moment
 * after it (node/cli/supervisor.ts), so an `up` started right then waits for it, not fails.
 */
async function gone (pid: number, graceMs: number): Promise<boolean> {
  const end = performance.now() + graceMs
  while (await alive(pid)) {
    if (performance.now() >= end) return false
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return true
}
