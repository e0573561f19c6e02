// The web dashboard (issue 13, item 4) in a real headless Chromium against three real `darkfs up`
// processes, the first serving the API on `--api` loopback TCP: the page loads without the
// token and takes it from the URL fragment (never from a query), the figures it shows (peers,
// chunks, bytes stored, file names, a file's versions) are the API's, an old version downloads
// through it, a peer gone shows offline on the map, a conflict made while a host was away shows
// with its actions and (with POST /v1/conflicts/resolve served) is resolved from the page.
// Screenshots go to test/artifacts/ (not committed) for a person to look at.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import puppeteer from 'puppeteer-core'
import type { Browser, Page } from 'puppeteer-core'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import { up, upNetwork } from '../../harness/proc.ts'
import type { Up } from '../../harness/proc.ts'
import { until } from '../../harness/cluster.ts'
import { loadConfig, saveConfig } from '../../node/cli/index.ts'
import { DASHBOARD_FILES, DASHBOARD_MAX_BYTES } from '../../node/api/index.ts'
import { OpenapiCheck, apiRequest } from '../helpers/openapi-check.ts'
import type { ApiTarget } from '../helpers/openapi-check.ts'

const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url))
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const LISTEN = ['--listen', '/ip4/127.0.0.1/tcp/0']
const WAIT_MS = 90_000

