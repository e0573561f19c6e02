// The OpenAPI conformance check of the control API, reusable by every test that drives it: the
// routes a server serves and the paths of its document must be the same (checked from the
// server's own route list), and every reply a test receives is validated against the document
// (its status must be documented for the route, its content type too, and a JSON body must
// match the schema; Ajv2020, JSON Schema 2020-12 as OpenAPI 3.1 uses it). The checker records
// which routes were driven, so a test can see that it reached every one.
import assert from 'node:assert/strict'
import { request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { ValidateFunction } from 'ajv/dist/2020.js'

export interface RouteLike { method: string, path: string }

/** Where the API is: the unix socket, or TCP (with the bearer token unless a test leaves it out). */
export type ApiTarget = { socket: string } | { host: string, port: number, token?: string }

export interface ApiReply { status: number, headers: IncomingHttpHeaders, body: Buffer, type: string, json?: any }

/** One HTTP request to the API (no validation: see OpenapiCheck.request). */
export async function apiRequest (target: ApiTarget, method: string, path: string, opts: { body?: Buffer | string | object, headers?: Record<string, string>, signal?: AbortSignal, firstBytes?: boolean } = {}): Promise<ApiReply> {
  const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body))
  const headers: Record<string, string> = { ...(body !== undefined ? { 'content-length': String(body.byteLength) } : {}), ...opts.headers }
  if (!('socket' in target) && target.token !== undefined && headers.authorization === undefined) headers.authorization = `Bearer ${target.token}`
  return await new Promise((resolve, reject) => {
    const where = 'socket' in target ? { socketPath: target.socket } : { host: target.host, port: target.port }
    const req = request({ ...where, method, path, headers, agent: false, signal: opts.signal }, res => {
      const parts: Buffer[] = []
      const type = String(res.headers['content-type'] ?? '').split(';')[0].trim()
      const done = (): void => {
        const all = Buffer.concat(parts)
        let json: any
        if (type === 'application/json') {
          try { json = JSON.parse(all.toString('utf8')) } catch (err) { reject(new Error(`${method} ${path}: a reply of type application/json that is not JSON: ${(err as Error).message}`)); return }
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: all, type, json })
      }
      // an event stream never ends: its headers and first bytes are the reply
      if (opts.firstBytes === true) { res.once('data', (d: Buffer) => { parts.push(d); res.destroy(); done() }); return }
      res.on('data', (d: Buffer) => { parts.push(d) })
      res.on('end', done)
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

function pointer (s: string): string {
  return encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))
}

function templateRe (path: string): RegExp {
  return new RegExp('^' + path.split('/').map(seg => /^\{[^}]+\}$/.test(seg) ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('/') + '$')
}

export class OpenapiCheck {
  readonly doc: any
  private readonly ajv: Ajv2020
  private readonly validators = new Map<string, ValidateFunction>()
  private readonly templates: Array<{ path: string, re: RegExp }>
  /** `METHOD /path/{template}` of every route a validated reply came from, with the statuses seen. */
  readonly driven = new Map<string, Set<number>>()

  constructor (doc: any) {
    this.doc = doc
    this.ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true })
    this.ajv.addSchema(doc, 'openapi.json')
    this.templates = Object.keys(doc.paths ?? {}).map(path => ({ path, re: templateRe(path) }))
  }

  /** The document's own shape: unique operationIds, responses on every operation, every `{name}` a path parameter. */
  checkDocument (): void {
    assert.equal(this.doc.openapi, '3.1.0')
    const ids = new Set<string>()
    for (const [path, item] of Object.entries<any>(this.doc.paths)) {
      for (const [method, op] of Object.entries<any>(item)) {
        const where = `${method.toUpperCase()} ${path}`
        assert.equal(typeof op.operationId, 'string', `${where} has an operationId`)
        assert.ok(!ids.has(op.operationId), `operationId ${op.operationId} is unique (${where})`)
        ids.add(op.operationId)
        assert.ok(op.responses !== undefined && Object.keys(op.responses).length > 0, `${where} documents its responses`)
        for (const [status, r] of Object.entries<any>(op.responses)) assert.equal(typeof r.description, 'string', `${where} ${status} has a description`)
        for (const m of path.matchAll(/\{([^}]+)\}/g)) {
          assert.ok((op.parameters ?? []).some((p: any) => p.in === 'path' && p.name === m[1] && p.required === true), `${where} declares its path parameter ${m[1]}`)
        }
        // every schema the operation refers to compiles (its $refs resolve)
        for (const [status, r] of Object.entries<any>(op.responses)) {
          for (const type of Object.keys(r.content ?? {})) this.validator(path, method, status, type)
        }
      }
    }
  }

  /** The server's routes and the document's operations are the same set. */
  checkRoutes (routes: readonly RouteLike[]): void {
    const served = new Set(routes.map(r => `${r.method.toUpperCase()} ${r.path}`))
    const documented = new Set<string>()
    for (const [path, item] of Object.entries<any>(this.doc.paths)) for (const method of Object.keys(item)) documented.add(`${method.toUpperCase()} ${path}`)
    assert.deepEqual([...served].filter(r => !documented.has(r)).sort(), [], 'every route served is in the document')
    assert.deepEqual([...documented].filter(r => !served.has(r)).sort(), [], 'every operation of the document is served')
  }

  private validator (path: string, method: string, status: string, type: string): ValidateFunction {
    const key = `${path}/${method}/${status}/${type}`
    let v = this.validators.get(key)
    if (v === undefined) {
      const ref = `openapi.json#/paths/${pointer(path)}/${method}/responses/${status}/content/${pointer(type)}/schema`
      v = this.ajv.getSchema(ref)
      assert.ok(v !== undefined, `the schema of ${method.toUpperCase()} ${path} ${status} ${type} compiles`)
      this.validators.set(key, v)
    }
    return v
  }

  /** Validate one reply of `METHOD url` against the document (throws an AssertionError naming what is off). */
  validate (method: string, url: string, reply: ApiReply): void {
    const pathname = new URL(url, 'http://darkfs').pathname
    const t = this.templates.find(t => t.re.test(pathname) && this.doc.paths[t.path][method.toLowerCase()] !== undefined) ?? this.templates.find(t => t.re.test(pathname))
    const where = `${method} ${url} -> ${reply.status}`
    if (t === undefined) {
      // no such path: the server's 404 is an Error reply
      assert.equal(reply.status, 404, `${where}: a path the document does not have`)
      assert.ok(this.ajv.validate({ $ref: 'openapi.json#/components/schemas/Error' }, reply.json), `${where}: the 404 is an Error: ${reply.body.toString().slice(0, 200)}`)
      return
    }
    const op = this.doc.paths[t.path][method.toLowerCase()]
    if (op === undefined) {
      assert.equal(reply.status, 405, `${where}: a method the path does not have`)
      assert.ok(this.ajv.validate({ $ref: 'openapi.json#/components/schemas/Error' }, reply.json), `${where}: the 405 is an Error`)
      return
    }
    const status = op.responses[String(reply.status)] !== undefined ? String(reply.status) : op.responses[`${String(reply.status)[0]}XX`] !== undefined ? `${String(reply.status)[0]}XX` : 'default'
    const r = op.responses[status]
    assert.ok(r !== undefined, `${where}: status ${reply.status} is not documented for ${method} ${t.path} (documented: ${Object.keys(op.responses).join(', ')}); body: ${reply.body.toString().slice(0, 300)}`)
    const content = r.content ?? {}
    if (Object.keys(content).length === 0) {
      assert.equal(reply.body.byteLength, 0, `${where}: no content documented, but a body came`)
    } else {
      assert.ok(content[reply.type] !== undefined, `${where}: content type ${reply.type || '(none)'} is not documented (documented: ${Object.keys(content).join(', ')})`)
      if (reply.type === 'application/json') {
        const v = this.validator(t.path, method.toLowerCase(), status, reply.type)
        assert.ok(v(reply.json), `${where}: the body does not match the schema: ${this.ajv.errorsText(v.errors)}; body: ${reply.body.toString().slice(0, 400)}`)
      }
    }
    const key = `${method} ${t.path}`
    const seen = this.driven.get(key) ?? new Set<number>()
    seen.add(reply.status)
    this.driven.set(key, seen)
  }

  /** apiRequest, then validate its reply. */
  async request (target: ApiTarget, method: string, path: string, opts: Parameters<typeof apiRequest>[3] = {}): Promise<ApiReply> {
    const reply = await apiRequest(target, method, path, opts)
    this.validate(method, path, reply)
    return reply
  }

  /** The routes (of those given) no validated reply came from yet. */
  undriven (routes: readonly RouteLike[]): string[] {
    return routes.map(r => `${r.method.toUpperCase()} ${r.path}`).filter(k => !this.driven.has(k))
  }
}
