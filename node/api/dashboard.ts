// The web dashboard (issue 13, item 4): a page of plain files in node/api/dashboard/ (HTML, one
// JS module, one stylesheet; no framework, no build step, nothing fetched from elsewhere) that
// draws the host from the control API in the browser: GET / is the page, GET /ui/{file} its
// other files. Only the files of DASHBOARD_FILES are served (a name is looked up, never joined
// to a path), read once, asynchronously, on the first request (from the binary's assets when
// darkfs runs as one, scripts/build-bin.ts).
//
// Over `--api` TCP these routes are public (route.ts): a browser loads the page before it can
// send the token; the page takes the token from the URL fragment (`/#token=...`, never sent to
// the server) and sends `Authorization: Bearer` on every API call it makes.
import { readFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { getAsset, isSea } from 'node:sea'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { HttpError } from './route.ts'
import type { Route } from './route.ts'
import { errorResponses } from './openapi.ts'

/** The dashboard's files (in node/api/dashboard/) and their content types; nothing else is served. */
export const DASHBOARD_FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8'
}
/** The dashboard's files from the repo root (the binary's asset names). */
export const DASHBOARD_DIR = 'node/api/dashboard'
/** The whole page (every file above) stays under this: 200 KiB. */
export const DASHBOARD_MAX_BYTES = 200 * 1024

/**
 * What the page may do (Content-Security-Policy): load its own files, talk to this API, draw
 * data: and blob: images; no inline script, nothing from elsewhere, no framing.
 */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data: blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

interface Loaded { bytes: Buffer, etag: string }

async function load (name: string): Promise<Buffer> {
  if (isSea()) return Buffer.from(getAsset(`${DASHBOARD_DIR}/${name}`))
  return await readFile(new URL(`./dashboard/${name}`, import.meta.url))
}

/** The files, read once (the first request waits for them). */
function files (): () => Promise<Map<string, Loaded>> {
  let loading: Promise<Map<string, Loaded>> | undefined
  return async () => {
    loading ??= (async () => {
      const out = new Map<string, Loaded>()
      for (const name of Object.keys(DASHBOARD_FILES)) {
        const bytes = await load(name)
        out.set(name, { bytes, etag: `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 22)}"` })
      }
      return out
    })()
    // a failed read is tried again by the next request (and reported by this one)
    return await loading.catch(err => { loading = undefined; throw err })
  }
}

const fileContent = Object.fromEntries([...new Set(Object.values(DASHBOARD_FILES))].map(type => [type.split(';')[0], { schema: { type: 'string' } }]))

function serve (req: IncomingMessage, res: ServerResponse, name: string, f: Loaded): void {
  const headers: Record<string, string> = {
    'content-type': DASHBOARD_FILES[name],
    // asked again each time, answered 304 while unchanged (a new darkfs serves its new page at once)
    'cache-control': 'no-cache',
    etag: f.etag,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer'
  }
  if (name === 'index.html') {
    headers['content-security-policy'] = CSP
    headers['x-frame-options'] = 'DENY'
  }
  if (req.headers['if-none-match'] === f.etag) {
    res.writeHead(304, headers)
    res.end()
    return
  }
  res.writeHead(200, { ...headers, 'content-length': String(f.bytes.byteLength) })
  res.end(f.bytes)
}

export function dashboardRoutes (): Route[] {
  const read = files()
  const responses = (what: string): Record<string, unknown> => ({
    200: { description: what, content: fileContent },
    304: { description: 'unchanged since the ETag given in If-None-Match' }
  })
  return [
    {
      method: 'GET',
      path: '/',
      public: true,
      operation: {
        operationId: 'getDashboard',
        summary: 'The web dashboard (open `/#token=TOKEN` over `--api`: the page sends the token on its API calls)',
        tags: ['dashboard'],
        security: [],
        responses: { ...responses('the page (text/html)'), ...errorResponses() }
      },
      handle: async (req, res) => {
        const name = 'index.html'
        serve(req, res, name, (await read()).get(name)!)
      }
    },
    {
      method: 'GET',
      path: '/ui/{file}',
      public: true,
      operation: {
        operationId: 'getDashboardFile',
        summary: 'One of the dashboard\'s files (its script and stylesheet)',
        tags: ['dashboard'],
        security: [],
        parameters: [{ name: 'file', in: 'path', required: true, description: `one of ${Object.keys(DASHBOARD_FILES).join(', ')}`, schema: { type: 'string' } }],
        responses: { ...responses('the file'), ...errorResponses(404) }
      },
      handle: async (req, res, { params }) => {
        const name = params.file
        const f = Object.hasOwn(DASHBOARD_FILES, name) ? (await read()).get(name) : undefined
        if (f === undefined) throw new HttpError(404, 'NotFoundError', `the dashboard has no file ${JSON.stringify(name)} (it has ${Object.keys(DASHBOARD_FILES).join(', ')})`)
        serve(req, res, name, f)
      }
    }
  ]
}
