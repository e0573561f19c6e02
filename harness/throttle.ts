// A TCP proxy on 127.0.0.1 whose each direction carries at most `bitsPerSecond` (a token bucket of
// `burstBytes`), standing in for a slow link between in-process hosts: the test dials the proxy's
// port instead of the peer's. Unlike tc on a namespace's loopback it needs no root and shares
// nothing with other tests on the machine; like tbf it holds what exceeds the rate (TCP's
// backpressure reaches the sender) rather than dropping it.
import { createConnection, createServer } from 'node:net'
import type { Socket } from 'node:net'
import { Transform } from 'node:stream'
import type { TransformCallback } from 'node:stream'

export interface Throttle {
  port: number
  /** Bytes carried each way so far. */
  carried: () => { up: number, down: number }
  close: () => Promise<void>
}

/** Passes chunks on no faster than `bytesPerSecond`, `burstBytes` at once at most. */
class Paced extends Transform {
  private tokens: number
  private last = performance.now()
  private readonly bytesPerSecond: number
  private readonly burstBytes: number
  private readonly count: (n: number) => void
  constructor (bytesPerSecond: number, burstBytes: number, count: (n: number) => void) {
    super()
    this.bytesPerSecond = bytesPerSecond
    this.burstBytes = burstBytes
    this.count = count
    this.tokens = burstBytes
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pass(chunk, 0, done)
  }

  private pass (chunk: Buffer, at: number, done: TransformCallback): void {
    while (at < chunk.length) {
      const now = performance.now()
      this.tokens = Math.min(this.burstBytes, this.tokens + (now - this.last) * this.bytesPerSecond / 1000)
      this.last = now
      const n = Math.min(chunk.length - at, Math.floor(this.tokens))
      if (n <= 0) {
        // the bucket refills at the link's rate: the rest goes when it holds a slice's worth
        const need = Math.min(chunk.length - at, Math.max(1, this.burstBytes / 4))
        setTimeout(() => { this.pass(chunk, at, done) }, Math.ceil((need - this.tokens) * 1000 / this.bytesPerSecond))
        return
      }
      this.push(chunk.subarray(at, at + n))
      this.count(n)
      this.tokens -= n
      at += n
    }
    done()
  }
}

/** Listen on 127.0.0.1 and carry each connection to 127.0.0.1:`targetPort` at `bitsPerSecond` each way. */
export async function throttle (targetPort: number, bitsPerSecond: number, burstBytes = 16 * 1024): Promise<Throttle> {
  const rate = bitsPerSecond / 8
  const sockets = new Set<Socket>()
  const carried = { up: 0, down: 0 }
  const track = (s: Socket): void => { sockets.add(s); s.on('close', () => { sockets.delete(s) }) }
  const server = createServer((inbound) => {
    const outbound = createConnection({ host: '127.0.0.1', port: targetPort })
    track(inbound)
    track(outbound)
    const end = (): void => { inbound.destroy(); outbound.destroy() }
    inbound.on('error', end)
    outbound.on('error', end)
    inbound.on('close', end)
    outbound.on('close', end)
    inbound.pipe(new Paced(rate, burstBytes, n => { carried.up += n })).pipe(outbound)
    outbound.pipe(new Paced(rate, burstBytes, n => { carried.down += n })).pipe(inbound)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('throttle: no port')
  return {
    port: address.port,
    carried: () => ({ ...carried }),
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    }
  }
}
