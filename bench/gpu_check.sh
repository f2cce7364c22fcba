#!/usr/bin/env bash
# The GPU rows of every benchmark, in one go, sized to finish in under 8 minutes on one
# NVIDIA GPU: engines, long-form decoding, spool throughput (batching and packing) and
# diarization. Tables go to bench/results/gpu/ (and the terminal).
#
#   bench/gpu_check.sh [--dry-run] [--longform DIR] [--diarization DIR]
#
# Without an NVIDIA GPU (no working nvidia-smi, or CTranslate2 sees no CUDA device), or with
# --dry-run, it runs the same steps on CPU with tiny sizes: a check that the script and every
# benchmark it calls still work, not a measurement. --longform: audiobook chapters with their
# text (NAME.wav + NAME.txt; ../shared/longform on the project's machines); without it that
# step is skipped and says so. --diarization: recordings with RTTM references (default: the
# telephone call in tests/data/conversations).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=bench/results/gpu
dry=0
longform=""
diarization=tests/data/conversations
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --longform) longform="$2"; shift ;;
    --diarization) diarization="$2"; shift ;;
    *) echo "gpu_check.sh: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
  shift
done

cuda=$("$PY" -c "import ctranslate2; print(ctranslate2.get_cuda_device_count())" 2>/dev/null || echo 0)
if [ "$dry" = 0 ] && { ! nvidia-smi >/dev/null 2>&1 || [ "$cuda" = 0 ]; }; then
  echo "gpu_check.sh: no usable NVIDIA GPU (nvidia-smi or CTranslate2 sees none): dry run on CPU"
  dry=1
fi
[ "$dry" = 1 ] && OUT=bench/results/gpu-dry-run  # never mistaken for GPU tables
mkdir -p "$OUT"
export WT_BENCH_RESULTS="$OUT"  # the benchmarks' own copies too: the CPU tables stay as they are
failed=()

step() {  # step NAME SECONDS COMMAND...: run with a time limit, keep its table
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s): $*"
  local t0=$SECONDS
  if timeout "$limit" "$@" > "$OUT/$name.md"; then
    echo "   done in $((SECONDS - t0)) s -> $OUT/$name.md"
    cat "$OUT/$name.md"
  else
    echo "   FAILED or over its limit after $((SECONDS - t0)) s (output in $OUT/$name.md)"
    failed+=("$name")
  fi
}

{
  date -u +"%Y-%m-%d %H:%M UTC"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no GPU"
  echo "CTranslate2 CUDA devices: $cuda; dry run: $dry"
  "$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.cuda.is_available())" 2>/dev/null
} | tee "$OUT/device.txt"

if [ "$dry" = 1 ]; then
  step engines 300 "$PY" bench/engines.py --model tiny.en --runs 1 --seconds 20 --modes off
  if [ -n "$longform" ]; then
    step longform 600 "$PY" bench/longform.py "$longform" --model tiny.en --ways default,seq
  fi
  step spool_throughput 600 "$PY" bench/spool_throughput.py --clips 4 --model tiny.en --batch 2 --runs 1 --pack
  step diarize 300 "$PY" bench/diarize.py "$diarization" --systems wt --model tiny.en
else
  # Budget on one GPU (measured sizes; base everywhere, as the CPU tables):
  step engines 120 "$PY" bench/engines.py --model base --runs 2 --seconds 75 --modes off
  if [ -n "$longform" ]; then
    step longform 150 "$PY" bench/longform.py "$longform" --model base --compute float16 \
      --ways default,seq,batch16,bare-batched8
  else
    echo "== longform skipped: give --longform DIR (audiobook chapters with their text)"
  fi
  step spool_throughput 120 "$PY" bench/spool_throughput.py --clips 24 --model base --batch 16 --runs 1 --pack
  step diarize 60 "$PY" bench/diarize.py "$diarization" --systems wt --model base
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "gpu_check.sh: failed: ${failed[*]}"
  exit 1
fi
echo "gpu_check.sh: all steps done; tables in $OUT/"
