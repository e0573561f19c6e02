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
// Every argument is checked (counts, types, buffer sizes >= len) and a bad one throws a
// RangeError or TypeError; nothing is read or written out of bounds.
#include <stdint.h>
#include <stdlib.h>
#include <isa-l/erasure_code.h>
#define NAPI_VERSION 8
#include <node_api.h>

// k + m is at most 255 in GF(2^8) Vandermonde codes.
#define MAX_VECTORS 255

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, "erasure addon: N-API call failed: " #call); return NULL; } } while (0)

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

static napi_value init (napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "initTables", NULL, init_tables, NULL, NULL, NULL, napi_enumerable, NULL },
    { "encodeData", NULL, encode_data, NULL, NULL, NULL, napi_enumerable, NULL },
    { "encodeLoop", NULL, encode_loop, NULL, NULL, NULL, napi_enumerable, NULL }
  };
  CHECK(napi_define_properties(env, exports, 3, props));
  return exports;
}

NAPI_MODULE_INIT () {
  return init(env, exports);
}
