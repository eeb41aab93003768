"""The package as a ROS user meets it: `colcon build`, then `ros2 launch`, `ros2 topic`,
`ros2 param` and `ros2 service` for real.

The package is built with colcon (colcon-core and colcon-ros from PyPI) into a temporary
workspace, once per module; the launch files run from that install with the real `launch`,
`launch_ros` and `ros2cli` of ../shared/ros2cli (which `make venv` installs), in this session's
DDS domain, and are checked from other processes with the ROS 2 command line and the harness's
probe node. Each launch file runs once, with several checks against it. Without ../shared (a clone
alone) those tests skip with the reason; the checks that need no ROS tools run everywhere.
"""
from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import SHARED, TUM_FR2, needs_tum_fr2, run_cli
from lightglue_ros.config import Config
from lightglue_ros.ros.launch_args import ROS_PARAMS
from lightglue_ros.ros.yaml_config import params_yaml
from ros_harness import ROOT, ros_available, ros_session, stamp_key, synthetic

_ = ros_session  # the module-scoped fixture (rclpy context, probe, node processes)

LAUNCH_DIR = ROOT / "launch"
LAUNCH_FILES = {"tracker": LAUNCH_DIR / "tracker.launch.py",
                "replay": LAUNCH_DIR / "replay.launch.py"}
PARAMS_FILE = ROOT / "config" / "tracker.yaml"
BIN = Path(sys.executable).parent
ROS2 = BIN / "ros2"
CLI_TIMEOUT_S = 60  # one ros2 command (a Python process on a busy 2-core machine)
# no ros2 daemon (it would outlive the tests): each command discovers the graph for 3 s itself
NO_DAEMON = ("--no-daemon", "--spin-time", "3")

needs_ros2cli = pytest.mark.skipif(
    not (ros_available() and ROS2.is_file()),
    reason=f"the ROS 2 command line is not installed: {SHARED / 'ros2cli'} is absent (it sits "
           "beside the clone in CI; `make venv` installs it from there)" if not
           (SHARED / "ros2cli").is_dir() else "ros2 is not in the venv: run `make venv`")


def console_scripts() -> dict[str, str]:
    """name -> 'module:function' of setup.py's console_scripts (read with ast, not run)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "console_scripts":
                    items = ast.literal_eval(value)
                    return dict(tuple(p.strip() for p in item.split("=", 1)) for item in items)
    raise AssertionError("setup.py declares no console_scripts")


def launch_parameters(path: Path) -> tuple[str, ...]:
    """The PARAMETERS tuple of a launch file (the node parameters it has arguments for)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["PARAMETERS"]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path} has no PARAMETERS")


# --- without ROS tools ----------------------------------------------------------------------------
def test_executables_exist():
    scripts = console_scripts()
    assert scripts["tracker_node"] == "lightglue_ros.ros.node:main"
    assert scripts["lightglue-ros"] == "lightglue_ros.cli.main:main"
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), target
    for name in ("tracker_node", "lightglue-ros"):
        path = BIN / name
        assert path.is_file() and os.access(path, os.X_OK), f"{path} (pip install -e .)"


def test_params_file_is_generated_from_the_config():
    text = PARAMS_FILE.read_text()
    assert text == params_yaml(), ("config/tracker.yaml differs from the Config: regenerate it "
                                   "with `lightglue-ros config --yaml > config/tracker.yaml`")
    data = yaml.safe_load(text)
    assert list(data) == ["/**"] and list(data["/**"]) == ["ros__parameters"]
    assert data["/**"]["ros__parameters"] == Config().to_dict()


@pytest.mark.parametrize("name", sorted(LAUNCH_FILES))
def test_launch_arguments_are_node_parameters(name):
    """Each parameter argument names a Config (or rclpy) parameter; the launch files hold no
    default of their own (``launch_args``: empty means params_file decides)."""
    names = launch_parameters(LAUNCH_FILES[name])
    known = {f.name for f in Config.params()} | set(ROS_PARAMS)
    assert names and set(names) <= known, set(names) - known
    text = LAUNCH_FILES[name].read_text()
    for field in Config.params():  # no copy of a Config default as a launch default
        if field.name in names and isinstance(field.default, str) and field.default:
            assert f'"{field.default}"' not in text, (name, field.name)


