// darkfs erasure addon: the Reed–Solomon hot loop of node/erasure.ts on Intel ISA-L.
//
// node/erasure.ts builds the coding and decoding matrices itself (the Backblaze-style
// systematic Vandermonde construction, not ISA-L's gf_gen_rs_matrix), so this addon only
// multiplies a rows x k coefficient matrix by k source buffers:
//   initTables(k, rows, coeffs: Uint8Array(rows * k)) -> Uint8Array(32 * k * rows)
//   encodeData(len, k, rows, tables, sources: Uint8Array[k], targets: Uint8Array[rows]) -> undefined
//   encodeLoop(len, k, rows, tables, sources, targets, times) -> undefined: encodeData's
//     ec_encode_data call `times` times on the same buffers, with nothing else around it. The
//     benchmark's baseline (scripts/bench/erasure.ts): ISA-L's own speed in the same process and run.
//   sha256Many(buffers: Uint8Array[], cuts: number[], prefix, callback) -> undefined: the sha256
//     of every buffer, computed off the main thread (napi async work on the libuv threadpool),
//     then callback(null, digests: Uint8Array(32 * n (+ 32))) on the main thread. The buffers are
//     split into jobs at the indices `cuts` (ascending, in 1..n-1), one job per part, so on a
//     multi-core host the parts hash in parallel and the event loop (which serves FUSE) is free
//     meanwhile. `prefix` > 0 appends one more digest: that of buffers[0]'s first `prefix` bytes,
//     taken from the same pass (sha256 is a chain over 64-byte blocks: the state after the
//     prefix is copied and finished), so a fragment that is the start of its chunk is not hashed
//     twice. Only present when the process exports OpenSSL's SHA256_Init/Update/Final (node
//     does, for addons; they are looked up with dlsym, so the addon still loads without them and
//     node/data/erasure.ts then hashes in JavaScript). The buffers are held by references until
//     the callback; the caller must not write to them (or transfer their ArrayBuffer) meanwhile.
//   sha256Leaves(buffer: Uint8Array, leafBytes, whole: boolean, callback) -> undefined: the
//     Merkle tree of node/data/merkle.ts over the buffer's leafBytes leaves, off the main thread:
//     callback(null, Uint8Array(32 * leaves (the leaf hashes) + 32 (the root) (+ 32: with
//     `whole`, the buffer's own sha256, from the same pass))). One job, one read of the bytes, no
//     copy: a chunk written on one host (k = 1) gets its CID and its leaf hashes at once. Present
//     with sha256Many; the buffer is held by a reference until the callback, unchanged meanwhile.
//   writeBlock(dir, file, tmp, bytes, callback) -> undefined: a block file written durably in one
//     threadpool job (store.ts writeBlock: write tmp, rename to file, fsync it and dir), then
//     callback(null) or callback(Error with .code, e.g. 'ENOSPC'). bytes are held until then.
//   writeBlocks(dirs, files, tmps, buffers, callback) -> undefined: writeBlock for many blocks as
//     one group commit in one threadpool job (every file written and renamed, then each synced,
//     then each distinct directory synced once), then callback(outcomes): per block null or an
//     Error with .code. Every buffer is held until then.
//   readSlice(file, offset, into: Uint8Array, callback) -> undefined: fills `into` with the
//     file's bytes from `offset` in one threadpool job (open, pread, close), then callback(null,
//     true), or callback(null, false) when the file ends first, or callback(Error with .code).
//   readSliceNow(fd, offset, into: Uint8Array) -> boolean: `into` filled from the page cache of
//     an open file on the calling thread (preadv2 RWF_NOWAIT), false when that would wait.
//   xsalsa20Xor(subkey: Uint8Array(32), nonce: Uint8Array(8), position, input, output) -> undefined:
//     output = input XOR the Salsa20/20 key stream of (subkey, nonce) from byte `position` on
//     (any byte offset: a 64-byte block the position falls inside is entered part-way).
//     With subkey = hsalsa20(key, nonce24[0..16)) and nonce = nonce24[16..24) this is XSalsa20,
//     the cipher of @libp2p/pnet (node/net/xsalsa20.ts uses it in place of the xsalsa20
//     package's WebAssembly: sixteen blocks at a time in 512-bit vectors where the CPU has
//     AVX-512 (DARKFS_SALSA_AVX512=0: not), else eight in 256-bit ones where it has AVX2, else
//     four in 128-bit ones, with no copy into a WebAssembly memory and back: ~2 GB/s with AVX2
//     against the module's ~0.5 on this project's test machine (issue 15 item 4), 2.4-3.3 with
//     AVX-512 against 1.6-1.7 with AVX2 on a busy one). input and output may
//     be the same bytes; output must be at least as long as input.
//   hsalsa20(key: Uint8Array(32), nonce16: Uint8Array(16)) -> Uint8Array(32): XSalsa20's subkey.
//   chachaOpen(key: Uint8Array(32), nonce: Uint8Array(12), ad, pieces: Uint8Array[], tag:
//     Uint8Array(16)) -> boolean: ChaCha20-Poly1305 (RFC 8439, Noise's AEAD) decryption of the
//     ciphertext that is `pieces` one after another, each decrypted IN PLACE, and true when the
//     tag matched (false: the pieces then hold garbage that must not be used).
//   chachaSeal(key, nonce, ad, pieces: Uint8Array[], out) -> undefined: the encryption of the
//     plaintext `pieces` into `out` (at least their length + 16 bytes: the ciphertext, then the tag).
//     Both on OpenSSL's EVP chacha20-poly1305, looked up with dlsym as SHA256_* are, and present
//     only when the process exports it (node does); one call per Noise message, no JavaScript
//     cipher object, no fresh output (node/net/lean-transport.ts leanNoiseCrypto).
// Loading the addon also sets glibc's malloc policy for the process (tune_malloc below): freed
// buffers stay mapped for reuse instead of going back to the kernel at once.
// Every argument is checked (counts, types, buffer sizes >= len) and a bad one throws a
// RangeError or TypeError; nothing is read or written out of bounds.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <isa-l/erasure_code.h>
#define NAPI_VERSION 8
#include <node_api.h>

// k + m is at most 255 in GF(2^8) Vandermonde codes.
#define MAX_VECTORS 255

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, "erasure addon: N-API call failed: " #call); return NULL; } } while (0)

// Holds `held` (the job's buffer, or its array of buffers) and `callback` until the job's complete
// callback lets them go, and queues the job on libuv's threadpool (async resource "darkfs.<what>").
// On failure an error naming `what` is thrown and false returned: the caller frees the job (its
// free function deletes whichever reference was made).
static bool queue_job (napi_env env, const char *what, napi_value held, napi_value callback, napi_ref *held_ref, napi_ref *callback_ref,
                       napi_async_execute_callback execute, napi_async_complete_callback complete, void *data, napi_async_work *work) {
  char msg[128];
  const char *failed = NULL;
  napi_value name;
  snprintf(msg, sizeof msg, "darkfs.%s", what);
  if (napi_create_reference(env, held, 1, held_ref) != napi_ok || napi_create_reference(env, callback, 1, callback_ref) != napi_ok) failed = "napi_create_reference";
  else if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &name) != napi_ok) failed = "napi_create_string_utf8";
  else if (napi_create_async_work(env, NULL, name, execute, complete, data, work) != napi_ok) failed = "napi_create_async_work";
  else if (napi_queue_async_work(env, *work) != napi_ok) {
    napi_delete_async_work(env, *work);
    failed = "napi_queue_async_work";
  }
  if (failed == NULL) return true;
  snprintf(msg, sizeof msg, "%s: %s failed", what, failed);
  napi_throw_error(env, NULL, msg);
  return false;
}

static int get_int (napi_env env, napi_value v, const char *what, int lo, int hi, int *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    napi_throw_type_error(env, NULL, what);
    return 0;
  }
  double d;
  napi_get_value_double(env, v, &d);
  if (!(d >= lo && d <= hi) || d != (double)(int64_t)d) {
    napi_throw_range_error(env, NULL, what);
    return 0;
  }
  *out = (int)d;
  return 1;
}

static int get_bytes (napi_env env, napi_value v, const char *what, uint8_t **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) {
    napi_throw_type_error(env, NULL, what);
    return 0;
  }
  napi_typedarray_type type;
  size_t length;
  void *ptr;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, &ab, &offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, what);
    return 0;
  }
  *data = (uint8_t *)ptr;
  *len = length;
  return 1;
}

// Fills ptrs[0..count) from a JS array of Uint8Array, each at least `len` bytes.
static int get_buffers (napi_env env, napi_value arr, int count, int len, const char *what, uint8_t **ptrs) {
  bool is;
  uint32_t n;
  if (napi_is_array(env, arr, &is) != napi_ok || !is || napi_get_array_length(env, arr, &n) != napi_ok) {
    napi_throw_type_error(env, NULL, what);
    return 0;
  }
  if (n != (uint32_t)count) {
    napi_throw_range_error(env, NULL, what);
    return 0;
  }
  for (int i = 0; i < count; i++) {
    napi_value el;
    size_t blen;
    if (napi_get_element(env, arr, (uint32_t)i, &el) != napi_ok) {
      napi_throw_type_error(env, NULL, what);
      return 0;
    }
    if (!get_bytes(env, el, what, &ptrs[i], &blen)) return 0;
    if (blen < (size_t)len) {
      napi_throw_range_error(env, NULL, what);
      return 0;
    }
  }
  return 1;
}

