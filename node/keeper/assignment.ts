// Which hosts must hold each fragment of an erasure-coded chunk (DESIGN.md §3), as a pure
// function of the chunk's ranked targets and of where its fragments are now.
//
// Fragments stay where they are: a target that holds a fragment of the chunk keeps one, and only
// what is missing goes to the targets that hold nothing. So losing a host moves only the
// fragments it held, and a host that joins takes over one fragment from the host it displaces
// from the target set; nobody's fragment index is reshuffled because ranks shifted. With no
// holdings (a fresh write) fragment j goes to the target ranked j.
//
// With fewer members than fragments (hosts were lost and not replaced), each member keeps one
// fragment (its "primary") and each remaining fragment is kept on min(m + 1, members) hosts:
// losing any t <= min(m, members - 1) hosts then loses at most t primaries and no extra, leaving
// (members - t) + (n - members) = n - t >= k distinct fragments. That costs
// members + (n - members)(m + 1) fragment copies, fewer than copying every fragment. One copy
// of each such fragment is on the closest target, the keeper that rebuilds it: repairing the
// loss of one host then moves k - 1 fragments in and m out per fragment lost, the least this
// layout allows (each of the m + 1 copies lands on a host that had none of it).

/**
 * For each fragment index j < n (= k + m), the hosts that must hold it.
 *
 * `ranked`: the members that hold the chunk, first first (placement.ts rank, by the chunk's
 * rule: capacity-weighted rendezvous or XOR distance; at most n are looked at). `held[j]`: the live hosts that hold fragment j now (any host, target or
 * not). With k = 1 the fragments are copies of one block: copy j goes to ranked[j mod L].
 */
export function assignment (ranked: string[], k: number, m: number, held: ReadonlyArray<ReadonlySet<string>> = []): string[][] {
  const n = k + m
  const hosts = ranked.slice(0, n)
  const L = hosts.length
  const want: string[][] = Array.from({ length: n }, () => [])
  if (L === 0) return want
  if (k === 1) return want.map((_, j) => [hosts[j % L]])
  // no holdings and a target for every fragment (a fresh write; what a reader guesses on every
  // 4 KiB range read, keeper/network.ts rangeFrom): fragment j on the target ranked j, as below
  if (L === n && held.every(h => h === undefined || h.size === 0)) {
    for (let j = 0; j < n; j++) want[j].push(hosts[j])
    return want
  }
  const holds = (j: number, h: string): boolean => held[j]?.has(h) === true
  const holders = (j: number): number => held[j]?.size ?? 0

  const hostOf: Array<string | undefined> = new Array(n).fill(undefined)
  const taken = new Set<string>()
  // 1. every target keeps a fragment it holds: the rarest first (a host that also holds extra
  // copies of other fragments keeps the one only it has), its own rank's on a tie; targets and
  // fragments matched greedily in that order
  const pairs: Array<{ j: number, r: number }> = []
  for (let r = 0; r < L; r++) for (let j = 0; j < n; j++) if (holds(j, hosts[r])) pairs.push({ j, r })
  pairs.sort((a, b) => holders(a.j) - holders(b.j) || Number(b.j === b.r) - Number(a.j === a.r) || a.r - b.r || a.j - b.j)
  for (const { j, r } of pairs) {
    if (hostOf[j] !== undefined || taken.has(hosts[r])) continue
    hostOf[j] = hosts[r]
    taken.add(hosts[r])
  }
  // 2. what is missing goes to the targets that keep nothing: its own rank first
  for (let j = 0; j < Math.min(n, L); j++) {
    if (hostOf[j] === undefined && !taken.has(hosts[j])) { hostOf[j] = hosts[j]; taken.add(hosts[j]) }
  }
  for (let j = 0; j < n; j++) {
    if (hostOf[j] !== undefined) continue
    const h = hosts.find(h => !taken.has(h))
    if (h !== undefined) { hostOf[j] = h; taken.add(h) }
  }
  // 3. fewer targets than fragments: the fragments left over are kept on m + 1 hosts each,
  // where they already are first, then on the closest target (the chunk's keeper, which
  // rebuilds them: it keeps one copy without sending it, repair.ts), then spread by index
  const copies = Math.min(m + 1, L)
  for (let j = 0; j < n; j++) {
    const h = hostOf[j]
    if (h !== undefined) { want[j] = [h]; continue }
    const order = [hosts[0], ...Array.from({ length: L }, (_, i) => hosts[(j + i) % L]).filter(h => h !== hosts[0])]
    want[j] = [...order.filter(h => holds(j, h)), ...order.filter(h => !holds(j, h))].slice(0, copies)
  }
  return want
}
