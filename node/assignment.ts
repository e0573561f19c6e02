// Which hosts must hold each fragment of a chunk (DESIGN.md §3), as a pure function of the
// chunk's ranked targets. With at least k+m members, fragment j sits on the peer ranked j, one
// fragment per host. With fewer members than fragments (hosts were lost and not replaced),
// one copy per fragment can no longer survive m more losses, so each fragment is also kept on
// the next hosts of the ranking, as few as it takes for any min(m, members - 1) lost hosts to
// leave k distinct fragments.

/**
 * For each fragment index j < n (= k + m), the hosts that must hold it. `ranked` are the
 * members closest to the chunk's key, closest first (placement.targets()). With k = 1 the
 * fragments are copies of one block: copy j goes to ranked[j mod L].
 */
export function assignment (ranked: string[], k: number, m: number): string[][] {
  const n = k + m
  const L = ranked.length
  if (L === 0) return Array.from({ length: n }, () => [])
  if (k === 1 || L >= n) return Array.from({ length: n }, (_, j) => [ranked[j % L]])
  const tolerate = Math.min(m, L - 1)
  for (let r = 1; r <= L; r++) {
    const hostsOf = Array.from({ length: n }, (_, j) => Array.from({ length: r }, (_, i) => (j + i) % L))
    if (survives(hostsOf, L, k, tolerate)) return hostsOf.map(hs => hs.map(h => ranked[h]))
  }
  return Array.from({ length: n }, () => [...ranked])
}

/** Whether every loss of `lost` of the L hosts leaves at least k fragments with a holder. */
function survives (hostsOf: number[][], L: number, k: number, lost: number): boolean {
  const gone = new Set<number>()
  const check = (from: number): boolean => {
    if (gone.size === lost) return hostsOf.filter(hs => hs.some(h => !gone.has(h))).length >= k
    for (let h = from; h < L; h++) {
      gone.add(h)
      const ok = check(h + 1)
      gone.delete(h)
      if (!ok) return false
    }
    return true
  }
  return check(0)
}
