#!/usr/bin/env bash
# bench/tui_stream.py on a bare many-core machine without internet (the TUI's frames against the headless engine
# where llama.cpp's threads leave cores free). llama.cpp is built CPU-only from the sources vendored in the
# llama-cpp-python sdist with scripts/install_llama_cpp.py's flags; the model is SmolLM2-135M's shape with random
# weights and SmolLM2's tokenizer (bench/random_gguf.py), quantized to Q4_1 like the test model.
# Usage: bench/tui_device.sh SDIST.tar.gz TOKENIZER.gguf WHEEL_DIR OUT_DIR   (from the repository root; WHEEL_DIR:
# textual and the rest of what the machine lacks). Steps already done in WORK are skipped.)
set -euo pipefail
sdist=$1 tokenizer=$2 wheels=$3 out=$4
work=${WORK:-/tmp/lc-tui}
mkdir -p "$work" "$out"
export LOCALCHAT_HOME=$work/home PYTHONPATH=$work/site PYTHONUNBUFFERED=1
step() { echo "== $(date +%T) $*"; }

step "dependencies"
python3 -m pip install -q --no-index --no-deps --no-compile --target "$work/site" "$wheels"/*.whl
[ -d "$work/native" ] || tar xzf "$sdist" -C "$work"
source_dir=$(ls -d "$work"/llama_cpp_python-*/)
flags=$(python3 -c "import sys; sys.path.insert(0, '.'); import localchat.build as m; print(m.cmake_args())")
step "build llama.cpp (CPU) with: $flags"
# shellcheck disable=SC2086
[ -e "$work/native/bin/libllama.so" ] || cmake -S "$source_dir/vendor/llama.cpp" -B "$work/native" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=ON $flags >/dev/null
[ -e "$work/native/bin/libllama.so" ] || cmake --build "$work/native" --target llama llama-quantize -j "$(nproc)" >"$work/build.log" 2>&1
export LLAMA_CPP_LIB_PATH=$work/native/bin
step "model"
[ -e "$work/m-q4_1.gguf" ] || python3 bench/random_gguf.py --tokenizer "$tokenizer" --shape 135m "$work/m-f16.gguf"
[ -e "$work/m-q4_1.gguf" ] || "$work/native/bin/llama-quantize" "$work/m-f16.gguf" "$work/m-q4_1.gguf" Q4_1 >"$work/quant.log" 2>&1
python3 -c "import os; from localchat import hardware; print('cpus', os.cpu_count(), 'physical', hardware.physical_cores())"
step "bench"
python3 bench/tui_stream.py --model "$work/m-q4_1.gguf" --rounds "${ROUNDS:-3}" --tokens "${TOKENS:-2000}" ${THREADS:+--threads $THREADS} --out "$out/tui.json"
step "done"
