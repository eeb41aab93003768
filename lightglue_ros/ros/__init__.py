"""The thin ROS 2 shell: message conversions, parameters, QoS, diagnostics and the node."""
