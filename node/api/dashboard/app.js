// The darkfs dashboard: draws one host and its network from the control API (GET /v1/status,
// /v1/peers, /v1/traffic, /v1/conflicts, /v1/files/list, /v1/history, /v1/pins), kept current by
// the event stream (GET /v1/events, read with fetch so it can carry the token; polling every
// POLL_MS when the host has no stream) and a traffic sample every second.
//
// The token (over `--api` TCP) comes from the URL fragment, `/#token=...`, which browsers never
// send to a server; it is kept in sessionStorage (this tab only), taken out of the address bar,
// and sent as `Authorization: Bearer` on every call. On the unix socket none is needed.

const POLL_MS = 2000
/** With the event stream live, the figures no event tells of (bytes, space) are read this often. */
const LIVE_REFRESH_MS = 5000
const SAMPLE_MS = 1000
/** Samples the transfer chart shows: one minute. */
const SAMPLES = 60
const RETRY_MS = 2000
const EVENTS_SHOWN = 50
const TOKEN_KEY = 'darkfs.token'
const CHUNK_STATES = [
  ['redundant', 'var(--ok)'], ['placing', 'var(--info)'], ['degraded', 'var(--warn)'], ['localOnly', '#bc4c00'],
  ['unreachable', 'var(--off)'], ['lost', 'var(--bad)'], ['unknown', '#d0d7de']
]
const CONFLICT_SUFFIX = /\.conflict-[A-Za-z0-9]+-\d{8}-\d{6}(?:-\d+)?$/

const $ = (sel) => document.querySelector(sel)

/** An element: attrs are attributes, `on<event>` listeners, `text` its text. */
function el (tag, attrs = {}, ...kids) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'text') e.textContent = String(v)
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v)
    else e.setAttribute(k, v === true ? '' : String(v))
  }
  e.append(...kids.flat().filter(k => k !== undefined && k !== null))
  return e
}

function svg (tag, attrs = {}, ...kids) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag)
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) e.setAttribute(k, String(v))
  e.append(...kids)
  return e
}

