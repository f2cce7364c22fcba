# The two commands that do everything on a fresh machine:
#   make demo   set up, then transcribe the bundled sample into ./demo-out
#   make test   set up (with test tools), then run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
WT := $(VENV)/bin/wt

.PHONY: demo test setup setup-dev lint bench image-test

setup:
	WT_VENV=$(VENV) scripts/install.sh

setup-dev:
	WT_VENV=$(VENV) scripts/install.sh --dev

demo: setup
	$(WT) transcribe samples/arctic_a0003.wav --output-dir demo-out --verbose
	@echo; echo "--- demo-out/arctic_a0003.txt"; cat demo-out/arctic_a0003.txt

test: setup-dev
	$(PY) -m ruff check whisper_cli spool tests bench
	$(PY) -m pytest -ra

bench: setup
	$(PY) bench/run_all.py

# The Docker image and docker-compose.yml end to end (needs a Docker engine and compose).
# Without a registry: WT_IMAGE_BASE=local/debian:bookworm WT_TORCH_INDEX=pip make image-test
image-test: setup-dev
	$(PY) -m pytest -ra -s tests/image/image_checks.py
