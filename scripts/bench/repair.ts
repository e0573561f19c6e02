// Repair and rebalance figures (issue 6): after one host holding fragments is lost, the time
// and bytes moved per byte lost until every chunk is redundant again; and the bytes moved
// when one host joins. Size: DARKFS_BENCH_REPAIR_MIB of file data (default 32) on 6 hosts.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { init } from '../../node/config.ts'
import { Teardown } from '../../test/helpers/tmp.ts'
import { startCluster, startHost, until } from '../../test/helpers/cluster.ts'

const keep = { failureTimeoutMs: 200, repairIntervalMs: 0, scrubIntervalMs: 0, gcIntervalMs: 0, repairBytesPerSecond: 1 << 30 }

export async function run (): Promise<Record<string, number | string>> {
  const mib = Number(process.env.DARKFS_BENCH_REPAIR_MIB ?? 32)
  const t = new Teardown()
  try {
    const hosts = await startCluster(t, 6, { daemon: { keep } })
    await until('mesh', () => hosts.every(h => h.host.peers().length === 5), 60_000)
    for (let i = 0; i < mib; i += 8) await hosts[0].volume.replaceFile(`/b${i}`, [randomBytes(Math.min(8, mib - i) << 20)], { wait: 'safe' })
    await until('redundant', async () => { const s = await hosts[0].keep.status(); return s.redundant === s.total }, 600_000)
    const victim = hosts[5]
    const lost = (await victim.store.usage()).bytesStored
    const sent = (): number => hosts.slice(0, 5).reduce((a, h) => a + h.swarm.stats().bytesSent, 0)
    const base = sent()
    const moved = (): number => sent() - base
    const start = performance.now()
    await victim.stop()
    await until('repaired', async () => { const s = await hosts[0].keep.status(); return s.redundant === s.total }, 600_000)
    const seconds = (performance.now() - start) / 1000
    const repairMoved = moved()
    const dir = join(hosts[0].dir, '..', 'joiner')
    await init(dir, { networkKey: join(hosts[0].dir, 'network.key') })
    const joiner = await startHost(t, dir, `bench-join-${Date.now()}`, [hosts[0].address], { daemon: { keep } })
    await until('joined', () => hosts[0].host.peers().some(p => p.id === joiner.host.peerId), 60_000)
    for (const h of hosts.slice(0, 5)) await h.keep.repairer.pass()
    const rebalanceMoved = moved() - repairMoved
    return {
      'repair.data.MiB': mib,
      'repair.lost.bytes': lost,
      'repair.seconds': Number(seconds.toFixed(2)),
      'repair.bytesMovedPerByteLost': Number((repairMoved / Math.max(1, lost)).toFixed(2)),
      'rebalance.join.bytesMoved': rebalanceMoved,
      'rebalance.join.bytesStoredByJoiner': (await joiner.store.usage()).bytesStored
    }
  } finally {
    await t.run()
  }
}

if (process.argv[1]?.endsWith('repair.ts') === true) console.log(await run())