function bytes (n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let i = 0
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${i === 0 ? Math.round(n) : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`
}
const rate = (n) => typeof n === 'number' ? `${bytes(n)}/s` : '–'
const short = (id) => String(id).slice(-8)
/** ns since the epoch (a decimal string) as a local date and time. */
const nsTime = (ns) => new Date(Number(BigInt(ns) / 1000000n)).toLocaleString()
const msTime = (ms) => new Date(ms).toLocaleTimeString()
const enc = encodeURIComponent
const join = (dir, name) => (dir === '/' ? '' : dir) + '/' + name
const dirOf = (path) => path.slice(0, path.lastIndexOf('/')) || '/'
const nameOf = (path) => path.slice(path.lastIndexOf('/') + 1)

// ---- the token and the API ----

function takeToken () {
  const params = new URLSearchParams(location.hash.slice(1))
  const given = params.get('token')
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given)
    history.replaceState(null, '', location.pathname + location.search)
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined
}
let token = takeToken()

class ApiError extends Error {
  constructor (status, name, message) {
    super(message)
    this.status = status
    this.name = name
  }
}

async function call (path, { method = 'GET', body, headers = {}, signal } = {}) {
  const h = { ...headers }
  if (token !== undefined) h.authorization = `Bearer ${token}`
  if (body !== undefined) h['content-type'] = 'application/json'
  const r = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), signal, cache: 'no-store' })
  if (r.ok) return r
  let name = 'HttpError'
  let message = `${method} ${path}: ${r.status} ${r.statusText}`
  try {
    const e = (await r.json()).error
    name = e.name
    message = e.message
  } catch { /* not an error body: the status says it */ }
  if (r.status === 401) askToken(message)
  throw new ApiError(r.status, name, message)
}
const get = async (path) => await (await call(path)).json()

function askToken (why) {
  const form = $('#token-form')
  form.hidden = false
  form.querySelector('p').title = why
}
$('#token-form').addEventListener('submit', (e) => {
  e.preventDefault()
  token = $('#token-input').value.trim()
  sessionStorage.setItem(TOKEN_KEY, token)
  $('#token-form').hidden = true
  refresh()
  followEvents()
})

function showError (err) {
  const p = $('#error')
  if (err === undefined) { p.hidden = true; return }
  p.hidden = false
  p.textContent = err.message
}

// ---- state ----

const state = {
  status: undefined,
  peers: [],
  traffic: undefined,
  conflicts: [],
  pins: [],
  cwd: '/',
  entries: [],
  /** The file whose history shows, and its versions. */
  selected: undefined,
  versions: [],
  /** Every peer this page has heard of: id -> last time seen connected (ms; 0 never). */
  known: new Map(),
  samples: [],
  lastTraffic: undefined,
  mode: 'connecting'
}

let refreshing
let refreshAgain = false

/** Read everything the page shows again (one refresh at a time; one more if asked meanwhile). */
async function refresh () {
  if (refreshing !== undefined) { refreshAgain = true; return await refreshing }
  refreshing = (async () => {
    try {
      const [status, peers, traffic, conflicts, pins] = await Promise.all([
        get('/v1/status'), get('/v1/peers'), get('/v1/traffic'), get('/v1/conflicts'), get('/v1/pins')
      ])
      Object.assign(state, { status, peers, traffic, conflicts, pins })
      await readFolder()
      if (state.selected !== undefined) await readHistory(state.selected)
      noteKnown()
      render()
      showError()
    } catch (err) {
      showError(err)
    }
  })()
  try { await refreshing } finally {
    refreshing = undefined
    if (refreshAgain) { refreshAgain = false; void refresh() }
  }
}

async function readFolder () {
  try {
    state.entries = await get(`/v1/files/list?path=${enc(state.cwd)}`)
  } catch (err) {
    // the folder went away (removed, renamed elsewhere): back to the root
    if (err.status !== 404 || state.cwd === '/') throw err
    state.cwd = '/'
    state.entries = await get('/v1/files/list?path=%2F')
  }
}

async function readHistory (path) {
  try {
    state.versions = await get(`/v1/history?path=${enc(path)}`)
  } catch (err) {
    if (err.status !== 404) throw err
    state.selected = undefined
    state.versions = []
  }
}

function noteKnown () {
  const self = state.status?.peerId
  const now = Date.now()
  const t = state.traffic ?? {}
  for (const id of [...Object.keys(t.swarm?.peers ?? {}), ...Object.keys(t.uplinks ?? {}), ...(state.status?.fullPeers ?? [])]) {
    if (id !== self && !state.known.has(id)) state.known.set(id, 0)
  }
  for (const p of state.peers) state.known.set(p.id, now)
}

// ---- drawing ----

function render () {
  renderHeader()
  renderMap()
  renderCapacity()
  renderConflicts()
  renderFiles()
  renderPins()
}

function renderHeader () {
  const s = state.status
  $('#host-id').textContent = s.peerId
  const presence = $('#presence')
  presence.textContent = s.offline ? 'offline' : s.space?.full ? 'disk full' : 'online'
  presence.className = `badge ${s.offline ? 'bad' : s.space?.full ? 'warn' : 'ok'}`
  $('#updated').textContent = `updated ${msTime(s.at)}`
}

function setMode (mode) {
  state.mode = mode
  const live = $('#live')
  live.textContent = mode === 'live' ? 'live (events)' : mode === 'polling' ? `polling every ${POLL_MS / 1000} s` : mode
  live.className = `badge ${mode === 'live' ? 'ok' : 'warn'}`
  live.dataset.mode = mode
}

function renderMap () {
  const map = $('#map')
  const W = 720
  const H = 380
  const cx = W / 2
  const cy = H / 2
  const s = state.status
  const t = state.traffic ?? {}
  const online = new Map(state.peers.map(p => [p.id, p]))
  const full = new Set(s.fullPeers ?? [])
  const ids = [...state.known.keys()].sort()
  $('#peer-count').textContent = String(s.peers)
  $('#peer-count').dataset.value = String(s.peers)
  $('#peer-known').textContent = String(ids.length)
  const links = []
  const nodes = []
  ids.forEach((id, i) => {
    // around an ellipse from the left: one peer left, two left and right, three a triangle
    const a = Math.PI + 2 * Math.PI * i / Math.max(ids.length, 1)
    const x = cx + Math.cos(a) * (W / 2 - 110)
    const y = cy + Math.sin(a) * (H / 2 - 50)
    const p = online.get(id)
    const up = p !== undefined
    const swarm = t.swarm?.peers?.[id]
    const latency = p?.latencyMs ?? swarm?.rttMs
    const uplink = t.uplinks?.[id]
    const held = p?.bytesStored ?? p?.bytesHeld
    const cls = `peer ${up ? 'online' : 'offline'}${full.has(id) ? ' full' : ''}`
    links.push(svg('line', { class: `link ${up ? 'online' : 'offline'}`, x1: cx, y1: cy, x2: x, y2: y }))
    const lines = [
      up ? (latency !== undefined ? `${Math.round(latency)} ms` : 'online') : `offline${state.known.get(id) ? ` since ${msTime(state.known.get(id))}` : ''}`,
      uplink !== undefined ? `uplink ${rate(uplink)}` : undefined,
      held !== undefined ? `holds ${bytes(held)}` : undefined,
      swarm !== undefined ? `↑${bytes(swarm.sent)} ↓${bytes(swarm.received)}` : undefined
    ].filter(Boolean)
    const title = svg('title')
    title.textContent = `${id}\n${p?.addresses?.join('\n') ?? ''}`
    nodes.push(svg('g', { class: cls, 'data-peer': id, 'data-online': up ? '1' : '0', ...(held !== undefined ? { 'data-held': held } : {}) },
      title,
      svg('circle', { cx: x, cy: y, r: 14 }),
      label(x, y - 20, short(id)),
      ...lines.map((l, j) => label(x, y + 30 + j * 13, l, 'sub'))
    ))
  })
  const self = svg('g', { class: 'self' },
    svg('circle', { cx, cy, r: 24 }),
    label(cx, cy - 32, `this host ${short(s.peerId)}`),
    label(cx, cy + 40, `holds ${bytes(s.bytesStored)}`, 'sub'),
    label(cx, cy + 53, s.offline ? 'offline' : `${s.peers} connected`, 'sub')
  )
  if (ids.length === 0) nodes.push(label(cx, cy + 80, 'no peers yet', 'sub'))
  map.replaceChildren(...links, self, ...nodes)
}

function label (x, y, text, cls) {
  const t = svg('text', { x, y, class: cls })
  t.textContent = text
  return t
}

function figure (sel, value, text) {
  const e = $(sel)
  e.textContent = text
  e.dataset.value = value === undefined ? '' : String(value)
}

function renderCapacity () {
  const s = state.status
  figure('#bytes-stored', s.bytesStored, bytes(s.bytesStored))
  figure('#capacity-bytes', s.capacity, bytes(s.capacity))
  figure('#disk-free', s.space?.free ?? undefined, bytes(s.space?.free ?? undefined))
  const c = s.chunks
  figure('#chunk-total', c?.total, c === undefined ? '–' : String(c.total))
  const bar = $('#health-bar')
  const rows = []
  const rects = []
  let x = 0
  for (const [name, color] of CHUNK_STATES) {
    const n = c?.[name] ?? 0
    const w = c?.total ? 300 * n / c.total : 0
    if (w > 0) rects.push(svg('rect', { x, y: 0, width: w, height: 14, fill: color }))
    x += w
    if (n > 0 || name === 'redundant' || name === 'degraded' || name === 'lost') {
      const age = c?.ageMs?.[name]
      rows.push(el('tr', { 'data-state': name },
        el('td', {}, el('span', { class: 'swatch', 'data-color': color }), name),
        el('td', { class: 'num', 'data-value': n, text: n }),
        el('td', { class: 'muted', text: typeof age === 'number' ? `${Math.round(age / 1000)} s ago` : '' })))
    }
  }
  if (rects.length === 0) rects.push(svg('rect', { x: 0, y: 0, width: 300, height: 14, fill: 'var(--line)' }))
  bar.replaceChildren(...rects)
  $('#health tbody').replaceChildren(...rows)
  for (const sw of document.querySelectorAll('#health .swatch')) sw.style.background = sw.dataset.color
  renderNetwork(s.network)
  renderRepair(s.repair)
}

// every chunk of the network, summed over what each member's keeper counts told (keeper/kept.ts)
function renderNetwork (n) {
  if (n === undefined) return
  $('#network-reporting').textContent = `counts from ${n.reporting} of ${n.members} members up${typeof n.ageMs === 'number' ? `, as of ${Math.round(n.ageMs / 1000)} s ago` : ''}`
  const c = n.chunks
  const parts = [`${c.total} chunks (${bytes(n.bytes.total)})`, `${c.redundant} redundant`]
  for (const [name, label] of [['degraded', 'degraded'], ['atRisk', 'at risk'], ['unreachable', 'unreachable'], ['lost', 'lost']]) {
    if (c[name] > 0 || name === 'lost') parts.push(`${c[name]} ${label}`)
  }
  const p = $('#network-text')
  p.textContent = parts.join(', ')
  p.dataset.value = String(c.total)
}

function renderRepair (r) {
  if (r === undefined) return
  const total = r.chunks ?? r.total ?? 0
  const done = r.checked ?? r.done ?? 0
  const p = $('#repair-progress')
  p.max = Math.max(total, 1)
  p.value = Math.min(done, p.max)
  $('#repair-state').textContent = r.running ? 'running' : 'idle'
  $('#repair-text').textContent = `${done} of ${total} chunks checked in the last pass, ${r.fragmentsRepaired ?? r.repaired ?? 0} fragments repaired, ${bytes(r.bytesPushed ?? r.bytes ?? 0)} pushed${r.failed ? `, ${r.failed} failed` : ''}`
}

/** One point of the chart: the swarm's bytes in and out since the last sample, per second. */
function sample (t, now) {
  const cur = { at: now, in: t.swarm?.bytesReceived ?? 0, out: (t.swarm?.bytesSent ?? 0) }
  const last = state.lastTraffic
  state.lastTraffic = cur
  if (last === undefined || now <= last.at) return
  const dt = (now - last.at) / 1000
  state.samples.push({ in: Math.max(0, cur.in - last.in) / dt, out: Math.max(0, cur.out - last.out) / dt })
  if (state.samples.length > SAMPLES) state.samples.shift()
  renderChart()
}

function renderChart () {
  const W = 300
  const H = 130
  const xs = state.samples
  const max = Math.max(1024, ...xs.map(s => Math.max(s.in, s.out)))
  const line = (key) => xs.map((s, i) => `${(W * (i + SAMPLES - xs.length) / (SAMPLES - 1)).toFixed(1)},${(H - 4 - (H - 8) * s[key] / max).toFixed(1)}`).join(' ')
  const grid = [0.25, 0.5, 0.75].map(f => svg('line', { class: 'grid', x1: 0, x2: W, y1: H * f, y2: H * f }))
  $('#chart').replaceChildren(...grid, svg('polyline', { class: 'in', points: line('in') }), svg('polyline', { class: 'out', points: line('out') }))
  const now = xs[xs.length - 1] ?? { in: 0, out: 0 }
  $('#rates').textContent = `in ${rate(now.in)} · out ${rate(now.out)}`
  $('#chart-max').textContent = `top of chart ${rate(max)}`
}

function renderConflicts () {
  // conflict copies grouped by the file holding the name
  const groups = new Map()
  for (const c of state.conflicts) {
    const holder = join(dirOf(c.path), nameOf(c.path).replace(CONFLICT_SUFFIX, ''))
    if (!groups.has(holder)) groups.set(holder, [])
    groups.get(holder).push(c)
  }
  $('#conflict-count').textContent = state.conflicts.length === 0 ? 'none' : `${state.conflicts.length} cop${state.conflicts.length === 1 ? 'y' : 'ies'} of ${groups.size} file${groups.size === 1 ? '' : 's'}`
  const list = [...groups].map(([holder, copies]) => el('div', { class: 'conflict', 'data-path': holder },
    el('div', {}, el('strong', { class: 'mono', text: holder }), el('span', { class: 'muted', text: ' — written on two hosts at once' })),
    el('table', {}, el('tbody', {},
      el('tr', { 'data-holder': holder },
        el('td', { text: 'this one' }), el('td', { class: 'mono', text: nameOf(holder) }), el('td', { class: 'muted', text: 'holds the name' }),
        el('td', { class: 'num' },
          el('button', { class: 'link', type: 'button', onclick: () => { void showHistory(holder) }, text: 'history' }), ' ',
          el('button', { type: 'button', 'data-keep': 'name-holder', title: `keep ${holder} as it is; the copies go (their versions stay in its history)`, onclick: (e) => { void resolve(e.target, holder, 'name-holder') }, text: 'Keep this one' }))),
      copies.map(c => el('tr', { 'data-sibling': c.path },
        el('td', { text: 'the other' }), el('td', { class: 'mono', text: nameOf(c.path) }), el('td', { class: 'muted', text: `by ${short(c.author)}, ${nsTime(c.time)}` }),
        el('td', { class: 'num' },
          el('button', { class: 'link', type: 'button', onclick: () => { void showHistory(c.path) }, text: 'history' }), ' ',
          el('button', { type: 'button', 'data-keep': 'sibling', title: `${holder} gets this copy's content; the copies go (their versions stay in its history)`, onclick: (e) => { void resolve(e.target, holder, { sibling: nameOf(c.path) }) }, text: 'Keep the other' })))))),
    el('div', { class: 'actions' },
      el('button', { type: 'button', 'data-keep': 'both', onclick: (e) => { void resolve(e.target, holder, 'both') }, text: 'Keep both' }),
      el('span', { class: 'muted', text: 'every copy stays, as a plain file under a new name' }))))
  $('#conflict-list').replaceChildren(...(list.length > 0 ? list : [el('p', { class: 'empty', text: 'No conflicts.' })]))
}

