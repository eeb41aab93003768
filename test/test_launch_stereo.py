"""tracker.launch.py's stereo layouts: the node's four image inputs remapped onto the topics of
the usual drivers, and use_stereo set, evaluated by the launch system itself (no colcon build)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lightglue_ros.ros.launch_args import STEREO_LAYOUTS, stereo_topics

pytest.importorskip("launch_ros", reason="launch_ros is not installed (make venv adds it from "
                    "../shared/ros2cli)")

LAUNCH_FILE = Path(__file__).resolve().parents[1] / "launch" / "tracker.launch.py"


def launched(**arguments: str):
    """(remappings, node parameters given in the launch file) of tracker.launch.py."""
    from launch import LaunchContext

    spec = importlib.util.spec_from_file_location("tracker_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = LaunchContext()
    for name, default, _ in module.ARGUMENTS:
        context.launch_configurations[name] = default if isinstance(default, str) else ""
    for name in module.PARAMETERS:
        context.launch_configurations[name] = ""
    context.launch_configurations.update(arguments)
    node = module.tracker(context)[0]
    node._perform_substitutions(context)
    overrides = {}
    for entry in node._Node__parameters[1:]:
        overrides.update({"".join(s.perform(context) for s in k): v for k, v in entry.items()})
    return dict(node.expanded_remapping_rules), overrides


def test_realsense_infrared_pair():
    remaps, params = launched(stereo="realsense")
    assert remaps["image"] == "infra1/image_rect_raw"
    assert remaps["camera_info"] == "infra1/camera_info"
    assert remaps["right/image"] == "infra2/image_rect_raw"
    assert remaps["right/camera_info"] == "infra2/camera_info"
    assert remaps["right/image/compressed"] == "infra2/image_rect_raw/compressed"
    assert "use_stereo" in params


def test_left_right_layouts_and_custom():
    remaps, _ = launched(stereo="rect")
    assert (remaps["image"], remaps["right/image"]) == ("left/image_rect", "right/image_rect")
    remaps, _ = launched(stereo="zed")
    assert remaps["right/image"] == "right/image_rect_color"
    remaps, params = launched(stereo="custom", image="cam_l/image", right_image="cam_r/image",
                              right_camera_info="cam_r/info")
    assert (remaps["image"], remaps["right/image"], remaps["right/camera_info"]) == \
        ("cam_l/image", "cam_r/image", "cam_r/info")
    assert "use_stereo" in params


def test_single_camera_by_default():
    remaps, params = launched()
    assert remaps["image"] == "image_raw" and "use_stereo" not in params
    assert remaps["depth/compressedDepth"] == "depth/image_raw/compressedDepth"


def test_unknown_layout_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown stereo layout 'zedd'; known: rect, raw, zed"):
        stereo_topics("zedd", {})
    assert set(STEREO_LAYOUTS["realsense"]) == {"image", "camera_info", "right/image",
                                                "right/camera_info"}
