// Two real hosts on libp2p's in-memory transport sharing a network key, b listening and a
// joined to it, connected (the rpc tests: test/node/rpc, rpc-streams). `stop` stops both.
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost } from '../../node/net/host.ts'
import type { Host } from '../../node/net/host.ts'
import { createNetworkKey } from '../../node/net/keys.ts'

export async function memoryPair (name: string): Promise<{ a: Host, b: Host, stop: () => Promise<void> }> {
  const key = createNetworkKey()
  const addr = `/memory/darkfs-${name}-${randomBytes(6).toString('hex')}`
  const up: Host[] = []
  const stop = async (): Promise<void> => {
    while (up.length > 0) await up.pop()!.stop().catch(() => {})
  }
  try {
    const b = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: [addr] })
    up.push(b)
    const a = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: [`${addr}-a`], join: [b.addresses()[0]] })
    up.push(a)
    for (let i = 0; !a.peers().some(p => p.id === b.peerId); i++) {
      if (i > 1000) throw new Error('never happened: a and b connected')
      await new Promise(resolve => setTimeout(resolve, 10))
    }
    return { a, b, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
