// The exact share of a chunk's fragments each member holds under weighted rendezvous
// (node/keeper/balance.ts rendezvous: the n highest scores w / -ln(u)), with no sampling: the
// sim's sampled loads carry a Poisson noise of 1 / sqrt(fragments held) per host (at 500 chunks
// per host, 4% for a 250 GB disk: the largest of 1,000 such ratios is ~1.10 for a perfect rule),
// which hides what the rule itself does.
//
// Scores w / -ln(u) rank as the arrival times T = E / w of exponential clocks of rate w (E = -ln u
// is Exp(1)): the n highest scores are the n earliest arrivals. Member i holds a fragment when
// fewer than n others arrived before it:
//
//   pi_i = integral over t of  w_i e^(-w_i t) P(N_-i(t) <= n - 1) dt,
//   N_-i(t) = the number of others j with T_j < t, independent, each with p_j = 1 - e^(-w_j t).
//
// P(N <= n - 1) over all members is a truncated Poisson-binomial (a DP over the members of n
// counts); leaving member i out divides its factor back out. Midpoint rule in s = t * sum(w), which
// stops once P(N <= n - 1) is below 1e-16 (every integrand is below w_i times it, see below).
// pi_i is the expected number of fragments i holds per chunk: sum(pi) = n, and pi_i = n w_i / sum(w)
// would be proportional placement. It is not quite: a member holds at most one fragment of a
// chunk, so the heaviest get slightly less than their proportional share and the light slightly more.

/** Expected fragments per chunk of each member under weighted rendezvous top-`n` (see the header). */
export function rendezvousInclusion (weights: readonly number[], n: number, step = 0.01): number[] {
  const N = weights.length
  const pi = new Array<number>(N).fill(0)
  if (n <= 0 || N === 0) return pi
  if (n >= weights.filter(w => w > 0).length) return weights.map(w => (w > 0 ? 1 : 0))
  const W = weights.reduce((s, w) => s + Math.max(0, w), 0)
  const Q = new Float64Array(n)
  const L = new Float64Array(n)
  const p = new Float64Array(N)
  for (let k = 0; ; k++) {
    const t = (k + 0.5) * step / W
    // Q[c] = P(N(t) = c) for c < n over every member
    Q.fill(0)
    Q[0] = 1
    for (let j = 0; j < N; j++) {
      const pj = weights[j] > 0 ? -Math.expm1(-weights[j] * t) : 0
      p[j] = pj
      for (let c = n - 1; c >= 1; c--) Q[c] = Q[c] * (1 - pj) + Q[c - 1] * pj
      Q[0] *= 1 - pj
    }
    let full = 0
    for (let c = 0; c < n; c++) full += Q[c]
    if (full < 1e-16) break
    for (let i = 0; i < N; i++) {
      if (!(weights[i] > 0)) continue
      // e^(-w_i t) P(N_-i = c) = (1 - p_i) L[c]: dividing the factor out, the (1 - p_i) cancels;
      // unstable once p_i nears 1, so then the DP again without i
      let sum = 0
      if (p[i] < 0.5) {
        let prev = 0
        for (let c = 0; c < n; c++) { L[c] = (Q[c] - prev * p[i]) / (1 - p[i]); prev = L[c]; sum += L[c] }
        sum *= 1 - p[i]
      } else {
        L.fill(0)
        L[0] = 1
        for (let j = 0; j < N; j++) {
          if (j === i) continue
          for (let c = n - 1; c >= 1; c--) L[c] = L[c] * (1 - p[j]) + L[c - 1] * p[j]
          L[0] *= 1 - p[j]
        }
        for (let c = 0; c < n; c++) sum += L[c]
        sum *= 1 - p[i]
      }
      pi[i] += weights[i] * sum * step / W
    }
  }
  return pi
}
