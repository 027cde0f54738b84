# The two commands users need: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# CPU machines take the pinned torch wheel; machines with an NVIDIA driver keep/get a CUDA torch.
CONSTRAINTS ?= $(if $(shell command -v nvidia-smi 2>/dev/null),,-c constraints-cpu.txt)
STAMP  := $(VENV)/.installed

.PHONY: install test lint demo clean

install: $(STAMP)

# Reinstall only when the package's requirements change, so a second `make test` is quick.
$(STAMP): setup.py setup.cfg pyproject.toml constraints-cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet $(CONSTRAINTS) -e '.[ros,train,codecs,deploy,dev]'
	touch $@

# The linters first (seconds), then the whole suite.
test: lint
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

# A generated recording played through the real node with LiDAR, then RGB, dropped and restored.
demo: install
	$(PY) scripts/demo.py

clean:
	rm -rf $(VENV) build install log *.egg-info