describe('the web dashboard in headless Chromium (3 real hosts, the first on --api TCP)', function () {
  this.timeout(10 * 60_000)
  const t = new Teardown()
  after(async () => { await t.run() })
  let dirs: string[]
  let hosts: Up[]
  let tcp: { host: string, port: number, token: string }
  let sock: ApiTarget
  let check: OpenapiCheck
  let browser: Browser
  let page: Page
  let downloads: string
  const pageErrors: string[] = []
  const versions = ['first version\n', 'second version, longer\n', 'third and last version of the report\n']

  const q = encodeURIComponent
  /** GET a JSON resource (the reply validated against the document). */
  const api = async (path: string, target: ApiTarget = sock): Promise<any> => {
    const r = await check.request(target, 'GET', path)
    assert.equal(r.status, 200, `${path}: ${r.body.toString().slice(0, 300)}`)
    return r.json
  }
  const put = async (target: ApiTarget, path: string, body: Buffer | string): Promise<void> => {
    const r = await check.request(target, 'PUT', `/v1/files/content?path=${q(path)}`, { body: Buffer.from(body) })
    assert.equal(r.status, 200, r.body.toString())
  }
  const socketOf = (i: number): ApiTarget => ({ socket: join(dirs[i], 'control.sock') })
  const shot = async (name: string): Promise<void> => {
    await page.screenshot({ path: join(ARTIFACTS, `dashboard-${name}.png`), fullPage: true })
  }
  /** What the page shows in `sel`'s data-value (the exact figure behind the formatted text). */
  const shown = async (sel: string): Promise<string | undefined> => await page.$eval(sel, e => e.getAttribute('data-value') ?? undefined)
  /** Wait until the page and the API give the same answer (both are read again each time). */
  // a click found and made in one step inside the page: live updates re-render the tables, so a
  // handle looked up first (page.click) can be detached by the time it is clicked
  const press = async (selector: string): Promise<void> => {
    await page.waitForSelector(selector, { timeout: WAIT_MS })
    await page.$eval(selector, e => { (e as unknown as { click: () => void }).click() })
  }
  const agree = async (what: string, fromPage: () => Promise<unknown>, fromApi: () => Promise<unknown>): Promise<void> => {
    let last = ''
    try {
      await until(what, async () => {
        const a = JSON.stringify(await fromApi())
        const p = JSON.stringify(await fromPage())
        last = `api ${a}, page ${p}`
        return a === p
      }, WAIT_MS)
    } catch (err) {
      await shot('failed').catch(() => {}) // ignored: the assertion below is the failure reported
      assert.fail(`${what}: ${last} (${(err as Error).message})`)
    }
  }

  before(async () => {
    const root = await tempDir(t, 'darkfs-dashboard-')
    ;({ dirs, hosts } = await upNetwork(t, root, 3, ['--failure-timeout', '3'], i => i === 0 ? ['--api', '127.0.0.1:0'] : []))
    const line = hosts[0].lines.find(l => l.startsWith('api http://'))
    assert.ok(line !== undefined, `up --api printed its address: ${hosts[0].lines.join(' | ')}`)
    const port = Number(/:(\d+) /.exec(line)![1])
    tcp = { host: '127.0.0.1', port, token: (await readFile(join(dirs[0], 'api.token'), 'utf8')).trim() }
    sock = socketOf(0)
    const doc = await apiRequest(sock, 'GET', '/v1/openapi.json')
    check = new OpenapiCheck(doc.json)
    await until('every host has 2 peers', async () => {
      for (const i of [0, 1, 2]) if ((await apiRequest(socketOf(i), 'GET', '/v1/status?chunks=0')).json.peers !== 2) return false
      return true
    }, WAIT_MS)

    assert.equal((await check.request(sock, 'POST', '/v1/files/mkdir', { body: { path: '/docs' } })).status, 200)
    for (const v of versions) await put(sock, '/docs/report.txt', v)
    await put(sock, '/docs/clash.txt', 'base\n')
    await put(sock, '/big.bin', randomBytes(3 << 20))
    await put(sock, '/notes.txt', 'hello from the dashboard test\n')
    await until('host 2 has the files', async () => (await apiRequest(socketOf(2), 'GET', `/v1/files/stat?path=${q('/docs/clash.txt')}`)).status === 200, WAIT_MS)

    await mkdir(ARTIFACTS, { recursive: true })
    downloads = await tempDir(t, 'darkfs-dashboard-downloads-')
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
    t.add(async () => { await browser.close() })
    page = await browser.newPage()
    await page.setViewport({ width: 1280, height: 1000 })
    page.on('pageerror', err => { pageErrors.push(String(err)) })
    const cdp = await page.createCDPSession()
    await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads })
  })

  it('GET / and /ui/{file}: served over TCP without the token, documented, under 200 KiB, no other file', async () => {
    const open = { host: tcp.host, port: tcp.port }
    let total = 0
    for (const path of ['/', ...Object.keys(DASHBOARD_FILES).filter(f => f !== 'index.html').map(f => `/ui/${f}`)]) {
      const r = await check.request(open, 'GET', path)
      assert.equal(r.status, 200, path)
      assert.equal(r.headers['cache-control'], 'no-cache')
      assert.equal(r.headers['x-content-type-options'], 'nosniff')
      total += r.body.byteLength
      const again = await check.request(open, 'GET', path, { headers: { 'if-none-match': String(r.headers.etag) } })
      assert.equal(again.status, 304, `${path} unchanged: 304`)
    }
    const html = await check.request(open, 'GET', '/')
    assert.equal(html.type, 'text/html')
    assert.match(String(html.headers['content-security-policy']), /default-src 'none'; script-src 'self'/)
    assert.equal((await check.request(open, 'GET', '/ui/app.js')).type, 'text/javascript')
    assert.equal((await check.request(open, 'GET', '/ui/style.css')).type, 'text/css')
    assert.ok(total < DASHBOARD_MAX_BYTES, `the page is ${total} bytes, over ${DASHBOARD_MAX_BYTES}`)
    // nothing but the known files: no path traversal, no other name
    for (const path of ['/ui/nope.js', '/ui/..%2F..%2Fetc%2Fpasswd', '/ui/.htaccess', '/ui/index.html.bak', '/ui/api.token']) {
      const r = await check.request(open, 'GET', path)
      assert.equal(r.status, 404, `${path}: ${r.status}`)
    }
    assert.equal((await apiRequest(open, 'GET', '/ui/../api.token')).status, 401)
    // the API itself still needs the token, and only GET of the page's files is open
    assert.equal((await check.request(open, 'GET', '/v1/status')).status, 401)
    assert.equal((await check.request(open, 'GET', '/v1/status', { headers: { authorization: 'Bearer wrong' } })).status, 401)
    assert.equal((await apiRequest(open, 'POST', '/', { body: {} })).status, 401)
    assert.equal((await apiRequest(open, 'PUT', '/ui/app.js', { body: 'x' })).status, 401)
    assert.equal((await apiRequest(tcp, 'PUT', '/ui/app.js', { body: 'x' })).status, 405)
    assert.equal((await check.request(tcp, 'GET', '/v1/status?chunks=0')).status, 200)
  })

  it('the page takes the token from the #fragment (kept in the tab, out of the URL) and shows the API\'s figures', async () => {
    await page.goto(`http://${tcp.host}:${tcp.port}/#token=${tcp.token}`)
    // live from the event stream where the host serves one, else polling
    const events = check.doc.paths['/v1/events']?.get !== undefined
    await page.waitForSelector(events ? '#live[data-mode="live"]' : '#live[data-mode="polling"]', { timeout: WAIT_MS })
    await page.waitForSelector('#peer-count[data-value]', { timeout: WAIT_MS })
    assert.equal(new URL(page.url()).hash, '', 'the token left the address bar')
    assert.equal(await page.evaluate('sessionStorage.getItem("darkfs.token")'), tcp.token)
    assert.equal(await page.$eval('#token-form', e => e.hasAttribute('hidden')), true, 'no token prompt')

    await agree('peers connected', async () => Number(await shown('#peer-count')), async () => (await api('/v1/status?chunks=0', tcp)).peers)
    await agree('the online peers on the map', async () => (await page.$$eval('#map .peer[data-online="1"]', g => g.map(e => e.getAttribute('data-peer')))).sort(), async () => (await api('/v1/peers', tcp)).map((p: any) => p.id).sort())
    await until('every peer told the bytes it holds', async () => (await api('/v1/peers', tcp)).every((p: any) => Number.isInteger(p.bytesStored) && p.bytesStored > 0), WAIT_MS)
    await agree('the bytes each peer holds, as it told (space notices)', async () => await page.$$eval('#map .peer[data-online="1"]', g => g.map(e => `${e.getAttribute('data-peer') ?? ''}=${e.getAttribute('data-held') ?? '?'}`).sort()), async () => (await api('/v1/peers', tcp)).map((p: any) => `${String(p.id)}=${p.bytesStored ?? '?'}`).sort())
    await agree('chunks in total', async () => Number(await shown('#chunk-total')), async () => (await api('/v1/status', tcp)).chunks.total)
    await agree('bytes stored', async () => Number(await shown('#bytes-stored')), async () => (await api('/v1/status?chunks=0', tcp)).bytesStored)
    await agree('redundant chunks', async () => Number(await page.$eval('#health tr[data-state="redundant"] td.num', e => e.getAttribute('data-value') ?? undefined)), async () => (await api('/v1/status', tcp)).chunks.redundant)
    await agree('the files at the root', async () => (await page.$$eval('#file-table tr.file', rows => rows.map(r => r.getAttribute('data-name')))).sort(), async () => (await api('/v1/files/list?path=%2F', tcp)).map((e: any) => e.name).sort())
    assert.ok(Number(await shown('#chunk-total')) > 0, 'the 3 MiB file made chunks')
    await page.waitForSelector('#chart polyline.in[points*=","]', { timeout: WAIT_MS })
    await shot('overview')
  })

  it('the file browser: a folder, a file\'s history (its version count as the API has it), an old version downloaded', async () => {
    await press('#file-table tr.file[data-name="docs"] button.link')
    await page.waitForSelector('#file-table tr.file[data-name="report.txt"]', { timeout: WAIT_MS })
    await agree('the files in /docs', async () => (await page.$$eval('#file-table tr.file', rows => rows.map(r => r.getAttribute('data-name')))).sort(), async () => (await api('/v1/files/list?path=%2Fdocs', tcp)).map((e: any) => e.name).sort())
    await press('#file-table tr.file[data-name="report.txt"] button.link')
    await page.waitForSelector('#history[data-path="/docs/report.txt"]:not([hidden])', { timeout: WAIT_MS })
    const history = await api(`/v1/history?path=${q('/docs/report.txt')}`, tcp)
    assert.equal(history.length, versions.length)
    assert.equal(await page.$eval('#history', e => e.getAttribute('data-versions')), String(history.length))
    assert.deepEqual(await page.$$eval('#versions li.version', li => li.map(e => e.getAttribute('data-version'))), history.map((v: any) => v.version))
    // the first version, through the page (fetched with the token, saved by the browser)
    await press('#versions li.version:first-child button[data-action="download-version"]')
    await until('the first version is downloaded', async () => (await readdir(downloads)).includes('report.v1.txt'), WAIT_MS)
    assert.equal(await readFile(join(downloads, 'report.v1.txt'), 'utf8'), versions[0])
    await shot('history')
  })

  it('pins: a file pinned from the page is in the API\'s pins and in the page\'s list, and unpinned again', async () => {
    await press('#file-table tr.file[data-name="report.txt"] button[data-action="pin"]')
    await page.waitForSelector('#pin-list li.pin[data-path="/docs/report.txt"]', { timeout: WAIT_MS })
    assert.deepEqual((await api('/v1/pins', tcp)).map((p: any) => p.path), ['/docs/report.txt'])
    await shot('pinned')
    await press('#file-table tr.file[data-name="report.txt"] button[data-action="unpin"]')
    await page.waitForSelector('#pin-list li.pin', { hidden: true, timeout: WAIT_MS })
    assert.deepEqual(await api('/v1/pins', tcp), [])
  })

  it('a host gone shows offline on the map; a conflict made meanwhile shows with its three actions', async () => {
    await hosts[2].stop('SIGTERM')
    await page.waitForSelector('#map .peer[data-online="0"]', { timeout: WAIT_MS })
    await agree('peers connected', async () => Number(await shown('#peer-count')), async () => (await api('/v1/status?chunks=0', tcp)).peers)
    assert.equal(Number(await shown('#peer-count')), 1)
    if (check.doc.paths['/v1/events']?.get !== undefined) await page.waitForSelector('#event-list li[data-type="peer-gone"]', { timeout: WAIT_MS })
    await shot('peer-offline')

    // both sides write /docs/clash.txt: host 0 now, host 2 alone (no join address), then it rejoins
    await put(sock, '/docs/clash.txt', 'written on host 0 while host 2 was away\n')
    await saveConfig(dirs[2], { ...(await loadConfig(dirs[2])), join: [] })
    hosts[2] = await up(t, ['--data', dirs[2], ...LISTEN])
    await put(socketOf(2), '/docs/clash.txt', 'written on host 2, alone\n')
    await hosts[2].stop('SIGTERM')
    hosts[2] = await up(t, ['--data', dirs[2], ...LISTEN, '--join', hosts[0].addresses[0]])
    await until('host 0 lists the conflict', async () => (await api('/v1/conflicts', tcp)).length === 1, WAIT_MS)

    await page.waitForSelector('#conflict-list .conflict[data-path="/docs/clash.txt"]', { timeout: WAIT_MS })
    const conflicts = await api('/v1/conflicts', tcp)
    assert.deepEqual(await page.$$eval('#conflict-list tr[data-sibling]', li => li.map(e => e.getAttribute('data-sibling'))), conflicts.map((c: any) => c.path))
    const actions = await page.$$eval('#conflict-list .conflict[data-path="/docs/clash.txt"] button[data-keep]', b => b.map(e => e.getAttribute('data-keep')).sort())
    assert.deepEqual(actions, ['both', 'name-holder', 'sibling'])
    await page.waitForSelector('#map .peer[data-online="0"]', { hidden: true, timeout: WAIT_MS })
    if (check.doc.paths['/v1/events']?.get !== undefined) await page.waitForSelector('#event-list li[data-type="conflict-created"]', { timeout: WAIT_MS })
    await shot('conflict')
  })

  it('a conflict resolved from the page ("keep the other"): the API shows it resolved, the file has the other\'s bytes', async function () {
    if (check.doc.paths['/v1/conflicts/resolve']?.post === undefined) this.skip() // the resolve route is not served by this build yet
    const [c] = await api('/v1/conflicts', tcp)
    const other = (await apiRequest(tcp, 'GET', `/v1/files/content?path=${q(c.path)}`)).body.toString()
    await press(`#conflict-list tr[data-sibling="${c.path}"] button[data-keep="sibling"]`)
    await until('the API has no conflict left', async () => (await api('/v1/conflicts', tcp)).length === 0, WAIT_MS)
    await page.waitForSelector('#conflict-list p.empty', { timeout: WAIT_MS })
    assert.equal((await apiRequest(tcp, 'GET', `/v1/files/content?path=${q('/docs/clash.txt')}`)).body.toString(), other)
    await shot('resolved')
  })

  it('the page threw nothing', () => {
    assert.deepEqual(pageErrors, [])
  })
})
