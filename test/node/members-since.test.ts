// A member's standing across a restart (node/net/members-since.ts, members.ts standings; issue
// 14, bad input): the depth of the shared call budget's reserve a member's calls may take follows
// how long it has been a member here (member-gate.ts RESERVE_DEPTHS), and a host that restarted
// took every member as new: under a flood it refused a member of weeks for STANDING_MS, and gave
// it only the shallowest band for a week. Kept in the data dir, the standings come back. They are
// ages on the monotonic clock (bugs38): a wall clock stepped neither grants standing nor takes it.
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { makeKey, signerFor, verify } from '../helpers/tree.ts'
import { MemberTable, MembersBusyError } from '../../node/net/members.ts'
import { ALL_CALLS_BURST, MemberGate, STANDING_MS, reserveDepth } from '../../node/net/member-gate.ts'
import { MEMBERS_SINCE_FILE, MEMBERS_SINCE_MAX_BYTES, keepMembersSince, loadMembersSince, saveMembersSince } from '../../node/net/members-since.ts'
import { Teardown, tempDir } from '../../harness/tmp.ts'
import type { Signer } from '../../node/tree/index.ts'

const T0 = 1_800_000_000_000
const DAY = 24 * 3600_000

interface Peer { id: string, signer: Signer }
async function peer (): Promise<Peer> {
  const signer = signerFor(await makeKey())
  return { id: signer.author, signer }
}
async function record (p: Peer, seq: number): Promise<Uint8Array> {
  const r = dagCbor.encode({ peer: p.id, seq, addrs: ['/ip4/127.0.0.1/tcp/1'] })
  return dagCbor.encode({ t: 'member', r, s: await p.signer.sign(r) })
}

