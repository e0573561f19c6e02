// Membership beyond the full mesh (node/net/failure.ts, issue 14): a host is connected to a few
// members only, and connections open and close as hosts dial and trim. up() then holds the
// table's members that nobody declared down, connected or not; a member this host already knows
// that connects again is no join (a 'joined' starts a repair pass: every dial and trim on an
// idle network was one). A watched member is no suspect when this host closed the connection (a
// trim, a probe's hang-up), when the member said it closes it to keep its bound (its trim), nor
// when the member closed it at once (its probe): only a connection that lasted and that the
// member closed without a word (or that failed) calls for a probe. In a full mesh
// these stay as they were: up() is the connected hosts, every close makes a suspect, and a peer
// that connects after being declared gone joins. A fake host, table and clock: events only.
import assert from 'node:assert/strict'
import { BRIEF_CONNECTION_MS, Membership, probePeer } from '../../node/net/failure.ts'
import type { MembershipHost, ProbeHost } from '../../node/net/failure.ts'
import type { MemberTable } from '../../node/net/members.ts'

class FakeHost extends EventTarget {
  readonly peerId = 'self'
  connected = new Set<string>()
  bounded = true
  peers (): Array<{ id: string }> { return [...this.connected].map(id => ({ id })) }
  beyondFullMesh (): boolean { return this.bounded }
  async handle (): Promise<void> {}
  async unhandle (): Promise<void> {}
  async newStream (): Promise<never> { throw new Error('no streams here') }
  /** Peers whose last connection this host closed (a trim, a probe's hang-up). */
  readonly closed = new Set<string>()
  closedHere (id: string): boolean { return this.closed.has(id) }
  /** Peers that told this host they close their connection to keep their bound (host.ts TRIM_PROTOCOL). */
  readonly trimmedBy = new Set<string>()
  trimmedThere (id: string): boolean { return this.trimmedBy.has(id) }
  connect (id: string): void { this.closed.delete(id); this.trimmedBy.delete(id); this.connected.add(id); this.dispatchEvent(new CustomEvent('peer:connect', { detail: id })) }
  /** The connection to `id` closes: by the peer (or a failure), by this host (`here`), or by the peer's trim, which it said first (`trim`). */
  disconnect (id: string, here = false, trim = false): void {
    if (here) this.closed.add(id)
    if (trim) this.trimmedBy.add(id)
    this.connected.delete(id)
    this.dispatchEvent(new CustomEvent('peer:disconnect', { detail: id }))
  }
}

/** The member table's part Membership reads: members, and who watches whom ('self' watches 'w', 'b' watches 'self', nobody else watches). */
class FakeTable extends EventTarget {
  readonly all = new Set<string>()
  members (): string[] { return [...this.all] }
  has (p: string): boolean { return this.all.has(p) }
  neighbours (p: string): string[] { return p === 'w' ? ['self'] : p === 'self' ? ['b'] : [] }
  watchedBy (watcher: string, n = 8): string[] { return this.members().filter(p => this.neighbours(p).slice(0, n).includes(watcher)) }
  /** A member heard of (its record came by gossip). */
  add (p: string): void { this.all.add(p); this.dispatchEvent(new CustomEvent('member', { detail: p })) }
  /** A neighbour of p declared it down. */
  down (p: string): void { this.all.delete(p); this.dispatchEvent(new CustomEvent('down', { detail: p })) }
}

/** Resolves once `cond` holds (checked every few ms; the test's timeout bounds it). */
async function until (cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise(resolve => setTimeout(resolve, 5))
}

