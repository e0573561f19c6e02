// A darkfs host in a worker thread, for benches whose cluster should not share one event loop
// (compare.ts with DARKFS_COMPARE_THREADS): six hosts in one thread put the work of six
// machines on one core, which no deployment does. The parent gives a fresh data dir, the
// network key and one member's address (workerData); the worker inits the dir, starts the host
// on loopback TCP, posts { address } once it is up, and stops it (then exits) on 'stop'.
// Errors are posted as { error }.
import { parentPort, workerData } from 'node:worker_threads'
import { init, startDaemon } from '../../node/cli/index.ts'

interface HostWorkerData { dir: string, networkKey: string, join: string }

const { dir, networkKey, join } = workerData as HostWorkerData
const port = parentPort!
try {
  await init(dir, { networkKey })
  const d = await startDaemon({ dir, listen: ['/ip4/127.0.0.1/tcp/0'], join: [join] })
  port.on('message', (msg: unknown) => {
    if (msg !== 'stop') return
    d.close().then(() => { port.postMessage({ stopped: true }) }, (err: Error) => { port.postMessage({ error: err.message }) }).finally(() => { port.close() })
  })
  port.postMessage({ address: d.host.addresses()[0] })
} catch (err) {
  port.postMessage({ error: (err as Error).stack ?? String(err) })
}
