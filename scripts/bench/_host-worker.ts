// A darkfs host in a worker thread, for benches whose cluster should not share one event loop
// (compare.ts with DARKFS_COMPARE_THREADS): six hosts in one thread put the work of six
// machines on one core, which no deployment does. The parent gives a fresh data dir, the
// network key and one member's address (workerData); the worker inits the dir, starts the host
// on loopback TCP, posts { address } once it is up, and stops it (then exits) on 'stop'.
// workerData.gc (optional): a shared counter array this thread's collections are added into
// (_gc-count.ts). Errors are posted as { error }. { prof: 'start' } starts a CPU profile of
// this thread (V8's, through the inspector), { prof: 'stop', file } writes it to `file` and
// posts { profiled: file }.
import { parentPort, workerData } from 'node:worker_threads'
import { Session } from 'node:inspector/promises'
import { writeFile } from 'node:fs/promises'
import { init, startDaemon } from '../../node/cli/index.ts'
import { countGc } from './_gc-count.ts'

interface HostWorkerData { dir: string, networkKey: string, join: string, gc?: Float64Array }

const { dir, networkKey, join, gc } = workerData as HostWorkerData
// this isolate's collections, into the parent's shared counters (_gc-count.ts)
if (gc !== undefined) countGc(gc)
const port = parentPort!
try {
  await init(dir, { networkKey })
  const d = await startDaemon({ dir, listen: ['/ip4/127.0.0.1/tcp/0'], join: [join] })
  let session: Session | undefined
  port.on('message', (msg: unknown) => {
    const prof = (msg as { prof?: string, file?: string } | null)?.prof
    if (prof === 'start' && session === undefined) {
      const s = new Session()
      session = s
      s.connect()
      s.post('Profiler.enable').then(async () => await s.post('Profiler.start')).catch((err: Error) => { port.postMessage({ error: err.message }) })
      return
    }
    if (prof === 'stop' && session !== undefined) {
      const s = session
      session = undefined
      const file = (msg as { file: string }).file
      s.post('Profiler.stop').then(async ({ profile }) => {
        s.disconnect()
        await writeFile(file, JSON.stringify(profile))
        port.postMessage({ profiled: file })
      }).catch((err: Error) => { port.postMessage({ error: err.message }) })
      return
    }
    if (msg !== 'stop') return
    d.close().then(() => { port.postMessage({ stopped: true }) }, (err: Error) => { port.postMessage({ error: err.message }) }).finally(() => { port.close() })
  })
  port.postMessage({ address: d.host.addresses()[0] })
} catch (err) {
  port.postMessage({ error: (err as Error).stack ?? String(err) })
}
