"""Launch predictor_node with its parameters file, in a namespace, with a remappable camera topic.

ros2 launch video_predictor predictor.launch.py namespace:=robot1 image_topic:=front/image_raw \
    model:=/models/my.onnx use_sim_time:=true log_level:=debug [lifecycle:=true]

The node's topics are relative (camera/image_raw, predicted_frames, ...), so ``namespace``
moves them all (/robot1/camera/image_raw, /robot1/predicted_frames); /diagnostics stays
absolute. ``image_topic`` remaps the camera topic (its /compressed and camera_info follow).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from launch import LaunchDescription

ARGUMENTS = {  # name -> (default, description); params_file's default is the installed config/predictor.yaml
    "params_file": ("", "Parameters file for predictor_node."),
    "namespace": ("", "Namespace of the node and of its topics (e.g. robot1); empty: the root namespace."),
    "image_topic": ("camera/image_raw", "Camera topic to predict from (relative names are in the namespace)."),
    "model": ("", "Model file (.pt or .onnx); empty: the params file's model."),
    "use_sim_time": ("false", "Follow /clock (a bag replayed with --clock) instead of the wall clock."),
    "log_level": ("info", "Logging level: debug, info, warn, error or fatal."),
    "lifecycle": ("false", "Start predictor_lifecycle_node, a managed node: configure loads the model, "
                           "activate subscribes to the camera."),
}


def _node(context, *args, **kwargs):
    value = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    overrides = {"use_sim_time": value["use_sim_time"].lower() in ("true", "1", "yes")}
    if value["model"]:
        overrides["model"] = value["model"]
    lifecycle = value["lifecycle"].lower() in ("true", "1", "yes")
    action = LifecycleNode if lifecycle else Node
    return [action(
        package="video_predictor",
        executable="predictor_lifecycle_node" if lifecycle else "predictor_node",
        name="predictor_node",
        namespace=value["namespace"],
        output="screen",
        parameters=[value["params_file"], overrides],
        remappings=[("camera/image_raw", value["image_topic"])],
        arguments=["--ros-args", "--log-level", value["log_level"]],
    )]


def generate_launch_description() -> LaunchDescription:
    defaults = {name: default for name, (default, _) in ARGUMENTS.items()}
    defaults["params_file"] = os.path.join(get_package_share_directory("video_predictor"), "config", "predictor.yaml")
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=defaults[name], description=description)
         for name, (_, description) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_node)])