# --- colcon build ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory) -> Path:
    """`colcon build` of this repository (lightglue_ros and, nested in it, the interface package
    lightglue_ros_msgs, which a crawl stops short of: both are named) into a temporary
    workspace: its install prefix. The venv first on PATH, as after sourcing a ROS install: CMake
    finds the ament/rosidl wheels there."""
    work = tmp_path_factory.mktemp("colcon")
    proc = subprocess.run(
        [str(BIN / "colcon"), "--log-base", str(work / "log"), "build", "--base-paths",
         str(ROOT), str(ROOT / "lightglue_ros_msgs"), "--build-base", str(work / "build"),
         "--install-base", str(work / "install"), "--event-handlers", "console_direct-"],
        cwd=work, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work / "install"


@pytest.fixture(scope="module")
def installed_env(colcon_install, ros_session) -> dict[str, str]:
    """The environment after `. install/setup.sh`, in this session's DDS domain."""
    out = subprocess.run(["bash", "-c", f'. "{colcon_install}/setup.sh" && env -0'],
                         capture_output=True, check=True, timeout=60).stdout
    env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **ros_session.env}


def test_colcon_build_installs_the_package(colcon_install):
    prefix = colcon_install / "lightglue_ros"
    share = prefix / "share" / "lightglue_ros"
    # an ament_python package (a broken package.xml silently makes it a plain Python package,
    # without the ament prefix hook that `ros2 launch lightglue_ros ...` needs)
    assert (share / "hook" / "ament_prefix_path.dsv").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" /
            "lightglue_ros").is_file()
    assert sorted(p.name for p in (share / "launch").iterdir()) == sorted(
        p.name for p in LAUNCH_FILES.values())
    assert (share / "config" / "tracker.yaml").read_text() == PARAMS_FILE.read_text()
    for name in console_scripts():
        assert os.access(prefix / "lib" / "lightglue_ros" / name, os.X_OK), name
    site = next((prefix / "lib").glob("python3*/site-packages"))
    assert (site / "lightglue_ros" / "ros" / "node.py").is_file()
    # the tools beside the product, for `lightglue-ros stress` from an install
    assert (site / "lightglue_ros_tools" / "reliability" / "stress.py").is_file()
    msgs = colcon_install / "lightglue_ros_msgs"
    assert (msgs / "share" / "lightglue_ros_msgs" / "msg" / "KeyframeEdge.msg").is_file()
    assert next((msgs / "lib").glob("python3*/site-packages/lightglue_ros_msgs/msg/"
                                    "_keyframe_edge.py"))


def test_colcon_built_messages_import_from_the_install(installed_env, colcon_install):
    """`. install/setup.sh` alone makes the typed messages importable (typesupport included)."""
    proc = subprocess.run([sys.executable, "-c", "import lightglue_ros_msgs.msg as m, sys; "
                           "e = m.KeyframeEdge(model=m.KeyframeEdge.MODEL_ESSENTIAL); "
                           "print(m.__file__, e.model)"],
                          env=installed_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(colcon_install)) and proc.stdout.split()[-1] == "2", \
        proc.stdout


