"""A real sequence played into the node at its real rate, the node at its defaults: the figure a
user gets (images answered, and the accuracy of the odometry they got).

    python -m lightglue_ros_tools.reliability.realtime_replay ../shared/data/kitti07_0_159 \
        --out out/realtime_kitti07 [--rate 1] [-p name:=value ...]

Writes the dataset as a bag (``make-bag``, once), starts the tracker node in its own process
(namespace /camera, its image topic remapped to the bag's, sim time, reliable input so that
drops are the node's own; no other parameter), runs ``lightglue-ros replay BAG --rate R --wait false --gt GT --json`` into it, and
prints the replay's JSON with the command lines and the load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from .session import ros_environment, session_domain_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("-p", dest="params", action="append", default=[],
                        help="a node parameter, name:=value (none by default)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    bag = args.out / "bag"
    cli = [sys.executable, "-m", "lightglue_ros.cli.main"]
    if not bag.exists():
        subprocess.run([*cli, "make-bag", str(args.dataset), str(bag), "--storage", "mcap",
                        "--json"], check=True, stdout=subprocess.DEVNULL)
    gt = args.out / "bag.gt.txt"
    env = {**os.environ, **ros_environment(session_domain_id())}
    node_cmd = [sys.executable, "-m", "lightglue_ros.node", "--ros-args", "-r", "__ns:=/camera",
                "-r", "image:=/camera/image_raw", "-p", "input_qos:=reliable",
                "-p", "use_sim_time:=true",
                *[a for p in args.params for a in ("-p", p)]]
    replay_cmd = [*cli, "replay", str(bag), "--rate", str(args.rate), "--wait", "false",
                  "--gt", str(gt), "--json"]
    before = os.getloadavg()
    with open(args.out / "node.log", "w") as log:
        node = subprocess.Popen(node_cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            proc = subprocess.run(replay_cmd, env=env, capture_output=True, text=True)
        finally:
            node.send_signal(signal.SIGINT)
            node.wait(60)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        return proc.returncode
    result = {**json.loads(proc.stdout), "node_command": node_cmd[1:], "replay_command":
              replay_cmd[1:], "load_average_before": before, "load_average_after":
              os.getloadavg(), "cores": os.cpu_count(), "node_returncode": node.returncode}
    (args.out / "replay.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
