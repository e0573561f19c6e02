// What one liveness ping costs on the wire (issue 14, idle traffic): two real hosts on loopback
// TCP, PINGS pings of a connection as host.ts sends them (a new /ipfs/ping/1.0.0 stream, 32
// bytes each way, the close), and the bytes each side wrote into its TCP socket for them
// (host.traffic(): pnet, Noise, yamux, multistream-select; TCP/IP headers not seen). The figure
// behind host.ts's PING_ROUND_SENT_BYTES (which adds the TCP/IP headers) and so behind the
// ping interval and the simulator's idle figure.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { byteStream } from '@libp2p/utils'
import { createHost, createNetworkKey, PING_ROUND_SENT_BYTES } from '../../node/net/index.ts'
import type { Host } from '../../node/net/index.ts'

const PINGS = 200

export async function run (): Promise<Record<string, number>> {
  const key = createNetworkKey()
  const hosts: Host[] = []
  try {
    const a = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'] })
    hosts.push(a)
    const b = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'], join: [a.addresses()[0]] })
    hosts.push(b)
    // joined, identified, gossip subscribed: wait until the join's own traffic stopped
    let last = -1
    while (a.traffic().wire.sent + b.traffic().wire.sent !== last) {
      last = a.traffic().wire.sent + b.traffic().wire.sent
      await new Promise(resolve => setTimeout(resolve, 2000))
    }
    const a0 = a.traffic().wire.sent
    const b0 = b.traffic().wire.sent
    for (let i = 0; i < PINGS; i++) {
      const stream = await a.newStream(b.peerId, '/ipfs/ping/1.0.0')
      const bytes = byteStream(stream)
      await Promise.all([bytes.write(crypto.getRandomValues(new Uint8Array(32))), bytes.read({ bytes: 32 })])
      await stream.close()
    }
    // the answerer's last close
    await new Promise(resolve => setTimeout(resolve, 1000))
    const pinger = (a.traffic().wire.sent - a0) / PINGS
    const answerer = (b.traffic().wire.sent - b0) / PINGS
    return {
      'ping.socket_bytes.pinger': Math.round(pinger),
      'ping.socket_bytes.answerer': Math.round(answerer),
      'ping.round_sent_bytes.assumed': PING_ROUND_SENT_BYTES
    }
  } finally {
    for (const h of hosts) await h.stop()
  }
}