static napi_value init_tables (napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 3) { napi_throw_type_error(env, NULL, "initTables(k, rows, coeffs) takes 3 arguments"); return NULL; }
  int k, rows;
  uint8_t *coeffs;
  size_t clen;
  if (!get_int(env, argv[0], "initTables: k must be an integer in 1..255", 1, MAX_VECTORS, &k)) return NULL;
  if (!get_int(env, argv[1], "initTables: rows must be an integer in 1..255", 1, MAX_VECTORS, &rows)) return NULL;
  if (!get_bytes(env, argv[2], "initTables: coeffs must be a Uint8Array", &coeffs, &clen)) return NULL;
  if (clen != (size_t)k * (size_t)rows) { napi_throw_range_error(env, NULL, "initTables: coeffs must hold rows * k bytes"); return NULL; }
  size_t tlen = 32 * (size_t)k * (size_t)rows;
  napi_value ab, out;
  void *tables;
  CHECK(napi_create_arraybuffer(env, tlen, &tables, &ab));
  CHECK(napi_create_typedarray(env, napi_uint8_array, tlen, ab, 0, &out));
  ec_init_tables(k, rows, coeffs, (unsigned char *)tables);
  return out;
}

static napi_value encode_data (napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 6) { napi_throw_type_error(env, NULL, "encodeData(len, k, rows, tables, sources, targets) takes 6 arguments"); return NULL; }
  int len, k, rows;
  uint8_t *tables;
  size_t tlen;
  if (!get_int(env, argv[0], "encodeData: len must be an integer in 0..2^31-1", 0, INT32_MAX, &len)) return NULL;
  if (!get_int(env, argv[1], "encodeData: k must be an integer in 1..255", 1, MAX_VECTORS, &k)) return NULL;
  if (!get_int(env, argv[2], "encodeData: rows must be an integer in 1..255", 1, MAX_VECTORS, &rows)) return NULL;
  if (!get_bytes(env, argv[3], "encodeData: tables must be a Uint8Array", &tables, &tlen)) return NULL;
  if (tlen != 32 * (size_t)k * (size_t)rows) { napi_throw_range_error(env, NULL, "encodeData: tables must hold 32 * k * rows bytes"); return NULL; }
  uint8_t *sources[MAX_VECTORS];
  uint8_t *targets[MAX_VECTORS];
  if (!get_buffers(env, argv[4], k, len, "encodeData: sources must be an array of k Uint8Arrays of at least len bytes", sources)) return NULL;
  if (!get_buffers(env, argv[5], rows, len, "encodeData: targets must be an array of rows Uint8Arrays of at least len bytes", targets)) return NULL;
  if (len > 0) ec_encode_data(len, k, rows, tables, sources, targets);
  return NULL;
}

static napi_value encode_loop (napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 7) { napi_throw_type_error(env, NULL, "encodeLoop(len, k, rows, tables, sources, targets, times) takes 7 arguments"); return NULL; }
  int len, k, rows, times;
  uint8_t *tables;
  size_t tlen;
  if (!get_int(env, argv[0], "encodeLoop: len must be an integer in 0..2^31-1", 0, INT32_MAX, &len)) return NULL;
  if (!get_int(env, argv[1], "encodeLoop: k must be an integer in 1..255", 1, MAX_VECTORS, &k)) return NULL;
  if (!get_int(env, argv[2], "encodeLoop: rows must be an integer in 1..255", 1, MAX_VECTORS, &rows)) return NULL;
  if (!get_bytes(env, argv[3], "encodeLoop: tables must be a Uint8Array", &tables, &tlen)) return NULL;
  if (tlen != 32 * (size_t)k * (size_t)rows) { napi_throw_range_error(env, NULL, "encodeLoop: tables must hold 32 * k * rows bytes"); return NULL; }
  uint8_t *sources[MAX_VECTORS];
  uint8_t *targets[MAX_VECTORS];
  if (!get_buffers(env, argv[4], k, len, "encodeLoop: sources must be an array of k Uint8Arrays of at least len bytes", sources)) return NULL;
  if (!get_buffers(env, argv[5], rows, len, "encodeLoop: targets must be an array of rows Uint8Arrays of at least len bytes", targets)) return NULL;
  if (!get_int(env, argv[6], "encodeLoop: times must be an integer in 0..2^31-1", 0, INT32_MAX, &times)) return NULL;
  if (len > 0) for (int i = 0; i < times; i++) ec_encode_data(len, k, rows, tables, sources, targets);
  return NULL;
}

// ---- sha256Many ------------------------------------------------------------------------------

// OpenSSL's SHA256_CTX is 112 bytes; a larger, aligned opaque block holds it without its header.
typedef struct { _Alignas(16) unsigned char opaque[256]; } sha_ctx;
static int (*sha_init)(sha_ctx *);
static int (*sha_update)(sha_ctx *, const void *, size_t);
static int (*sha_final)(unsigned char *, sha_ctx *);

typedef struct {
  uint8_t *data;
  size_t len;
  napi_ref ref;
} hash_item;

struct hash_batch;

typedef struct {
  struct hash_batch *batch;
  napi_async_work work;
  int from, to; // items [from, to)
} hash_job;

typedef struct hash_batch {
  int count, jobs, pending;
  int failed; // a job that did not run (its complete got a status other than napi_ok)
  size_t prefix;
  hash_item *items;
  hash_job *job;
  unsigned char *digests; // 32 * (count + (prefix > 0))
  napi_ref callback;
} hash_batch;

static void hash_execute (napi_env env, void *data) {
  hash_job *job = data;
  hash_batch *b = job->batch;
  for (int i = job->from; i < job->to; i++) {
    sha_ctx ctx;
    sha_init(&ctx);
    const uint8_t *p = b->items[i].data;
    size_t at = 0;
    if (i == 0 && b->prefix > 0) {
      sha_update(&ctx, p, b->prefix);
      sha_ctx copy;
      memcpy(&copy, &ctx, sizeof copy);
      sha_final(b->digests + 32 * (size_t)b->count, &copy);
      at = b->prefix;
    }
    sha_update(&ctx, p + at, b->items[i].len - at);
    sha_final(b->digests + 32 * (size_t)i, &ctx);
  }
}

static void hash_free (napi_env env, hash_batch *b) {
  for (int i = 0; i < b->count; i++) if (b->items[i].ref != NULL) napi_delete_reference(env, b->items[i].ref);
  if (b->callback != NULL) napi_delete_reference(env, b->callback);
  free(b->digests);
  free(b->items);
  free(b->job);
  free(b);
}

// Runs on the main thread after each job; the last one calls back and frees the batch.
static void hash_complete (napi_env env, napi_status status, void *data) {
  hash_job *job = data;
  hash_batch *b = job->batch;
  napi_delete_async_work(env, job->work);
  if (status != napi_ok) b->failed = 1;
  if (--b->pending > 0) return;
  napi_value cb, global, args[2], ab;
  size_t dlen = 32 * ((size_t)b->count + (b->prefix > 0));
  void *out;
  napi_get_reference_value(env, b->callback, &cb);
  napi_get_global(env, &global);
  napi_get_null(env, &args[0]);
  if (!b->failed && napi_create_arraybuffer(env, dlen, &out, &ab) == napi_ok && napi_create_typedarray(env, napi_uint8_array, dlen, ab, 0, &args[1]) == napi_ok) {
    memcpy(out, b->digests, dlen);
  } else {
    napi_value msg;
    napi_create_string_utf8(env, !b->failed ? "sha256Many: no memory for the digests" : "sha256Many: the hashing did not run (cancelled)", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &args[0]);
    napi_get_undefined(env, &args[1]);
  }
  hash_free(env, b);
  // an exception thrown by the callback is left pending: node reports it as uncaught
  napi_call_function(env, global, cb, 2, args, NULL);
}

static napi_value sha256_many (napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 4) { napi_throw_type_error(env, NULL, "sha256Many(buffers, cuts, prefix, callback) takes 4 arguments"); return NULL; }
  bool is;
  uint32_t n, ncuts;
  if (napi_is_array(env, argv[0], &is) != napi_ok || !is || napi_get_array_length(env, argv[0], &n) != napi_ok || n == 0 || n > 4096) {
    napi_throw_type_error(env, NULL, "sha256Many: buffers must be an array of 1..4096 Uint8Arrays");
    return NULL;
  }
  if (napi_is_array(env, argv[1], &is) != napi_ok || !is || napi_get_array_length(env, argv[1], &ncuts) != napi_ok || ncuts >= n) {
    napi_throw_type_error(env, NULL, "sha256Many: cuts must be an array of fewer indices than buffers");
    return NULL;
  }
  napi_valuetype t;
  if (napi_typeof(env, argv[3], &t) != napi_ok || t != napi_function) { napi_throw_type_error(env, NULL, "sha256Many: callback must be a function"); return NULL; }
  hash_batch *b = calloc(1, sizeof *b);
  if (b == NULL) { napi_throw_error(env, NULL, "sha256Many: out of memory"); return NULL; }
  b->count = (int)n;
  b->jobs = (int)ncuts + 1;
  b->items = calloc(n, sizeof *b->items);
  b->job = calloc((size_t)b->jobs, sizeof *b->job);
  b->digests = malloc(32 * ((size_t)n + 1));
  if (b->items == NULL || b->job == NULL || b->digests == NULL) { hash_free(env, b); napi_throw_error(env, NULL, "sha256Many: out of memory"); return NULL; }
  int prev = 0;
  for (uint32_t c = 0; c < ncuts; c++) {
    napi_value el;
    int cut;
    if (napi_get_element(env, argv[1], c, &el) != napi_ok ||
      !get_int(env, el, "sha256Many: cuts must be ascending indices in 1..n-1", prev + 1, (int)n - 1, &cut)) { hash_free(env, b); return NULL; }
    b->job[c].from = prev;
    b->job[c].to = cut;
    prev = cut;
  }
  b->job[ncuts].from = prev;
  b->job[ncuts].to = (int)n;
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    if (napi_get_element(env, argv[0], i, &el) != napi_ok) { hash_free(env, b); napi_throw_type_error(env, NULL, "sha256Many: buffers must be Uint8Arrays"); return NULL; }
    if (!get_bytes(env, el, "sha256Many: buffers must be Uint8Arrays", &b->items[i].data, &b->items[i].len)) { hash_free(env, b); return NULL; }
    if (napi_create_reference(env, el, 1, &b->items[i].ref) != napi_ok) { hash_free(env, b); napi_throw_error(env, NULL, "sha256Many: napi_create_reference failed"); return NULL; }
  }
  int prefix;
  if (!get_int(env, argv[2], "sha256Many: prefix must be an integer >= 0", 0, INT32_MAX, &prefix)) { hash_free(env, b); return NULL; }
  if ((size_t)prefix > b->items[0].len) { hash_free(env, b); napi_throw_range_error(env, NULL, "sha256Many: prefix exceeds the length of buffers[0]"); return NULL; }
  b->prefix = (size_t)prefix;
  if (napi_create_reference(env, argv[3], 1, &b->callback) != napi_ok) { hash_free(env, b); napi_throw_error(env, NULL, "sha256Many: napi_create_reference failed"); return NULL; }
  napi_value name;
  CHECK(napi_create_string_utf8(env, "darkfs.sha256Many", NAPI_AUTO_LENGTH, &name));
  for (int j = 0; j < b->jobs; j++) {
    b->job[j].batch = b;
    if (napi_create_async_work(env, NULL, name, hash_execute, hash_complete, &b->job[j], &b->job[j].work) != napi_ok) {
      // none queued yet is the only case handled: jobs are created first, queued after
      for (int i = 0; i < j; i++) napi_delete_async_work(env, b->job[i].work);
      hash_free(env, b);
      napi_throw_error(env, NULL, "sha256Many: napi_create_async_work failed");
      return NULL;
    }
  }
  b->pending = b->jobs;
  for (int j = 0; j < b->jobs; j++) CHECK(napi_queue_async_work(env, b->job[j].work));
  return NULL;
}

