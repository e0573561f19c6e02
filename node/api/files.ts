// The files of the volume as resources (DESIGN.md §8): stat, list, read (with Range, or an old
// version), write (streamed, committed when the whole body has arrived), mkdir, rename,
// remove, and a file's history. Paths are volume paths (absolute); one outside the tree ('..'
// above the root, a relative path) is 400, a missing file 404 (route.ts errorStatus).
import type { AbortOptions } from '@libp2p/interface'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { once } from 'node:events'
import { FsError, UsageError, toWire } from '../errors.ts'
import type { PutProgress, Stats } from '../types.ts'
import type { Volume } from '../index.ts'
import { HttpError, queryPath, readObject, needString, sendJson } from './route.ts'
import type { Route } from './route.ts'
import { errorResponses, jsonBody, jsonResponse, queryParam } from './openapi.ts'
import { ref } from './schemas.ts'

/** Bytes per read/write while streaming a file through the socket: 1 MiB. */
export const STREAM_PIECE = 1 << 20
/** Shortest time between two progress lines of an upload (PUT /v1/files/content?progress=1). */
export const PROGRESS_EVERY_MS = 200

export type FilesVolume = Pick<Volume, 'stat' | 'lstat' | 'readdirents' | 'mkdir' | 'rename' | 'rm' | 'reader' | 'readVersion' | 'replaceFile' | 'log'>

const pathParam = queryParam('path', 'a volume path (absolute)', { type: 'string' }, true)
const OK = jsonResponse('done', ref('Ok'))

/** Stats as JSON (its methods dropped; bigints become strings on the way out). */
function plain (s: Stats): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(s)) if (typeof v !== 'function') out[k] = v
  return out
}

