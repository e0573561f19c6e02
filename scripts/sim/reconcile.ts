// The reconcile figure of the simulator (issue 14 item 2): bytes and rounds a reconnect costs
// when a host missed 10 ops of 1,000,000, and when both sides made 10 ops while apart, with
// darkfs's own range-based set reconciliation (node/tree/rbsr.ts: OpSet and the Negentropy
// messages, the frame limit node/net/sync.ts uses) run on two in-memory sets. The goal is
// <= 64 KiB whatever the log's size. Bytes are the rbsr messages both ways (what node/net/sync.ts
// puts in its rpc envelopes, a few bytes more each round); fetching the differing ops themselves
// comes on top and is the same for any method.
//
// Items are shaped like ops: ids are sha-256 digests (seeded), timestamps are HLC wall times of
// a log written over time (ops a few ms apart, some in the same ms). Three cases:
//  - missing10: the asker lacks the 10 newest ops (it was away while they were made);
//  - diverged10x10: both made 10 ops while apart (their times interleave);
//  - missing10_spread: the asker lacks 10 ops drawn anywhere in the log (worst case for the
//    time order, where the differences do not cluster).
import { createHash } from 'node:crypto'
import { OpSet, rbsrReconcileInMemory } from '../../node/tree/index.ts'
import type { RbsrItem } from '../../node/tree/index.ts'
import { prng } from '../../harness/prng.ts'
import { RBSR_FRAME_BYTES } from '../../node/net/index.ts'

export interface ReconcileInit { ops: number, seed: number, log: (line: string) => void }

export function runReconcile ({ ops, seed, log }: ReconcileInit): Record<string, number> {
  const rand = prng(seed)
  const t0 = 1_780_000_000_000
  let ts = t0
  const item = (n: number): RbsrItem => {
    ts += Math.floor(rand() * 6) // 0..5 ms apart: some ops share a millisecond
    return { ts, id: new Uint8Array(createHash('sha256').update(`${seed}:${n}`).digest()) }
  }
  const items = Array.from({ length: ops }, (_, n) => item(n))
  const figures: Record<string, number> = { 'reconcile.ops': ops }
  const measure = (name: string, client: OpSet, server: OpSet, expectNeed: number, expectHave: number): void => {
    const run = rbsrReconcileInMemory(client, server, { frameLimit: RBSR_FRAME_BYTES })
    if (run.need.length !== expectNeed || run.have.length !== expectHave) throw new Error(`${name}: found ${run.need.length} needed and ${run.have.length} had, expected ${expectNeed} and ${expectHave}`)
    figures[`reconcile.${name}.bytes`] = run.bytesSent + run.bytesReceived
    figures[`reconcile.${name}.rounds`] = run.rounds
    log(`${name}: ${run.rounds} rounds, ${run.bytesSent} bytes sent + ${run.bytesReceived} received`)
  }

  log(`indexing ${ops} ops`)
  const full = new OpSet()
  full.addMany(items)

  // missing10: the asker lacks the 10 newest
  const behind = new OpSet()
  behind.addMany(items.slice(0, ops - 10))
  measure('missing10', behind, full, 10, 0)

  // diverged10x10: a common log, then 10 ops on each side, their times interleaved
  const common = items.slice(0, ops - 20)
  const mine: RbsrItem[] = []
  const theirs: RbsrItem[] = []
  items.slice(ops - 20).forEach((it, i) => { (i % 2 === 0 ? mine : theirs).push(it) })
  const a = new OpSet()
  a.addMany(common)
  const b = new OpSet()
  b.addMany(common)
  for (const it of mine) a.add(it.ts, it.id)
  for (const it of theirs) b.add(it.ts, it.id)
  measure('diverged10x10', a, b, 10, 10)

  // missing10_spread: 10 ops missing anywhere in the log
  const drop = new Set<number>()
  while (drop.size < 10) drop.add(Math.floor(rand() * ops))
  const holes = new OpSet()
  holes.addMany(items.filter((_, i) => !drop.has(i)))
  measure('missing10_spread', holes, full, 10, 0)

  figures['reconcile.goal_bytes'] = 64 * 1024
  return figures
}