// ---- sha256Leaves ----------------------------------------------------------------------------

// One buffer's RFC 6962 Merkle tree (node/data/merkle.ts: leaf = H(0x00 || leaf bytes),
// node = H(0x01 || left || right), root = H(0x02 || u64be(length) || top)) and, optionally, its
// plain sha256 (its raw CID), from one pass over its bytes on the threadpool: each leaf is hashed
// twice while it is hot in cache, with no tagged copy of the buffer (what rememberAll made).
typedef struct {
  uint8_t *data;
  size_t len, leaf;
  int whole, failed;
  size_t leaves;
  unsigned char *out; // 32 * leaves (leaf hashes) || 32 (root) || 32 (whole, when asked)
  napi_ref buffer, callback;
  napi_async_work work;
} leaves_job;

static size_t split_pow2 (size_t n) {
  size_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

static void merkle_subtree (const unsigned char *hashes, size_t lo, size_t hi, unsigned char out[32]) {
  if (hi - lo == 1) { memcpy(out, hashes + 32 * lo, 32); return; }
  size_t mid = lo + split_pow2(hi - lo);
  unsigned char in[65];
  in[0] = 1;
  merkle_subtree(hashes, lo, mid, in + 1);
  merkle_subtree(hashes, mid, hi, in + 33);
  sha_ctx ctx;
  sha_init(&ctx);
  sha_update(&ctx, in, sizeof in);
  sha_final(out, &ctx);
}

static void leaves_execute (napi_env env, void *data) {
  leaves_job *j = data;
  static const unsigned char leaf_tag = 0;
  sha_ctx whole;
  if (j->whole) sha_init(&whole);
  for (size_t i = 0; i < j->leaves; i++) {
    size_t at = i * j->leaf;
    size_t n = at >= j->len ? 0 : (j->len - at < j->leaf ? j->len - at : j->leaf);
    sha_ctx ctx;
    sha_init(&ctx);
    sha_update(&ctx, &leaf_tag, 1);
    if (n > 0) sha_update(&ctx, j->data + at, n);
    sha_final(j->out + 32 * i, &ctx);
    if (j->whole && n > 0) sha_update(&whole, j->data + at, n);
  }
  unsigned char top[32], head[9];
  merkle_subtree(j->out, 0, j->leaves, top);
  head[0] = 2;
  for (int b = 0; b < 8; b++) head[1 + b] = (unsigned char)((uint64_t)j->len >> (56 - 8 * b));
  sha_ctx root;
  sha_init(&root);
  sha_update(&root, head, sizeof head);
  sha_update(&root, top, 32);
  sha_final(j->out + 32 * j->leaves, &root);
  if (j->whole) sha_final(j->out + 32 * (j->leaves + 1), &whole);
}

static void leaves_free (napi_env env, leaves_job *j) {
  if (j->buffer != NULL) napi_delete_reference(env, j->buffer);
  if (j->callback != NULL) napi_delete_reference(env, j->callback);
  free(j->out);
  free(j);
}

static void leaves_complete (napi_env env, napi_status status, void *data) {
  leaves_job *j = data;
  napi_delete_async_work(env, j->work);
  napi_value cb, global, args[2], ab;
  size_t dlen = 32 * (j->leaves + 1 + (j->whole ? 1 : 0));
  void *out;
  napi_get_reference_value(env, j->callback, &cb);
  napi_get_global(env, &global);
  napi_get_null(env, &args[0]);
  if (status == napi_ok && napi_create_arraybuffer(env, dlen, &out, &ab) == napi_ok && napi_create_typedarray(env, napi_uint8_array, dlen, ab, 0, &args[1]) == napi_ok) {
    memcpy(out, j->out, dlen);
  } else {
    napi_value msg;
    napi_create_string_utf8(env, status == napi_ok ? "sha256Leaves: no memory for the digests" : "sha256Leaves: the hashing did not run (cancelled)", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &args[0]);
    napi_get_undefined(env, &args[1]);
  }
  leaves_free(env, j);
  // an exception thrown by the callback is left pending: node reports it as uncaught
  napi_call_function(env, global, cb, 2, args, NULL);
}

static napi_value sha256_leaves (napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 4) { napi_throw_type_error(env, NULL, "sha256Leaves(buffer, leafBytes, whole, callback) takes 4 arguments"); return NULL; }
  uint8_t *bytes;
  size_t len;
  if (!get_bytes(env, argv[0], "sha256Leaves: buffer must be a Uint8Array", &bytes, &len)) return NULL;
  int leaf;
  if (!get_int(env, argv[1], "sha256Leaves: leafBytes must be an integer in 64..2^30", 64, 1 << 30, &leaf)) return NULL;
  bool whole;
  if (napi_get_value_bool(env, argv[2], &whole) != napi_ok) { napi_throw_type_error(env, NULL, "sha256Leaves: whole must be a boolean"); return NULL; }
  napi_valuetype t;
  if (napi_typeof(env, argv[3], &t) != napi_ok || t != napi_function) { napi_throw_type_error(env, NULL, "sha256Leaves: callback must be a function"); return NULL; }
  leaves_job *j = calloc(1, sizeof *j);
  if (j == NULL) { napi_throw_error(env, NULL, "sha256Leaves: out of memory"); return NULL; }
  j->data = bytes;
  j->len = len;
  j->leaf = (size_t)leaf;
  j->whole = whole ? 1 : 0;
  // an empty buffer is one empty leaf (merkle.ts leafCount)
  j->leaves = len == 0 ? 1 : (len + (size_t)leaf - 1) / (size_t)leaf;
  j->out = malloc(32 * (j->leaves + 2));
  if (j->out == NULL) { leaves_free(env, j); napi_throw_error(env, NULL, "sha256Leaves: out of memory"); return NULL; }
  if (!queue_job(env, "sha256Leaves", argv[0], argv[3], &j->buffer, &j->callback, leaves_execute, leaves_complete, j, &j->work)) { leaves_free(env, j); return NULL; }
  return NULL;
}

// ---- writeBlock ------------------------------------------------------------------------------

// A block file written durably in one threadpool job (node/data/store.ts writeBlock): its bytes to
// `tmp` (the shard directory `dir` made when missing), renamed to `file`, the file and the
// directory synced, everything closed; a failure before the rename removes `tmp`. The same
// system calls store.ts makes through node:fs/promises, where they were eight round trips
// through the threadpool per block, each a wake-up of a pool thread and a promise on the event
// loop (issue 15: on a 2-core host the main thread's share of a sequential write's CPU).
typedef struct {
  char *dir, *file, *tmp;
  uint8_t *data;
  size_t len;
  int err;           // errno of the failure, 0 when done
  const char *what;  // the call that failed
  napi_ref buffer, callback;
  napi_async_work work;
} block_job;

// The shard directory, and its parent (the store's blocks/) when that is gone too (a disk
// emptied under the store), never more: a store whose own dir was removed (a host's data dir
// removed as it stopped) fails with ENOENT instead of making that path again.
static int mkdir_shard (char *path) {
  if (mkdir(path, 0777) == 0 || errno == EEXIST) return 0;
  if (errno != ENOENT) return -1;
  char *slash = strrchr(path, '/');
  if (slash == NULL || slash == path) return -1;
  *slash = 0;
  int r = mkdir(path, 0777) == 0 || errno == EEXIST ? 0 : -1;
  *slash = '/';
  if (r != 0) return -1;
  return mkdir(path, 0777) == 0 || errno == EEXIST ? 0 : -1;
}

