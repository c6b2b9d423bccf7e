#!/usr/bin/env bash
# Builds llama.cpp's own tools (TARGET...: llama-batched-bench, llama-server) into
# build/llama-tools from the pinned source tree the release build uses, with the same ggml
# options, for the benchmarks that compare against them. One configuration for every
# target, so the inference and serve benchmarks never reconfigure each other. No network:
# the server's bundled dependencies come from the llama.cpp tree, its web UI is left out.
set -euo pipefail
cd "$(dirname "$0")/.."
llama_src=$(sed -n 's/^FLOWMESH_LLAMA_SOURCE_DIR:PATH=//p' build/release/CMakeCache.txt)
llamafile=$(sed -n 's/^FLOWMESH_LLAMAFILE:BOOL=//p' build/release/CMakeCache.txt)
# Configured every time (quick once built) so its ggml options follow the main build.
cmake -S "$llama_src" -B build/llama-tools -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_BLAS=OFF -DGGML_LLAMAFILE=${llamafile:-OFF} -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF >&2
cmake --build build/llama-tools --target "$@" -j 2 >&2
