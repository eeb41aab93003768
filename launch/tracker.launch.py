"""Start the lightglue_ros tracker on a camera.

    ros2 launch lightglue_ros tracker.launch.py camera:=/camera image:=image_raw \
        use_depth:=true depth:=aligned_depth_to_color/image_raw

Topics are relative to the camera namespace unless given absolute. Every node parameter comes from
params_file (default: the package's config/tracker.yaml, generated from the Config); the
parameter arguments below override it only when given (their default, empty, means "not given").
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from lightglue_ros.ros.launch_args import declare_overrides, overrides

ARGUMENTS = (
    ("camera", "camera", "namespace of the camera; the node runs in it"),
    ("image", "image_raw", "image topic (sensor_msgs/Image), relative to the namespace"),
    ("camera_info", "camera_info", "camera_info topic"),
    ("depth", "depth/image_raw", "depth topic (16UC1 mm or 32FC1 m), used with use_depth"),
    ("params_file", PathJoinSubstitution([FindPackageShare("lightglue_ros"), "config",
                                          "tracker.yaml"]), "parameters file"),
)
PARAMETERS = ("extractor", "backend", "device", "use_depth", "use_compressed", "input_qos",
              "base_frame", "base_to_camera", "publish_tf", "use_sim_time")


def tracker(context):
    arg = LaunchConfiguration
    return [Node(
        package="lightglue_ros",
        executable="tracker_node",
        name="lightglue_tracker",
        namespace=arg("camera"),
        output="screen",
        parameters=[arg("params_file"), overrides(context, PARAMETERS)],
        remappings=[("image", arg("image")),
                    ("image/compressed", [arg("image"), "/compressed"]),
                    ("camera_info", arg("camera_info")),
                    ("depth", arg("depth"))],
    )]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS] + declare_overrides(PARAMETERS)
        + [OpaqueFunction(function=tracker)])
