// Partitions of in-process hosts for offline and merge tests: a host is cut off by stopping it
// and starting it again alone (no join address, a new listen address its peers do not know),
// and reconnected by dialling a peer.
import { createHash } from 'node:crypto'
import { loadConfig, saveConfig } from '../node/cli/index.ts'
import type { Volume } from '../node/index.ts'
import { startHost, until } from './cluster.ts'
import type { ClusterHost } from './cluster.ts'
import type { Teardown } from './tmp.ts'

let restarts = 0

/** Stop `h` and start it again on its data dir, reachable by nobody: it is offline. */
export async function isolate (t: Teardown, h: ClusterHost, others: ClusterHost[], opts: Parameters<typeof startHost>[4] = {}): Promise<ClusterHost> {
  await h.stop()
  await saveConfig(h.dir, { ...(await loadConfig(h.dir)), join: [] })
  const alone = await startHost(t, h.dir, `${h.name}-alone${restarts++}`, [], opts)
  await until(`${h.name}'s peers notice it left`, () => others.every(o => !o.host.peers().some(p => p.id === alone.host.peerId)))
  return alone
}

/** Reconnect `h` to `to` and wait until every host sees every other. */
export async function reconnect (h: ClusterHost, to: ClusterHost, all: ClusterHost[]): Promise<void> {
  await h.host.dial(to.address)
  await until('every host sees every other again', () => all.every(x => x.host.peers().length === all.length - 1), 30_000)
}

/** The whole tree as sorted lines `path kind sha256-of-content` (symlink: its target). */
export async function snapshot (volume: Volume): Promise<string[]> {
  const out: string[] = []
  const walk = async (dir: string): Promise<void> => {
    for (const name of await volume.readdir(dir)) {
      const path = (dir === '/' ? '' : dir) + '/' + name
      const st = await volume.lstat(path)
      if (st.kind === 'dir') {
        out.push(`${path} dir`)
        await walk(path)
      } else if (st.kind === 'file') {
        out.push(`${path} file ${createHash('sha256').update(await volume.readFile(path)).digest('hex')}`)
      } else {
        out.push(`${path} ${st.kind}`)
      }
    }
  }
  await walk('/')
  return out.sort()
}

/** Whether `path` exists on `volume`. */
export async function exists (volume: Volume, path: string): Promise<boolean> {
  return await volume.lstat(path).then(() => true, () => false)
}
