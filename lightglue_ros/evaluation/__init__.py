"""Evaluation: parity with the official implementation, pose and trajectory accuracy."""
