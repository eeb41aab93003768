"""Declare the Config as ROS parameters (descriptions, ranges, read-only flags) and read it back."""
from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                ParameterType, SetParametersResult)
from rclpy.node import Node
from rclpy.parameter import Parameter

from ..config import Config, ConfigError

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


def descriptor(name: str) -> ParameterDescriptor:
    """The ROS descriptor of one Config parameter: its description, choices, range, and
    read_only unless the tracker can apply a change while running."""
    field = Config.param(name)
    meta = field.metadata
    text = meta["description"]
    if meta["choices"]:
        text += f" One of: {', '.join(meta['choices'])}."
    desc = ParameterDescriptor(name=name, type=_TYPES[type(field.default)], description=text,
                               read_only=not meta["runtime"])
    lo, hi = meta["range"]
    if lo is not None and hi is not None:
        if isinstance(field.default, float):
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo),
                                                            to_value=float(hi))]
        elif isinstance(field.default, int) and not isinstance(field.default, bool):
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    return desc


def declare(node: Node) -> Config:
    """Declare every parameter (values from --ros-args / params files override the defaults)
    and return the validated Config; ConfigError names a bad value."""
    defaults = Config()
    for field in Config.params():
        node.declare_parameter(field.name, getattr(defaults, field.name), descriptor(field.name))
    return Config.from_mapping({f.name: node.get_parameter(f.name).value
                                for f in Config.params()})


def validate_change(config: Config, params: list[Parameter]) -> tuple[Config | None,
                                                                      SetParametersResult]:
    """The Config after a parameter change, or None and a result carrying the reason.
    Parameters that rclpy declares itself (``use_sim_time``: its TimeSource applies it) are
    not the Config's and pass unchecked; rclpy refuses undeclared and read-only ones first."""
    names = {f.name for f in Config.params()}
    try:
        values: dict[str, Any] = {p.name: p.value for p in params if p.name in names}
        fixed = [n for n in values if not Config.param(n).metadata["runtime"]]
        if fixed:
            raise ConfigError(f"{', '.join(fixed)} cannot change at run time")
        return config.replace(**values), SetParametersResult(successful=True)
    except ConfigError as exc:
        return None, SetParametersResult(successful=False, reason=str(exc))
