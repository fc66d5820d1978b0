# `make demo` and `make test` each create/refresh .venv and install the root and every distribution under
# plugins/ (editable) before running.
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
DISTS  := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
STAMP  := $(VENV)/.installed
# torch, pinned to 2.13.0. On Linux, torch from PyPI *is* the CUDA build (plus ~18 nvidia-* packages, several GB);
# PyTorch's CPU index serves the CPU-only wheel. By default pip resolves torch through its own configuration: on a
# machine whose pip serves a local CPU wheel (ours and CI: find-links) that is the CPU build, elsewhere PyPI's CUDA
# build. The install prints which build it got. make probes no other index (CI reaches only package registries).
# The CPU build on any machine:   make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
# The CUDA build (pick the index for your driver from PyTorch's install selector):
#   make setup TORCH=torch==2.13.0+cu128 TORCH_INDEX=https://download.pytorch.org/whl/cu128
# A different TORCH or TORCH_INDEX than the one .venv was set up with reinstalls (.venv/.torch-spec).
TORCH  ?= torch==2.13.0
CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
# what .venv was set up with: TORCH, and TORCH_INDEX when given on the command line or in the environment
SPEC   := $(VENV)/.torch-spec
SPEC_TEXT = $(TORCH) $(if $(filter file undefined,$(origin TORCH_INDEX)),,$(TORCH_INDEX))

.PHONY: setup browser demo test test-fast lint bench clean FORCE

$(SPEC): FORCE
	@mkdir -p $(VENV)
	@echo '$(SPEC_TEXT)' | cmp -s - $@ || echo '$(SPEC_TEXT)' > $@

$(STAMP): pyproject.toml $(addsuffix pyproject.toml,$(DISTS)) Makefile $(SPEC)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH) $(if $(strip $(TORCH_INDEX)),--index-url $(TORCH_INDEX))
	@$(PY) -c "import torch; c = torch.version.cuda; print('torch', torch.__version__, \
	  f'(CUDA {c} build; the CPU build: make clean; make setup TORCH_INDEX=$(CPU_INDEX))' if c else '(CPU build)')"
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
	@echo "next: open eacps-demo/report.html in a browser (or: $(VENV)/bin/eacps serve eacps-demo, then \
	http://127.0.0.1:8000); compare strategies at equal cost: $(VENV)/bin/eacps compare examples/digits-compare.toml \
	--strategies tree-search,eacps,best-of-n --budgets 20,64 --tune-tasks 10"

lint: setup
	$(VENV)/bin/ruff check src tests plugins benchmarks

# the full suite (every test, the slow ones included): what CI runs
test: setup browser lint
	$(PY) -m pytest

# every test not marked slow (@pytest.mark.slow: real processes, model downloads' stand-ins, kill/resume loops)
test-fast: setup lint
	$(PY) -m pytest -m "not slow"

bench: setup
	$(PY) benchmarks/engine_overhead.py

clean:
	rm -rf $(VENV) eacps-demo
