# The two commands that do everything on a fresh machine:
#   make demo   set up, then transcribe the bundled sample into ./demo-out
#   make test   set up (with test tools), build the docs (mkdocs --strict), then run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
WT := $(VENV)/bin/wt

.PHONY: demo test test-under-load setup setup-dev lint bench image-test

setup:
	WT_VENV=$(VENV) scripts/install.sh

setup-dev:
	WT_VENV=$(VENV) scripts/install.sh --dev

demo: setup
	$(WT) transcribe samples/arctic_a0003.wav --output-dir demo-out --verbose
	@echo; echo "--- demo-out/arctic_a0003.txt"; cat demo-out/arctic_a0003.txt

test: setup-dev
	site=$$(mktemp -d) && NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir $$site; rc=$$?; rm -rf $$site; exit $$rc
	$(PY) -m ruff check whisper_cli spool tests bench
	$(PY) -m pytest -ra

# The whole suite RUNS times in a row (default 3) while stress-ng keeps every core busy: the
# suite must not depend on a quiet machine.
RUNS ?= 3
test-under-load: setup-dev
	@command -v stress-ng >/dev/null || { echo "test-under-load needs stress-ng (apt-get install stress-ng)"; exit 1; }
	stress-ng --cpu $$(nproc) --quiet & load=$$!; trap "kill $$load" EXIT; \
	for run in $$(seq $(RUNS)); do echo "== run $$run of $(RUNS), cores busy"; $(PY) -m pytest -ra -q || exit 1; done

bench: setup
	$(PY) bench/run_all.py

# The Docker image and docker-compose.yml end to end (needs a Docker engine and compose).
# Without a registry: WT_IMAGE_BASE=local/debian:bookworm WT_TORCH_INDEX=pip make image-test
image-test: setup-dev
	$(PY) -m pytest -ra -s tests/image/image_checks.py
