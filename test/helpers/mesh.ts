// A suite whose tests share one in-process mesh (harness/cluster.ts startMesh): started in a
// before hook, stopped in an after hook.
import { Teardown } from '../../harness/tmp.ts'
import { startMesh } from '../../harness/cluster.ts'
import type { ClusterHost } from '../../harness/cluster.ts'

/**
 * Registers the suite's hooks for a mesh of `n` hosts (startMesh, with `opts`). Returns its hosts
 * (an array filled in by the before hook; a test may put a restarted host in its place) and the
 * teardown the after hook runs (for what a test adds: mounts, temp dirs, more hosts).
 */
export function meshSuite (n: number, opts: Parameters<typeof startMesh>[2] = {}): { hosts: ClusterHost[], t: Teardown } {
  const t = new Teardown()
  const hosts: ClusterHost[] = []
  before(async () => { hosts.push(...await startMesh(t, n, opts)) })
  after(async () => { await t.run() })
  return { hosts, t }
}
