"""What the launch files share: arguments that override a node parameter only when given, and
the topics of the usual stereo camera drivers.

Each such argument's default is empty, meaning "not given": the parameter then comes from
``params_file`` (by default the package's ``config/tracker.yaml``, generated from the Config).
Given on the command line (``extractor:=disk``), it overrides the file. So the launch files hold
no copy of the defaults: the Config is their one source, and the descriptions come from it too.
``launch`` and ``launch_ros`` are imported only when a launch file calls these functions.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from ..config import Config

if TYPE_CHECKING:
    from launch.actions import DeclareLaunchArgument
    from launch.launch_context import LaunchContext
    from launch_ros.parameter_descriptions import ParameterValue

# The node's stereo inputs -> the driver's topics (relative to the camera namespace) per layout;
# "custom" takes the image, camera_info, right_image and right_camera_info arguments as given.
STEREO_LAYOUTS: dict[str, dict[str, str]] = {
    # image_proc's stereo output, OAK-D (depthai-ros with rectification), Jetson stereo modules
    "rect": {"image": "left/image_rect", "camera_info": "left/camera_info",
             "right/image": "right/image_rect", "right/camera_info": "right/camera_info"},
    # a raw pair: rectified by the node from camera_info's R and P
    "raw": {"image": "left/image_raw", "camera_info": "left/camera_info",
            "right/image": "right/image_raw", "right/camera_info": "right/camera_info"},
    # ZED wrapper (run it in the ns of the zed node, e.g. camera:=/zed/zed_node)
    "zed": {"image": "left/image_rect_color", "camera_info": "left/camera_info",
            "right/image": "right/image_rect_color", "right/camera_info": "right/camera_info"},
    # RealSense infrared pair (enable_infra1 and enable_infra2; emitter off for clean texture)
    "realsense": {"image": "infra1/image_rect_raw", "camera_info": "infra1/camera_info",
                  "right/image": "infra2/image_rect_raw",
                  "right/camera_info": "infra2/camera_info"},
    "custom": {},
}


def stereo_topics(layout: str, given: dict[str, str]) -> dict[str, str]:
    """The node's image and camera_info inputs -> topics: ``given`` (the launch arguments) for
    a single camera (empty layout) or the custom layout, else the layout's topics."""
    if layout and layout not in STEREO_LAYOUTS:
        raise ValueError(f"unknown stereo layout {layout!r}; known: {', '.join(STEREO_LAYOUTS)}")
    return {**given, **STEREO_LAYOUTS.get(layout, {})}


# parameters rclpy declares itself: (type, description)
ROS_PARAMS = {"use_sim_time": (bool, "Use /clock (a bag replay or a simulator).")}
NOT_GIVEN = ""


def _kind_and_text(name: str) -> tuple[type, str]:
    if name in ROS_PARAMS:
        return ROS_PARAMS[name]
    field = Config.param(name)
    text = field.metadata["description"]
    if field.metadata["choices"]:
        text += f" One of: {', '.join(field.metadata['choices'])}."
    return type(field.default), text


def declare_overrides(names: Iterable[str]) -> list[DeclareLaunchArgument]:
    """One launch argument per parameter name, empty (= params_file decides) by default."""
    from launch.actions import DeclareLaunchArgument

    return [DeclareLaunchArgument(name, default_value=NOT_GIVEN,
                                  description=f"{_kind_and_text(name)[1]} Empty: from "
                                              "params_file.")
            for name in names]


def overrides(context: LaunchContext, names: Iterable[str]) -> dict[str, ParameterValue]:
    """{parameter: value} of the override arguments given, typed as the parameter is."""
    from launch.substitutions import LaunchConfiguration
    from launch_ros.parameter_descriptions import ParameterValue

    return {name: ParameterValue(LaunchConfiguration(name), value_type=_kind_and_text(name)[0])
            for name in names if LaunchConfiguration(name).perform(context) != NOT_GIVEN}


def topic(namespace: str, name: str) -> str:
    """``name`` resolved in ``namespace`` as the node resolves it (absolute names stay)."""
    if name.startswith("/"):
        return name
    return "/" + "/".join(p for p in (namespace.strip("/"), name.strip("/")) if p)