static void block_execute (napi_env env, void *data) {
  block_job *j = data;
  int fd = open(j->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0 && errno == ENOENT) {
    if (mkdir_shard(j->dir) != 0) { j->err = errno; j->what = "mkdir"; return; }
    fd = open(j->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  }
  if (fd < 0) { j->err = errno; j->what = "open"; return; }
  size_t at = 0;
  while (at < j->len) {
    ssize_t n = write(fd, j->data + at, j->len - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) { j->err = n < 0 ? errno : EIO; j->what = "write"; close(fd); unlink(j->tmp); return; }
    at += (size_t)n;
  }
  if (rename(j->tmp, j->file) != 0) { j->err = errno; j->what = "rename"; close(fd); unlink(j->tmp); return; }
  if (fsync(fd) != 0) { j->err = errno; j->what = "fsync"; close(fd); return; }
  if (close(fd) != 0) { j->err = errno; j->what = "close"; return; }
  int dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) { j->err = errno; j->what = "open"; return; }
  if (fsync(dfd) != 0) { j->err = errno; j->what = "fsync"; close(dfd); return; }
  close(dfd);
}

static void block_free (napi_env env, block_job *j) {
  if (j->buffer != NULL) napi_delete_reference(env, j->buffer);
  if (j->callback != NULL) napi_delete_reference(env, j->callback);
  free(j->dir);
  free(j->file);
  free(j->tmp);
  free(j);
}

static const char *errno_code (int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    case EIO: return "EIO";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EROFS: return "EROFS";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    default: return "EIO";
  }
}

static void block_complete (napi_env env, napi_status status, void *data) {
  block_job *j = data;
  napi_delete_async_work(env, j->work);
  napi_value cb, global, arg;
  napi_get_reference_value(env, j->callback, &cb);
  napi_get_global(env, &global);
  if (status != napi_ok || j->err != 0) {
    int e = status != napi_ok ? EIO : j->err;
    char text[PATH_MAX + 128];
    snprintf(text, sizeof text, "%s: %s, %s '%s'", errno_code(e), strerror(e), status != napi_ok ? "cancelled" : j->what, strcmp(j->what ? j->what : "", "rename") == 0 ? j->file : j->tmp);
    napi_value code, msg;
    napi_create_string_utf8(env, errno_code(e), NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, code, msg, &arg);
  } else {
    napi_get_null(env, &arg);
  }
  block_free(env, j);
  // an exception thrown by the callback is left pending: node reports it as uncaught
  napi_call_function(env, global, cb, 1, &arg, NULL);
}

static char *get_path (napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len == 0 || len >= PATH_MAX) return NULL;
  char *out = malloc(len + 1);
  if (out != NULL) napi_get_value_string_utf8(env, v, out, len + 1, &len);
  return out;
}

static napi_value write_block (napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 5) { napi_throw_type_error(env, NULL, "writeBlock(dir, file, tmp, bytes, callback) takes 5 arguments"); return NULL; }
  napi_valuetype t;
  if (napi_typeof(env, argv[4], &t) != napi_ok || t != napi_function) { napi_throw_type_error(env, NULL, "writeBlock: callback must be a function"); return NULL; }
  block_job *j = calloc(1, sizeof *j);
  if (j == NULL) { napi_throw_error(env, NULL, "writeBlock: out of memory"); return NULL; }
  j->dir = get_path(env, argv[0]);
  j->file = get_path(env, argv[1]);
  j->tmp = get_path(env, argv[2]);
  if (j->dir == NULL || j->file == NULL || j->tmp == NULL) { block_free(env, j); napi_throw_type_error(env, NULL, "writeBlock: dir, file and tmp must be non-empty paths"); return NULL; }
  if (!get_bytes(env, argv[3], "writeBlock: bytes must be a Uint8Array", &j->data, &j->len)) { block_free(env, j); return NULL; }
  if (!queue_job(env, "writeBlock", argv[3], argv[4], &j->buffer, &j->callback, block_execute, block_complete, j, &j->work)) { block_free(env, j); return NULL; }
  return NULL;
}

// ---- writeBlocks -----------------------------------------------------------------------------

// Block files written durably as one group commit (node/data/store.ts BlockWriter): every
// block's bytes to its `tmp` and renamed to its `file` first (as writeBlock does, the shard
// directory made when missing), then each file fsynced and each distinct directory fsynced
// once. (Starting every file's writeback first with sync_file_range measured slower on the
// six-host write.) Each block gets its own outcome: a
// block is reported done only when its file and its directory were synced; a failure of one
// block's own calls fails that block alone (its tmp removed when the failure came before the
// rename), a failed directory sync fails every block renamed into that directory. The same
// durability per block as writeBlock, with one threadpool job and one sync per directory for
// the whole group (issue 15: a six-host write stores one 256 KiB file per fragment).
typedef struct {
  char *dir, *file, *tmp;
  uint8_t *data;
  size_t len;
  int fd;
  int err;
  const char *what;
} group_item;

typedef struct {
  size_t n;
  group_item *items;
  napi_ref buffers, callback;
  napi_async_work work;
} group_job;

static void group_fail (group_item *it, const char *what) {
  it->err = errno != 0 ? errno : EIO;
  it->what = what;
}

static void group_execute (napi_env env, void *data) {
  group_job *g = data;
  for (size_t i = 0; i < g->n; i++) {
    group_item *it = &g->items[i];
    it->fd = -1;
    int fd = open(it->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0 && errno == ENOENT) {
      if (mkdir_shard(it->dir) != 0) { group_fail(it, "mkdir"); continue; }
      fd = open(it->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    }
    if (fd < 0) { group_fail(it, "open"); continue; }
    size_t at = 0;
    while (at < it->len) {
      ssize_t w = write(fd, it->data + at, it->len - at);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) { if (w == 0) errno = EIO; break; }
      at += (size_t)w;
    }
    if (at < it->len) { group_fail(it, "write"); close(fd); unlink(it->tmp); continue; }
    if (rename(it->tmp, it->file) != 0) { group_fail(it, "rename"); close(fd); unlink(it->tmp); continue; }
    it->fd = fd;
  }
  for (size_t i = 0; i < g->n; i++) {
    group_item *it = &g->items[i];
    if (it->fd < 0) continue;
    if (fsync(it->fd) != 0) { group_fail(it, "fsync"); close(it->fd); it->fd = -1; continue; }
    if (close(it->fd) != 0) { it->fd = -1; group_fail(it, "close"); continue; }
    it->fd = -1;
  }
  // each directory once, for every block renamed into it (and whose file synced)
  for (size_t i = 0; i < g->n; i++) {
    group_item *it = &g->items[i];
    if (it->err != 0 || it->what != NULL) continue;
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++) seen = g->items[j].what == NULL && g->items[j].err == 0 && strcmp(g->items[j].dir, it->dir) == 0;
    if (seen) continue;
    int dfd = open(it->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = 0;
    if (dfd < 0) e = errno != 0 ? errno : EIO;
    else if (fsync(dfd) != 0) e = errno != 0 ? errno : EIO;
    if (dfd >= 0) close(dfd);
    if (e == 0) continue;
    // every later block of this directory fails with it (an earlier one cannot share it: it
    // would have been the one synced)
    for (size_t j = i; j < g->n; j++) {
      group_item *o = &g->items[j];
      if (o->err == 0 && o->what == NULL && strcmp(o->dir, it->dir) == 0) { o->err = e; o->what = "fsync of the directory"; }
    }
  }
}

static void group_free (napi_env env, group_job *g) {
  if (g->buffers != NULL) napi_delete_reference(env, g->buffers);
  if (g->callback != NULL) napi_delete_reference(env, g->callback);
  if (g->items != NULL) {
    for (size_t i = 0; i < g->n; i++) { free(g->items[i].dir); free(g->items[i].file); free(g->items[i].tmp); }
    free(g->items);
  }
  free(g);
}

static void group_complete (napi_env env, napi_status status, void *data) {
  group_job *g = data;
  napi_delete_async_work(env, g->work);
  napi_value cb, global, out, arg[2];
  napi_get_reference_value(env, g->callback, &cb);
  napi_get_global(env, &global);
  napi_create_array_with_length(env, g->n, &out);
  for (size_t i = 0; i < g->n; i++) {
    group_item *it = &g->items[i];
    napi_value v;
    if (status != napi_ok || it->err != 0) {
      int e = status != napi_ok ? EIO : it->err;
      char text[PATH_MAX + 128];
      const char *what = status != napi_ok ? "cancelled" : (it->what != NULL ? it->what : "");
      const char *path = strcmp(what, "fsync of the directory") == 0 ? it->dir
        : strcmp(what, "rename") == 0 || strcmp(what, "fsync") == 0 || strcmp(what, "close") == 0 ? it->file : it->tmp;
      snprintf(text, sizeof text, "%s: %s, %s '%s'", errno_code(e), strerror(e), what, path);
      napi_value code, msg;
      napi_create_string_utf8(env, errno_code(e), NAPI_AUTO_LENGTH, &code);
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
      napi_create_error(env, code, msg, &v);
    } else {
      napi_get_null(env, &v);
    }
    napi_set_element(env, out, (uint32_t)i, v);
  }
  arg[0] = out;
  group_free(env, g);
  // an exception thrown by the callback is left pending: node reports it as uncaught
  napi_call_function(env, global, cb, 1, arg, NULL);
}

