#!/usr/bin/env bash
# Builds node/native/build/erasure.node, the ISA-L Reed–Solomon addon node/erasure.ts loads when
# present (it falls back to TypeScript otherwise). Idempotent: rebuilds only when erasure.c (or
# this script) is newer than the addon. Plain gcc, no node-gyp. Without libisal-dev it warns
# and exits 0, since the TypeScript codec serves alone.
set -euo pipefail
here="$(dirname "$(readlink -f "$0")")"
root="$(readlink -f "$here/../..")"
src="$here/erasure.c"
out="$here/build/erasure.node"
headers="$root/node_modules/node-api-headers/include"

if [ -f "$out" ] && [ "$out" -nt "$src" ] && [ "$out" -nt "$0" ]; then
  exit 0
fi
if [ ! -f /usr/include/isa-l/erasure_code.h ]; then
  echo "node/native/build.sh: warning: libisal-dev is not installed (apt-get install libisal-dev); the erasure codec runs in TypeScript" >&2
  exit 0
fi
if [ ! -f "$headers/node_api.h" ]; then
  echo "node/native/build.sh: warning: node-api-headers is not installed (npm ci); the erasure codec runs in TypeScript" >&2
  exit 0
fi
mkdir -p "$here/build"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
gcc -O2 -shared -fPIC -Wall -Wextra -Wno-unused-parameter -I"$headers" "$src" -o "$tmp" -lisal
mv -f "$tmp" "$out"
echo "node/native/build.sh: built $out"
