// node/data — bytes on this host (DESIGN.md §2): a file's bytes cut into content-addressed
// chunks, each erasure-coded into k data + m parity fragments; the manifest that names a file
// version; the bounded cache of decoded chunks; the block store on disk (the only owner of
// blockstore-fs) and the free space under it.
//
// Contract:
//  - Everything here is local: no peer, no libp2p. The network enters only through the narrow
//    `Network` interface that ChunkService is given (keeper/network.ts implements it).
//  - Nothing unverified is stored or returned: Store.get() hashes every block against its CID
//    and quarantines a mismatch (CorruptBlockError); chunks.ts checks every decoded manifest.
//  - A chunk is durable locally (fsynced in the store) before the write op that names it is
//    committed to the tree.
//  - Bounds are named where they are defined: CHUNK_SIZE, INLINE_MAX, MAX_MANIFEST_BYTES,
//    MAX_SHARDS, the cache's bytes, READAHEAD_MAX_BYTES / READAHEAD_TOTAL_BYTES (chunks fetched
//    ahead of one sequential reader / of all of them).
//  - contentSum(manifest) names a version's bytes whatever stores them (k/m, fragments, holes
//    or written zeros, manifest version left out): writers put it beside the manifest CID in
//    their ops, and the tree compares it to tell identical content (one version, no conflict).
//  - New chunk refs record the Merkle roots of their data fragments (merkle.ts, 16 KiB leaves):
//    a small read fetches a few leaves of one fragment with their proof and checks them against
//    the root (ChunkService.readRange); refs without roots (older manifests) are read whole.
//  - The erasure codec is the native ISA-L addon when it is built (native/build.sh), else the
//    TypeScript kernel; both give the same bytes (cross-checked in test/node/erasure.test.ts).
//  - The write path codes chunks with encodeChunkAsync: the sha256 of a chunk and of its
//    fragments (most of the cost) runs on the libuv threadpool through the addon, off the event
//    loop that serves FUSE; same CIDs as encodeChunk (test/node/chunk-encode.test.ts). Its
//    parity is coded into recycled memory (ChunkService.shardPool, storeChunk `recycle`), given
//    back only once no reader is left: the put succeeded, the staging let go, and every push of
//    a lent fragment was acknowledged by all its targets; a fragment handed to anyone else is
//    never recycled (staging.ts ShardLease; test/node/shard-lease.test.ts).
//  - With a network and k > 1 a written chunk's k data fragments alone go to this host's disk
//    (its bytes: durable locally); its parity is staged for placement, which stores the fragment
//    this host keeps and rebuilds the others from the data fragments when a retry needs them
//    (keeper/network.ts placeOne; test/cluster/writer-parity.test.ts).
export { CODECS, ChunkService, ChunkWrite, PutGroup, PUT_GROUP_PARALLEL, PLACE_WINDOW_BYTES, SHARD_POOL_BYTES, RANGE_READ_MAX_BYTES, REPLICATE_MAX_BYTES, paramsFor, READAHEAD_INITIAL_BYTES, READAHEAD_MAX_BYTES, READAHEAD_TOTAL_BYTES } from './blocks.ts'
export type { ChunkWriteOptions, Codec, Network, ReadCounters, WriteProgress } from './blocks.ts'
export { CHUNK_SIZE, INLINE_MAX, MANIFEST_VERSIONS, MAX_MANIFEST_BYTES, ManifestError, PLACEMENT_BALANCED, chunkAt, clayCode, clayFor, fragmentBytes, rootCount, contentSum, decodeChunk, decodeChunkOffThread, decodeManifest, encodeChunk, encodeChunkAsync, encodeChunkPooled, encodeManifest, fragmentSlices, holeChunk, manifestOf, manifestRef, rebuildFragments, withRoots } from './chunks.ts'
export type { ChunkRef, FragmentSlice, Manifest } from './chunks.ts'
export { HASH_BYTES, LEAF_BYTES, SMALL_LEAF_BYTES, leafCount, leafHashes, merkleRoot, proofFromLeaves, rangeBytes, rangeProof, rootFromLeaves, verifyRange } from './merkle.ts'
export { CACHE_RAM_SHARE, ChunkCache, LeafCache, DEFAULT_CACHE_BYTES, MIN_DEFAULT_CACHE_BYTES, defaultCacheBytes, machineMemory } from './cache.ts'
export { LEAF_HASHES_BYTES, LocalLeaves, rememberingLeaves } from './leaves.ts'
export { RECENT_COMMIT_ENTRIES, RECENT_COMMIT_MS, RecentCommits } from './recent.ts'
export { ClayCode, MAX_SUBCHUNKS } from './clay.ts'
export type { ClayOptions, SubChunkRun } from './clay.ts'
export { ShardPool, chacha20Poly1305Native, chunkBytes, codecNote, codecs, encodeOutputBytes, isalBaseline, xsalsa20Native } from './erasure.ts'
export type { ErasureCodec, PooledShards } from './erasure.ts'
export { Space, availableBytes, bounds } from './space.ts'
export type { SpaceInit, SpaceState } from './space.ts'
export { Store, cidOf, matches } from './store.ts'
export { ShardLease, Staging, STAGED_BYTES_MAX } from './staging.ts'