describe('node/net member first-taken times kept across restarts', function () {
  this.timeout(60_000)
  const t = new Teardown()
  afterEach(async () => { await t.run() })

  let now = T0
  const clock = (): number => now
  const self = async (): Promise<Peer> => await peer()
  const newTable = (me: Peer): MemberTable => new MemberTable({ self: me.id, signer: me.signer, verify, now: clock })
  /** A gate over `table` whose shared budget fresh ids drained; whether `asker`'s digest call is answered. */
  const answeredUnderFlood = (table: MemberTable, asker: string): boolean => {
    const gate = new MemberGate(table, clock)
    for (let i = 0; i < ALL_CALLS_BURST + 8; i++) { try { gate.call(`fresh${i}`, { t: 'digest' }) } catch {} }
    try {
      gate.call(asker, { t: 'digest' })
      return true
    } catch (err) {
      assert.ok(err instanceof MembersBusyError)
      return false
    }
  }

  it('a member of weeks, its record taken again after a restart: its standing kept (the reserve\'s whole depth under a flood at once), where a restart without the file took it as new (refused)', async () => {
    now = T0
    const dir = await tempDir(t, 'darkfs-members-since-')
    const me = await self()
    const old = await peer()
    const before = newTable(me)
    assert.equal(await loadMembersSince(dir, before), 0, 'a first start: no file')
    const keeping = keepMembersSince(dir, before)
    assert.equal(await before.take(await record(old, now)), 'new')
    now += 30 * DAY
    assert.equal(await before.take(await record(old, now)), 'new')
    assert.equal(before.memberFor(old.id), 30 * DAY)
    await keeping.stop()

    // restarted: the table pulled afresh, the member's latest record taken again
    now += 60_000
    const after = newTable(me)
    assert.equal(await loadMembersSince(dir, after), 1)
    assert.equal(await after.take(await record(old, now - 60_000)), 'new')
    // (the minute this host was down does not count: only time it saw)
    assert.equal(after.memberFor(old.id), 30 * DAY)
    assert.equal(reserveDepth(after.memberFor(old.id) as number), reserveDepth(Infinity))
    assert.equal(answeredUnderFlood(after, old.id), true)

    // without the file (before this change): a member of a minute, refused under the flood
    const forgot = newTable(me)
    assert.equal(await forgot.take(await record(old, now - 60_000)), 'new')
    assert.equal(forgot.memberFor(old.id), 0)
    assert.equal(answeredUnderFlood(forgot, old.id), false)
  })

  it('the file is written when members were first taken since and at a stop, a member kept but not yet seen again stays in it, and bad entries, a file of the first version\'s future times and a malformed file are left out', async () => {
    now = T0
    const dir = await tempDir(t, 'darkfs-members-since-')
    const me = await self()
    const [a, b] = [await peer(), await peer()]
    const first = newTable(me)
    await first.take(await record(a, now))
    now += STANDING_MS
    await first.take(await record(b, now))
    const k1 = keepMembersSince(dir, first, 3600_000)
    await k1.stop()
    const saved = JSON.parse(await readFile(join(dir, MEMBERS_SINCE_FILE), 'utf8'))
    assert.deepEqual(saved, { 'darkfs-members-since': 2, ages: { [a.id]: STANDING_MS, [b.id]: 0 } })

    // restarted, only b seen again so far: a's time is still written out (it may come later)
    now += 1000
    const second = newTable(me)
    assert.equal(await loadMembersSince(dir, second), 2)
    await second.take(await record(b, now))
    await writeFile(join(dir, MEMBERS_SINCE_FILE), 'stale')
    const k2 = keepMembersSince(dir, second, 3600_000)
    await k2.stop()
    assert.deepEqual(JSON.parse(await readFile(join(dir, MEMBERS_SINCE_FILE), 'utf8')), saved)
    // nothing first taken since the last write: a stop writes all the same (the ages grew)
    await writeFile(join(dir, MEMBERS_SINCE_FILE), 'untouched')
    await k2.stop()
    assert.deepEqual(JSON.parse(await readFile(join(dir, MEMBERS_SINCE_FILE), 'utf8')), saved)
    // a taken again: its kept standing, and written
    await second.take(await record(a, now))
    assert.equal(second.memberFor(a.id), STANDING_MS)
    await k2.stop()
    assert.deepEqual(JSON.parse(await readFile(join(dir, MEMBERS_SINCE_FILE), 'utf8')), saved)

    // a malformed file: nothing taken, every member new
    await writeFile(join(dir, MEMBERS_SINCE_FILE), '{ not json')
    assert.equal(await loadMembersSince(dir, newTable(me)), 0)
    await writeFile(join(dir, MEMBERS_SINCE_FILE), '[1, 2]')
    assert.equal(await loadMembersSince(dir, newTable(me)), 0)
    await writeFile(join(dir, MEMBERS_SINCE_FILE), JSON.stringify({ 'darkfs-members-since': 3, ages: { [a.id]: DAY } }))
    assert.equal(await loadMembersSince(dir, newTable(me)), 0, 'an unknown version')
    // bad pairs left out
    await writeFile(join(dir, MEMBERS_SINCE_FILE), JSON.stringify({ 'darkfs-members-since': 2, ages: { [a.id]: -1, [b.id]: 'x', ['z'.repeat(200)]: DAY, '': DAY, [me.id]: 1.5 } }))
    const third = newTable(me)
    assert.equal(await loadMembersSince(dir, third), 0)
    await third.take(await record(a, now))
    assert.equal(third.memberFor(a.id), 0)
    // a file of the first version (wall-clock times): read once as ages on this start's wall
    // clock, times ahead of it and bad pairs left out
    await writeFile(join(dir, MEMBERS_SINCE_FILE), JSON.stringify({ [a.id]: now + DAY, [b.id]: now - DAY, [me.id]: -1, ['z'.repeat(200)]: T0 }))
    const fourth = newTable(me)
    assert.equal(await loadMembersSince(dir, fourth, clock), 1)
    await fourth.take(await record(a, now))
    await fourth.take(await record(b, now))
    assert.equal(fourth.memberFor(a.id), 0)
    assert.equal(fourth.memberFor(b.id), DAY)
  })

  // bugs38 (review34g): standing was the wall clock's now less the first-taken time, so a clock
  // stepped forward a week gave every member the reserve's whole depth, and one stepped back took
  // it from all; and the file kept wall-clock times, so a restart on a stepped clock did the same
  it('a wall clock stepped forward or back a week neither grants standing nor takes it, while the host runs and across a restart', async () => {
    let wall = T0
    let mono = 0
    const dir = await tempDir(t, 'darkfs-members-since-')
    const me = await self()
    const [fresh, old] = [await peer(), await peer()]
    const table = new MemberTable({ self: me.id, signer: me.signer, verify, now: () => wall, clock: () => mono })
    const gate = (): MemberGate => new MemberGate(table, () => wall)
    const underFlood = (g: MemberGate, asker: string): boolean => {
      for (let i = 0; i < ALL_CALLS_BURST + 8; i++) { try { g.call(`fresh${i}`, { t: 'digest' }) } catch {} }
      try { g.call(asker, { t: 'digest' }); return true } catch (err) { assert.ok(err instanceof MembersBusyError); return false }
    }
    assert.equal(await table.take(await record(old, wall)), 'new')
    // old a member for 8 days, as this host saw it run
    wall += 8 * DAY
    mono += 8 * DAY
    assert.equal(await table.take(await record(old, wall)), 'new')
    assert.equal(await table.take(await record(fresh, wall)), 'new')
    assert.equal(table.memberFor(fresh.id), 0)
    // the wall clock stepped a week forward: fresh gets no standing
    wall += 7 * DAY
    assert.equal(table.memberFor(fresh.id), 0)
    assert.equal(underFlood(gate(), fresh.id), false, 'a member of a moment refused under a flood, its clock stepped on')
    // stepped back two weeks: old keeps its standing
    wall -= 14 * DAY
    assert.equal(table.memberFor(old.id), 8 * DAY)
    assert.equal(underFlood(gate(), old.id), true, 'a member of 8 days answered under a flood, the clock stepped back')
    // kept across a restart whose wall clock is stepped again: the same standings
    await saveMembersSince(dir, table)
    for (const step of [-30 * DAY, 30 * DAY]) {
      const again = new MemberTable({ self: me.id, signer: me.signer, verify, now: () => wall + step, clock: () => mono })
      assert.equal(await loadMembersSince(dir, again, () => wall + step), 2)
      await again.take(await record(old, wall + step))
      await again.take(await record(fresh, wall + step))
      assert.equal(again.memberFor(old.id), 8 * DAY, `stepped ${step / DAY} days`)
      assert.equal(again.memberFor(fresh.id), 0, `stepped ${step / DAY} days`)
    }
  })

  it('a table of many members is written in slices as the one JSON object, and a file over the size bound is not read', async () => {
    const dir = await tempDir(t, 'darkfs-members-since-')
    // (a stand-in table: the save reads standings() only)
    for (const n of [0, 1, 1_999, 2_000, 2_001, 5_432]) {
      const ages: Array<[string, number]> = Array.from({ length: n }, (_, i) => [`peer"${i}\\x`, DAY + i])
      await saveMembersSince(dir, { standings: () => ages, restoreStandings: () => 0, firstTakenCount: n })
      assert.deepEqual(JSON.parse(await readFile(join(dir, MEMBERS_SINCE_FILE), 'utf8')), { 'darkfs-members-since': 2, ages: Object.fromEntries(ages) }, `${n} members`)
    }
    // (whitespace: JSON that parses, were it read)
    await writeFile(join(dir, MEMBERS_SINCE_FILE), `{${' '.repeat(MEMBERS_SINCE_MAX_BYTES)}}`)
    let restored = false
    assert.equal(await loadMembersSince(dir, { standings: () => [], restoreStandings: () => { restored = true; return 0 }, firstTakenCount: 0 }), 0)
    assert.equal(restored, false, 'not parsed')
  })
})