describe('Membership beyond the full mesh (node/net/failure.ts)', function () {
  let m: Membership | undefined
  afterEach(async () => { await m?.stop() })

  /** The clock Membership reads (ms): connections last as long as a test moves it. */
  let now = 0
  beforeEach(() => { now = 1_000_000 })

  async function start (bounded: boolean, init: { failureTimeoutMs?: number, repairDelayMs?: number, probe?: (peer: string) => Promise<boolean> } = {}): Promise<{ host: FakeHost, table: FakeTable, m: Membership, joined: string[] }> {
    const host = new FakeHost()
    host.bounded = bounded
    const table = new FakeTable()
    for (const p of ['self', 'a', 'b', 'c', 'w']) table.all.add(p)
    host.connected.add('a')
    m = new Membership(host as unknown as MembershipHost, { table: table as unknown as MemberTable, failureTimeoutMs: 600_000, now: () => now, ...init })
    const joined: string[] = []
    m.addEventListener('joined', e => { joined.push((e as CustomEvent<string>).detail) })
    await m.start()
    return { host, table, m, joined }
  }

  it('up() holds the members connected or not, suspects among them, less those declared down', async () => {
    const { host, table, m } = await start(true)
    assert.deepEqual(m.up().sort(), ['a', 'b', 'c', 'self', 'w'])
    assert.deepEqual(m.live().sort(), ['a', 'self'])
    table.down('c')
    assert.ok(!m.up().includes('c'), 'a member a neighbour declared down is not up')
    // this host watches w: its connection closing makes it a suspect, still up (a trim is no
    // failure; it is probed at the failure timeout)
    host.connect('w')
    now += BRIEF_CONNECTION_MS
    host.disconnect('w')
    assert.deepEqual(m.suspects(), ['w'])
    assert.ok(m.up().includes('w'), 'a suspect is up until declared gone')
    // and its connection opening again (a dial after the trim) is no 'back' (each called for a pass)
    let back = 0
    m.addEventListener('back', () => { back++ })
    host.connect('w')
    assert.deepEqual(m.suspects(), [])
    assert.equal(back, 0)
    // a trimmed connection to a member this host does not watch says nothing of it
    host.disconnect('a')
    assert.ok(m.up().includes('a'))
  })

  it('upSet() keeps one set while the members stay, and renews it on every change that affects it: join, leave, suspect given up, return', async () => {
    // reads ask upSet() per 4 KiB (keeper/network.ts reachable()): built once per change, not per read
    const { host, table, m } = await start(true, { failureTimeoutMs: 30, repairDelayMs: 3_600_000, probe: async () => false })
    const first = m.upSet()
    assert.deepEqual([...first].sort(), ['a', 'b', 'c', 'self', 'w'])
    assert.equal(m.upSet(), first, 'nothing changed: the same set')
    host.disconnect('a', true)
    host.connect('a')
    assert.equal(m.upSet(), first, 'a member dialled or trimmed changes nothing: the same set')
    // join: a member heard of through the table
    table.add('d')
    assert.ok(m.upSet().has('d'), 'a member that joined is up')
    assert.notEqual(m.upSet(), first)
    // leave: its own DOWN notice (or a neighbour's) comes through the table
    table.down('c')
    assert.ok(!m.upSet().has('c'), 'a member that left is not up')
    // suspect: a watched member closes a connection that lasted; up until given up, then away
    const gone = new Promise<string>(resolve => { m.addEventListener('gone', e => { resolve((e as CustomEvent<string>).detail) }) })
    host.connect('w')
    now += BRIEF_CONNECTION_MS
    host.disconnect('w')
    assert.deepEqual(m.suspects(), ['w'])
    assert.ok(m.upSet().has('w'), 'a suspect is up')
    assert.equal(await gone, 'w')
    assert.ok(m.away().includes('w'))
    assert.ok(!m.upSet().has('w'), 'a suspect given up is not up')
    // return: it connects again (no longer away), and stays up once this host trims the connection
    host.connect('w')
    host.disconnect('w', true)
    assert.ok(!m.away().includes('w'))
    assert.ok(m.upSet().has('w'), 'a member back is up, connected or not')
    assert.deepEqual([...m.upSet()].sort(), ['a', 'b', 'd', 'self', 'w'])
    assert.deepEqual(m.up().sort(), [...m.upSet()].sort(), 'up() is upSet() as a list')
  })

  it('a watched member is no suspect when this host closed the connection, nor when the member closed it at once (a probe)', async () => {
    const { host, m } = await start(true)
    // this host trimmed it, or hung up after probing it
    host.connect('w')
    now += 60_000
    host.disconnect('w', true)
    assert.deepEqual(m.suspects(), [])
    // w probed this host and hung up once answered: no trim closes a connection that young
    host.connect('w')
    now += BRIEF_CONNECTION_MS - 1
    host.disconnect('w')
    assert.deepEqual(m.suspects(), [])
    // w closed a connection that had lasted: w trimmed it, or failed; probed at the failure timeout
    host.connect('w')
    now += BRIEF_CONNECTION_MS
    host.disconnect('w')
    assert.deepEqual(m.suspects(), ['w'])
  })

  it('a brief connection stays brief when the wall clock steps a day ahead meanwhile (the default clock is monotonic; review39e)', async () => {
    const host = new FakeHost()
    host.bounded = true
    const table = new FakeTable()
    for (const p of ['self', 'a', 'b', 'c', 'w']) table.all.add(p)
    host.connected.add('a')
    const wall = Date.now
    let step = 0
    Date.now = () => wall() + step
    try {
      m = new Membership(host as unknown as MembershipHost, { table: table as unknown as MemberTable, failureTimeoutMs: 600_000 })
      await m.start()
      host.connect('w')
      // w probed this host and hung up at once, while NTP stepped the wall clock a day ahead: on the
      // wall clock the connection had lasted a day (w a suspect, probed at the failure timeout)
      step = 86_400_000
      host.disconnect('w')
    } finally {
      Date.now = wall
    }
    assert.deepEqual(m.suspects(), [])
  })

  it('a watched member that closed a connection that lasted is no suspect when it said it trims it (its bound), and is one when it did not', async () => {
    const { host, m } = await start(true)
    // w trimmed this host away, having said so first: w is live, nothing to probe
    host.connect('w')
    now += 60_000
    host.disconnect('w', false, true)
    assert.deepEqual(m.suspects(), [], 'a trimmed connection to a live member raised a suspect')
    // the same close without the notice (w stopped, or failed): probed at the failure timeout
    host.connect('w')
    now += 60_000
    host.disconnect('w')
    assert.deepEqual(m.suspects(), ['w'])
  })

  it('the watch pass: a watched member never connected here (no disconnect to see) is probed at once, no suspect while it answers; one that does not is a suspect, probed again at its timeout, and only then given up', async () => {
    // w stopped while none of its watchers was connected to it: no close, no suspect, until a pass
    const probed: string[] = []
    let answers = true
    let release: (() => void) | undefined
    const { host, m } = await start(true, { failureTimeoutMs: 30, probe: async peer => { probed.push(peer); if (probed.length === 1 || probed.length === 4) await new Promise<void>(resolve => { release = resolve }); return answers } })
    const gone = new Promise<string>(resolve => { m.addEventListener('gone', e => { resolve((e as CustomEvent<string>).detail) }) })
    assert.deepEqual(m.suspects(), [], 'nothing closed: no suspect before a pass')
    // only what this host watches, and not what it is connected to
    host.connect('w')
    assert.deepEqual(m.watch(), [], 'a watched member connected here is not probed')
    host.disconnect('w', true)
    assert.deepEqual(m.watch(), ['w'], 'a watched member not connected here is probed')
    assert.deepEqual(m.suspects(), [], 'and is no suspect while its probe is under way')
    assert.deepEqual(m.watch(), [], 'a member being probed is not probed again')
    // it answers: only not wanted as a connection, no suspect at any time (made one for a whole
    // timeout before its probe, a watched member was a suspect nearly all the time)
    release?.()
    // (a pass that probes it again: the first probe is over)
    await until(() => m.watch().length === 1)
    assert.deepEqual(m.suspects(), [])
    assert.ok(m.up().includes('w'))
    // it does not answer: a suspect, probed again at its timeout, then given up (gone, down for everyone)
    answers = false
    await until(() => m.watch().length === 1)
    // (the probe at its timeout waits for the test)
    await until(() => m.suspects().length === 1 && probed.length === 4)
    assert.ok(m.up().includes('w'), 'a suspect is up until given up')
    release?.()
    assert.equal(await gone, 'w')
    assert.deepEqual(probed, ['w', 'w', 'w', 'w'])
    assert.ok(!m.up().includes('w'), 'a member given up is not up')
    assert.deepEqual(m.watch(), [], 'a member given up is not probed again')
  })

  it('watching(): the members this host watches and those that watch it (the trim closes them last), less those declared down; none in a full mesh', async () => {
    const { table, m } = await start(true)
    assert.deepEqual([...m.watching()].sort(), ['b', 'w'])
    // kept until the members change: a member declared down is watched no more
    table.down('w')
    assert.deepEqual([...m.watching()], ['b'])
    await m.stop()
    const full = await start(false)
    assert.deepEqual([...full.m.watching()], [], 'in a full mesh every member is connected: nothing to keep first')
  })

  it('a probe keeps the connection it opened to a member the watch relies on (or a neighbour), and hangs up on any other', async () => {
    // (hung up, a watched member was dialled again at every watch pass: most of an idle bounded host's new connections)
    const host = new FakeHost()
    const dialled: string[] = []
    const hungUp: string[] = []
    const probing: ProbeHost = {
      peers: () => host.peers() as ReturnType<ProbeHost['peers']>,
      neighbours: () => ['n'],
      dial: async addr => { const id = addr.split('/').pop()!; dialled.push(id); host.connect(id) },
      hangUp: async id => { hungUp.push(id); host.disconnect(id, true) }
    }
    const watched = new Set(['w'])
    for (const id of ['w', 'n', 'x']) assert.equal(await probePeer(probing, id, [`/memory/${id}/p2p/${id}`], p => watched.has(p)), true)
    assert.deepEqual(dialled, ['w', 'n', 'x'])
    assert.deepEqual(hungUp, ['x'], 'only the connection nobody keeps is closed')
    assert.deepEqual([...host.connected].sort(), ['n', 'w'])
    // one connected before the probe is left as it was
    host.connect('y')
    assert.equal(await probePeer(probing, 'y', ['/memory/y/p2p/y'], () => false), true)
    assert.ok(host.connected.has('y'))
    // no answer: false, nothing to close
    const dead: ProbeHost = { ...probing, dial: async () => { throw new Error('refused') } }
    assert.equal(await probePeer(dead, 'z', ['/memory/z/p2p/z'], () => false, { tries: 1 }), false)
    assert.deepEqual(hungUp, ['x'])
  })

  it('the watch pass does nothing in a full mesh (every close makes a suspect there)', async () => {
    const { m } = await start(false)
    assert.deepEqual(m.watch(), [])
  })

  it('in a full mesh every closed connection makes a suspect, whoever closed it', async () => {
    const { host, m } = await start(false)
    host.connect('b')
    host.disconnect('b', true)
    assert.deepEqual(m.suspects(), ['b'])
  })

  it('a known member connecting again is no join; a member heard of first is', async () => {
    const { host, table, joined } = await start(true)
    host.connect('b')
    host.disconnect('b')
    host.connect('b')
    assert.deepEqual(joined, ['b'], 'b joined once, when it was first connected here')
    table.add('d')
    host.connect('d')
    assert.deepEqual(joined, ['b', 'd'], 'd joined once, when its record came')
  })

  it('in a full mesh, up() is the connected hosts and a peer that comes back after it was gone joins', async () => {
    const { host, m, joined } = await start(false)
    assert.deepEqual(m.up().sort(), ['a', 'self'])
    host.connect('b')
    assert.deepEqual(joined, ['b'])
    host.disconnect('b')
    await m.expire()
    host.connect('b')
    assert.deepEqual(joined, ['b', 'b'])
  })
})
