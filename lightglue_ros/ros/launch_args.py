"""What the launch files share: arguments that override a node parameter only when given.

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
