#!/usr/bin/env bash
# Builds the darkfs FUSE edge (fuse/binding.c, libfuse 3 + N-API) into fuse/build/fuse.node.
# Idempotent: rebuilds only when the source, this script or the compiler flags changed.
# Needs gcc, pkg-config and libfuse3-dev; N-API headers come from node_modules/node-api-headers.
set -euo pipefail
here="$(dirname "$(readlink -f "$0")")"
root="$(dirname "$here")"
out="$here/build/fuse.node"
napi="$root/node_modules/node-api-headers/include"
[ -d "$napi" ] || { echo "fuse/build.sh: $napi missing (run npm ci)" >&2; exit 1; }
cflags="$(pkg-config --cflags fuse3) -I$napi -DNODE_GYP_MODULE_NAME=fuse -DNAPI_VERSION=8 -O2 -Wall -Wextra -Wno-unused-parameter -shared -fPIC -fvisibility=hidden"
libs="$(pkg-config --libs fuse3)"
stamp="$here/build/.stamp"
want="$(cat "$here/binding.c" "$0" | sha256sum | cut -d' ' -f1) $cflags $libs"
if [ -f "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
mkdir -p "$here/build"
# shellcheck disable=SC2086
gcc $cflags -o "$out.tmp" "$here/binding.c" $libs
mv "$out.tmp" "$out"
printf '%s' "$want" > "$stamp"
echo "fuse/build.sh: built $out"
