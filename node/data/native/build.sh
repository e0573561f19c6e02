#!/usr/bin/env bash
# Builds node/data/native/build/erasure.node, the ISA-L Reed–Solomon addon node/data/erasure.ts loads when
# present (it falls back to TypeScript otherwise). Idempotent: rebuilds only when erasure.c (or
# this script) is newer than the addon. Plain gcc, no node-gyp. When gcc, libisal-dev or
# node-api-headers is missing, or the compile fails, it warns and exits 0: the TypeScript codec
# then serves alone (node/data/erasure.ts `codec` says which one is in use).
set -euo pipefail
here="$(dirname "$(readlink -f "$0")")"
root="$(readlink -f "$here/../../..")"
src="$here/erasure.c"
out="$here/build/erasure.node"
headers="$root/node_modules/node-api-headers/include"

warn () {
  echo "node/data/native/build.sh: warning: $*; the erasure codec runs in TypeScript" >&2
  exit 0
}

if [ -f "$out" ] && [ "$out" -nt "$src" ] && [ "$out" -nt "${BASH_SOURCE[0]}" ]; then
  exit 0
fi
command -v gcc >/dev/null || warn "gcc is not installed (apt-get install gcc)"
echo '#include <isa-l/erasure_code.h>' | gcc -E -x c - >/dev/null 2>&1 ||
  warn "libisal-dev is not installed (apt-get install libisal-dev)"
[ -f "$headers/node_api.h" ] || warn "node-api-headers is not installed (npm ci)"

mkdir -p "$here/build"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
gcc -O2 -shared -fPIC -Wall -Wextra -Wno-unused-parameter -I"$headers" "$src" -o "$tmp" -lisal ||
  warn "compiling $src failed"
mv -f "$tmp" "$out"
echo "node/data/native/build.sh: built $out"
