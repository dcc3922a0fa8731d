"""Recorded frames without ROS: rosbag2 / ROS 1 bags (rosbags) and video files or frame folders (OpenCV)."""
