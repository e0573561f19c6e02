// The control-socket client: what the CLI (and scripts) use to talk to a running host.
// Errors come back as the same classes the library throws (fromWire). Every call takes
// AbortOptions last: an abort closes the request's connection, which the server sees as the
// client gone, and it aborts the Volume call or command it was running (control.ts).
import type { AbortOptions } from '@libp2p/interface'
import type { IncomingMessage } from 'node:http'
import { stat as statLocal, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { once } from 'node:events'
import { NoHostRunningError, FsError, fromWire } from '../errors.ts'
import type { PutProgress } from './control.ts'
import { decodeArg, encodeArg } from './wire.ts'

// Every CLI command but init and up loads this file: it keeps to what a call needs (a command's
// own time is meant to stay well under 100 ms, scripts/bench/cli.ts). node:http and node:fs are
// taken with getBuiltinModule, not imported: importing a builtin as an ES module builds its ESM
// facade, which reads every export, and their lazy getters load more (http's `WebSocket` loads
// undici, 40-80 ms; fs's `ReadStream` the stream and readline modules). Requests skip the HTTP
// agent (one connection per request to a unix socket; its server-name code compiles the IPv6
// regular expression, ~10 ms).
const { request } = process.getBuiltinModule('node:http')
const { connect } = process.getBuiltinModule('node:net')

export const CONTROL_SOCKET = 'control.sock'

export class ControlClient {
  readonly dataDir: string
  readonly socket: string

  constructor (dataDir: string) {
    this.dataDir = dataDir
    this.socket = join(dataDir, CONTROL_SOCKET)
  }

  private async send (method: string, path: string, body?: Uint8Array | NodeJS.ReadableStream, headers: Record<string, string> = {}, options: AbortOptions = {}): Promise<IncomingMessage> {
    options.signal?.throwIfAborted()
    return await new Promise((resolve, reject) => {
      const req = request({ createConnection: () => connect(this.socket), method, path, headers, signal: options.signal }, resolve)
      req.on('error', (err: any) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') reject(new NoHostRunningError(this.dataDir))
        else reject(err)
      })
      if (body === undefined) req.end()
      else if (body instanceof Uint8Array) req.end(body)
      else body.pipe(req)
    })
  }

  private async json (res: IncomingMessage): Promise<any> {
    const parts: Buffer[] = []
    for await (const p of res) parts.push(p as Buffer)
    const text = Buffer.concat(parts).toString('utf8')
    let body: any
    try { body = JSON.parse(text) } catch { throw new Error(`bad reply from the host: ${text.slice(0, 200)}`) }
    if ((res.statusCode ?? 500) >= 400) throw fromWire(body.error ?? { name: 'Error', message: text })
    return body
  }

  async get (path: string, options: AbortOptions = {}): Promise<any> {
    return await this.json(await this.send('GET', path, undefined, {}, options))
  }

  /** POST a JSON body to a route; its JSON reply. */
  async post (path: string, body: unknown, options: AbortOptions = {}): Promise<any> {
    return await this.json(await this.send('POST', path, Buffer.from(JSON.stringify(body)), { 'content-type': 'application/json' }, options))
  }

  /** A filesystem call by name (control.ts FS_OPS), without a signal: see fsCall. */
  async fs (op: string, ...args: unknown[]): Promise<any> {
    return await this.fsCall(op, args)
  }

  /** A filesystem call by name with its arguments; the signal stays here (it is not sent). */
  async fsCall (op: string, args: unknown[], options: AbortOptions = {}): Promise<any> {
    const body = Buffer.from(JSON.stringify({ op, args: args.map(encodeArg) }))
    return decodeArg((await this.json(await this.send('POST', '/v1/fs', body, { 'content-type': 'application/json' }, options))).result)
  }

  async call (op: string, args: Record<string, unknown> = {}, options: AbortOptions = {}): Promise<any> {
    const body = Buffer.from(JSON.stringify({ op, args: encodeArg(args) }))
    return decodeArg((await this.json(await this.send('POST', '/v1/call', body, { 'content-type': 'application/json' }, options))).result)
  }

  /**
   * Upload a local file to a volume path (committed when the whole file has arrived, and
   * resolved once it is placed). `onProgress` hears the host's progress lines as it goes
   * (bytes of the file, then bytes received, stored and placed by the host). An abort closes
   * the request: the host abandons the write and deletes what it stored (control.ts).
   */
  async put (local: string, path: string, options: AbortOptions & { onProgress?: (p: PutProgress & { size: number }) => void } = {}): Promise<void> {
    let st
    try {
      st = await statLocal(local)
    } catch (err: any) {
      throw new FsError(err.code === 'ENOENT' ? 'ENOENT' : 'EIO', 'put', local, 'cannot read the local file')
    }
    if (!st.isFile()) throw new FsError('EINVAL', 'put', local, 'not a regular file')
    const q = new URLSearchParams({ path, mode: String(st.mode & 0o7777), progress: '1' })
    const { createReadStream } = process.getBuiltinModule('node:fs')
    const res = await this.send('PUT', `/v1/file?${q.toString()}`, createReadStream(local), { 'content-length': String(st.size) }, options)
    if ((res.statusCode ?? 500) >= 400) { await this.json(res); return }
    // NDJSON: progress lines, then the outcome
    let buf = ''
    for await (const part of res) {
      buf += (part as Buffer).toString('utf8')
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        let msg: any
        try { msg = JSON.parse(text) } catch { throw new Error(`bad reply from the host: ${text.slice(0, 200)}`) }
        if (msg.progress !== undefined) options.onProgress?.({ ...msg.progress, size: st.size })
        else if (msg.error !== undefined) {
          // the upload stops here: the host has given up on it
          res.destroy()
          throw fromWire(msg.error)
        }
        else if ('result' in msg) return
      }
    }
    options.signal?.throwIfAborted()
    throw new FsError('EIO', 'put', path, 'the host closed the connection before the put finished')
  }

  /** Download a volume file (or one version of it) to a local stream. */
  async download (path: string, out: NodeJS.WritableStream, version?: string, options: AbortOptions = {}): Promise<void> {
    const q = new URLSearchParams({ path })
    if (version !== undefined) q.set('version', version)
    const res = await this.send('GET', `/v1/file?${q.toString()}`, undefined, {}, options)
    if ((res.statusCode ?? 500) >= 400) await this.json(res)
    await pipeline(res, out, { end: out !== process.stdout, signal: options.signal })
  }

  /**
   * Download to a local file atomically: the bytes go to a temp file beside it, renamed over
   * `local` only once complete, so a failed or cancelled get never leaves a partial file (or
   * a half-replaced one) under the target name.
   */
  async getTo (path: string, local: string, options: AbortOptions = {}): Promise<void> {
    const { randomBytes } = process.getBuiltinModule('node:crypto') // only `get` needs it
    const tmp = join(dirname(local), `.${basename(local)}.darkfs-${randomBytes(6).toString('hex')}.part`)
    const out = process.getBuiltinModule('node:fs').createWriteStream(tmp, { flags: 'wx' })
    await once(out, 'open') // a bad local path (ENOENT, EISDIR, EACCES) rejects here, not as an unhandled 'error'
    try {
      await this.download(path, out, undefined, options)
      await rename(tmp, local)
    } catch (err) {
      out.destroy()
      // ignored: the temp file may not exist any more; the download's error is what the caller sees
      await unlink(tmp).catch(() => {})
      throw err
    }
  }

  async readFile (path: string, options: AbortOptions = {}): Promise<Uint8Array> {
    const res = await this.send('GET', `/v1/file?${new URLSearchParams({ path }).toString()}`, undefined, {}, options)
    if ((res.statusCode ?? 500) >= 400) await this.json(res)
    const parts: Buffer[] = []
    for await (const p of res) parts.push(p as Buffer)
    return new Uint8Array(Buffer.concat(parts))
  }

  async writeFile (path: string, data: Uint8Array | string, options: AbortOptions = {}): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data
    await this.json(await this.send('PUT', `/v1/file?${new URLSearchParams({ path }).toString()}`, bytes, { 'content-length': String(bytes.byteLength) }, options))
  }
}
