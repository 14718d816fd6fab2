# Two commands for users: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# torch must stay at 2.13.0: that CPU wheel is on local disk, any other version pulls a multi-GB CUDA build.
TORCH := torch==2.13.0
DEMO_OUT ?= demo-report
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck bench lock clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH) -c requirements.lock
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev,cubist,cnn,tune,onnx,export,maps,explain,distributed,library]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/specsoil cv --jobs -1 --out $(DEMO_OUT) --overwrite

test: $(STAMP)
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/bench_read.py --update-docs
	$(PY) bench/bench_pls.py
	$(PY) bench/bench_cv.py

# Regenerate the pinned versions from the current environment.
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^specsoil' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
