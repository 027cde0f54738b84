"""Launch anyseg_node with config/segment.yaml (ros2 launch anyseg_ros segment.launch.py).

    ros2 launch anyseg_ros segment.launch.py namespace:=robot1 use_sim_time:=true

Arguments:
  params_file   YAML with the node's parameters (default: the installed config/segment.yaml,
                whose /**/anyseg_node key applies under any namespace)
  namespace     namespace for the node and its relative topics (rgb/image -> /robot1/rgb/image)
  use_sim_time  follow /clock (a simulator, or anyseg-replay --clock)
  log_level     ROS log level
  lifecycle     start the managed node anyseg_lifecycle_node instead of anyseg_node
  autostart     with lifecycle: configure, then activate once configured (else a lifecycle
                manager drives it)
  respawn       restart the node process if it dies (a respawned managed node starts
                unconfigured: its lifecycle manager takes it from there)
Without a ROS install the same node runs as `anyseg_node --ros-args --params-file <yaml>`.
"""

# ruff: noqa: I001  (ruff takes `launch` for this repository's launch/ folder and would split it)
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition, UnlessCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

PACKAGE = "anyseg_ros"
NODE_NAME = "anyseg_node"
EXECUTABLE = "anyseg_node"  # the console scripts in setup.py
LIFECYCLE_EXECUTABLE = "anyseg_lifecycle_node"

ARGUMENTS = {  # name: (default, description)
    "namespace": ("", "namespace for the node and its relative topics"),
    "use_sim_time": ("false", "follow /clock (simulator, anyseg-replay --clock)"),
    "log_level": ("info", "ROS log level"),
    "lifecycle": ("false", "start the managed node anyseg_lifecycle_node"),
    "autostart": ("true", "lifecycle only: configure and activate at once"),
    "respawn": ("false", "restart the node process if it dies"),
}


def generate_launch_description() -> LaunchDescription:
    arg = LaunchConfiguration
    default_params = PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "segment.yaml"])
    declared = [
        DeclareLaunchArgument(
            "params_file", default_value=default_params, description="YAML with the parameters"
        )
    ]
    declared += [
        DeclareLaunchArgument(name, default_value=default, description=text)
        for name, (default, text) in ARGUMENTS.items()
    ]
    common = {
        "package": PACKAGE,
        "name": NODE_NAME,
        "namespace": arg("namespace"),
        "parameters": [
            arg("params_file"),
            {"use_sim_time": ParameterValue(arg("use_sim_time"), value_type=bool)},
        ],
        "arguments": ["--ros-args", "--log-level", arg("log_level")],
        "respawn": arg("respawn"),
        "output": "screen",
        "emulate_tty": True,
    }
    plain = Node(executable=EXECUTABLE, condition=UnlessCondition(arg("lifecycle")), **common)
    managed = LifecycleNode(
        executable=LIFECYCLE_EXECUTABLE, condition=IfCondition(arg("lifecycle")), **common
    )

    def transition(transition_id: int, **kwargs) -> EmitEvent:
        return EmitEvent(
            event=ChangeState(
                lifecycle_node_matcher=matches_action(managed), transition_id=transition_id
            ),
            **kwargs,
        )

    # autostart: configure as soon as it is up, activate once configure succeeded (only after
    # configuring, so a later manual deactivate is not undone). Without lifecycle:=true the
    # managed node is not launched and these match nothing.
    configure = transition(Transition.TRANSITION_CONFIGURE, condition=IfCondition(arg("autostart")))
    activate = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=managed,
            start_state="configuring",
            goal_state="inactive",
            entities=[transition(Transition.TRANSITION_ACTIVATE)],
        ),
        condition=IfCondition(arg("autostart")),
    )
    return LaunchDescription([*declared, plain, managed, activate, configure])
