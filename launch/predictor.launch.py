"""Launch predictor_node with its parameters file and a remappable camera topic.

ros2 launch video_predictor predictor.launch.py image_topic:=/my_camera/image_raw
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(get_package_share_directory("video_predictor"), "config", "predictor.yaml")
    return LaunchDescription([
        DeclareLaunchArgument(
            "params_file", default_value=default_params, description="Parameters file for predictor_node."),
        DeclareLaunchArgument(
            "image_topic", default_value="/camera/image_raw", description="Camera topic to predict from."),
        Node(
            package="video_predictor",
            executable="predictor_node",
            name="predictor_node",
            output="screen",
            parameters=[LaunchConfiguration("params_file")],
            remappings=[("/camera/image_raw", LaunchConfiguration("image_topic"))],
        ),
    ])
