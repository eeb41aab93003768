"""Start the lightglue_ros tracker on a camera.

    ros2 launch lightglue_ros tracker.launch.py camera:=/camera image:=image_raw \
        extractor:=aliked backend:=torch use_depth:=true depth:=aligned_depth_to_color/image_raw

Topics are relative to the camera namespace unless given absolute. Any other parameter goes in
params_file (default: the package's config/tracker.yaml).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = (
    ("camera", "camera", "namespace of the camera; the node runs in it"),
    ("image", "image_raw", "image topic (sensor_msgs/Image), relative to the namespace"),
    ("camera_info", "camera_info", "camera_info topic"),
    ("depth", "depth/image_raw", "depth topic (16UC1 mm or 32FC1 m), used with use_depth"),
    ("params_file", PathJoinSubstitution([FindPackageShare("lightglue_ros"), "config",
                                          "tracker.yaml"]), "parameters file"),
    ("extractor", "aliked", "aliked, superpoint or disk"),
    ("backend", "torch", "torch, onnxruntime or tensorrt"),
    ("device", "cpu", "cpu, cuda or cuda:N"),
    ("use_depth", "false", "subscribe the depth topic for metric tracking"),
    ("use_compressed", "false", "subscribe <image>/compressed instead"),
    ("input_qos", "sensor_data", "sensor_data, reliable or system_default"),
    ("use_sim_time", "false", "use /clock (bag replay)"),
)


def generate_launch_description() -> LaunchDescription:
    arg = LaunchConfiguration
    tracker = Node(
        package="lightglue_ros",
        executable="tracker_node",
        name="lightglue_tracker",
        namespace=arg("camera"),
        output="screen",
        parameters=[arg("params_file"), {
            "extractor": arg("extractor"),
            "backend": arg("backend"),
            "device": arg("device"),
            "use_depth": arg("use_depth"),
            "use_compressed": arg("use_compressed"),
            "input_qos": arg("input_qos"),
            "use_sim_time": arg("use_sim_time"),
        }],
        remappings=[("image", arg("image")),
                    ("image/compressed", [arg("image"), "/compressed"]),
                    ("camera_info", arg("camera_info")),
                    ("depth", arg("depth"))],
    )
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS] + [tracker])