// writeBlocks(dirs: string[], files: string[], tmps: string[], buffers: Uint8Array[], callback)
static napi_value write_blocks (napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 5) { napi_throw_type_error(env, NULL, "writeBlocks(dirs, files, tmps, buffers, callback) takes 5 arguments"); return NULL; }
  napi_valuetype t;
  if (napi_typeof(env, argv[4], &t) != napi_ok || t != napi_function) { napi_throw_type_error(env, NULL, "writeBlocks: callback must be a function"); return NULL; }
  uint32_t n = 0, m;
  bool is;
  for (int a = 0; a < 4; a++) {
    if (napi_is_array(env, argv[a], &is) != napi_ok || !is) { napi_throw_type_error(env, NULL, "writeBlocks: dirs, files, tmps and buffers must be arrays"); return NULL; }
    CHECK(napi_get_array_length(env, argv[a], &m));
    if (a == 0) n = m;
    else if (m != n) { napi_throw_range_error(env, NULL, "writeBlocks: dirs, files, tmps and buffers must be as long"); return NULL; }
  }
  if (n == 0 || n > 4096) { napi_throw_range_error(env, NULL, "writeBlocks: 1 to 4096 blocks"); return NULL; }
  group_job *g = calloc(1, sizeof *g);
  if (g == NULL) { napi_throw_error(env, NULL, "writeBlocks: out of memory"); return NULL; }
  g->items = calloc(n, sizeof *g->items);
  if (g->items == NULL) { free(g); napi_throw_error(env, NULL, "writeBlocks: out of memory"); return NULL; }
  g->n = n;
  for (uint32_t i = 0; i < n; i++) {
    napi_value d, f, p, b;
    if (napi_get_element(env, argv[0], i, &d) != napi_ok || napi_get_element(env, argv[1], i, &f) != napi_ok ||
        napi_get_element(env, argv[2], i, &p) != napi_ok || napi_get_element(env, argv[3], i, &b) != napi_ok) {
      group_free(env, g); napi_throw_error(env, NULL, "writeBlocks: napi_get_element failed"); return NULL;
    }
    group_item *it = &g->items[i];
    it->fd = -1;
    it->dir = get_path(env, d);
    it->file = get_path(env, f);
    it->tmp = get_path(env, p);
    if (it->dir == NULL || it->file == NULL || it->tmp == NULL) { group_free(env, g); napi_throw_type_error(env, NULL, "writeBlocks: dirs, files and tmps must be non-empty paths"); return NULL; }
    if (!get_bytes(env, b, "writeBlocks: buffers must be Uint8Arrays", &it->data, &it->len)) { group_free(env, g); return NULL; }
  }
  // the buffers array holds every buffer until the callback
  if (!queue_job(env, "writeBlocks", argv[3], argv[4], &g->buffers, &g->callback, group_execute, group_complete, g, &g->work)) { group_free(env, g); return NULL; }
  return NULL;
}

// ---- readSlice -------------------------------------------------------------------------------

// Bytes [offset, offset + length) of a block file in one threadpool job (node/data/store.ts
// readSlice): open, pread, close, where node:fs/promises made three round trips through the
// threadpool and the event loop for each 4 KiB read (issue 15). The bytes go into a buffer the
// caller passes (its own, fresh), so no memory crosses threads but that one.
typedef struct {
  char *file;
  uint8_t *data;
  size_t len;
  off_t offset;
  int err;    // errno, 0 when read
  int short_; // the file ends before offset + length
  int hash;   // readBlock: the sha256 of the bytes read, in the same job, once they are all there
  unsigned char digest[32];
  napi_ref buffer, callback;
  napi_async_work work;
} slice_job;

// Fault in the pages of [p, p + len) for writing in one call, before a read lands there. A fresh
// buffer of a block (Store.get: a new 1 MiB buffer per fragment read) has no pages yet, and
// pread's copy out of the page cache then takes a page fault per 4 KiB page, 256 per MiB: on a
// one-host cold read these faults were ~11% of the process's CPU samples (perf, issue 15), each
// an exception the kernel (a guest's, here) enters and leaves. MADV_POPULATE_WRITE (Linux 5.14)
// makes them in one system call. The pages whole or in part under the range are faulted in as a
// write would, their bytes unchanged, so the page-rounded range may include a neighbour's bytes
// harmlessly. Best effort: a kernel without it (EINVAL) faults them as before.
#define POPULATE_MIN_BYTES (64 * 1024)
static void populate (uint8_t *p, size_t len) {
  if (len < POPULATE_MIN_BYTES) return;
  long page = sysconf(_SC_PAGESIZE);
  if (page <= 0) return;
  uintptr_t start = (uintptr_t)p & ~((uintptr_t)page - 1);
  uintptr_t end = ((uintptr_t)p + len + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
#ifdef MADV_POPULATE_WRITE
  (void)madvise((void *)start, end - start, MADV_POPULATE_WRITE);
#else
  (void)madvise((void *)start, end - start, 23);
#endif
}

static void slice_execute (napi_env env, void *data) {
  slice_job *j = data;
  int fd = open(j->file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) { j->err = errno; return; }
  populate(j->data, j->len);
  size_t got = 0;
  while (got < j->len) {
    ssize_t n = pread(fd, j->data + got, j->len - got, j->offset + (off_t)got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { j->err = errno; break; }
    if (n == 0) { j->short_ = 1; break; }
    got += (size_t)n;
  }
  close(fd);
  if (j->hash && j->err == 0 && !j->short_) {
    sha_ctx ctx;
    sha_init(&ctx);
    sha_update(&ctx, j->data, j->len);
    sha_final(j->digest, &ctx);
  }
}

static void slice_free (napi_env env, slice_job *j) {
  if (j->buffer != NULL) napi_delete_reference(env, j->buffer);
  if (j->callback != NULL) napi_delete_reference(env, j->callback);
  free(j->file);
  free(j);
}

static void slice_complete (napi_env env, napi_status status, void *data) {
  slice_job *j = data;
  napi_delete_async_work(env, j->work);
  napi_value cb, global, args[3];
  napi_get_reference_value(env, j->callback, &cb);
  napi_get_global(env, &global);
  napi_get_null(env, &args[0]);
  int whole = status == napi_ok && j->err == 0 && !j->short_;
  napi_get_boolean(env, whole, &args[1]);
  size_t argc = 2;
  if (j->hash) {
    // readBlock: the digest when every byte was read, else undefined
    argc = 3;
    if (!whole || napi_create_buffer_copy(env, 32, j->digest, NULL, &args[2]) != napi_ok) napi_get_undefined(env, &args[2]);
  }
  if (status != napi_ok || j->err != 0) {
    int e = status != napi_ok ? EIO : j->err;
    char text[PATH_MAX + 64];
    snprintf(text, sizeof text, "%s: %s, read '%s'", errno_code(e), strerror(e), j->file);
    napi_value code, msg;
    napi_create_string_utf8(env, errno_code(e), NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, code, msg, &args[0]);
  }
  slice_free(env, j);
  // an exception thrown by the callback is left pending: node reports it as uncaught
  napi_call_function(env, global, cb, argc, args, NULL);
}

static napi_value read_slice (napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 4) { napi_throw_type_error(env, NULL, "readSlice(file, offset, into, callback) takes 4 arguments"); return NULL; }
  napi_valuetype t;
  if (napi_typeof(env, argv[3], &t) != napi_ok || t != napi_function) { napi_throw_type_error(env, NULL, "readSlice: callback must be a function"); return NULL; }
  double offset;
  if (napi_get_value_double(env, argv[1], &offset) != napi_ok || !(offset >= 0 && offset <= 9007199254740991.0) || offset != (double)(int64_t)offset) {
    napi_throw_range_error(env, NULL, "readSlice: offset must be an integer >= 0");
    return NULL;
  }
  slice_job *j = calloc(1, sizeof *j);
  if (j == NULL) { napi_throw_error(env, NULL, "readSlice: out of memory"); return NULL; }
  j->file = get_path(env, argv[0]);
  if (j->file == NULL) { slice_free(env, j); napi_throw_type_error(env, NULL, "readSlice: file must be a non-empty path"); return NULL; }
  j->offset = (off_t)offset;
  if (!get_bytes(env, argv[2], "readSlice: into must be a Uint8Array", &j->data, &j->len)) { slice_free(env, j); return NULL; }
  if (!queue_job(env, "readSlice", argv[2], argv[3], &j->buffer, &j->callback, slice_execute, slice_complete, j, &j->work)) { slice_free(env, j); return NULL; }
  return NULL;
}

// readBlock(file, into, callback(err, whole, digest)): a whole block file read into `into` from
// its start as readSlice reads it, and, when every byte of `into` was read, the sha256 of those
// bytes from the same threadpool job (`digest`, 32 bytes; undefined when the file was shorter).
// Store.get reads a fragment of known size so and compares the digest with its CID's: one job
// and one trip through the event loop per block where a read then a hash job took two (issue
// 15: a one-host cold read is one 1 MiB block per MiB). Present when sha256Many is.
static napi_value read_block (napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 3) { napi_throw_type_error(env, NULL, "readBlock(file, into, callback) takes 3 arguments"); return NULL; }
  napi_valuetype t;
  if (napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function) { napi_throw_type_error(env, NULL, "readBlock: callback must be a function"); return NULL; }
  slice_job *j = calloc(1, sizeof *j);
  if (j == NULL) { napi_throw_error(env, NULL, "readBlock: out of memory"); return NULL; }
  j->hash = 1;
  j->file = get_path(env, argv[0]);
  if (j->file == NULL) { slice_free(env, j); napi_throw_type_error(env, NULL, "readBlock: file must be a non-empty path"); return NULL; }
  if (!get_bytes(env, argv[1], "readBlock: into must be a Uint8Array", &j->data, &j->len)) { slice_free(env, j); return NULL; }
  if (!queue_job(env, "readBlock", argv[1], argv[2], &j->buffer, &j->callback, slice_execute, slice_complete, j, &j->work)) { slice_free(env, j); return NULL; }
  return NULL;
}

// readSliceNow(fd, offset, into) -> boolean: `into` filled from an open block file's page
// cache on the calling thread (preadv2 with RWF_NOWAIT: the kernel answers EAGAIN rather than
// wait for the disk or a page lock), true when every byte came; false when any of them was not
// cached, the file ends first, or the kernel or file system takes no RWF_NOWAIT (the caller then
// reads through the threadpool, readSlice). A 16 KiB slice a peer asks for is then one syscall
// of a few microseconds, not a threadpool job with two thread wakeups (issue 15: ~0.2 ms of a
// six-host 4 KiB read, up to 1 ms on a loaded host).
static napi_value read_slice_now (napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 3) { napi_throw_type_error(env, NULL, "readSliceNow(fd, offset, into) takes 3 arguments"); return NULL; }
  int32_t fd;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) { napi_throw_type_error(env, NULL, "readSliceNow: fd must be an integer >= 0"); return NULL; }
  double offset;
  if (napi_get_value_double(env, argv[1], &offset) != napi_ok || !(offset >= 0 && offset <= 9007199254740991.0) || offset != (double)(int64_t)offset) {
    napi_throw_range_error(env, NULL, "readSliceNow: offset must be an integer >= 0");
    return NULL;
  }
  uint8_t *data;
  size_t len;
  if (!get_bytes(env, argv[2], "readSliceNow: into must be a Uint8Array", &data, &len)) return NULL;
  int whole = 0;
