// One swarm stream to one peer: frames in and out with their bounds, backpressure both ways,
// and the download cap. Messages are handed to `onMessage` one at a time, in order; while a
// handler's promise is pending (or the download cap makes us wait) the stream is paused, so
// the muxer's flow control stops the sender instead of our memory growing.
import type { AbortOptions, Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { FrameDecoder, decode, encode, MAX_MESSAGE_BYTES } from './protocol.ts'
import type { Frame, Landing, Message } from './protocol.ts'
import type { CID } from 'multiformats/cid'
import type { RateLimiter } from './rate.ts'

/**
 * Most bytes a paused stream may hold unread before libp2p resets it: the largest yamux stream
 * window (16 MiB, the most a sender may have in flight when we stop reading) plus one frame.
 */
export const MAX_READ_BUFFER_BYTES = 16 * 1024 * 1024 + MAX_MESSAGE_BYTES
/** Slice of a paced frame admitted by the upload cap at once (see Channel.send). */
export const PACE_SLICE_BYTES = 16 * 1024
/** A stream on which nothing moves for this long is closed. */
export const STREAM_IDLE_MS = 5 * 60 * 1000
/**
 * The receive window a swarm stream grants its sender (yamux's is 256 KiB, the spec's initial
 * window): a 256 KiB fragment and its frame header do not fit in that, so each fragment waited a
 * window update per round trip, and a stream moved at most 256 KiB per round trip (40 Mbit/s at a
 * 50 ms RTT). yamux doubles a window only once it knows the connection's RTT, from its keep-alive
 * pings, which darkfs turns off (net/host.ts): windows never grew. Within MAX_READ_BUFFER_BYTES:
 * what a paused stream may hold unread.
 */
export const STREAM_WINDOW_BYTES = 4 * 1024 * 1024

export interface ChannelInit {
  stream: Stream
  peer: string
  /** Handles one message; return a promise to hold back further messages until it settles. */
  onMessage: (msg: Message) => void | Promise<void>
  /** Called once when the stream is gone, with the reason when it was an error. */
  onClose: (err?: Error) => void
  download: RateLimiter
  /** Byte accounting. */
  onSent: (bytes: number) => void
  onReceived: (bytes: number) => void
  /** Where a large BLOCK for `cid` may be written as it arrives (FrameDecoder's `land`; a client's wants). */
  land?: (cid: CID, bytes: number) => Landing | undefined
  /** Memory a large frame in several received pieces is joined into (FrameDecoder's `join`; a server's pushes). */
  join?: (length: number) => Uint8Array
}

export class Channel {
  readonly peer: string
  readonly stream: Stream
  private readonly init: ChannelInit
  private readonly decoder: FrameDecoder
  private readonly queue: Frame[] = []
  private running = false
  private closed = false
  /** Settles when the message being written is out (messages are written one at a time). */
  private writing: Promise<void> = Promise.resolve()

  constructor (init: ChannelInit) {
    this.init = init
    this.peer = init.peer
    this.decoder = new FrameDecoder({ land: init.land, join: init.join })
    this.stream = init.stream
    const stream = init.stream
    stream.maxReadBufferLength = MAX_READ_BUFFER_BYTES
    stream.inactivityTimeout = STREAM_IDLE_MS
    widenReceiveWindow(stream, STREAM_WINDOW_BYTES)
    stream.addEventListener('message', (evt) => { this.onData(evt.data) })
    stream.addEventListener('close', (evt) => { this.finish(evt.error) })
    stream.addEventListener('remoteCloseWrite', () => {
      // the peer will send nothing more: finish our side too once our queue is written
      void this.close()
    })
    if (stream.status !== 'open') this.finish()
  }

  get isOpen (): boolean { return !this.closed }

  /**
   * Write one message, waiting while the stream's send buffer is full. With `pace` (an upload
   * cap) the frame goes out in PACE_SLICE_BYTES slices, each admitted by the cap: a 256 KiB
   * block written at once leaves the host as one burst that overflows a thin uplink's queue
   * (the modem's, or tc's), and the drops come back as TCP retransmissions. Frames never
   * interleave: one message is written at a time.
   */
  async send (msg: Message, opts?: AbortOptions & { pace?: RateLimiter }): Promise<void> {
    const frame: Uint8ArrayList = encode(msg)
    const previous = this.writing
    let done!: () => void
    this.writing = new Promise<void>(resolve => { done = resolve })
    try {
      await previous
      const pace = opts?.pace
      if (pace === undefined || pace.rate === Infinity) {
        await this.write(frame, opts)
        return
      }
      for (let at = 0; at < frame.byteLength; at += PACE_SLICE_BYTES) {
        const slice = frame.sublist(at, Math.min(frame.byteLength, at + PACE_SLICE_BYTES))
        try {
          await pace.take(slice.byteLength, opts)
        } catch (err) {
          // half a frame is on the wire: the stream cannot carry another message
          if (at > 0) this.abort(err instanceof Error ? err : new Error(String(err)))
          throw err
        }
        await this.write(slice, opts)
      }
    } finally {
      done()
    }
  }

  private async write (bytes: Uint8ArrayList, opts?: AbortOptions): Promise<void> {
    while (this.stream.writableNeedsDrain && !this.closed) {
      await drained(this.stream, opts)
    }
    if (this.closed || this.stream.writeStatus !== 'writable') throw new Error('stream is closed')
    this.stream.send(bytes)
    this.init.onSent(bytes.byteLength)
  }

  /** Close gracefully (pending writes are flushed). */
  async close (): Promise<void> {
    if (this.closed) return
    try {
      await this.stream.close({ signal: AbortSignal.timeout(5000) })
    } catch (err) {
      this.stream.abort(err as Error)
    }
  }

  /** Close at once with an error the remote sees as a reset. */
  abort (err: Error): void {
    if (this.stream.status === 'open' || this.stream.status === 'closing') this.stream.abort(err)
    this.finish(err)
  }

  private finish (err?: Error): void {
    if (this.closed) return
    this.closed = true
    this.queue.length = 0
    this.init.onClose(err)
  }

  private onData (data: Uint8Array | Uint8ArrayList): void {
    if (this.closed) return
    this.init.onReceived(data.byteLength)
    let frames: Frame[]
    try {
      frames = this.decoder.frames(data)
    } catch (err) {
      this.abort(err as Error)
      return
    }
    this.queue.push(...frames)
    if (!this.running) void this.drain()
  }

  private async drain (): Promise<void> {
    this.running = true
    try {
      while (this.queue.length > 0 && !this.closed) {
        const frame = this.queue.shift() as Frame
        // (a landed BLOCK comes decoded: its bytes are where its asker wanted them)
        const msg = frame instanceof Uint8Array ? decode(frame) : frame.msg
        // the download cap delays the message itself, and (paused) everything behind it
        const limited = this.init.download.take(frame instanceof Uint8Array ? frame.byteLength : frame.length)
        if (limited !== undefined) {
          this.pause()
          await limited
        }
        const handled = this.init.onMessage(msg)
        if (handled instanceof Promise) {
          this.pause()
          await handled
        }
      }
    } catch (err) {
      this.abort(err as Error)
    } finally {
      this.running = false
      this.resume()
    }
  }

  private pause (): void {
    if (this.stream.readStatus === 'readable') this.stream.pause()
  }

  private resume (): void {
    if (!this.closed && this.stream.readStatus === 'paused') this.stream.resume()
  }
}

/** What widenReceiveWindow() reaches of a yamux stream (@chainsafe/libp2p-yamux 8 YamuxStream). */
interface YamuxWindow { state: number, recvWindow: number, recvWindowCapacity: number, maxStreamWindowSize: number, sendWindowUpdate: () => void }
/** YamuxStream's StreamState.Established: no SYN or ACK flag left to send with an update. */
const YAMUX_ESTABLISHED = 3

/**
 * Grant the sender of a yamux stream a receive window of `bytes` (a window update: the protocol's
 * own way to widen it, so any yamux peer honours it); a stream of another muxer, or one closing,
 * is left as it is. The window is the muxer's own (receive side) from then on: it refills it as
 * the stream is read, and stops while the stream is paused, as before; but it tells the sender
 * only once half the window is used (as go-yamux does), not after every data frame: each update
 * is a frame of its own through Noise, pnet and a socket write (~4% of a six-host write's CPU,
 * one per fragment received). The sender is never held back by it: it may still send the half
 * not used.
 */
export function widenReceiveWindow (stream: Stream, bytes: number): void {
  const y = stream as unknown as Partial<YamuxWindow>
  if (typeof y.recvWindow !== 'number' || typeof y.recvWindowCapacity !== 'number' || typeof y.maxStreamWindowSize !== 'number' || typeof y.sendWindowUpdate !== 'function' || typeof y.state !== 'number') return
  if (stream.status !== 'open' || y.recvWindow >= bytes) return
  const w = y as YamuxWindow
  w.maxStreamWindowSize = Math.max(w.maxStreamWindowSize, bytes)
  w.recvWindow = bytes
  const update = w.sendWindowUpdate.bind(w)
  update()
  w.sendWindowUpdate = () => {
    if (w.state === YAMUX_ESTABLISHED && w.recvWindowCapacity > w.recvWindow / 2) return
    update()
  }
}

/**
 * Resolves at the stream's next 'drain' event, rejects when it closes or the signal aborts.
 * (Not stream.onDrain(): in @libp2p/utils 7.4.1 its promise is never renewed once resolved,
 * so after the first drain it resolves at once and a write loop spins without yielding.)
 */
async function drained (stream: Stream, opts?: AbortOptions): Promise<void> {
  opts?.signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const signal = opts?.signal
    const done = (err?: unknown): void => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onDrain = (): void => { done() }
    const onClose = (): void => { done(new Error('stream closed')) }
    const onAbort = (): void => { done(signal?.reason) }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort)
  })
}