async function resolve (button, path, keep) {
  for (const b of button.closest('.conflict').querySelectorAll('button')) b.disabled = true
  try {
    const r = await (await call('/v1/conflicts/resolve', { method: 'POST', body: { path, keep } })).json()
    note('resolved', `${path}: ${keep === 'both' ? 'kept both' : keep === 'name-holder' ? 'kept this one' : 'kept the other'}${r.left?.length ? ` (${r.left.length} changed meanwhile, still conflicts)` : ''}`)
    showError()
  } catch (err) {
    showError(err)
  }
  await refresh()
}

function renderFiles () {
  const crumbs = [el('button', { class: 'link', type: 'button', onclick: () => { void go('/') }, text: '/' })]
  let at = ''
  for (const part of state.cwd.split('/').filter(Boolean)) {
    at += '/' + part
    const to = at
    crumbs.push(el('button', { class: 'link', type: 'button', onclick: () => { void go(to) }, text: part + '/' }))
  }
  $('#crumbs').replaceChildren(...crumbs)
  const pinned = new Set(state.pins.filter(p => p.here).map(p => p.path))
  const entries = [...state.entries].sort((a, b) => (a.stat.kind === 'dir' ? 0 : 1) - (b.stat.kind === 'dir' ? 0 : 1) || a.name.localeCompare(b.name))
  const rows = entries.map(e => {
    const path = join(state.cwd, e.name)
    const dir = e.stat.kind === 'dir'
    return el('tr', { class: 'file', 'data-name': e.name, 'data-kind': e.stat.kind, 'data-size': e.stat.size },
      el('td', {}, el('button', { class: 'link', type: 'button', onclick: () => { void (dir ? go(path) : showHistory(path)) }, text: dir ? `${e.name}/` : e.name })),
      el('td', { class: 'num', text: dir ? '' : bytes(e.stat.size) }),
      el('td', { class: 'muted', text: new Date(e.stat.mtimeMs).toLocaleString() }),
      el('td', { class: 'num' },
        dir ? undefined : el('button', { type: 'button', 'data-action': 'download', onclick: () => { void download(path) }, text: 'download' }), ' ',
        el('button', { type: 'button', 'data-action': pinned.has(path) ? 'unpin' : 'pin', onclick: (ev) => { void pin(ev.target, path, !pinned.has(path)) }, text: pinned.has(path) ? 'unpin' : 'pin' })))
  })
  $('#file-table tbody').replaceChildren(...(rows.length > 0 ? rows : [el('tr', {}, el('td', { class: 'empty', colspan: 4, text: 'Empty folder.' }))]))
  renderHistory()
}