#ifdef RWF_NOWAIT
  struct iovec iov = { .iov_base = data, .iov_len = len };
  ssize_t n;
  do { n = preadv2(fd, &iov, 1, (off_t)offset, RWF_NOWAIT); } while (n < 0 && errno == EINTR);
  whole = n >= 0 && (size_t)n == len;
#endif
  napi_value result;
  CHECK(napi_get_boolean(env, whole, &result));
  return result;
}

// populate(bytes): fault the pages under `bytes` in for writing, in one system call (populate()
// above: nothing for a buffer under POPULATE_MIN_BYTES, nothing more on a kernel without
// MADV_POPULATE_WRITE), its bytes unchanged. For a fresh buffer about to be filled on the event
// loop: a chunk decoded from its fragments (erasure.ts decode: a new 1 MiB buffer per chunk read,
// whose copies otherwise take a page fault per 4 KiB: on a six-host cold read ~2.4% of the
// process's perf samples were those faults, on the reader's event loop).
static napi_value populate_js (napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1) { napi_throw_type_error(env, NULL, "populate(bytes) takes 1 argument"); return NULL; }
  uint8_t *data;
  size_t len;
  if (!get_bytes(env, argv[0], "populate: bytes must be a Uint8Array", &data, &len)) return NULL;
  populate(data, len);
  return NULL;
}

// ---- malloc policy -------------------------------------------------------------------------

/** Allocations from this size on get their own mmap (glibc's default is 128 KiB, then adaptive). */
#define MMAP_THRESHOLD (4 << 20)
/** Free memory at the top of the heap kept mapped, up to this much (glibc's default: 128 KiB, then adaptive). */
#define TRIM_THRESHOLD (128 << 20)

// Every codec call returns fresh shards (and every chunk read or write makes MiB-sized buffers).
// V8 frees such ArrayBuffers in batches, one garbage collection per ~64 MiB of them (its external
// memory limit), and glibc by default hands the freed heap top straight back to the kernel (and
// serves large blocks by mmap/munmap): so every fresh shard was fresh pages, a page fault and a
// kernel zeroing per 4 KiB, which cost as much CPU as the coding (scripts/bench/erasure.ts; perf:
// clear_page, exc_page_fault, brk). With the heap top kept up to TRIM_THRESHOLD, a GC cycle's
// buffers reuse the last cycle's pages. The process keeps that much memory it would otherwise
// map again within milliseconds: its resident size stays at its peak instead of swinging. Left
// alone when the user set glibc's own knobs (MALLOC_*_ or GLIBC_TUNABLES), and off glibc.
static void tune_malloc (void) {
#ifdef __GLIBC__
  // (idempotent: a worker thread loading the addon again sets the same values)
  if (getenv("MALLOC_TRIM_THRESHOLD_") != NULL || getenv("MALLOC_MMAP_THRESHOLD_") != NULL || getenv("GLIBC_TUNABLES") != NULL) return;
  mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
  mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD);
#endif
}


// ---- XSalsa20 (pnet's stream cipher) ---------------------------------------------------------

#define ROTL(a, b) (((a) << (b)) | ((a) >> (32 - (b))))
// one Salsa20 double round (a column round, then a row round) over x0..x15 of any type T on
// which + ^ << >> work lane-wise (uint32_t, or a vector of them)
#define DOUBLE_ROUND() do { \
    x4 ^= ROTL(x0 + x12, 7); x8 ^= ROTL(x4 + x0, 9); x12 ^= ROTL(x8 + x4, 13); x0 ^= ROTL(x12 + x8, 18); \
    x9 ^= ROTL(x5 + x1, 7); x13 ^= ROTL(x9 + x5, 9); x1 ^= ROTL(x13 + x9, 13); x5 ^= ROTL(x1 + x13, 18); \
    x14 ^= ROTL(x10 + x6, 7); x2 ^= ROTL(x14 + x10, 9); x6 ^= ROTL(x2 + x14, 13); x10 ^= ROTL(x6 + x2, 18); \
    x3 ^= ROTL(x15 + x11, 7); x7 ^= ROTL(x3 + x15, 9); x11 ^= ROTL(x7 + x3, 13); x15 ^= ROTL(x11 + x7, 18); \
    x1 ^= ROTL(x0 + x3, 7); x2 ^= ROTL(x1 + x0, 9); x3 ^= ROTL(x2 + x1, 13); x0 ^= ROTL(x3 + x2, 18); \
    x6 ^= ROTL(x5 + x4, 7); x7 ^= ROTL(x6 + x5, 9); x4 ^= ROTL(x7 + x6, 13); x5 ^= ROTL(x4 + x7, 18); \
    x11 ^= ROTL(x10 + x9, 7); x8 ^= ROTL(x11 + x10, 9); x9 ^= ROTL(x8 + x11, 13); x10 ^= ROTL(x9 + x8, 18); \
    x12 ^= ROTL(x15 + x14, 7); x13 ^= ROTL(x12 + x15, 9); x14 ^= ROTL(x13 + x12, 13); x15 ^= ROTL(x14 + x13, 18); \
  } while (0)

typedef uint32_t u32x4 __attribute__((vector_size(16)));

static uint32_t load32 (const uint8_t *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
#else
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
#endif
}

static void store32 (uint8_t *p, uint32_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(p, &v, 4);
#else
  p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
#endif
}

// "expand 32-byte k"
static const uint32_t SIGMA[4] = { 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574 };

// The input state of Salsa20 block `block` of (key, nonce).
static void salsa_state (uint32_t s[16], const uint8_t key[32], const uint8_t nonce[8], uint64_t block) {
  s[0] = SIGMA[0];
  for (int i = 0; i < 4; i++) s[1 + i] = load32(key + 4 * i);
  s[5] = SIGMA[1];
  s[6] = load32(nonce);
  s[7] = load32(nonce + 4);
  s[8] = (uint32_t)block;
  s[9] = (uint32_t)(block >> 32);
  s[10] = SIGMA[2];
  for (int i = 0; i < 4; i++) s[11 + i] = load32(key + 16 + 4 * i);
  s[15] = SIGMA[3];
}

// Key stream of one block: 64 bytes.
static void salsa_block (uint8_t out[64], const uint32_t s[16]) {
  uint32_t x0 = s[0], x1 = s[1], x2 = s[2], x3 = s[3], x4 = s[4], x5 = s[5], x6 = s[6], x7 = s[7];
  uint32_t x8 = s[8], x9 = s[9], x10 = s[10], x11 = s[11], x12 = s[12], x13 = s[13], x14 = s[14], x15 = s[15];
  for (int i = 0; i < 10; i++) DOUBLE_ROUND();
  uint32_t x[16] = { x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15 };
  for (int i = 0; i < 16; i++) store32(out + 4 * i, x[i] + s[i]);
}

// Key stream of LANES consecutive blocks in vectors of LANES words (s holds the first block's
// state; the counter words count up per lane): 64 * LANES bytes, block after block. Made for four
// lanes (salsa_block4, any CPU) and, where the x86-64 CPU has them, eight in 256-bit vectors
// (salsa_block8, AVX2) and sixteen in 512-bit ones (salsa_block16, AVX-512: its rotations one
// instruction each, vprold), chosen at run time (xsalsa20_xor asks the CPU once). ATTR: the
// target the function is compiled for.
#define SALSA_BLOCKS(ATTR, NAME, VEC, LANES) \
static ATTR void NAME (uint8_t out[64 * LANES], const uint32_t s[16]) { \
  VEC in[16]; \
  for (int i = 0; i < 16; i++) for (int l = 0; l < LANES; l++) in[i][l] = s[i]; \
  uint64_t block = (uint64_t)s[8] | ((uint64_t)s[9] << 32); \
  for (int l = 0; l < LANES; l++) { \
    in[8][l] = (uint32_t)(block + l); \
    in[9][l] = (uint32_t)((block + l) >> 32); \
  } \
  VEC x0 = in[0], x1 = in[1], x2 = in[2], x3 = in[3], x4 = in[4], x5 = in[5], x6 = in[6], x7 = in[7]; \
  VEC x8 = in[8], x9 = in[9], x10 = in[10], x11 = in[11], x12 = in[12], x13 = in[13], x14 = in[14], x15 = in[15]; \
  for (int i = 0; i < 10; i++) DOUBLE_ROUND(); \
  VEC x[16] = { x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15 }; \
  uint32_t words[16][LANES]; \
  for (int i = 0; i < 16; i++) { \
    VEC v = x[i] + in[i]; \
    memcpy(words[i], &v, sizeof v); \
  } \
  for (int l = 0; l < LANES; l++) for (int i = 0; i < 16; i++) store32(out + 64 * l + 4 * i, words[i][l]); \
}

SALSA_BLOCKS(, salsa_block4, u32x4, 4)

#if defined(__x86_64__) && defined(__GNUC__)
typedef uint32_t u32x8 __attribute__((vector_size(32)));
typedef uint32_t u32x16 __attribute__((vector_size(64)));
SALSA_BLOCKS(__attribute__((target("avx2"))), salsa_block8, u32x8, 8)
SALSA_BLOCKS(__attribute__((target("avx512f"))), salsa_block16, u32x16, 16)

