// Hybrid logical clock (Kulkarni et al.): [wall ms, counter]. Stamps from one clock strictly
// increase, and a stamp taken after observing another is greater than it, so the total order
// (hlc, author, cid) never puts an op before an op in its causal past.
import type { Hlc } from './types.ts'

export interface Clock {
  /** A new stamp, greater than every stamp issued or observed so far. */
  tick: () => Hlc
  /** Move past a stamp seen on another op. */
  observe: (hlc: Hlc) => void
  /** The latest stamp issued or observed. */
  last: () => Hlc
}

export function compareHlc (a: Hlc, b: Hlc): number {
  return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1]
}

export function createClock (now: () => number = Date.now): Clock {
  let wall = 0
  let counter = 0
  return {
    tick () {
      const t = Math.floor(now())
      if (t > wall) {
        wall = t
        counter = 0
      } else {
        counter++
      }
      return [wall, counter]
    },
    observe (hlc) {
      // compareHlc(hlc, [wall, counter]) > 0, without a pair per op observed
      if (hlc[0] > wall || (hlc[0] === wall && hlc[1] > counter)) {
        wall = hlc[0]
        counter = hlc[1]
      }
    },
    last () {
      return [wall, counter]
    }
  }
}
