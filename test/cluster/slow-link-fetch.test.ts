import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost, createNetworkKey, createSync, signerFor, verify } from '../../node/net/index.ts'
import type { Host, Sync } from '../../node/net/index.ts'
import { Tree, ROOT } from '../../node/tree/index.ts'
import { throttle } from '../../harness/throttle.ts'

interface Node { host: Host, tree: Tree, sync: Sync }

// A reconcile's fetch over a slow link (review37h): 4 byid requests of 1,024 ops each on one
// connection at 1 Mbit/s never all came within the request timeout, the fetch failed, the
// reconcile was retried and failed again: nothing arrived in 100 s (the version before: 19 s).
describe('node/sync over a slow link (cluster)', function () {
  this.timeout(240_000)
  const teardown: Array<() => Promise<void>> = []
  afterEach(async function () {
    while (teardown.length > 0) await teardown.pop()!().catch((err: unknown) => { console.error('teardown:', err) })
  })

  async function node (networkKey: Uint8Array): Promise<Node> {
    const dir = await mkdtemp(join(tmpdir(), 'darkfs-slowlink-'))
    teardown.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const key = await generateKeyPair('Ed25519')
    const tree = await Tree.open({ dir, signer: signerFor(key), verify })
    teardown.push(async () => { await tree.close() })
    const host = await createHost({ privateKey: key, networkKey, listen: ['/ip4/127.0.0.1/tcp/0'] })
    teardown.push(async () => { await host.stop() })
    const sync = createSync({})({ host, tree })
    await sync.start()
    teardown.push(async () => { await sync.stop() })
    return { host, tree, sync }
  }

  it('4,000 ops of ~480 bytes a reconcile found missing come over a 1 Mbit/s link (requests sized to what the link carries within the timeout)', async function () {
    const N = 4000
    const key = createNetworkKey()
    const a = await node(key)
    for (let i = 0; i < N; i += 250) {
      await a.tree.commitMany(Array.from({ length: Math.min(250, N - i) }, (_, k) => ({ type: 'create' as const, parent: ROOT, name: `${i + k}-`.padEnd(200, 'x'), kind: 'dir' as const, mode: 0o755, uid: 0, gid: 0, time: BigInt(Date.now()) * 1_000_000n })))
    }
    const opBytes = a.tree.heads().reduce((n, c) => n + (a.tree.getOp(c)?.byteLength ?? 0), 0) / a.tree.heads().length
    // b holds one op of its own, so it reconciles by rbsr and fetches the rest by ids
    const b = await node(key)
    await b.tree.commit({ type: 'create', parent: ROOT, name: 'b-only', kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: BigInt(Date.now()) * 1_000_000n })
    const port = Number(/\/tcp\/(\d+)/.exec(a.host.addresses()[0])?.[1])
    const link = await throttle(port, 1_000_000)
    teardown.push(async () => { await link.close() })
    await b.host.dial(`/ip4/127.0.0.1/tcp/${link.port}/p2p/${a.host.peerId}`)
    // the bytes alone take ~16 s at 1 Mbit/s; the bound is 15 request timeouts (REQUEST_TIMEOUT_MS, 10 s)
    const end = Date.now() + 150_000
    while (b.tree.size < N + 1 && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 100))
    const s = b.sync.stats()
    assert.equal(b.tree.size, N + 1, `${b.tree.size - 1} of ${N} ops came (${JSON.stringify({ fetchRequests: s.fetchRequests, retries: s.retries, reconciles: s.reconciles, receivedOps: s.receivedOps })})`)
    // they came over the slow link, not around it
    assert.ok(link.carried().down >= N * opBytes, `${link.carried().down} bytes carried, ${Math.round(opBytes)}-byte ops`)
    assert.ok(opBytes > 400, `${opBytes}-byte ops`)
  })
})