static int has_avx2 (void) {
  static int known = -1;
  if (known < 0) { __builtin_cpu_init(); known = __builtin_cpu_supports("avx2") ? 1 : 0; }
  return known;
}

static int has_avx512 (void) {
  static int known = -1;
  if (known < 0) {
    __builtin_cpu_init();
    // DARKFS_SALSA_AVX512=0 keeps the AVX2 path (tests compare the two)
    const char *env = getenv("DARKFS_SALSA_AVX512");
    known = __builtin_cpu_supports("avx512f") && !(env != NULL && strcmp(env, "0") == 0) ? 1 : 0;
  }
  return known;
}
#endif

// out = in ^ ks over n bytes (a multiple of 8), a word at a time (memcpy: no alignment assumed)
static inline void xor_words (uint8_t *out, const uint8_t *in, const uint8_t *ks, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t a, b;
    memcpy(&a, in + i, 8);
    memcpy(&b, ks + i, 8);
    a ^= b;
    memcpy(out + i, &a, 8);
  }
}

// out = in ^ the key stream over [at, len), `lanes` blocks at a time through `blocks` (a
// SALSA_BLOCKS function) while a whole group of them is left, from `*block` on (advanced); returns
// where it stopped (inlined: each call site calls its block function directly)
static inline __attribute__((always_inline)) size_t xor_groups (const uint8_t key[32], const uint8_t nonce[8], uint64_t *block, const uint8_t *in, uint8_t *out, size_t at, size_t len, size_t lanes, void (*blocks) (uint8_t *, const uint32_t *)) {
  uint32_t s[16];
  uint8_t ks[64 * 16];
  while (len - at >= 64 * lanes) {
    salsa_state(s, key, nonce, *block);
    blocks(ks, s);
    xor_words(out + at, in + at, ks, 64 * lanes);
    *block += lanes;
    at += 64 * lanes;
  }
  return at;
}

static void xsalsa20_xor (const uint8_t key[32], const uint8_t nonce[8], uint64_t position, const uint8_t *in, uint8_t *out, size_t len) {
  uint32_t s[16];
  uint8_t ks[64];
  uint64_t block = position >> 6;
  size_t skip = (size_t)(position & 63);
  size_t at = 0;
  if (skip > 0 && len > 0) {
    // the rest of a block entered part-way
    salsa_state(s, key, nonce, block++);
    salsa_block(ks, s);
    size_t n = 64 - skip < len ? 64 - skip : len;
    for (size_t i = 0; i < n; i++) out[i] = in[i] ^ ks[skip + i];
    at = n;
  }
#if defined(__x86_64__) && defined(__GNUC__)
  if (has_avx512()) at = xor_groups(key, nonce, &block, in, out, at, len, 16, salsa_block16);
  if (has_avx2()) at = xor_groups(key, nonce, &block, in, out, at, len, 8, salsa_block8);
#endif
  at = xor_groups(key, nonce, &block, in, out, at, len, 4, salsa_block4);
  while (at < len) {
    salsa_state(s, key, nonce, block++);
    salsa_block(ks, s);
    size_t n = len - at < 64 ? len - at : 64;
    for (size_t i = 0; i < n; i++) out[at + i] = in[at + i] ^ ks[i];
    at += n;
  }
}

static napi_value xsalsa20_xor_js (napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) { napi_throw_type_error(env, NULL, "xsalsa20Xor(subkey, nonce, position, input, output)"); return NULL; }
  uint8_t *key, *nonce, *in, *out;
  size_t keyLen, nonceLen, inLen, outLen;
  if (!get_bytes(env, argv[0], "subkey must be a Uint8Array", &key, &keyLen)) return NULL;
  if (!get_bytes(env, argv[1], "nonce must be a Uint8Array", &nonce, &nonceLen)) return NULL;
  if (keyLen != 32 || nonceLen != 8) { napi_throw_range_error(env, NULL, "subkey must be 32 bytes and nonce 8"); return NULL; }
  napi_valuetype t;
  double position;
  if (napi_typeof(env, argv[2], &t) != napi_ok || t != napi_number) { napi_throw_type_error(env, NULL, "position must be a number"); return NULL; }
  CHECK(napi_get_value_double(env, argv[2], &position));
  // an integer a double holds exactly (2^53 bytes of stream is more than any connection moves)
  if (!(position >= 0 && position <= 9007199254740991.0) || position != (double)(uint64_t)position) { napi_throw_range_error(env, NULL, "position must be a safe non-negative integer"); return NULL; }
  if (!get_bytes(env, argv[3], "input must be a Uint8Array", &in, &inLen)) return NULL;
  if (!get_bytes(env, argv[4], "output must be a Uint8Array", &out, &outLen)) return NULL;
  if (outLen < inLen) { napi_throw_range_error(env, NULL, "output is shorter than input"); return NULL; }
  xsalsa20_xor(key, nonce, (uint64_t)position, in, out, inLen);
  return NULL;
}

static napi_value hsalsa20_js (napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) { napi_throw_type_error(env, NULL, "hsalsa20(key, nonce16)"); return NULL; }
  uint8_t *key, *nonce;
  size_t keyLen, nonceLen;
  if (!get_bytes(env, argv[0], "key must be a Uint8Array", &key, &keyLen)) return NULL;
  if (!get_bytes(env, argv[1], "nonce must be a Uint8Array", &nonce, &nonceLen)) return NULL;
  if (keyLen != 32 || nonceLen != 16) { napi_throw_range_error(env, NULL, "key must be 32 bytes and nonce 16"); return NULL; }
  uint32_t s[16];
  // HSalsa20: the Salsa20 state with the 16-byte nonce in words 6..9, the rounds, no final
  // addition; the subkey is words 0, 5, 10, 15, 6, 7, 8, 9
  salsa_state(s, key, nonce, 0);
  s[8] = load32(nonce + 8);
  s[9] = load32(nonce + 12);
  uint32_t x0 = s[0], x1 = s[1], x2 = s[2], x3 = s[3], x4 = s[4], x5 = s[5], x6 = s[6], x7 = s[7];
  uint32_t x8 = s[8], x9 = s[9], x10 = s[10], x11 = s[11], x12 = s[12], x13 = s[13], x14 = s[14], x15 = s[15];
  for (int i = 0; i < 10; i++) DOUBLE_ROUND();
  (void)x1; (void)x2; (void)x3; (void)x4; (void)x11; (void)x12; (void)x13; (void)x14;
  napi_value result, ab;
  void *data;
  CHECK(napi_create_arraybuffer(env, 32, &data, &ab));
  uint32_t words[8] = { x0, x5, x10, x15, x6, x7, x8, x9 };
  for (int i = 0; i < 8; i++) store32((uint8_t *)data + 4 * i, words[i]);
  CHECK(napi_create_typedarray(env, napi_uint8_array, 32, ab, 0, &result));
  return result;
}

// ---- ChaCha20-Poly1305 (Noise's AEAD) on OpenSSL's EVP ----------------------------------------

// OpenSSL's EVP_CTRL_AEAD_SET_TAG and EVP_CTRL_AEAD_GET_TAG (evp.h); chacha20-poly1305's IV is 12 bytes, its tag 16
#define AEAD_SET_TAG 0x11
#define AEAD_GET_TAG 0x10
static void *(*evp_ctx_new)(void);
static void (*evp_ctx_free)(void *);
static const void *(*evp_chacha)(void);
static int (*evp_dec_init)(void *, const void *, void *, const unsigned char *, const unsigned char *);
static int (*evp_dec_update)(void *, unsigned char *, int *, const unsigned char *, int);
static int (*evp_dec_final)(void *, unsigned char *, int *);
static int (*evp_enc_init)(void *, const void *, void *, const unsigned char *, const unsigned char *);
static int (*evp_enc_update)(void *, unsigned char *, int *, const unsigned char *, int);
static int (*evp_enc_final)(void *, unsigned char *, int *);
static int (*evp_ctrl)(void *, int, int, void *);

#define MAX_AEAD_PIECES 64

// chachaOpen's and chachaSeal's five arguments (`usage` names them): key, nonce and ad, the pieces
// (each a Uint8Array below INT_MAX bytes) and, in argv[4], the last one, which each checks itself
static int aead_args (napi_env env, napi_callback_info info, const char *usage, napi_value *argv, uint8_t **key, uint8_t **nonce, uint8_t **ad, size_t *adLen, uint8_t **piece, size_t *pieceLen, uint32_t *n) {
  size_t argc = 5;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 5) { napi_throw_type_error(env, NULL, usage); return 0; }
  size_t keyLen, nonceLen;
  if (!get_bytes(env, argv[0], "key must be a Uint8Array", key, &keyLen)) return 0;
  if (!get_bytes(env, argv[1], "nonce must be a Uint8Array", nonce, &nonceLen)) return 0;
  if (keyLen != 32 || nonceLen != 12) { napi_throw_range_error(env, NULL, "key must be 32 bytes and nonce 12"); return 0; }
  if (!get_bytes(env, argv[2], "ad must be a Uint8Array", ad, adLen)) return 0;
  if (*adLen > INT_MAX) { napi_throw_range_error(env, NULL, "ad is too long"); return 0; }
  bool is;
  if (napi_is_array(env, argv[3], &is) != napi_ok || !is) { napi_throw_type_error(env, NULL, "pieces must be an array of Uint8Array"); return 0; }
  if (napi_get_array_length(env, argv[3], n) != napi_ok || *n > MAX_AEAD_PIECES) { napi_throw_range_error(env, NULL, "pieces: at most 64"); return 0; }
  for (uint32_t i = 0; i < *n; i++) {
    napi_value v;
    if (napi_get_element(env, argv[3], i, &v) != napi_ok) { napi_throw_type_error(env, NULL, "pieces must be an array of Uint8Array"); return 0; }
    if (!get_bytes(env, v, "pieces must be an array of Uint8Array", &piece[i], &pieceLen[i])) return 0;
    if (pieceLen[i] > INT_MAX) { napi_throw_range_error(env, NULL, "a piece is too long"); return 0; }
  }
  return 1;
}

