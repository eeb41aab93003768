"""Replay a bag into the tracker and record its outputs: evaluation with the live node.

    ros2 launch lightglue_ros replay.launch.py bag:=/data/run.mcap out:=/tmp/run_out

The tracker runs on sim time; `lightglue-ros replay` publishes /clock and the bag's camera topics,
in wait mode (it waits for the node's output before the next frame, so a slow node drops
nothing), and records the node's outputs to a bag in `out`.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = (
    ("bag", "", "ROS 2 bag (sqlite3 or MCAP) to play"),
    ("out", "replay_out", "folder for the recorded outputs"),
    ("camera", "camera", "namespace of the camera topics in the bag"),
    ("image", "image_raw", "image topic, relative to the namespace"),
    ("camera_info", "camera_info", "camera_info topic"),
    ("depth", "depth/image_raw", "depth topic (with use_depth)"),
    ("use_depth", "false", "track with depth"),
    ("rate", "1.0", "playback speed factor (ignored in wait mode)"),
    ("wait", "true", "wait for the node's output before the next frame"),
    ("params_file", PathJoinSubstitution([FindPackageShare("lightglue_ros"), "config",
                                          "tracker.yaml"]), "tracker parameters file"),
)


def generate_launch_description() -> LaunchDescription:
    arg = LaunchConfiguration
    tracker = Node(
        package="lightglue_ros",
        executable="tracker_node",
        name="lightglue_tracker",
        namespace=arg("camera"),
        output="screen",
        parameters=[arg("params_file"), {"use_sim_time": True, "use_depth": arg("use_depth"),
                                         "input_qos": "reliable"}],
        remappings=[("image", arg("image")), ("camera_info", arg("camera_info")),
                    ("depth", arg("depth"))],
    )
    replay = ExecuteProcess(
        cmd=["lightglue-ros", "replay", arg("bag"), "--out", arg("out"), "--rate", arg("rate"),
             "--wait", arg("wait"), "--node", [arg("camera"), "/lightglue_tracker"]],
        output="screen",
    )
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS] + [tracker, replay])
