"""Pure geometry (numpy and OpenCV; no ROS, no torch): camera models, relative pose from matches,
metric pose from depth, pose covariances. Conventions are stated at the top of each module."""