async function go (path) {
  state.cwd = path
  try {
    await readFolder()
    renderFiles()
  } catch (err) { showError(err) }
}

async function showHistory (path) {
  state.selected = path
  try {
    await readHistory(path)
    renderHistory()
    $('#history').scrollIntoView({ block: 'nearest' })
  } catch (err) { showError(err) }
}

function renderHistory () {
  const box = $('#history')
  box.hidden = state.selected === undefined
  if (state.selected === undefined) return
  const path = state.selected
  $('#history-path').textContent = path
  $('#history-count').textContent = `${state.versions.length} version${state.versions.length === 1 ? '' : 's'}`
  box.dataset.path = path
  box.dataset.versions = String(state.versions.length)
  const n = state.versions.length
  $('#versions').replaceChildren(...state.versions.map((v, i) => el('li', { class: 'version', 'data-version': v.version },
    el('span', { text: `${nsTime(v.time)} · ${bytes(v.size)} · by ${short(v.author)}${i === n - 1 ? ' · current' : ''} ` }),
    el('button', { type: 'button', 'data-action': 'download-version', onclick: () => { void download(path, v.version, i + 1) }, text: 'download' }))))
}

/** Download a file (or one old version) through the API with the token: a Blob saved by the browser. */
async function download (path, version, nth) {
  try {
    const r = await call(`/v1/files/content?path=${enc(path)}${version === undefined ? '' : `&version=${enc(version)}`}`)
    const blob = await r.blob()
    const url = URL.createObjectURL(blob)
    const name = nameOf(path)
    const dot = name.lastIndexOf('.')
    const saveAs = version === undefined ? name : dot > 0 ? `${name.slice(0, dot)}.v${nth}${name.slice(dot)}` : `${name}.v${nth}`
    const a = el('a', { href: url, download: saveAs, hidden: true })
    document.body.append(a)
    a.click()
    a.remove()
    setTimeout(() => { URL.revokeObjectURL(url) }, 60_000)
  } catch (err) { showError(err) }
}

