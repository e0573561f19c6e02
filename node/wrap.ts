// `withMethods`: an object seen through a Proxy with some of its methods replaced. The stores
// handed to parts of the daemon are wrapped this way (pins.ts guardStore spares pinned copies on
// delete, data/leaves.ts rememberingLeaves keeps the leaf hashes of what is put), so a wrapped
// store still passes wherever the store's own type is asked for, and wrappers stack.
//
// Part of node/'s vocabulary: every room may import it.

/**
 * `target` with the methods in `methods` replaced; every other property reads through to
 * `target`, its methods bound to it (so private fields and `this` keep working).
 */
export function withMethods<T extends object> (target: T, methods: Partial<T>): T {
  return new Proxy(target, {
    get (t, key) {
      if (Object.hasOwn(methods, key)) return methods[key as keyof T]
      const v = Reflect.get(t, key, t)
      return typeof v === 'function' ? v.bind(t) : v
    }
  })
}
