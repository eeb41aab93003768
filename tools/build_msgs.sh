#!/usr/bin/env bash
# Build the interface package lightglue_ros_msgs (ament_cmake + rosidl) on the PyPI ROS 2 wheels
# of a venv and install it into that venv, so that `import lightglue_ros_msgs.msg` works there
# without a ROS install (the wheels' site-packages and lib/ are where it lands). On a robot, build
# it with colcon beside lightglue_ros instead (README). Needs cmake, g++ and make; idempotent.
# usage: tools/build_msgs.sh VENV
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$(cd "${1:?usage: build_msgs.sh VENV}" && pwd)
for tool in cmake g++ make; do
  command -v $tool >/dev/null || {
    echo "build_msgs.sh: needs $tool (Debian: apt-get install -y cmake g++ make)"; exit 2; }
done
BUILD="$VENV/build/lightglue_ros_msgs"
mkdir -p "$VENV/build"
# the venv first on PATH: CMake finds the wheels' share/*/cmake and the venv's interpreter
export PATH="$VENV/bin:$PATH"
cmake -S "$ROOT/lightglue_ros_msgs" -B "$BUILD" -DCMAKE_INSTALL_PREFIX="$VENV" \
  -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python3" > "$BUILD.log" 2>&1 \
  && cmake --build "$BUILD" -j "${JOBS:-2}" >> "$BUILD.log" 2>&1 \
  && cmake --install "$BUILD" >> "$BUILD.log" 2>&1 \
  || { tail -40 "$BUILD.log"; exit 1; }
"$VENV/bin/python" -c "from lightglue_ros_msgs.msg import KeyframeEdge, TrackedMatches"
echo "lightglue_ros_msgs installed into $VENV"
