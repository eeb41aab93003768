"""The one config object: validation, CLI flags and the YAML file agree."""
import argparse
import importlib.util
import os

import pytest

from lightglue_ros.config import Config, ConfigError, add_arguments, from_args


def test_defaults_validate_and_the_extractor_is_real_time_on_each_device():
    cfg = Config()
    cfg.validate()
    assert cfg.extractor == "auto" and cfg.cpu_threads == 0
    assert cfg.resolved().extractor == "xfeat"  # device cpu
    assert Config(device="cuda").resolved().extractor == "aliked"
    assert Config(device="cuda:1").resolved().extractor == "aliked"
    assert Config(extractor="aliked").resolved().extractor == "aliked"  # one parameter away
    assert Config(extractor="disk", device="cuda").resolved().extractor == "disk"


def test_the_keypoint_budget_is_real_time_on_each_device():
    assert Config().max_keypoints == 0  # auto
    assert Config().resolved().max_keypoints == 768
    assert Config(device="cuda").resolved().max_keypoints == 2048
    assert Config(max_keypoints=1024).resolved().max_keypoints == 1024
    assert "768 keypoints (auto)" in Config().model
    assert "1024 keypoints," in Config(max_keypoints=1024).model


def test_the_backend_is_the_fastest_one_that_can_run_the_configuration(monkeypatch):
    assert Config().backend == "auto" and Config().resolved().backend == "onnxruntime"
    assert Config(device="cuda:1").resolved().backend == "torch"
    assert Config(precision="fp16").resolved().backend == "torch"  # ONNX Runtime runs FP32
    assert Config(backend="torch").resolved().backend == "torch"  # one parameter away
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: None if name == "onnxruntime" else True)
    assert Config().resolved().backend == "torch"  # a ROS install without ONNX Runtime


def test_resolved_is_concrete_and_idempotent_and_the_model_string_shows_auto():
    cores = len(os.sched_getaffinity(0))
    cfg = Config().resolved()
    assert cfg.cpu_threads == max(1, cores // 2) and cfg.resolved() == cfg
    assert Config(cpu_threads=3).resolved().cpu_threads == 3
    assert Config().model.startswith("xfeat (auto) + LighterGlue on cpu, onnxruntime (auto)")
    assert Config(extractor="aliked").model.startswith("aliked + LightGlue on cpu")
    assert Config().replace(max_keypoints=512).resolved().max_keypoints == 512


@pytest.mark.parametrize("name,value", [("extractor", "sift"), ("max_keypoints", -1),
                                        ("depth_confidence", 1.5), ("width_confidence", 0.0),
                                        ("device", "gpu"), ("max_keypoints", 1.5),
                                        ("filter_threshold", "high")])
def test_invalid_values_are_rejected_with_the_parameter_name(name, value):
    with pytest.raises(ConfigError, match=name):
        Config().replace(**{name: value})


def test_unknown_keys_are_rejected():
    with pytest.raises(ConfigError, match="unknown"):
        Config.from_mapping({"max_keypoint": 10})


def test_cli_flags_come_from_the_config():
    parser = argparse.ArgumentParser()
    add_arguments(parser, ("features", "matcher"))
    args = parser.parse_args(["--extractor", "disk", "--max-keypoints", "512",
                              "--depth-confidence", "-1"])
    cfg = from_args(args)
    assert (cfg.extractor, cfg.max_keypoints, cfg.depth_confidence) == ("disk", 512, -1.0)
    assert cfg.width_confidence == Config().width_confidence  # untouched flags keep defaults
    with pytest.raises(SystemExit):
        parser.parse_args(["--extractor", "orb"])


def test_ints_are_accepted_for_floats_but_not_bools_for_ints():
    assert Config().replace(filter_threshold=0).filter_threshold == 0.0
    with pytest.raises(ConfigError):
        Config().replace(max_keypoints=True)


@pytest.mark.parametrize("name,value,words", [
    ("input_qos", "best_effort", "auto, sensor_data"),
    ("engine_keypoints", "1,1024", "MIN,OPT,MAX"), ("engine_keypoints", "8,4,16", "MIN <= OPT"),
    ("engine_image_size", "640", "WIDTHxHEIGHT"), ("engine_max_image_size", "0x480", "positive"),
    ("base_to_camera", "0 0 0 0 0 0", "7 numbers"), ("base_to_camera", "0 0 0 1 1 0 0", "unit")])
def test_ros_and_engine_values_are_checked(name, value, words):
    with pytest.raises(ConfigError, match=name) as info:
        Config().replace(**{name: value})
    assert words in str(info.value)


def test_frames_and_engine_sizes_must_agree():
    assert Config().input_qos == "auto" and Config().publish_tf is False  # the safe defaults
    Config().replace(base_frame="base_link", base_to_camera="0.2 0 0.5 -0.5 0.5 -0.5 0.5")
    with pytest.raises(ConfigError, match="base_frame"):
        Config().replace(base_frame="odom")
    with pytest.raises(ConfigError, match="engine_min_image_size <= engine_image_size"):
        Config().replace(engine_image_size="2000x480")
