#!/usr/bin/env bash
# The CUDA figures from a bare NVIDIA machine without internet, in one go (recorded in bench/results/cuda-*):
#   1. llama.cpp from the sources vendored in the llama-cpp-python sdist, built ONCE with CUDA and the flags
#      scripts/install_llama_cpp.py uses (this CPU's SIMD, no AMX, + CMAKE_ARGS): libllama for localchat's
#      engine (LLAMA_CPP_LIB_PATH) and llama-bench / llama-simple / llama-quantize, so both sides of every
#      comparison run the very same library;
#   2. random-weight 1B and 7B llama models with SmolLM2's tokenizer (bench/random_gguf.py), quantized to Q4_K_M;
#   3. `localchat doctor`, bench/first_tokens.py for each model, then bench/cuda_compare.py.
# With VERIFY_INSTALL=1 it first builds and installs the engine the documented way instead (README, "GPU
# builds": CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90" python3 scripts/install_llama_cpp.py),
# ~6 more minutes on 16 cores.
# ROUNDS=N (default 3) rounds per configuration; SIMPLE=0 leaves llama-simple out (a shorter lease); SIZES="1b"
# measures one model, PARTIAL="" no partial offload, SPEED_ONLY=1 leaves VRAM and auto out (the shortest lease),
# NO_SPEED=1 measures only VRAM and auto; FIRST_TOKENS=0 leaves out bench/first_tokens.py; CPU_SAMPLER=0 leaves
# out the decode with the sampler chain on the CPU; COMPARE=0 stops after the build and doctor. A second call on
# the same warm machine reuses what $WORK already holds (the build, the quantized models), so a lease of 10-minute
# calls can build in one and measure in the next. A fresh machine needs the build again (4-7.5 min of a lease):
# PACK=1 leaves the built bin/ (libraries and tools) in OUT_DIR as native.tar.xz.00, .01... (15 MiB parts, as
# the device tool brings files back), and PREBUILT=PREFIX (e.g. .device/native.tar.xz) unpacks such parts
# instead of building (it builds all the same where this machine's flags differ from the ones packed).
# Usage: bench/cuda_device.sh SDIST.tar.gz TOKENIZER.gguf WHEEL_DIR OUT_DIR   (run from the repository root;
# WHEEL_DIR: what the machine lacks, e.g. gguf, platformdirs, diskcache and a llama-cpp-python wheel for its
# Python code)
set -euo pipefail
sdist=$1 tokenizer=$2 wheels=$3 out=$4
work=${WORK:-/tmp/lc-cuda}
mkdir -p "$work" "$out"
export PATH=/usr/local/cuda/bin:$PATH LOCALCHAT_HOME=$work/home
export CMAKE_ARGS=${CMAKE_ARGS:-"-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCH:-90}"}
step() { echo "== $(date +%T) $*"; }

step "dependencies"
python3 -m pip install -q --no-index --no-deps "$wheels"/*.whl
step "random models (F16), in the background while building"
sizes=${SIZES:-1b 7b}
for size in $sizes; do
  [ -f "$work/$size-q4_k_m.gguf" ] && continue
  python3 bench/random_gguf.py --tokenizer "$tokenizer" --shape "$size" "$work/$size-f16.gguf" >"$work/gen-$size.log" 2>&1 &
done
bin=$work/native/bin
ls -d "$work"/llama_cpp_python-*/ >/dev/null 2>&1 || tar xzf "$sdist" -C "$work"
source_dir=$(ls -d "$work"/llama_cpp_python-*/)
if [ "${VERIFY_INSTALL:-0}" = 1 ]; then
  step "install the engine the documented way"
  LOCALCHAT_LLAMA_SOURCE=$source_dir python3 scripts/install_llama_cpp.py
fi
export LOCALCHAT_LLAMA_SOURCE=$source_dir  # localchat.build reads ggml's switches from these sources
flags="$(python3 -c "import sys; sys.path.insert(0, '.'); import localchat.build as m; print(m.cmake_args())")"
if [ -n "${PREBUILT:-}" ] && [ ! -x "$bin/llama-bench" ]; then
  step "unpack the build in $PREBUILT.*"
  mkdir -p "$work/native"
  cat "$PREBUILT".* | xz -d | tar -x -C "$work/native"
  # built for another CPU (its SIMD flags) or GPU: build here after all
  [ "$(cat "$bin/build-flags.txt" 2>/dev/null)" = "$flags" ] || { echo "built with other flags"; rm -rf "$bin"; }
fi
if [ ! -x "$bin/llama-bench" ] || [ -z "${PREBUILT:-}" ]; then
  step "build llama.cpp with: $flags"
  # shellcheck disable=SC2086
  cmake -S "$source_dir/vendor/llama.cpp" -B "$work/native" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=ON $flags >/dev/null
  targets=(llama llama-bench llama-quantize)
  [ "${SIMPLE:-1}" = 1 ] && targets+=(llama-simple)
  cmake --build "$work/native" --target "${targets[@]}" -j "$(nproc)" >"$work/build.log" 2>&1
  echo "$flags" >"$bin/build-flags.txt"
fi
if [ "${PACK:-0}" = 1 ]; then
  step "pack bin/ into $out/native.tar.xz.*"
  tar -C "$work/native" -cf - bin | xz -T0 -6 | split -b 15m -d - "$out/native.tar.xz."
  ls -la "$out"/native.tar.xz.*
fi
if [ "${VERIFY_INSTALL:-0}" != 1 ]; then
  export LLAMA_CPP_LIB_PATH=$bin
fi

step "quantize to Q4_K_M"
wait
for size in $sizes; do
  [ -f "$work/$size-q4_k_m.gguf" ] && continue
  cat "$work/gen-$size.log"
  "$bin/llama-quantize" "$work/$size-f16.gguf" "$work/$size-q4_k_m.gguf" Q4_K_M "$(nproc)" >"$work/quant-$size.log" 2>&1
  rm "$work/$size-f16.gguf"
done
ls -la "$work"/*.gguf

step "doctor"
python3 -m localchat doctor | tee "$out/doctor.txt" || true
[ "${COMPARE:-1}" = 0 ] && { step "built; COMPARE=0"; exit 0; }
if [ "${FIRST_TOKENS:-1}" = 1 ]; then
  # seconds a model, before the long comparison: what a reply's first tokens cost beside its steady ones
  for size in $sizes; do
    step "first tokens: $size"
    python3 bench/first_tokens.py --model "$work/$size-q4_k_m.gguf" --out "$out/first-tokens-$size.json" >/dev/null
  done
fi
step "compare"
simple=()
[ "${SIMPLE:-1}" = 1 ] && simple=(--llama-simple "$bin/llama-simple")
models=()
for size in $sizes; do models+=(--model "$work/$size-q4_k_m.gguf"); done
for partial in ${PARTIAL-1b:12}; do models+=(--partial "$work/${partial%%:*}-q4_k_m.gguf:${partial##*:}"); done
[ "${SPEED_ONLY:-0}" = 1 ] && models+=(--speed-only)
[ "${NO_SPEED:-0}" = 1 ] && models+=(--no-speed)
[ "${CPU_SAMPLER:-1}" = 0 ] && models+=(--no-cpu-sampler)
python3 bench/cuda_compare.py --llama-bench "$bin/llama-bench" "${simple[@]}" --rounds "${ROUNDS:-3}" "${models[@]}" \
  --out "$out/cuda.json"
step "done"
