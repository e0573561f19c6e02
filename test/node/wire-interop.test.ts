// darkfs's connections stay on libp2p's wire (node/net/lean-transport.ts and host.ts change how
// pnet, Noise and yamux handle bytes, not which bytes): a plain libp2p node (the libraries'
// pnet, Noise and yamux, in a process of its own: test/helpers/plain-peer.ts) holding the same
// network key connects to a darkfs host and moves megabytes both ways, intact. With the addon
// the host seals Noise's messages into one buffer of its own per send, XORed by pnet in place,
// and opens received ones in place, and a send's memory is used again once the socket has
// taken all of it; without the addon, the libraries' paths.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost } from '../../node/net/host.ts'
import type { Host } from '../../node/net/host.ts'
import { createNetworkKey, formatNetworkKey } from '../../node/net/keys.ts'
import { sendPoolSize } from '../../node/net/lean-transport.ts'
import { aeadNative } from '../../node/data/index.ts'

const PEER = fileURLToPath(new URL('../helpers/plain-peer.ts', import.meta.url))
const PUSH_BYTES = 8 << 20

describe('wire interop (a plain libp2p node and a darkfs host)', function () {
  this.timeout(120_000)
  const teardown: Array<() => Promise<void>> = []
  afterEach(async function () {
    while (teardown.length > 0) await teardown.pop()!().catch(() => {})
  })

  it('over TCP with the same network key: 8 MiB echoed (sent in pieces of many sizes) and 8 MiB pushed by the plain node arrive intact', async function () {
    const networkKey = createNetworkKey()
    const child = spawn(process.execPath, [PEER, String(PUSH_BYTES)], { stdio: ['pipe', 'pipe', 'inherit'] })
    teardown.push(async () => {
      if (child.exitCode === null) { child.stdin.end(); await once(child, 'exit') }
    })
    child.stdin.write(`${formatNetworkKey(networkKey).replace(/\n/g, '\\n')}\n`)
    let out = ''
    child.stdout.setEncoding('utf8')
    while (!out.includes('\n')) {
      const [chunk] = await Promise.race([once(child.stdout, 'data'), once(child, 'exit').then(() => { throw new Error('the plain peer exited') })])
      out += chunk as string
    }
    const addr = out.trim()
    const peerId = addr.split('/p2p/')[1]
    const host: Host = await createHost({ privateKey: await generateKeyPair('Ed25519'), networkKey, listen: ['/ip4/127.0.0.1/tcp/0'], join: [] })
    teardown.push(async () => { await host.stop() })
    await host.dial(addr)

    // echo: our sends of many sizes (1 byte to 300 KiB), their Noise and pnet back
    const echo = await host.newStream(peerId, '/darkfs/test-echo/1.0.0')
    const sentHash = createHash('sha256')
    const gotHash = createHash('sha256')
    let got = 0
    const reading = (async () => { for await (const chunk of echo) { gotHash.update(chunk.subarray()); got += chunk.byteLength } })()
    const sizes = [1, 12, 1199, 1200, 65519, 65520, 131072, 300_000, 7]
    let sent = 0
    for (let i = 0; sent < PUSH_BYTES; i++) {
      const piece = randomBytes(Math.min(sizes[i % sizes.length], PUSH_BYTES - sent))
      sentHash.update(piece)
      sent += piece.byteLength
      if (!echo.send(piece)) await once(echo as unknown as EventTarget as any, 'drain')
    }
    await echo.close()
    await reading
    assert.equal(got, sent)
    assert.equal(gotHash.digest('hex'), sentHash.digest('hex'), 'the echo is the bytes sent')
    // with the addon, large sends' memory came back once the socket had taken them (and was
    // used again: a buffer given back too early would have broken a Noise message above)
    if (aeadNative !== undefined) assert.ok(sendPoolSize() > 0, 'send buffers given back for reuse')

    // push: the plain node's sends, our receive path
    const push = await host.newStream(peerId, '/darkfs/test-push/1.0.0')
    const want = new Uint8Array(100_003)
    for (let i = 0; i < want.length; i++) want[i] = (i * 7 + 3) & 0xff
    let at = 0
    for await (const chunk of push) {
      const bytes = chunk.subarray()
      for (let i = 0; i < bytes.byteLength; i++) {
        if (bytes[i] !== want[(at + i) % want.length]) assert.fail(`byte ${at + i} differs`)
      }
      at += bytes.byteLength
    }
    assert.equal(at, PUSH_BYTES)
  })
})