export function fileRoutes (volume: FilesVolume): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/files/stat',
      operation: {
        operationId: 'statFile',
        summary: 'A file\'s metadata (of a symlink itself unless follow=1)',
        tags: ['files'],
        parameters: [pathParam, queryParam('follow', '1: follow a final symlink', { enum: ['0', '1'] })],
        responses: { 200: jsonResponse('its Stats', ref('Stats')), ...errorResponses(400, 404) }
      },
      handle: async (_req, res, { url, signal }) => {
        const path = queryPath(url)
        const s = url.searchParams.get('follow') === '1' ? await volume.stat(path, { signal }) : await volume.lstat(path, { signal })
        sendJson(res, 200, plain(s))
      }
    },
    {
      method: 'GET',
      path: '/v1/files/list',
      operation: {
        operationId: 'listDirectory',
        summary: 'A directory\'s entries, each with its Stats (of a symlink itself)',
        tags: ['files'],
        parameters: [pathParam],
        responses: { 200: jsonResponse('the entries', { type: 'array', items: ref('ListEntry') }), ...errorResponses(400, 404, 409) }
      },
      handle: async (_req, res, { url, signal }) => {
        const path = queryPath(url)
        const base = path.replace(/\/+$/, '')
        const entries = await volume.readdirents(path, { signal })
        const out = []
        for (const e of entries) {
          // an entry removed since the listing is left out
          const s = await volume.lstat(`${base}/${e.name}`, { signal }).catch((err: unknown) => { if ((err as FsError)?.code === 'ENOENT') return undefined; throw err })
          if (s !== undefined) out.push({ name: e.name, stat: plain(s) })
        }
        sendJson(res, 200, out)
      }
    },
    {
      method: 'GET',
      path: '/v1/files/content',
      operation: {
        operationId: 'readFile',
        summary: 'A file\'s bytes (or one old version\'s); `Range: bytes=a-b` gives 206',
        tags: ['files'],
        parameters: [
          pathParam,
          queryParam('version', 'a version id from GET /v1/history'),
          { name: 'Range', in: 'header', required: false, description: 'one range, `bytes=a-b`, `bytes=a-` or `bytes=-n`', schema: { type: 'string' } }
        ],
        responses: {
          200: { description: 'the bytes', content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
          206: { description: 'the bytes of the range', headers: { 'Content-Range': { schema: { type: 'string' } } }, content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
          ...errorResponses(400, 404, 409, 416)
        }
      },
      handle: async (req, res, { url, signal }) => {
        const path = queryPath(url)
        const version = url.searchParams.get('version')
        const range = req.headers.range
        if (version !== null) {
          const bytes = await volume.readVersion(path, version, { signal })
          const r = range === undefined ? undefined : parseRange(range, bytes.byteLength)
          if (r === undefined) {
            res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.byteLength), 'accept-ranges': 'bytes' })
            res.end(bytes)
          } else {
            res.writeHead(206, { 'content-type': 'application/octet-stream', 'content-length': String(r.end - r.start), 'content-range': `bytes ${r.start}-${r.end - 1}/${bytes.byteLength}` })
            res.end(bytes.subarray(r.start, r.end))
          }
          return
        }
        await getFile(volume, path, range, res, { signal })
      }
    },
    {
      method: 'PUT',
      path: '/v1/files/content',
      operation: {
        operationId: 'writeFile',
        summary: 'Write a whole file (atomic: committed once the whole body has arrived, an interrupted upload changes nothing)',
        tags: ['files'],
        parameters: [
          pathParam,
          queryParam('mode', 'permission bits, decimal (default 420 = 0644)', { type: 'string', pattern: '^[0-9]+$' }),
          queryParam('progress', '1: answer NDJSON lines as it goes ({progress}..., then {ok} or {error}; the status is 200 once streaming)', { enum: ['0', '1'] })
        ],
        requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
        responses: {
          200: {
            description: 'written and placed',
            content: {
              'application/json': { schema: ref('Ok') },
              'application/x-ndjson': { schema: { type: 'string', description: 'lines of PutProgressLine' } }
            }
          },
          ...errorResponses(400, 404, 409)
        }
      },
      handle: async (req, res, { url, signal }) => {
        const path = queryPath(url)
        const modeText = url.searchParams.get('mode') ?? '420'
        const mode = Number(modeText)
        if (!/^[0-9]+$/.test(modeText) || mode > 0o7777) throw new UsageError(`mode must be permission bits as a decimal number, not ${JSON.stringify(modeText)}`)
        if (url.searchParams.get('progress') !== '1') {
          await putFile(volume, path, mode, req, { signal })
          sendJson(res, 200, { ok: true })
          return
        }
        // progress as it goes: NDJSON lines, the outcome last
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        const line = (v: unknown): void => { res.write(JSON.stringify(v) + '\n') }
        let last = 0
        try {
          await putFile(volume, path, mode, req, { signal }, p => {
            const now = Date.now()
            if (now - last < PROGRESS_EVERY_MS) return
            last = now
            line({ progress: p })
          })
          line({ ok: true })
        } catch (err) {
          line({ error: toWire(err) })
          // the client stops its upload once it reads the error line, or we read the rest
          await drainBody(req)
        }
        res.end()
      }
    },
    {
      method: 'POST',
      path: '/v1/files/mkdir',
      operation: {
        operationId: 'makeDirectory',
        summary: 'Make a directory (parents: its missing parents too, and no error if it exists)',
        tags: ['files'],
        requestBody: jsonBody({ type: 'object', required: ['path'], properties: { path: { type: 'string' }, parents: { type: 'boolean' }, mode: { type: 'integer' } } }),
        responses: { 200: OK, ...errorResponses(400, 404, 409, 413) }
      },
      handle: async (req, res, { signal }) => {
        const body = await readObject(req)
        const path = needString(body.path, 'path')
        if (body.mode !== undefined && (!Number.isInteger(body.mode) || (body.mode as number) < 0 || (body.mode as number) > 0o7777)) throw new UsageError('mode must be permission bits (an integer up to 4095)')
        await volume.mkdir(path, { recursive: body.parents === true, ...(body.mode !== undefined ? { mode: body.mode as number } : {}), signal })
        sendJson(res, 200, { ok: true })
      }
    },
    {
      method: 'POST',
      path: '/v1/files/rename',
      operation: {
        operationId: 'renameFile',
        summary: 'Rename (move) a file or directory, replacing a file at the target',
        tags: ['files'],
        requestBody: jsonBody({ type: 'object', required: ['from', 'to'], properties: { from: { type: 'string' }, to: { type: 'string' } } }),
        responses: { 200: OK, ...errorResponses(400, 404, 409, 413) }
      },
      handle: async (req, res, { signal }) => {
        const body = await readObject(req)
        await volume.rename(needString(body.from, 'from'), needString(body.to, 'to'), { signal })
        sendJson(res, 200, { ok: true })
      }
    },
    {
      method: 'DELETE',
      path: '/v1/files',
      operation: {
        operationId: 'removeFile',
        summary: 'Remove a file, or a directory (recursive=1 for a non-empty one)',
        tags: ['files'],
        parameters: [pathParam, queryParam('recursive', '1: a directory and everything under it', { enum: ['0', '1'] })],
        responses: { 200: OK, ...errorResponses(400, 404, 409) }
      },
      handle: async (_req, res, { url, signal }) => {
        await volume.rm(queryPath(url), { recursive: url.searchParams.get('recursive') === '1', signal })
        sendJson(res, 200, { ok: true })
      }
    },
    {
      method: 'GET',
      path: '/v1/history',
      operation: {
        operationId: 'fileHistory',
        summary: 'A file\'s versions, oldest first (`darkfs log`); read one with GET /v1/files/content?version=',
        tags: ['files'],
        parameters: [pathParam],
        responses: { 200: jsonResponse('the versions', { type: 'array', items: ref('Version') }), ...errorResponses(400, 404, 409) }
      },
      handle: async (_req, res, { url, signal }) => {
        sendJson(res, 200, await volume.log(queryPath(url), { signal }))
      }
    }
  ]
}

