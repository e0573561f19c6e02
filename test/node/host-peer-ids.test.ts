// Host.peerIds (the connected peers' ids, asked several times per 4 KiB range read) is kept
// between connection changes rather than made from every connection on each call: it still
// follows them (a peer joining is in it, a peer gone is not, as peers() says), and a caller that
// changes the array it got changes no later answer.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost } from '../../node/net/host.ts'
import type { Host } from '../../node/net/host.ts'
import { createNetworkKey } from '../../node/net/keys.ts'

/** Polls until check() holds; the test's own mocha timeout bounds it. */
async function until (check: () => boolean, what: string): Promise<void> {
  for (let i = 0; ; i++) {
    if (check()) return
    if (i > 400) throw new Error(`never happened: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

const memAddr = (): string => `/memory/darkfs-${randomBytes(6).toString('hex')}`
const sorted = (a: string[]): string[] => [...a].sort()

describe('Host.peerIds', function () {
  this.timeout(60_000)
  const hosts: Host[] = []
  afterEach(async () => { await Promise.all(hosts.splice(0).map(async h => { await h.stop().catch(() => {}) })) })

  it('follows peers connecting and going, and an answer changed by its caller changes no later one', async () => {
    const key = createNetworkKey()
    const start = async (join: string[] = []): Promise<Host> => {
      const h = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: [memAddr()], join })
      hosts.push(h)
      return h
    }
    const a = await start()
    assert.deepEqual(a.peerIds!(), [])
    const b = await start([a.addresses()[0]])
    await until(() => a.peerIds!().includes(b.peerId), 'a sees b')
    const c = await start([a.addresses()[0]])
    await until(() => a.peerIds!().includes(c.peerId), 'a sees c')
    // the same as peers() says, asked twice in a row (the kept answer)
    assert.deepEqual(sorted(a.peerIds!()), sorted(a.peers().map(p => p.id)))
    const got = a.peerIds!()
    got.length = 0
    got.push('someone')
    assert.deepEqual(sorted(a.peerIds!()), sorted(a.peers().map(p => p.id)))
    // b goes: no longer in it
    await b.stop()
    await until(() => !a.peerIds!().includes(b.peerId), 'a no longer sees b')
    assert.deepEqual(sorted(a.peerIds!()), sorted(a.peers().map(p => p.id)))
    assert.ok(a.peerIds!().includes(c.peerId))
  })
})
