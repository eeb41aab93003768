"""The launch files and what they start, checked without ``ros2 launch``.

``launch``/``launch_ros`` come with a ROS 2 install, not with the PyPI wheels this project tests
with. So here the launch files are parsed, evaluated with small stand-ins for the launch classes
(injected into ``sys.modules`` only inside a test), their parameters files and executables are
checked, and the node is started with exactly the command line ``ros2 launch`` would give it.
Where ``launch`` is importable (a real ROS install), the launch files are also loaded for real.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest
import yaml

from lightglue_ros.config import Config
from lightglue_ros.ros.yaml_config import params_yaml
from ros_harness import (ROOT, best_effort_qos, ros_available, ros_session, stamp_key, synthetic,
                         yaml_value)

_ = ros_session  # the module-scoped fixture (rclpy context, probe, node processes)

LAUNCH_DIR = ROOT / "launch"
LAUNCH_FILES = {"tracker": LAUNCH_DIR / "tracker.launch.py",
                "replay": LAUNCH_DIR / "replay.launch.py"}
PARAMS_FILE = ROOT / "config" / "tracker.yaml"
NODE_INPUTS = ("image", "image/compressed", "camera_info", "depth")  # the node's topic names
ROS_ONLY_PARAMS = {"use_sim_time"}  # declared by rclpy itself, not by the Config


def real_launch_available() -> bool:
    """True on a ROS install. The repository's own ``launch/`` folder is found as a namespace
    package when the repository root is on sys.path (``python -m pytest``): that is not it."""
    for name in ("launch", "launch_ros"):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin in (None, "namespace") or \
                not spec.origin.endswith(".py"):
            return False
    return True


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


def venv_bin() -> Path:
    venv = ROOT / ".venv" / "bin"
    return venv if venv.is_dir() else Path(sys.executable).parent


# --- stand-ins for launch / launch_ros -----------------------------------------------------------
class _Recorder:
    """Every stand-in object records its constructor arguments."""

    created: list = []

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs
        _Recorder.created.append(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.args}, {self.kwargs})"


class LaunchDescription(_Recorder):
    @property
    def entities(self) -> list:
        return list(self.args[0]) if self.args else list(self.kwargs.get("initial_entities", []))


class DeclareLaunchArgument(_Recorder):
    @property
    def name(self) -> str:
        return self.args[0]

    @property
    def default(self):
        return self.kwargs.get("default_value")


class LaunchConfiguration(_Recorder):
    @property
    def name(self) -> str:
        return self.args[0]


class PathJoinSubstitution(_Recorder):
    pass


class FindPackageShare(_Recorder):
    pass


class Node(_Recorder):
    pass


class ExecuteProcess(_Recorder):
    pass


def stand_in_modules() -> dict[str, types.ModuleType]:
    modules = {}
    for name, classes in {
            "launch": [LaunchDescription], "launch.actions": [DeclareLaunchArgument,
                                                              ExecuteProcess],
            "launch.substitutions": [LaunchConfiguration, PathJoinSubstitution],
            "launch_ros": [], "launch_ros.actions": [Node],
            "launch_ros.substitutions": [FindPackageShare]}.items():
        module = types.ModuleType(name)
        module.__path__ = []  # a package, so that the submodule imports resolve
        for cls in classes:
            setattr(module, cls.__name__, cls)
        modules[name] = module
    modules["launch"].actions = modules["launch.actions"]
    modules["launch"].substitutions = modules["launch.substitutions"]
    modules["launch_ros"].actions = modules["launch_ros.actions"]
    modules["launch_ros"].substitutions = modules["launch_ros.substitutions"]
    return modules


def evaluate(path: Path, monkeypatch) -> tuple[LaunchDescription, list]:
    """generate_launch_description() of a launch file against the stand-ins; also returns every
    stand-in object it created."""
    for name, module in stand_in_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    _Recorder.created = []
    spec = importlib.util.spec_from_file_location(f"_launch_under_test_{path.stem[:-7]}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert isinstance(description, LaunchDescription)
    return description, list(_Recorder.created)


def resolve(value, args: dict, share: Path = ROOT):
    """A substitution as ros2 launch would perform it: LaunchConfiguration -> the argument's
    value, FindPackageShare -> the package share (here: the repository, which has the same
    launch/ and config/ layout), a list -> its parts concatenated."""
    if isinstance(value, LaunchConfiguration):
        return resolve(args[value.name], args, share)
    if isinstance(value, FindPackageShare):
        assert value.args == ("lightglue_ros",)
        return str(share)
    if isinstance(value, PathJoinSubstitution):
        return os.path.join(*(resolve(v, args, share) for v in value.args[0]))
    if isinstance(value, (list, tuple)):
        return "".join(str(resolve(v, args, share)) for v in value)
    return value


def defaults(description: LaunchDescription) -> dict:
    return {e.name: e.default for e in description.entities
            if isinstance(e, DeclareLaunchArgument)}


def the_node(description: LaunchDescription) -> Node:
    nodes = [e for e in description.entities if isinstance(e, Node)]
    assert len(nodes) == 1, nodes
    return nodes[0]


def ros2_launch_command(node: Node, args: dict, executable_dir: Path) -> list[str]:
    """The command line launch_ros builds for a Node action: executable, --ros-args, node name,
    namespace (made absolute), each parameters file, the dict parameters (launch_ros writes
    them to a temporary parameters file: ``-p`` after the file is equivalent, values
    YAML-parsed either way), then the remappings."""
    kw = node.kwargs
    cmd = [str(executable_dir / kw["executable"]), "--ros-args",
           "-r", f"__node:={kw['name']}"]
    namespace = resolve(kw.get("namespace", ""), args)
    if namespace:
        cmd += ["-r", f"__ns:={namespace if namespace.startswith('/') else '/' + namespace}"]
    for item in kw.get("parameters", []):
        if isinstance(item, dict):
            for key, value in item.items():
                cmd += ["-p", f"{key}:={yaml_value(resolve(value, args))}"]
        else:
            cmd += ["--params-file", resolve(item, args)]
    for src, dst in kw.get("remappings", []):
        cmd += ["-r", f"{resolve(src, args)}:={resolve(dst, args)}"]
    return cmd


# --- tests ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(LAUNCH_FILES))
def test_launch_file_is_valid_python(name):
    tree = ast.parse(LAUNCH_FILES[name].read_text(), str(LAUNCH_FILES[name]))
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    imported = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
    assert imported <= {"launch", "launch.actions", "launch.substitutions", "launch_ros.actions",
                        "launch_ros.substitutions"}, imported  # what the stand-ins provide


def test_executables_exist():
    scripts = console_scripts()
    assert scripts["tracker_node"] == "lightglue_ros.ros.node:main"
    assert scripts["lightglue-ros"] == "lightglue_ros.cli.main:main"
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), target
    for name in ("tracker_node", "lightglue-ros"):
        path = venv_bin() / name
        assert path.is_file() and os.access(path, os.X_OK), f"{path} (pip install -e .)"


def test_params_file_is_generated_from_the_config():
    text = PARAMS_FILE.read_text()
    assert text == params_yaml(), ("config/tracker.yaml differs from the Config: regenerate it "
                                   "with `lightglue-ros config --yaml > config/tracker.yaml`")
    data = yaml.safe_load(text)
    assert list(data) == ["/**"] and list(data["/**"]) == ["ros__parameters"]
    assert data["/**"]["ros__parameters"] == Config().to_dict()


@pytest.mark.parametrize("name", sorted(LAUNCH_FILES))
def test_launch_description_is_consistent(name, monkeypatch):
    description, created = evaluate(LAUNCH_FILES[name], monkeypatch)
    args = defaults(description)
    used = {c.name for c in created if isinstance(c, LaunchConfiguration)}
    assert used <= set(args), f"undeclared launch arguments: {used - set(args)}"
    node = the_node(description)
    kw = node.kwargs
    assert kw["package"] == "lightglue_ros" and kw["name"] == "lightglue_tracker"
    assert kw["executable"] in console_scripts()
    files = [resolve(p, args) for p in kw["parameters"] if not isinstance(p, dict)]
    assert [Path(f) for f in files] == [PARAMS_FILE] and PARAMS_FILE.is_file()
    params = {k: yaml.safe_load(str(resolve(v, args)))
              for p in kw["parameters"] if isinstance(p, dict) for k, v in p.items()}
    assert set(params) - ROS_ONLY_PARAMS <= {f.name for f in Config.params()}, params
    Config.from_mapping({k: v for k, v in params.items() if k not in ROS_ONLY_PARAMS})  # valid
    assert {src for src, _ in kw["remappings"]} <= set(NODE_INPUTS)
    for process in (e for e in description.entities if isinstance(e, ExecuteProcess)):
        cmd = [str(resolve(part, args)) for part in process.kwargs["cmd"]]
        assert cmd[0] in console_scripts(), cmd
        from lightglue_ros.cli.main import build_parser

        parsed = build_parser().parse_args(cmd[1:])  # every flag it passes exists
        assert parsed.command == cmd[1]
    if name == "replay":
        assert params["use_sim_time"] is True and params["input_qos"] == "reliable"
        assert next(p for p in description.entities if isinstance(p, ExecuteProcess)).kwargs[
            "cmd"][-1][1] == "/lightglue_tracker"  # --node <namespace>/<the node's name>


def test_tracker_launch_command_line(monkeypatch):
    description, _ = evaluate(LAUNCH_FILES["tracker"], monkeypatch)
    cmd = ros2_launch_command(the_node(description), defaults(description), Path("/bin"))
    assert cmd == [
        "/bin/tracker_node", "--ros-args", "-r", "__node:=lightglue_tracker",
        "-r", "__ns:=/camera", "--params-file", str(PARAMS_FILE),
        "-p", "extractor:=aliked", "-p", "backend:=torch", "-p", "device:=cpu",
        "-p", "use_depth:=false", "-p", "use_compressed:=false", "-p", "input_qos:=sensor_data",
        "-p", "use_sim_time:=false",
        "-r", "image:=image_raw", "-r", "image/compressed:=image_raw/compressed",
        "-r", "camera_info:=camera_info", "-r", "depth:=depth/image_raw"]


@pytest.mark.skipif(not ros_available(), reason="rclpy is not installed")
def test_node_runs_with_the_launch_files_arguments(ros_session, monkeypatch, tmp_path):
    """`ros2 launch lightglue_ros tracker.launch.py params_file:=<file>`, without ros2 launch:
    the tracker_node executable with the command line launch_ros would build. The parameters
    file sets max_keypoints 512, so it is seen to be read."""
    description, _ = evaluate(LAUNCH_FILES["tracker"], monkeypatch)
    monkeypatch.undo()  # the stand-ins are not needed any more
    params_file = tmp_path / "tracker.yaml"
    params_file.write_text(params_yaml(config=Config(max_keypoints=512)))
    args = {**defaults(description), "params_file": str(params_file)}
    node_action = the_node(description)
    cmd = ros2_launch_command(node_action, args, venv_bin())
    params = {k: v for p in node_action.kwargs["parameters"] if isinstance(p, dict)
              for k, v in ((k, resolve(v, args)) for k, v in p.items())}
    remaps = {resolve(s, args): resolve(d, args) for s, d in node_action.kwargs["remappings"]}
    camera, frames = synthetic(3, 320, 240)
    node = ros_session.start_node(resolve(node_action.kwargs["namespace"], args), params,
                                  remaps, command=cmd, camera=camera)
    try:
        assert node.fqn == "/camera/lightglue_tracker"
        expected = {"extractor": "aliked", "backend": "torch", "device": "cpu",
                    "use_depth": False, "use_compressed": False, "input_qos": "sensor_data",
                    "use_sim_time": False, "max_keypoints": 512}
        assert node.get_parameters(*expected) == expected
        declared = set(node.probe.list_parameters(node.fqn))
        assert {f.name for f in Config.params()} <= declared
        pubs, subs = node.probe.node_topics("lightglue_tracker", "/camera")
        assert subs["/camera/image_raw"] == ["sensor_msgs/msg/Image"]
        assert subs["/camera/camera_info"] == ["sensor_msgs/msg/CameraInfo"]
        assert "/camera/depth/image_raw" not in subs  # use_depth false
        assert "/camera/image_raw/compressed" not in subs  # use_compressed false
        for topic, kind in (("odometry", "nav_msgs/msg/Odometry"),
                            ("relative_pose", "geometry_msgs/msg/PoseWithCovarianceStamped"),
                            ("matches", "sensor_msgs/msg/PointCloud2"),
                            ("debug_image", "sensor_msgs/msg/Image")):
            assert pubs[f"/camera/lightglue_tracker/{topic}"] == [kind]
        assert pubs["/diagnostics"] == ["diagnostic_msgs/msg/DiagnosticArray"]
        assert node.probe.count_services("/camera/lightglue_tracker/reset") == 1
        # frames on the remapped topic, best effort (the default sensor_data QoS)
        assert node.topic("image") == "/camera/image_raw"
        for stamp, odom in node.track(frames, camera, qos=best_effort_qos(), timeout=30):
            assert stamp_key(odom.header.stamp) == stamp_key(stamp)
        assert int(node.fresh_status()["values"]["keypoints"]) <= 512
    finally:
        returncode = node.stop()
    assert returncode == 0  # SIGINT, what ros2 launch sends on Ctrl-C: a clean exit


@pytest.mark.skipif(not real_launch_available(),
                    reason="launch/launch_ros are not installed (they come with a ROS 2 install, "
                           "not with the PyPI wheels); the stand-in tests above cover the files")
@pytest.mark.parametrize("name", sorted(LAUNCH_FILES))
def test_real_launch_description(name, monkeypatch):
    import launch
    import launch_ros.actions

    spec = importlib.util.spec_from_file_location(f"_real_launch_{name}", LAUNCH_FILES[name])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert isinstance(description, launch.LaunchDescription)
    real_args = {e.name for e in description.entities
                 if isinstance(e, launch.actions.DeclareLaunchArgument)}
    assert [e for e in description.entities if isinstance(e, launch_ros.actions.Node)]
    stand_in, _ = evaluate(LAUNCH_FILES[name], monkeypatch)
    assert real_args == set(defaults(stand_in))
