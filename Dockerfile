# syntax=docker/dockerfile:1
# wt daemon image: CUDA-capable, runs on CPU-only hosts too (device auto-detection).
#   docker build -t wt .
#   docker run -v wt-spool:/spool -v wt-models:/models wt            # CPU
#   docker run --gpus all -v wt-spool:/spool -v wt-models:/models wt # GPU
ARG BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

FROM ${BASE} AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scripts ./scripts
COPY whisper_cli ./whisper_cli
COPY spool ./spool
# The same install script CI runs (scripts/install.sh), into /opt/wt. torch is pinned there;
# on this CUDA base the PyPI build of that version brings its CUDA libraries.
ARG INSTALL_ARGS=""
RUN WT_VENV=/opt/wt WT_EDITABLE=0 PYTHON=python3 scripts/install.sh ${INSTALL_ARGS}

FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ffmpeg ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --create-home --shell /usr/sbin/nologin wt \
 && mkdir -p /spool /models && chown wt:wt /spool /models
COPY --from=build /opt/wt /opt/wt
ENV PATH=/opt/wt/bin:$PATH \
    WT_SPOOL=/spool \
    WT_CACHE_DIR=/models \
    HF_HOME=/models/hf \
    PYTHONUNBUFFERED=1
USER wt
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
