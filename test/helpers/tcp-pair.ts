// Two real hosts on loopback TCP sharing a network key, not yet connected (the rpc tests:
// test/node/rpc-progress-bound, rpc-slow-link). Each is stopped by `t`.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost } from '../../node/net/host.ts'
import type { Host } from '../../node/net/host.ts'
import { createNetworkKey } from '../../node/net/keys.ts'
import type { Teardown } from '../../harness/tmp.ts'

export async function tcpPair (t: Teardown): Promise<{ a: Host, b: Host }> {
  const key = createNetworkKey()
  const b = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'] })
  t.add(async () => { await b.stop() })
  const a = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'] })
  t.add(async () => { await a.stop() })
  return { a, b }
}
