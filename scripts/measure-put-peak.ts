// One-off figure for issue 17 item 8: the writer's peak store bytes during a 200 MiB write on
// six in-process hosts (k=4, m=2), sampled from the disk (du of the blocks dir, every 100 ms).
import { randomBytes } from 'node:crypto'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Teardown } from '../harness/tmp.ts'
import { startCluster, until } from '../harness/cluster.ts'

const MiB = 1 << 20
async function du (dir: string): Promise<number> {
  let n = 0
  for (const d of await readdir(dir).catch(() => [] as string[])) for (const f of await readdir(join(dir, d)).catch(() => [] as string[])) n += (await stat(join(dir, d, f)).catch(() => ({ size: 0 }))).size
  return n
}
const t = new Teardown()
const hosts = await startCluster(t, 6)
await until('mesh', () => hosts.every(h => h.host.peers().length === 5 && h.policy.members().length === 6), 60_000)
const w = hosts[0]
const blocks = join(w.dir, 'store', 'blocks')
const base = await du(blocks)
let peak = 0
let on = true
const sampler = (async () => { while (on) { peak = Math.max(peak, await du(blocks) - base); await new Promise(r => setTimeout(r, 100)) } })()
const size = 200 * MiB
const data = randomBytes(size)
const t0 = Date.now()
await w.volume.replaceFile('/big.bin', (function * () { for (let i = 0; i < size; i += MiB) yield data.subarray(i, i + MiB) })(), { wait: 'safe' })
const ms = Date.now() - t0
await new Promise(r => setTimeout(r, 3000))
on = false
await sampler
console.log(JSON.stringify({ sizeMiB: 200, putSeconds: ms / 1000, peakWriterMiB: +(peak / MiB).toFixed(1), afterMiB: +((await du(blocks) - base) / MiB).toFixed(1) }))
await t.run()
process.exit(0)
