// Real `darkfs up --mount` hosts of one network for the mount tests that run several: initHosts
// makes n data dirs (the first makes the network, the others share its key) and their mount
// points under one root; startMounted starts one of them, its mount released before its SIGKILL.
import assert from 'node:assert/strict'
import { chmod } from 'node:fs/promises'
import { join } from 'node:path'
import { tempDir } from '../../harness/tmp.ts'
import type { Teardown } from '../../harness/tmp.ts'
import { darkfs, up } from '../../harness/proc.ts'
import type { Up } from '../../harness/proc.ts'
import { checkUnmounted } from './fuse-mount.ts'

export interface MountedHosts { root: string, data: string[], mnt: string[] }

/** `darkfs init` n hosts of one new network under a fresh root (mode 0755: other uids use the mounts). */
export async function initHosts (t: Teardown, prefix: string, n: number): Promise<MountedHosts> {
  const root = await tempDir(t, prefix)
  await chmod(root, 0o755)
  const data: string[] = []
  const mnt: string[] = []
  for (let i = 0; i < n; i++) {
    data.push(join(root, `data${i}`))
    mnt.push(join(root, `mnt${i}`))
    const args = i === 0 ? ['init', '--data', data[0], '--new-network'] : ['init', '--data', data[i], '--network-key', join(data[0], 'network.key')]
    const r = await darkfs(args)
    assert.equal(r.code, 0, r.stderr)
  }
  return { root, data, mnt }
}

/** `darkfs up --mount` host i of `h` on loopback, with `join` flags (e.g. ['--join', ADDR]). */
export async function startMounted (t: Teardown, h: Pick<MountedHosts, 'data' | 'mnt'>, i: number, join_: string[] = []): Promise<Up> {
  const host = await up(t, ['--data', h.data[i], '--listen', '/ip4/127.0.0.1/tcp/0', ...join_, '--mount', h.mnt[i]])
  // registered after up(): runs before up()'s SIGKILL, so the mount is released cleanly; a host
  // that leaves its mount behind fails the test (checkUnmounted: unmounted then, with the reason)
  t.must(async () => { await host.stop('SIGTERM'); await checkUnmounted(h.mnt[i], 'darkfs up stopped (SIGTERM)') })
  return host
}
