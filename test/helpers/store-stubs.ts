// Stubs over one volume's stores, for tests of what a write does when a store holds, fails or is
// watched: the stores of finished chunks behind the writes (ChunkWrite.chunk: early placement,
// open-file.ts storeBehind) and the block store's puts (Store.putMany). Each stub is given the
// real store and its call's arguments.
import type { Volume } from '../../node/index.ts'
import type { ChunkWrite, Store } from '../../node/data/index.ts'

type ChunkStore = ChunkWrite['chunk']
type PutMany = Store['putMany']

/** Every chunk write of `volume` stores its finished chunks through `stub`. */
export function stubChunkStores (volume: Volume, stub: (store: ChunkStore, ...args: Parameters<ChunkStore>) => ReturnType<ChunkStore>): void {
  const chunks = volume.chunks
  const write = chunks.write.bind(chunks)
  chunks.write = opts => {
    const w = write(opts)
    const store = w.chunk.bind(w)
    w.chunk = async (...args) => await stub(store, ...args)
    return w
  }
}

/** `volume`'s block store puts through `stub`. */
export function stubPuts (volume: Volume, stub: (putMany: PutMany, ...args: Parameters<PutMany>) => ReturnType<PutMany>): void {
  const store = (volume as unknown as { store: Store }).store
  const putMany = store.putMany.bind(store)
  store.putMany = async (...args) => await stub(putMany, ...args)
}
