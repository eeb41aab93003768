"""Reliability: the tracker node driven over real rclpy under overload, over a long soak and
with injected faults (``lightglue-ros stress``); also the machinery of the node tests."""
