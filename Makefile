# `make demo` and `make test` each create/refresh .venv and install the root and every distribution under
# plugins/ and strategies/ (editable) before running.
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
DISTS  := $(sort $(dir $(wildcard plugins/*/pyproject.toml strategies/*/pyproject.toml)))
STAMP  := $(VENV)/.installed
# torch is pinned to the CPU build (an open range would pull a multi-GB CUDA build). On a GPU machine pass the
# CUDA build: make setup TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128'
TORCH  ?= torch==2.13.0

.PHONY: setup browser demo test lint bench clean

$(STAMP): pyproject.toml $(addsuffix pyproject.toml,$(DISTS)) Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e ".[dev]" $(addprefix -e ./,$(DISTS))
	touch $(STAMP)

setup: $(STAMP)

# headless Chromium (Debian's package) for tests/test_report_browser.py; nothing to do when present
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

demo: setup
	$(VENV)/bin/eacps demo

lint: setup
	$(VENV)/bin/ruff check src tests plugins strategies benchmarks

test: setup browser lint
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/engine_overhead.py

clean:
	rm -rf $(VENV) eacps-demo
