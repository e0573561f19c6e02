// A plain libp2p node in a process of its own, for test/node/wire-interop: the libraries' own
// pnet, Noise, yamux and TCP, none of darkfs's changes to them (those patch the libraries'
// classes, so a node in the test's process would share them). Takes the network key (its pnet
// form) on stdin's first line, listens on 127.0.0.1, prints its address, and echoes every stream
// of /darkfs/test-echo/1.0.0; it also sends SIZE bytes of its own (a fixed pattern) on each
// /darkfs/test-push/1.0.0 stream opened to it. Exits when stdin closes.
import { createInterface } from 'node:readline'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { preSharedKey } from '@libp2p/pnet'

const lines = createInterface({ input: process.stdin })
const it = lines[Symbol.asyncIterator]()
const psk = (await it.next()).value as string
const size = Number(process.argv[2] ?? 8 << 20)
const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionProtector: preSharedKey({ psk: new TextEncoder().encode(psk.replace(/\\n/g, '\n')) }),
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()]
})
await node.handle('/darkfs/test-echo/1.0.0', async (stream) => {
  for await (const chunk of stream) {
    if (!stream.send(chunk)) await new Promise(resolve => stream.addEventListener('drain', resolve, { once: true }))
  }
  await stream.close()
}, { runOnLimitedConnection: true })
await node.handle('/darkfs/test-push/1.0.0', async (stream) => {
  const piece = new Uint8Array(100_003)
  for (let i = 0; i < piece.length; i++) piece[i] = (i * 7 + 3) & 0xff
  for (let sent = 0; sent < size; sent += piece.length) {
    if (!stream.send(piece.subarray(0, Math.min(piece.length, size - sent)))) await new Promise(resolve => stream.addEventListener('drain', resolve, { once: true }))
  }
  await stream.close()
}, { runOnLimitedConnection: true })
process.stdout.write(`${node.getMultiaddrs()[0].toString()}\n`)
// ignored: stdin ends when the test is done; nothing else to read
for (;;) { if ((await it.next()).done === true) break }
await node.stop()
