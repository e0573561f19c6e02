// Sync's asks by digest (merge44) with a peer that stops taking them on a connection still open:
// it restarted as the previous version and redialled while the first connection lived on (no
// peer:disconnect here). Its rbsr messages no longer say `i`, so it is asked by id again, and an
// ask by digest it refuses is asked again by id at once (review44d: every reconcile with it
// failed on "unknown request" for as long as a connection to it lived).
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost, createNetworkKey, createSync, OPS, serve, SyncProtocolError, signerFor, verify } from '../../node/net/index.ts'
import type { OpsReply } from '../../node/net/index.ts'
import { Tree, ROOT, rbsrRespond, opCidOf } from '../../node/tree/index.ts'

async function until (what: string, check: () => boolean, boundMs = 30_000): Promise<void> {
  for (let i = 0; ; i++) {
    if (check()) return
    if (i > boundMs / 50) throw new Error(`never happened: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
const mkdir = async (t: Tree, name: string): Promise<void> => {
  await t.commit({ type: 'create', parent: ROOT, name, kind: 'dir', mode: 0o755, uid: 0, gid: 0, time: BigInt(Date.now()) * 1_000_000n })
}

describe('sync: a peer that stops taking asks by digest on the same connection', function () {
  const teardown: Array<() => Promise<void>> = []
  afterEach(async function () { while (teardown.length > 0) await teardown.pop()!().catch(() => {}) })

  it('a peer whose rbsr messages no longer say i (restarted as the version before, no peer:disconnect seen) is asked by id again', async function () {
    const key = createNetworkKey()
    const dir = await mkdtemp(join(tmpdir(), 'darkfs-bydigest-'))
    teardown.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const pKey = await generateKeyPair('Ed25519')
    const pTree = await Tree.open({ dir, signer: signerFor(pKey), verify })
    teardown.push(async () => { await pTree.close() })
    for (let i = 0; i < 5; i++) await mkdir(pTree, `p-${i}`)
    const pHost = await createHost({ privateKey: pKey, networkKey: key, listen: [`/memory/bydigest-${randomBytes(6).toString('hex')}`], join: [] })
    teardown.push(async () => { await pHost.stop() })
    // the peer: this version until `old`, then as the version before (no i, no bydigest)
    let old = false
    let refused = 0
    const unserve = await serve(pHost, OPS, {
      call: async (req): Promise<OpsReply> => {
        if (req.t === 'rbsr') {
          const m = rbsrRespond(pTree.opSet(), req.m)
          return !old && req.i === true ? { t: 'rbsr', m, i: true } : { t: 'rbsr', m }
        }
        if (req.t === 'bydigest') {
          if (old) { refused++; throw new SyncProtocolError('unknown request "bydigest"') }
          const ops: Uint8Array[] = []
          for (let i = 0; i < req.ids.byteLength; i += 32) { const o = pTree.getOp(opCidOf(req.ids.subarray(i, i + 32))); if (o !== undefined) ops.push(o) }
          return { t: 'ops', ops }
        }
        if (req.t === 'byid') return { t: 'ops', ops: req.ids.map(c => pTree.getOp(c)).filter((o): o is Uint8Array => o !== undefined) }
        if (req.t === 'heads') return { t: 'heads', heads: pTree.heads() }
        throw new SyncProtocolError(`unexpected request ${req.t}`)
      },
      notice: async () => {}
    })
    teardown.push(unserve)

    const bDir = await mkdtemp(join(tmpdir(), 'darkfs-bydigest-'))
    teardown.push(async () => { await rm(bDir, { recursive: true, force: true }) })
    const bKey = await generateKeyPair('Ed25519')
    const bTree = await Tree.open({ dir: bDir, signer: signerFor(bKey), verify })
    teardown.push(async () => { await bTree.close() })
    await mkdir(bTree, 'b-0')
    const bHost = await createHost({ privateKey: bKey, networkKey: key, listen: [`/memory/bydigest-${randomBytes(6).toString('hex')}`], join: [] })
    teardown.push(async () => { await bHost.stop() })
    const sync = createSync({ bothWays: false })({ host: bHost, tree: bTree })
    await sync.start()
    teardown.push(async () => { await sync.stop() })

    await bHost.dial(pHost.addresses()[0])
    await until('b has the peer\'s ops', () => bTree.size === 6)
    assert.ok(sync.stats().fetchByDigest >= 1, 'asked by digest while the peer said i')

    // the peer is now of the version before; its rbsr answers say no i
    old = true
    await mkdir(pTree, 'p-late')
    let err: unknown
    for (let i = 0; i < 3; i++) await sync.synced(pHost.peerId).catch((e: unknown) => { err = e })
    assert.equal(bTree.size, 7, `the late op fetched (refused bydigest calls: ${refused}; synced: ${String(err)})`)
  })
})
