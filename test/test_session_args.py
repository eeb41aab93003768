"""The ``-p`` values the stress driver and the node tests give a node process: read back as
YAML (as rcl reads them), each is the value given, also a string YAML 1.1 would take for a
boolean or a number (``stress --bundle-adjustment off``)."""
from __future__ import annotations

import pytest
import yaml

from lightglue_ros_tools.reliability.session import yaml_value


@pytest.mark.parametrize("value", ["off", "on", "yes", "no", "true", "null", "1.0", "7",
                                   "background", "reliable", "0 0 0 0 0 0 1", True, False,
                                   0.5, 3])
def test_a_value_reads_back_as_given(value):
    assert yaml.safe_load(yaml_value(value)) == value
    assert type(yaml.safe_load(yaml_value(value))) is type(value)
