"""Replay a bag into the tracker and record its outputs: evaluation with the live node.

    ros2 launch lightglue_ros replay.launch.py bag:=/data/run.mcap out:=/tmp/run_out
    ros2 launch lightglue_ros replay.launch.py bag:=/data/kitti06 stereo:=true   # a stereo bag

The tracker runs on sim time; the installed `lightglue-ros replay` publishes /clock and the bag's
camera topics, in wait mode (it waits for the node's output before the next frame, so a slow node
drops nothing), and records the node's outputs to a bag in `out`. When the replay ends, the launch
shuts down (the node with it). Node parameters come from params_file; the parameter arguments
override it only when given.
"""
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, EmitEvent, ExecuteProcess, OpaqueFunction,
                            RegisterEventHandler)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import ExecutableInPackage, FindPackageShare

from lightglue_ros.ros.launch_args import declare_overrides, overrides, topic

ARGUMENTS = (
    ("bag", "", "ROS 2 bag (sqlite3 or MCAP) to play"),
    ("out", "replay_out", "folder for the recorded outputs"),
    ("camera", "camera", "namespace of the camera topics in the bag"),
    ("image", "image_raw", "image topic, relative to the namespace"),
    ("camera_info", "camera_info", "camera_info topic"),
    ("depth", "depth/image_raw", "depth topic (with use_depth)"),
    ("stereo", "false", "the bag holds a stereo pair (make-bag of KITTI or EuRoC): the node "
                        "takes right_image and right_camera_info too (use_stereo)"),
    ("right_image", "right/image_raw", "right image topic (with stereo)"),
    ("right_camera_info", "right/camera_info", "right camera_info topic (with stereo)"),
    ("rate", "1.0", "playback speed factor (ignored in wait mode)"),
    ("wait", "true", "wait for the node's output before the next frame"),
    ("params_file", PathJoinSubstitution([FindPackageShare("lightglue_ros"), "config",
                                          "tracker.yaml"]), "tracker parameters file"),
)
PARAMETERS = ("extractor", "backend", "device", "use_depth", "input_qos")


def actions(context):
    arg = LaunchConfiguration
    camera = arg("camera").perform(context)
    stereo = arg("stereo").perform(context).lower() in ("true", "1", "yes", "on")
    tracker = Node(
        package="lightglue_ros",
        executable="tracker_node",
        name="lightglue_tracker",
        namespace=camera,
        output="screen",
        parameters=[arg("params_file"), {"use_sim_time": True},
                    {"use_stereo": True} if stereo else {}, overrides(context, PARAMETERS)],
        remappings=[("image", arg("image")), ("camera_info", arg("camera_info")),
                    ("depth", arg("depth")), ("right/image", arg("right_image")),
                    ("right/camera_info", arg("right_camera_info"))],
    )
    replay = ExecuteProcess(
        cmd=[ExecutableInPackage(package="lightglue_ros", executable="lightglue-ros"), "replay",
             arg("bag"), "--out", arg("out"), "--rate", arg("rate"), "--wait", arg("wait"),
             "--node", topic(camera, "lightglue_tracker"),
             "--image-topic", topic(camera, arg("image").perform(context))],
        output="screen",
    )
    done = RegisterEventHandler(OnProcessExit(target_action=replay,
                                              on_exit=[EmitEvent(event=Shutdown())]))
    return [tracker, replay, done]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS] + declare_overrides(PARAMETERS)
        + [OpaqueFunction(function=actions)])
