#!/usr/bin/env bash
# Build whisper.cpp's CLI from a checkout, for the benchmarks' whisper.cpp rows:
#   git clone https://github.com/ggml-org/whisper.cpp SRC && bench/build_whisper_cpp.sh SRC
# GGML_NATIVE: the build uses every instruction set of this CPU (AVX2, AVX-512 where present).
set -euo pipefail
src="${1:?usage: bench/build_whisper_cpp.sh WHISPER_CPP_SRC}"
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DWHISPER_BUILD_TESTS=OFF >/dev/null
cmake --build "$src/build" -j"$(nproc)" --target whisper-cli >/dev/null
echo "built $src/build/bin/whisper-cli"
