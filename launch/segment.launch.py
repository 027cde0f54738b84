"""Launch anyseg_node with config/segment.yaml (ros2 launch anyseg_ros segment.launch.py).

Arguments: params_file (default: the installed config/segment.yaml), namespace (default: none;
the node's topics are relative, so rgb/image becomes /<namespace>/rgb/image), log_level.
Without a ROS install the same node runs as `anyseg_node --ros-args --params-file <yaml>`.
"""

# ruff: noqa: I001  (ruff takes `launch` for this repository's launch/ folder and would split it)
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "anyseg_ros"
EXECUTABLE = "anyseg_node"  # the console script in setup.py


def generate_launch_description() -> LaunchDescription:
    default_params = PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "segment.yaml"])
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=default_params,
                description="YAML with the anyseg_node parameters",
            ),
            DeclareLaunchArgument(
                "namespace",
                default_value="",
                description="namespace for the node and its relative topics",
            ),
            DeclareLaunchArgument("log_level", default_value="info", description="ROS log level"),
            Node(
                package=PACKAGE,
                executable=EXECUTABLE,
                name="anyseg_node",
                namespace=LaunchConfiguration("namespace"),
                parameters=[LaunchConfiguration("params_file")],
                arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
                output="screen",
                emulate_tty=True,
            ),
        ]
    )
