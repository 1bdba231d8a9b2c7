"""Start one perception_node for three cameras (front, left, right) sharing one pipeline.

Example:
  ros2 launch dali_trt_ros multi_camera.launch.py
  ros2 launch dali_trt_ros multi_camera.launch.py cameras:=front,rear backend:=tensorrt
Frames of the cameras that arrive within batch_timeout_ms run as one batch; topics are
<camera>/image_raw in and <camera>/detections, segmentation, overlay, label_info out.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration


def generate_launch_description():
    """Include perception.launch.py with the multi-camera parameters file."""
    share = get_package_share_directory('dali_trt_ros')
    arguments = ('cameras', 'namespace', 'params_file', 'backend', 'input_transport',
                 'log_level', 'dds_profile')
    defaults = {'cameras': 'front,left,right', 'namespace': '', 'backend': '',
                'input_transport': '', 'log_level': 'info', 'dds_profile': '',
                'params_file': os.path.join(share, 'config', 'perception_multi_camera.yaml')}
    return LaunchDescription([
        *[DeclareLaunchArgument(name, default_value=defaults[name],
                                description='See perception.launch.py.')
          for name in arguments],
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(share, 'launch',
                                                       'perception.launch.py')),
            launch_arguments={name: LaunchConfiguration(name) for name in arguments}.items()),
    ])
