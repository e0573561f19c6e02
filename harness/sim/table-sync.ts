// Member-table anti-entropy after an outage (issue 14, idle traffic), on darkfs's own tables
// (node/net/members.ts MemberTable) and its own pull rule (members.ts pullMembers, which
// member-service.ts runs at each round whose digests differ). A network of `hosts` members, a
// share of them declared down; a host whose table was in step with its peers' goes away for an
// outage of the churn trace's mix (churn.ts outageLength) while the rest of the network takes the
// DOWN notices and fresh records of the churn trace's rates; back, it pulls from a peer's table:
// the bytes of each answer, whether it fell back to the whole table, whether it is in step after.
// Beside it, what main's rule before this change did with the same outage: table answers of the
// records of the members up only, so a host that missed a DOWN notice whose subject was still down
// stayed apart (its digest differed at every round, and it pulled the whole table at each, until
// that member came back or its record expired): `apart_before`.
// Records and notices are made as hosts sign them (dag-cbor, 64-byte signatures), not signed
// (the sim checks no signature); a DOWN here is signed by its subject (as a leaving host's is), the
// same size as a neighbour's, and taken without ranking neighbours over 10,000 members each time.
import * as dagCbor from '@ipld/dag-cbor'
import { MemberTable, TABLE_SYNC_MS, pullMembers } from '../../node/net/index.ts'
import { prng } from '../prng.ts'
import { simPeer } from './hosts.ts'
import { outageLength } from './churn.ts'

/** Bytes a message adds to a table answer besides its own (dag-cbor byte-string header). */
const ANSWER_ITEM_BYTES = 3
const T0 = 1_800_000_000_000
const SIGNATURE = new Uint8Array(64)

export interface TableSyncOptions {
  hosts: number
  seed: number
  /** Hosts declared gone, and fresh records of hosts back after that, per host per hour (the churn trace). */
  goneHostHour: number
  returnedHostHour: number
  /** Share of the members declared down at the start. */
  downShare: number
  /** Outages sampled. */
  outages: number
}

export interface TableSyncFigures {
  /** A whole table answer now (records of the members up and the DOWN notices held), and main's (records only). */
  tableBytes: number
  tableBytesBefore: number
  /** Per outage: bytes pulled back (the changes, and the whole table when it fell back), mean and the largest. */
  pulledBytesMean: number
  pulledBytesMax: number
  /** Outages after which the host pulled the whole table (the changes left it apart). */
  wholeTables: number
  /** Outages after which the host was still apart from its peer (should be none). */
  apart: number
  /** Outages after which main's rule left the host apart (it pulled a whole table every round after). */
  apartBefore: number
  /** Records and DOWN notices the host missed, per outage, mean. */
  missedMean: number
  outageHoursMean: number
}