def ros2(env: dict[str, str], *args: str, timeout: float = CLI_TIMEOUT_S) -> str:
    """Run a ros2 command; its stdout and stderr (AssertionError when it fails)."""
    proc = subprocess.run([str(ROS2), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"ros2 {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def echo_once(env: dict[str, str], topic: str, msg_type: str) -> subprocess.Popen:
    """`ros2 topic echo --once` started in the background (it prints the next message)."""
    return subprocess.Popen([str(ROS2), "topic", "echo", "--once", "--no-daemon", topic,
                             msg_type], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def echoed(proc: subprocess.Popen, timeout: float = CLI_TIMEOUT_S) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"ros2 topic echo: {out}\n{err}"
    return out


def wait_subscribers(probe, topic: str, count: int, timeout: float = CLI_TIMEOUT_S) -> None:
    from ros_harness import wait_until

    wait_until(lambda: probe.count_subscribers(topic) >= count, timeout,
               f"{count} subscribers of {topic}")


# --- ros2 launch lightglue_ros tracker.launch.py --------------------------------------------------
NAMESPACE = "/launch_cam"
NODE = f"{NAMESPACE}/lightglue_tracker"
# the params file: values that differ from the Config, including one (extractor) that the launch
# file also has an argument for; input_qos is in the file (auto) and given as an argument
LAUNCH_YAML = dict(extractor="disk", max_keypoints=333, stale_after_s=60.0,
                   diagnostics_period_s=0.5)


@pytest.fixture(scope="module")
def tracker_launch(ros_session, installed_env, tmp_path_factory):
    params_file = tmp_path_factory.mktemp("launch") / "my.yaml"
    params_file.write_text(params_yaml(config=Config(**LAUNCH_YAML)))
    camera, frames = synthetic(6, 320, 240)
    command = [str(ROS2), "launch", "lightglue_ros", "tracker.launch.py",
               f"camera:={NAMESPACE}", "image:=image_raw", f"params_file:={params_file}",
               "input_qos:=reliable"]
    node = ros_session.start_node(NAMESPACE, {"input_qos": "reliable"}, {"image": "image_raw"},
                                  command=command, env=installed_env, camera=camera)
    node.frames, node.camera = frames, camera
    yield node
    node.stop()


@needs_ros2cli
def test_tracker_launch_runs_the_installed_node_with_the_yaml_and_the_arguments(
        tracker_launch, installed_env, colcon_install):
    pid = re.search(r"\[tracker_node-1\]: process started with pid \[(\d+)\]",
                    tracker_launch.log()).group(1)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert Path(cmdline[1].decode()).resolve() == (
        colcon_install / "lightglue_ros" / "lib" / "lightglue_ros" / "tracker_node").resolve()
    dumped = yaml.safe_load(ros2(installed_env, "param", "dump", *NO_DAEMON, NODE))
    params = dumped[NODE]["ros__parameters"]
    # the YAML wins over the launch file (the launch file has no defaults of its own) ...
    assert (params["extractor"], params["max_keypoints"]) == ("disk", 333)
    assert params["stale_after_s"] == 60.0 and params["backend"] == "auto"
    # ... and an argument given explicitly wins over the YAML
    assert params["input_qos"] == "reliable"
    assert params["use_sim_time"] is False
    _, subs = tracker_launch.probe.node_topics("lightglue_tracker", NAMESPACE)
    assert subs[f"{NAMESPACE}/image_raw"] == ["sensor_msgs/msg/Image"]  # the remapping


@needs_ros2cli
def test_ros2_topic_sees_odometry_and_ok_diagnostics(tracker_launch, installed_env):
    node = tracker_launch
    odom_topic = node.topic("~/odometry")
    echo = echo_once(installed_env, odom_topic, "nav_msgs/msg/Odometry")
    wait_subscribers(node.probe, odom_topic, 2)  # the probe's collector and ros2 topic echo
    text = None
    for _ in range(10):  # the probe sees the echo before the node may: send until it prints
        for stamp, odom in node.track(node.frames[:3], node.camera):
            assert stamp_key(odom.header.stamp) == stamp_key(stamp)
        try:
            text = echoed(echo, timeout=6)
            break
        except subprocess.TimeoutExpired:
            continue
    assert text is not None, "ros2 topic echo printed no odometry after 30 frames"
    # without base_frame the odom frame has the camera's axes, so it is not named 'odom'
    assert "frame_id: camera_optical_odom" in text, text
    assert "child_frame_id: camera_optical" in text, text
    diag = echo_once(installed_env, "/diagnostics", "diagnostic_msgs/msg/DiagnosticArray")
    text = echoed(diag)
    assert "name: 'lightglue_ros: tracker'" in text, text
    assert 'level: "\\0"' in text and "message: tracking" in text, text  # OK
    assert re.search(r"key: frames_processed\s+value: '3'", text), text


@needs_ros2cli
def test_ros2_param_set_changes_the_running_node(tracker_launch, installed_env):
    from lightglue_ros.ros import conversions

    node = tracker_launch
    out = ros2(installed_env, "param", "set", *NO_DAEMON, NODE, "filter_threshold", "0.5")
    assert "Set parameter successful" in out, out
    assert node.get_parameters("filter_threshold") == {"filter_threshold": 0.5}
    stamp = node.send_frame(node.frames[3], node.camera)
    matches = conversions.matches_from_msg(node.matches.wait_stamp(stamp, alive=node.alive))
    assert len(matches) > 0 and matches["score"].min() >= 0.5 - 1e-6
    refused = ros2(installed_env, "param", "set", *NO_DAEMON, NODE, "max_keypoints", "100")
    assert "Setting parameter failed" in refused and "read-only" in refused, refused
    assert node.get_parameters("max_keypoints") == {"max_keypoints": 333}


@needs_ros2cli
def test_ros2_service_call_resets_tracking(tracker_launch, installed_env):
    node = tracker_launch
    out = ros2(installed_env, "service", "call", f"{NODE}/reset", "std_srvs/srv/Trigger")
    assert "success=True" in out, out
    before = node.odometry.messages[-1].pose.pose
    stamp = node.send_frame(node.frames[4], node.camera)
    odom = node.odometry.wait_stamp(stamp, alive=node.alive)
    assert odom.pose.pose == before  # odom stays continuous: the last pose, not the origin


@needs_ros2cli
def test_tracker_launch_stops_cleanly_on_sigint(tracker_launch):
    assert tracker_launch.stop() == 0
    log = tracker_launch.log()
    assert "Traceback" not in log and "process has finished cleanly" in log, log[-3000:]


# --- ros2 launch lightglue_ros replay.launch.py ---------------------------------------------------
@needs_ros2cli
@needs_tum_fr2
def test_replay_launch_tracks_every_real_frame_at_default_settings(ros_session, installed_env,
                                                                   tmp_path):
    """The 20 TUM fr2/desk frames (real 640x480 rgb8) as a bag, played by the installed
    `lightglue-ros replay` (a reliable publisher in another process) into the node at the
    package's default parameters (config/tracker.yaml as installed; the launch file adds
    use_sim_time): every frame produces odometry, none is lost in transport or dropped."""
    from diagnostic_msgs.msg import DiagnosticArray

    bag, out = tmp_path / "fr2_desk", tmp_path / "replay_out"
    run_cli("make-bag", str(TUM_FR2), str(bag), "--preset", "fr2", "--no-depth")
    diagnostics = ros_session.probe.subscribe(DiagnosticArray, "/diagnostics")
    echo = echo_once(installed_env, "/camera/lightglue_tracker/odometry",
                     "nav_msgs/msg/Odometry")
    log_path = tmp_path / "replay_launch.log"
    with open(log_path, "w") as log:
        proc = subprocess.run([str(ROS2), "launch", "lightglue_ros", "replay.launch.py",
                               f"bag:={bag}", f"out:={out}"], env=installed_env, stdout=log,
                              stderr=subprocess.STDOUT, timeout=900)
    text = log_path.read_text()
    ros_session.probe.unsubscribe(diagnostics)
    assert proc.returncode == 0, text[-4000:]
    assert re.search(r"images: 20\b", text) and re.search(r"answered: 20\b", text), text[-4000:]
    assert re.search(r"timeouts: 0\b", text), text[-4000:]
    first = echoed(echo, timeout=30)
    assert "child_frame_id: camera_optical_frame" in first, first
    statuses = [{kv.key: kv.value for kv in s.values} for m in diagnostics.messages
                for s in m.status if s.hardware_id == "lightglue_tracker"]
    final = statuses[-1]
    assert final["frames_processed"] == "20" and final["frames_dropped"] == "0", final
    assert final["frames_rejected"] == "0" and final["samples_lost_in_transport"] == "0", final
    assert final["qos.image"] == "reliable" and int(final["frames_lost"]) == 0, final
    stamps = _recorded_odometry_stamps(out)
    assert len(stamps) == 20 and len(set(stamps)) == 20


def _recorded_odometry_stamps(out: Path) -> list[int]:
    from rosbags.highlevel import AnyReader

    with AnyReader([out]) as reader:
        conns = [c for c in reader.connections if c.topic.endswith("/odometry")]
        return [(m := reader.deserialize(raw, c.msgtype)).header.stamp.sec * 10**9
                + m.header.stamp.nanosec for c, _, raw in reader.messages(connections=conns)]
