# Two commands for a newcomer: `make demo` and `make test`. Both create .venv first.
# `make test-fast` skips the tests marked slow (Ray sweeps, subprocess runs, benchmarks).
# The suite runs on up to 4 pytest-xdist workers, a test file per worker at a time (its
# module fixtures, such as a finished sweep, are built once); `make test PYTEST_WORKERS=0`
# runs it in one process.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadfile

.PHONY: demo test test-fast bench-speed bench-accuracy device-wheels clean

$(STAMP): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snnctl train parameters/mnist.yaml

test: $(STAMP)
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

bench-speed: $(STAMP)
	$(BIN)/python bench/speed.py

bench-accuracy: $(STAMP)
	$(BIN)/python bench/accuracy.py

# For bench/device.sh on the device machine (Python 3.12, x86-64): what its image lacks.
device-wheels: $(STAMP)
	$(BIN)/pip download --disable-pip-version-check -q --no-deps --only-binary=:all: --python-version 3.12 \
		--platform manylinux_2_28_x86_64 -d .device-wheels -r bench/device-requirements.txt

clean:
	rm -rf $(VENV) .pytest_cache
