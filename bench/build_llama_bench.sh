#!/usr/bin/env bash
# Build llama.cpp's own llama-bench from the sources vendored in the llama-cpp-python sdist that localchat
# uses, with the same CMAKE_ARGS as scripts/install_llama_cpp.py, so the comparison is like for like.
# Usage: bench/build_llama_bench.sh [OUT_DIR]   (prints the path of llama-bench)
set -euo pipefail
version=$(python3 -c "import sys; sys.path.insert(0, '.'); import localchat.build as m; print(m.VERSION)")
args=${CMAKE_ARGS:-$(python3 -c "import sys; sys.path.insert(0, '.'); import localchat.build as m; print(m.cmake_args())")}
out=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/localchat-build/llama-bench-$version}
if [ ! -x "$out/build/bin/llama-bench" ]; then
  mkdir -p "$out"
  (cd "$out" && python3 -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$version" \
    && tar xzf "llama_cpp_python-$version.tar.gz")
  src="$out/llama_cpp_python-$version/vendor/llama.cpp"
  # shellcheck disable=SC2086
  cmake -S "$src" -B "$out/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF $args >&2
  cmake --build "$out/build" --target llama-bench -j "$(nproc)" >&2
fi
echo "$out/build/bin/llama-bench"