async function pin (button, path, on) {
  button.disabled = true
  try {
    if (on) await call('/v1/pins', { method: 'POST', body: { path } })
    else await call(`/v1/pins?path=${enc(path)}`, { method: 'DELETE' })
  } catch (err) { showError(err) }
  await refresh()
}

function renderPins () {
  $('#pin-count').textContent = String(state.pins.length)
  $('#pin-list').replaceChildren(...(state.pins.length > 0
    ? state.pins.map(p => el('li', { class: 'pin', 'data-path': p.path },
      el('span', { class: 'mono', text: p.path }),
      el('span', { class: 'muted', text: ` pinned by ${p.pinners.map(id => id === state.status.peerId ? 'this host' : short(id)).join(', ')} ` }),
      p.here ? el('button', { type: 'button', class: 'link', onclick: (ev) => { void pin(ev.target, p.path, false) }, text: 'unpin' }) : undefined))
    : [el('li', { class: 'empty', text: 'Nothing pinned.' })]))
}

function note (type, text) {
  const list = $('#event-list')
  list.prepend(el('li', { 'data-type': type }, el('span', { class: 'muted', text: `${msTime(Date.now())} ` }), el('strong', { text: type }), text ? ` ${text}` : ''))
  while (list.children.length > EVENTS_SHOWN) list.lastElementChild.remove()
}

