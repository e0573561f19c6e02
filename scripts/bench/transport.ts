// What moving bytes between two darkfs hosts costs in the transport alone (issue 15: a six-host
// write's CPU is mostly bytes moved between hosts): two real hosts in this process on loopback
// TCP (pnet, Noise, yamux: host.ts's connection stack), one stream from one to the other carrying
// DARKFS_TRANSPORT_MIB MiB (default 256) sent in 256 KiB pieces (a 4+2 fragment of a 1 MiB
// chunk), received and counted, nothing else. Figures: MiB/s, and CPU ms per MiB of this process
// (both ends, user and system; process.cpuUsage), the steadier of the two on a busy machine.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createHost, createNetworkKey } from '../../node/net/index.ts'
import type { Host } from '../../node/net/index.ts'

const PIECE = 256 * 1024
const PROTOCOL = '/darkfs/bench-sink/1.0.0'

export async function run (): Promise<Record<string, number>> {
  const mib = Number(process.env.DARKFS_TRANSPORT_MIB ?? 256)
  const total = mib * 1024 * 1024
  const key = createNetworkKey()
  const hosts: Host[] = []
  try {
    const a = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'] })
    hosts.push(a)
    const b = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey: key, listen: ['/ip4/127.0.0.1/tcp/0'] })
    hosts.push(b)
    let got = 0
    let done!: () => void
    const all = new Promise<void>(resolve => { done = resolve })
    await b.handle(PROTOCOL, async (stream) => {
      for await (const chunk of stream) got += chunk.byteLength
      done()
    })
    await a.dial(b.addresses()[0])
    const stream = await a.newStream(b.peerId, PROTOCOL)
    const pieces = Array.from({ length: 8 }, () => randomBytes(PIECE))
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    for (let sent = 0, i = 0; sent < total; sent += PIECE, i++) {
      // a fresh copy per send, as a fragment is fresh memory each time
      if (!stream.send(Buffer.from(pieces[i % pieces.length]))) await once(stream as any, 'drain')
    }
    await stream.close()
    await all
    const seconds = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    if (got !== total) throw new Error(`received ${got} of ${total} bytes`)
    return {
      'transport.MiBps': mib / seconds,
      'transport.cpu.ms_per_MiB': (cpu.user + cpu.system) / 1000 / mib,
      'transport.cpu.system.ms_per_MiB': cpu.system / 1000 / mib
    }
  } finally {
    for (const h of hosts) await h.stop()
  }
}
