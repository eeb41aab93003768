"""Start the lightglue_ros tracker on a camera.

    ros2 launch lightglue_ros tracker.launch.py camera:=/camera image:=image_raw \
        use_depth:=true depth:=aligned_depth_to_color/image_raw
    ros2 launch lightglue_ros tracker.launch.py camera:=/camera/camera stereo:=realsense

Topics are relative to the camera namespace unless given absolute. Every node parameter comes from
params_file (default: the package's config/tracker.yaml, generated from the Config); the
parameter arguments below override it only when given (their default, empty, means "not given").
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from lightglue_ros.ros.launch_args import (STEREO_LAYOUTS, declare_overrides, overrides,
                                           stereo_topics)

ARGUMENTS = (
    ("camera", "camera", "namespace of the camera; the node runs in it"),
    ("image", "image_raw", "image topic (sensor_msgs/Image), relative to the namespace"),
    ("camera_info", "camera_info", "camera_info topic"),
    ("depth", "depth/image_raw", "depth topic (16UC1 mm or 32FC1 m), used with use_depth"),
    ("stereo", "", "a stereo pair in a driver's layout, which sets use_stereo and the four "
                   f"topics: {', '.join(STEREO_LAYOUTS)} (custom: image, camera_info, "
                   "right_image, right_camera_info as given); empty: one camera"),
    ("right_image", "right/image_rect", "right image topic of a custom stereo layout"),
    ("right_camera_info", "right/camera_info", "right camera_info topic of a custom layout"),
    ("params_file", PathJoinSubstitution([FindPackageShare("lightglue_ros"), "config",
                                          "tracker.yaml"]), "parameters file"),
)
PARAMETERS = ("extractor", "backend", "device", "use_depth", "use_compressed",
              "use_compressed_depth", "input_qos", "stereo_sync_s", "image_rectification",
              "base_frame", "base_to_camera", "publish_tf", "slam", "map_path", "map_frame",
              "use_sim_time")


def tracker(context):
    arg = LaunchConfiguration
    layout = arg("stereo").perform(context)
    topics = stereo_topics(layout, {
        "image": arg("image").perform(context), "camera_info": arg("camera_info").perform(context),
        "right/image": arg("right_image").perform(context),
        "right/camera_info": arg("right_camera_info").perform(context)})
    params = overrides(context, PARAMETERS)
    if layout:
        params["use_stereo"] = True
    return [Node(
        package="lightglue_ros",
        executable="tracker_node",
        name="lightglue_tracker",
        namespace=arg("camera"),
        output="screen",
        parameters=[arg("params_file"), params],
        remappings=[(name, topic) for name, topic in topics.items()]
        + [(f"{name}/compressed", f"{topics[name]}/compressed")
           for name in ("image", "right/image")]
        + [("depth", arg("depth")), ("depth/compressedDepth", [arg("depth"), "/compressedDepth"])],
    )]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS] + declare_overrides(PARAMETERS)
        + [OpaqueFunction(function=tracker)])