// ---- live updates ----

let soon
/** A refresh shortly (events come in bursts). */
function refreshSoon () {
  clearTimeout(soon)
  soon = setTimeout(() => { void refresh() }, 150)
}

function onEvent (e) {
  if (e.type === 'reset') { refreshSoon(); return }
  let d = {}
  try { d = JSON.parse(e.data) } catch { /* a message that is not JSON: shown by its type alone */ }
  const what = d.peer !== undefined ? short(d.peer) : d.path ?? (d.chunks !== undefined ? `${d.chunks} chunks` : '')
  note(e.type, what)
  if (e.type === 'repair-progress' && d.total !== undefined) renderRepair({ running: true, done: d.done, total: d.total, repaired: d.repaired, bytes: d.bytes })
  refreshSoon()
}

let lastEventId
let following = false

/** Follow GET /v1/events (fetch, so the token goes along); no stream on this host: poll. */
async function followEvents () {
  if (following) return
  following = true
  try {
    for (;;) {
      let r
      try {
        r = await call('/v1/events', { headers: { accept: 'text/event-stream', ...(lastEventId !== undefined ? { 'last-event-id': lastEventId } : {}) } })
      } catch (err) {
        setMode('polling')
        if (err.status === 404 || err.status === 401) return
        await new Promise(resolve => setTimeout(resolve, RETRY_MS))
        continue
      }
      setMode('live')
      // what happened while not listening is read again
      refreshSoon()
      try {
        await readEvents(r.body, onEvent)
      } catch { /* the stream broke (host restarting, network): resumed below from the last id */ }
      setMode('polling')
      await new Promise(resolve => setTimeout(resolve, RETRY_MS))
    }
  } finally {
    following = false
  }
}

/** Server-sent events from a response body (the EventSource format). */
async function readEvents (body, on) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader()
  let buf = ''
  let data = []
  let type = 'message'
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buf += value
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '')
      buf = buf.slice(i + 1)
      if (line === '') {
        if (data.length > 0 || type !== 'message') on({ type, data: data.join('\n') })
        data = []
        type = 'message'
        continue
      }
      if (line.startsWith(':')) continue
      const c = line.indexOf(':')
      const field = c < 0 ? line : line.slice(0, c)
      const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '')
      if (field === 'data') data.push(v)
      else if (field === 'event') type = v
      else if (field === 'id') lastEventId = v
    }
  }
}

async function tick () {
  // traffic every second for the chart; everything else every POLL_MS (LIVE_REFRESH_MS with events)
  try {
    const t = await get('/v1/traffic')
    state.traffic = t
    sample(t, performance.now())
  } catch (err) { showError(err) }
  setTimeout(() => { void tick() }, SAMPLE_MS)
}

async function poll () {
  await refresh()
  setTimeout(() => { void poll() }, state.mode === 'live' ? LIVE_REFRESH_MS : POLL_MS)
}

setMode('connecting')
void poll()
void tick()
void followEvents()
