import assert from 'node:assert/strict'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from 'libp2p'
import { memory } from '@libp2p/memory'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { PROTOCOL_MERGE_REFRESH_MS, skipKnownProtocolMerges } from '../../node/net/peer-protocols.ts'

const PROTOCOL = '/darkfs-test/echo/1.0.0'

describe('peer-protocols (a stream does not rewrite a peer record that lists its protocol)', function () {
  this.timeout(30_000)
  const teardown: Array<() => Promise<void>> = []
  afterEach(async () => {
    while (teardown.length > 0) await teardown.pop()!().catch(() => {})
  })

  let at = 0
  async function node (addr: string): Promise<Libp2p> {
    const n = await createLibp2p({ addresses: { listen: [addr] }, transports: [memory()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify() } })
    teardown.push(async () => { await n.stop() })
    await n.handle(PROTOCOL, (stream) => { void stream.close() })
    return n
  }
  /** Writes of `n`'s peer store (its datastore's puts), counted from now. */
  function puts (n: Libp2p): () => number {
    const ds = (n as unknown as { components: { datastore: { put: (...args: any[]) => Promise<unknown> } } }).components.datastore
    let count = 0
    const put = ds.put.bind(ds)
    ds.put = async (...args: any[]) => { count++; return await put(...args) }
    return () => count
  }
  /** Open `times` streams from a to b on PROTOCOL, one after another. */
  async function streams (a: Libp2p, b: Libp2p, times: number): Promise<void> {
    for (let i = 0; i < times; i++) {
      const s = await a.dialProtocol(b.peerId, PROTOCOL)
      await s.close()
    }
  }

  it('skips the merge at both ends once the record lists the protocol, and a record that dropped it is written again', async () => {
    const a = await node(`/memory/pp-a-${process.pid}-${++at}`)
    const b = await node(`/memory/pp-b-${process.pid}-${at}`)
    let clock = 1_000_000
    const sa = skipKnownProtocolMerges(a.peerStore, a, () => clock)
    const sb = skipKnownProtocolMerges(b.peerStore, b, () => clock)
    await a.dial(b.getMultiaddrs()[0])
    await streams(a, b, 2)
    const writesA = puts(a)
    const writesB = puts(b)
    await streams(a, b, 20)
    // the store was written by none of them (before: one write per stream at each end, 20 and 20)
    assert.equal(writesA(), 0)
    assert.equal(writesB(), 0)
    assert.ok(sa.skipped >= 20 && sb.skipped >= 20, `skipped ${sa.skipped}, ${sb.skipped}`)
    assert.ok((await a.peerStore.get(b.peerId)).protocols.includes(PROTOCOL))
    assert.ok((await b.peerStore.get(a.peerId)).protocols.includes(PROTOCOL))
    // a's record of b loses the protocol (as an identify listing fewer protocols patches it):
    // the next stream writes it back
    await a.peerStore.patch(b.peerId, { protocols: [] })
    assert.ok(!(await a.peerStore.get(b.peerId)).protocols.includes(PROTOCOL))
    await streams(a, b, 1)
    assert.ok((await a.peerStore.get(b.peerId)).protocols.includes(PROTOCOL))
    // a deleted record too
    await a.peerStore.delete(b.peerId)
    await streams(a, b, 1)
    assert.ok((await a.peerStore.get(b.peerId)).protocols.includes(PROTOCOL))
    // past the refresh time a stream writes the record again (its `updated` time, which the
    // store ages peers by), and the next ones skip again
    const put0 = writesA()
    clock += PROTOCOL_MERGE_REFRESH_MS
    await streams(a, b, 3)
    assert.equal(writesA() - put0, 1)
  })

  it('this host\'s own record: a protocol handled, unhandled and handled again is listed (identify tells peers what it lists)', async () => {
    const a = await node(`/memory/pp-e-${process.pid}-${++at}`)
    skipKnownProtocolMerges(a.peerStore, a)
    const other = '/darkfs-test/other/1.0.0'
    await a.handle(other, (stream) => { void stream.close() })
    assert.ok((await a.peerStore.get(a.peerId)).protocols.includes(other))
    await a.unhandle(other)
    assert.ok(!(await a.peerStore.get(a.peerId)).protocols.includes(other))
    await a.handle(other, (stream) => { void stream.close() })
    assert.ok((await a.peerStore.get(a.peerId)).protocols.includes(other))
  })

  it('a merge that carries more than protocols always goes to the store', async () => {
    const a = await node(`/memory/pp-c-${process.pid}-${++at}`)
    const b = await node(`/memory/pp-d-${process.pid}-${at}`)
    const sa = skipKnownProtocolMerges(a.peerStore, a)
    await a.dial(b.getMultiaddrs()[0])
    await streams(a, b, 1)
    const writes = puts(a)
    await a.peerStore.merge(b.peerId, { protocols: [PROTOCOL], tags: { x: { value: 5 } } })
    assert.equal(writes(), 1)
    assert.equal((await a.peerStore.get(b.peerId)).tags.get('x')?.value, 5)
    assert.ok(sa.written >= 2)
  })
})