// A cipher context keyed for chacha20-poly1305 with `ad` taken in (seal: encrypting, else
// decrypting); NULL with an exception pending when OpenSSL fails
static void *aead_begin (napi_env env, int seal, const uint8_t *key, const uint8_t *nonce, const uint8_t *ad, size_t adLen) {
  void *ctx = evp_ctx_new();
  if (ctx == NULL) { napi_throw_error(env, NULL, "chacha20-poly1305: out of memory"); return NULL; }
  int outl;
  int ok = (seal ? evp_enc_init : evp_dec_init)(ctx, evp_chacha(), NULL, key, nonce) == 1;
  if (ok && adLen > 0) ok = (seal ? evp_enc_update : evp_dec_update)(ctx, NULL, &outl, ad, (int)adLen) == 1;
  if (!ok) { evp_ctx_free(ctx); napi_throw_error(env, NULL, "chacha20-poly1305: OpenSSL could not key the cipher"); return NULL; }
  return ctx;
}

static napi_value chacha_open (napi_env env, napi_callback_info info) {
  napi_value argv[5];
  uint8_t *key, *nonce, *ad, *tag, *piece[MAX_AEAD_PIECES];
  size_t adLen, tagLen, pieceLen[MAX_AEAD_PIECES];
  uint32_t n;
  if (!aead_args(env, info, "chachaOpen(key, nonce, ad, pieces, tag) takes 5 arguments", argv, &key, &nonce, &ad, &adLen, piece, pieceLen, &n)) return NULL;
  if (!get_bytes(env, argv[4], "tag must be a Uint8Array", &tag, &tagLen)) return NULL;
  if (tagLen != 16) { napi_throw_range_error(env, NULL, "tag must be 16 bytes"); return NULL; }
  void *ctx = aead_begin(env, 0, key, nonce, ad, adLen);
  if (ctx == NULL) return NULL;
  int ok = 1;
  int outl;
  // in place: OpenSSL's stream ciphers take out == in
  for (uint32_t i = 0; ok && i < n; i++) if (pieceLen[i] > 0) ok = evp_dec_update(ctx, piece[i], &outl, piece[i], (int)pieceLen[i]) == 1 && outl == (int)pieceLen[i];
  uint8_t expected[16];
  memcpy(expected, tag, 16);
  if (ok) ok = evp_ctrl(ctx, AEAD_SET_TAG, 16, expected) == 1;
  uint8_t last[16];
  if (ok) ok = evp_dec_final(ctx, last, &outl) == 1;
  evp_ctx_free(ctx);
  napi_value result;
  CHECK(napi_get_boolean(env, ok != 0, &result));
  return result;
}

static napi_value chacha_seal (napi_env env, napi_callback_info info) {
  napi_value argv[5];
  uint8_t *key, *nonce, *ad, *out, *piece[MAX_AEAD_PIECES];
  size_t adLen, outLen, pieceLen[MAX_AEAD_PIECES];
  uint32_t n;
  if (!aead_args(env, info, "chachaSeal(key, nonce, ad, pieces, out) takes 5 arguments", argv, &key, &nonce, &ad, &adLen, piece, pieceLen, &n)) return NULL;
  if (!get_bytes(env, argv[4], "out must be a Uint8Array", &out, &outLen)) return NULL;
  size_t total = 0;
  for (uint32_t i = 0; i < n; i++) total += pieceLen[i];
  if (total > INT_MAX || outLen < total + 16) { napi_throw_range_error(env, NULL, "out must hold the pieces and a 16-byte tag"); return NULL; }
  // out must not overlap a piece unless it is that piece in place (checked: a partial overlap would garble the stream)
  for (uint32_t i = 0, at = 0; i < n; at += pieceLen[i], i++) {
    uint8_t *o = out + at;
    if (o != piece[i] && o < piece[i] + pieceLen[i] && piece[i] < o + pieceLen[i]) { napi_throw_range_error(env, NULL, "out overlaps a piece"); return NULL; }
  }
  void *ctx = aead_begin(env, 1, key, nonce, ad, adLen);
  if (ctx == NULL) return NULL;
  int ok = 1;
  int outl;
  size_t at = 0;
  for (uint32_t i = 0; ok && i < n; i++) {
    if (pieceLen[i] == 0) continue;
    ok = evp_enc_update(ctx, out + at, &outl, piece[i], (int)pieceLen[i]) == 1 && outl == (int)pieceLen[i];
    at += pieceLen[i];
  }
  uint8_t last[16];
  if (ok) ok = evp_enc_final(ctx, last, &outl) == 1 && outl == 0;
  if (ok) ok = evp_ctrl(ctx, AEAD_GET_TAG, 16, out + total) == 1;
  evp_ctx_free(ctx);
  if (!ok) { napi_throw_error(env, NULL, "chachaSeal: OpenSSL's chacha20-poly1305 failed"); return NULL; }
  return NULL;
}

static napi_value init (napi_env env, napi_value exports) {
  tune_malloc();
  napi_property_descriptor props[] = {
    { "writeBlock", NULL, write_block, NULL, NULL, NULL, napi_enumerable, NULL },
    { "writeBlocks", NULL, write_blocks, NULL, NULL, NULL, napi_enumerable, NULL },
    { "readSlice", NULL, read_slice, NULL, NULL, NULL, napi_enumerable, NULL },
    { "readSliceNow", NULL, read_slice_now, NULL, NULL, NULL, napi_enumerable, NULL },
    { "initTables", NULL, init_tables, NULL, NULL, NULL, napi_enumerable, NULL },
    { "encodeData", NULL, encode_data, NULL, NULL, NULL, napi_enumerable, NULL },
    { "encodeLoop", NULL, encode_loop, NULL, NULL, NULL, napi_enumerable, NULL },
    { "xsalsa20Xor", NULL, xsalsa20_xor_js, NULL, NULL, NULL, napi_enumerable, NULL },
    { "hsalsa20", NULL, hsalsa20_js, NULL, NULL, NULL, napi_enumerable, NULL },
    { "sha256Many", NULL, sha256_many, NULL, NULL, NULL, napi_enumerable, NULL },
    { "sha256Leaves", NULL, sha256_leaves, NULL, NULL, NULL, napi_enumerable, NULL },
    { "readBlock", NULL, read_block, NULL, NULL, NULL, napi_enumerable, NULL },
    { "populate", NULL, populate_js, NULL, NULL, NULL, napi_enumerable, NULL }
  };
  napi_property_descriptor aead[] = {
    { "chachaOpen", NULL, chacha_open, NULL, NULL, NULL, napi_enumerable, NULL },
    { "chachaSeal", NULL, chacha_seal, NULL, NULL, NULL, napi_enumerable, NULL }
  };
  sha_init = (int (*)(sha_ctx *))dlsym(RTLD_DEFAULT, "SHA256_Init");
  sha_update = (int (*)(sha_ctx *, const void *, size_t))dlsym(RTLD_DEFAULT, "SHA256_Update");
  sha_final = (int (*)(unsigned char *, sha_ctx *))dlsym(RTLD_DEFAULT, "SHA256_Final");
  // sha256Many, sha256Leaves and readBlock last: left out when OpenSSL's functions are not there
  // (counted from the table: a count written out by hand dropped sha256Leaves once writeBlocks
  // was added)
  size_t all = sizeof props / sizeof props[0];
  size_t count = sha_init != NULL && sha_update != NULL && sha_final != NULL ? all : all - 3;
  CHECK(napi_define_properties(env, exports, count, props));
  // the AEAD pair: only when every EVP function it needs is exported (node exports them)
  evp_ctx_new = (void *(*)(void))dlsym(RTLD_DEFAULT, "EVP_CIPHER_CTX_new");
  evp_ctx_free = (void (*)(void *))dlsym(RTLD_DEFAULT, "EVP_CIPHER_CTX_free");
  evp_chacha = (const void *(*)(void))dlsym(RTLD_DEFAULT, "EVP_chacha20_poly1305");
  evp_dec_init = (int (*)(void *, const void *, void *, const unsigned char *, const unsigned char *))dlsym(RTLD_DEFAULT, "EVP_DecryptInit_ex");
  evp_dec_update = (int (*)(void *, unsigned char *, int *, const unsigned char *, int))dlsym(RTLD_DEFAULT, "EVP_DecryptUpdate");
  evp_dec_final = (int (*)(void *, unsigned char *, int *))dlsym(RTLD_DEFAULT, "EVP_DecryptFinal_ex");
  evp_enc_init = (int (*)(void *, const void *, void *, const unsigned char *, const unsigned char *))dlsym(RTLD_DEFAULT, "EVP_EncryptInit_ex");
  evp_enc_update = (int (*)(void *, unsigned char *, int *, const unsigned char *, int))dlsym(RTLD_DEFAULT, "EVP_EncryptUpdate");
  evp_enc_final = (int (*)(void *, unsigned char *, int *))dlsym(RTLD_DEFAULT, "EVP_EncryptFinal_ex");
  evp_ctrl = (int (*)(void *, int, int, void *))dlsym(RTLD_DEFAULT, "EVP_CIPHER_CTX_ctrl");
  if (evp_ctx_new != NULL && evp_ctx_free != NULL && evp_chacha != NULL && evp_dec_init != NULL && evp_dec_update != NULL && evp_dec_final != NULL &&
      evp_enc_init != NULL && evp_enc_update != NULL && evp_enc_final != NULL && evp_ctrl != NULL) {
    CHECK(napi_define_properties(env, exports, sizeof aead / sizeof aead[0], aead));
  }
  return exports;
}

NAPI_MODULE_INIT () {
  return init(env, exports);
}