/** `bytes=a-b` | `bytes=a-` | `bytes=-n` -> [start, end) within size; 416 if it is outside; undefined for a form not understood (the whole file). */
export function parseRange (header: string, size: number): { start: number, end: number } | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (m === null || (m[1] === '' && m[2] === '')) return undefined
  let start: number
  let end: number
  if (m[1] === '') {
    const n = Number(m[2])
    start = Math.max(0, size - n)
    end = size
  } else {
    start = Number(m[1])
    end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1)
  }
  if (start >= size || end <= start) throw new HttpError(416, 'RangeNotSatisfiableError', `range ${header} is outside the file's ${size} bytes`, { 'content-range': `bytes */${size}` })
  return { start, end }
}

async function putFile (vol: FilesVolume, path: string, mode: number, req: IncomingMessage, options: AbortOptions, onProgress?: (p: PutProgress) => void): Promise<void> {
  let received = 0
  async function * pieces (): AsyncGenerator<Uint8Array> {
    // a write that fails part-way must not destroy the request: its error reply goes back on it
    for await (const piece of req.iterator({ destroyOnReturn: false })) {
      received += (piece as Buffer).byteLength
      yield piece as Buffer
    }
    if (!req.complete) throw new FsError('EIO', 'put', path, 'upload interrupted')
  }
  // atomic: an interrupted upload leaves the path as it was (and what it stored is deleted)
  const report = onProgress === undefined ? undefined : (p: { stored: number, placed: number }) => { onProgress({ received, stored: p.stored, placed: p.placed }) }
  await vol.replaceFile(path, pieces(), { mode, wait: 'safe', signal: options.signal, onProgress: report })
}

async function getFile (vol: FilesVolume, path: string, range: string | undefined, res: ServerResponse, options: AbortOptions): Promise<void> {
  // one version, pinned at the start: its size is the content-length, and a version committed
  // while the bytes stream (here or by a peer) changes none of them
  const file = await vol.reader(path, options)
  const r = range === undefined ? undefined : parseRange(range, file.size)
  const start = r?.start ?? 0
  const end = r?.end ?? file.size
  const piece = async (pos: number): Promise<Uint8Array> => await file.read(pos, Math.min(STREAM_PIECE, end - pos), options)
  // read the first piece before committing to a 200, so an unreadable file is an error reply
  let bytes = await piece(start)
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'content-length': String(end - start), 'accept-ranges': 'bytes' }
  if (r !== undefined) headers['content-range'] = `bytes ${start}-${end - 1}/${file.size}`
  res.writeHead(r === undefined ? 200 : 206, headers)
  let pos = start
  try {
    while (bytes.byteLength > 0) {
      // a client gone meanwhile never drains: the request's signal ends the wait
      if (!res.write(bytes)) await once(res, 'drain', { signal: options.signal })
      pos += bytes.byteLength
      bytes = pos < end ? await piece(pos) : new Uint8Array(0)
    }
    // short (a file open here, cut by its writer meanwhile): an error, never fewer bytes than said
    if (pos !== end) throw new FsError('EIO', 'read', path, `the file ended at ${pos} of its ${end} bytes`)
    res.end()
  } catch (err) {
    res.destroy(err as Error)
  }
}

/** Read and drop the rest of a request body (an upload whose write failed). */
async function drainBody (req: IncomingMessage): Promise<void> {
  if (req.complete || req.destroyed) return
  req.resume()
  await new Promise<void>(resolve => { req.once('end', resolve); req.once('close', resolve) })
}
