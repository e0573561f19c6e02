// Metrics benchmark (issue 13): the time of a `GET /metrics` scrape over the control socket of a
// host whose tree holds FILES files. A scrape reads what the host keeps in memory (node/api/
// metrics.ts): its time should not grow with the tree.
//
// The files are made cheaply, in process: one host (startDaemon, loopback TCP, no peers), and
// its tree's commitMany() takes BATCH create ops of tiny inline files per log append (one
// fdatasync per batch), DIRS directories of FILES / DIRS files each. The same ops a Volume
// create makes, without one fsync and one FUSE round trip per file.
import { request } from 'node:http'
import { join } from 'node:path'
import { Teardown } from '../../harness/tmp.ts'
import { startCluster } from '../../harness/cluster.ts'
import type { OpBody } from '../../node/tree/index.ts'

/** Files in the tree when the scrapes are timed. */
export const FILES = 100_000
/** Directories they are spread over. */
export const DIRS = 100
/** Create ops per commitMany() (one log append). */
export const BATCH = 1000
/** Scrapes timed (the median and the slowest are reported), after WARMUP untimed ones. */
export const SCRAPES = 30
export const WARMUP = 3

async function scrape (socketPath: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/metrics', method: 'GET' }, res => {
      let bytes = 0
      res.on('data', (d: Buffer) => { bytes += d.byteLength })
      res.on('end', () => { res.statusCode === 200 ? resolve(bytes) : reject(new Error(`GET /metrics: ${String(res.statusCode)}`)) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

export async function run (): Promise<Record<string, number | string>> {
  const t = new Teardown()
  try {
    const [host] = await startCluster(t, 1, { transport: 'tcp' })
    const tree = host.tree
    const time = (): bigint => BigInt(Date.now()) * 1_000_000n
    const dirs = await tree.commitMany(Array.from({ length: DIRS }, (_, d): OpBody => ({ type: 'create', parent: tree.root, name: `d${d}`, kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: time() })))
    const made = performance.now()
    const bytes = new TextEncoder().encode('x')
    for (let i = 0; i < FILES; i += BATCH) {
      await tree.commitMany(Array.from({ length: Math.min(BATCH, FILES - i) }, (_, j): OpBody => {
        const n = i + j
        return { type: 'create', parent: dirs[n % DIRS].id, name: `f${n}`, kind: 'file', mode: 0o644, uid: 0, gid: 0, content: { inline: bytes }, size: 1, time: time() }
      }))
    }
    const makeSeconds = (performance.now() - made) / 1000
    if (tree.size < FILES + DIRS) throw new Error(`the tree holds ${tree.size} ops, not ${FILES + DIRS}`)

    const socket = join(host.dir, 'control.sock')
    let size = 0
    for (let i = 0; i < WARMUP; i++) size = await scrape(socket)
    const ms: number[] = []
    for (let i = 0; i < SCRAPES; i++) {
      const t0 = performance.now()
      size = await scrape(socket)
      ms.push(performance.now() - t0)
    }
    ms.sort((a, b) => a - b)
    return {
      'metrics.files': FILES,
      'metrics.make_files_s': makeSeconds,
      'metrics.scrape_100k_files_median_ms': ms[Math.floor(ms.length / 2)],
      'metrics.scrape_100k_files_max_ms': ms[ms.length - 1],
      'metrics.scrape_bytes': size
    }
  } finally {
    await t.run()
  }
}