export async function runTableSync (o: TableSyncOptions): Promise<TableSyncFigures> {
  const rand = prng(o.seed)
  let now = T0
  const clock = (): number => now
  const peers = Array.from({ length: o.hosts }, () => simPeer(rand))
  const signer = (peer: string): { author: string, sign: () => Promise<Uint8Array> } => ({ author: peer, sign: async () => SIGNATURE })
  const verify = async (): Promise<boolean> => true
  // the peer asked (peers[0]) and the host away (peers[1]): each a member, never down
  const network = new MemberTable({ self: peers[0], signer: signer(peers[0]), verify, now: clock })
  const host = new MemberTable({ self: peers[1], signer: signer(peers[1]), verify, now: clock })
  const seqOf = new Map<string, number>()
  const record = (peer: string): Uint8Array => {
    const seq = now
    seqOf.set(peer, seq)
    const r = dagCbor.encode({ peer, seq, addrs: [`/ip4/10.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}/tcp/4001`] })
    return dagCbor.encode({ t: 'member', r, s: SIGNATURE })
  }
  const down = (peer: string): Uint8Array => {
    const r = dagCbor.encode({ by: peer, peer, seq: seqOf.get(peer) as number })
    return dagCbor.encode({ t: 'down', r, s: SIGNATURE })
  }
  // the members that go and come back (the two tables' own hosts do not)
  const up = new Pool()
  const downed = new Pool()
  for (const p of peers) {
    const msg = record(p)
    await network.take(msg, o.hosts)
    await host.take(msg, o.hosts)
  }
  for (const p of peers.slice(2)) {
    if (rand() >= o.downShare) { up.add(p); continue }
    const msg = down(p)
    await network.take(msg)
    await host.take(msg)
    downed.add(p)
  }
  const answerBytes = (msgs: Uint8Array[]): number => msgs.reduce((n, m) => n + m.byteLength + ANSWER_ITEM_BYTES, 0)
  const isRecord = (m: Uint8Array): boolean => (dagCbor.decode(m) as { t: string }).t === 'member'
  const tableBytes = answerBytes(network.messages())
  const tableBytesBefore = answerBytes(network.messages().filter(isRecord))

  // network-wide events per ms; a pick from a set
  const rate = o.hosts * (o.goneHostHour + o.returnedHostHour) / 3600_000
  const goneShare = o.goneHostHour / (o.goneHostHour + o.returnedHostHour)
  // member-service.ts: inStepAt, set by a digest round that found the tables alike
  let inStepAt: number | undefined = now
  const differs = async (): Promise<boolean> => {
    const apart = !equal(network.digest(), host.digest())
    if (!apart) inStepAt = now
    return apart
  }
  const f: TableSyncFigures = { tableBytes, tableBytesBefore, pulledBytesMean: 0, pulledBytesMax: 0, wholeTables: 0, apart: 0, apartBefore: 0, missedMean: 0, outageHoursMean: 0 }
  for (let i = 0; i < o.outages; i++) {
    const length = outageLength(rand)
    const end = now + length
    const missedDowns = new Set<string>()
    let missed = 0
    for (;;) {
      const next = now - Math.log(1 - rand()) / rate
      if (next >= end) break
      now = next
      const goes = rand() < goneShare ? up.size > 0 : downed.size === 0
      if (goes) {
        const p = up.take(rand)
        await network.take(down(p))
        downed.add(p)
        missedDowns.add(p)
      } else {
        const p = downed.take(rand)
        await network.take(record(p))
        up.add(p)
      }
      missed++
    }
    now = end
    // main's rule: the records only: apart when it missed the DOWN of a member still down
    if ([...missedDowns].some(p => downed.has(p))) f.apartBefore++
    let bytes = 0
    const pulled = await pullMembers(inStepAt, async since => {
      const msgs = network.messages(since)
      bytes += answerBytes(msgs)
      for (const m of msgs) await host.take(m, o.hosts)
    }, differs)
    if (pulled === 'table') f.wholeTables++
    if (await differs()) f.apart++
    f.pulledBytesMean += bytes / o.outages
    f.pulledBytesMax = Math.max(f.pulledBytesMax, bytes)
    f.missedMean += missed / o.outages
    f.outageHoursMean += length / 3600_000 / o.outages
    // the next round finds the tables alike (the digest call after an outage's pull)
    now += TABLE_SYNC_MS
    await differs()
  }
  return f
}

/** A set to draw a random member from (and remove it) in constant time. */
class Pool {
  private readonly list: string[] = []
  private readonly at = new Map<string, number>()
  get size (): number { return this.list.length }
  has (p: string): boolean { return this.at.has(p) }
  add (p: string): void { this.at.set(p, this.list.length); this.list.push(p) }
  take (rand: () => number): string {
    const i = Math.floor(rand() * this.list.length)
    const p = this.list[i]
    const last = this.list.pop() as string
    if (last !== p) { this.list[i] = last; this.at.set(last, i) }
    this.at.delete(p)
    return p
  }
}

function equal (a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((x, i) => x === b[i])
}
