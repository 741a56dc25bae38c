#!/usr/bin/env bash
# Build llama.cpp's own llama-server (for the tests of a server that tokenizes chats exactly) from the sources
# vendored in the llama-cpp-python sdist localchat uses, with the same CMAKE_ARGS as scripts/install_llama_cpp.py.
# Cached: a few minutes once per machine and version. Usage: scripts/build_llama_server.sh PYTHON [OUT_DIR]
# (prints the path of llama-server)
set -euo pipefail
python=${1:-python3}
version=$("$python" -c "import localchat.build as m; print(m.VERSION)")
args=${CMAKE_ARGS:-$("$python" -c "import localchat.build as m; print(m.cmake_args())")}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/localchat-build
out=${2:-$cache/llama-server-$version}
if [ ! -x "$out/build/bin/llama-server" ]; then
  mkdir -p "$out"
  sdist=$cache/sdist/llama_cpp_python-$version.tar.gz  # where scripts/install_llama_cpp.py keeps it
  if [ ! -f "$sdist" ]; then
    "$python" -m pip download --quiet --no-deps --no-binary :all: -d "$out" "llama-cpp-python==$version"
    sdist=$out/llama_cpp_python-$version.tar.gz
  fi
  tar xzf "$sdist" -C "$out"
  src="$out/llama_cpp_python-$version/vendor/llama.cpp"
  # shellcheck disable=SC2086
  cmake -S "$src" -B "$out/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON $args >&2
  cmake --build "$out/build" --target llama-server -j "$(nproc)" >&2
  rm -rf "$out/llama_cpp_python-$version"
fi
echo "$out/build/bin/llama-server"
