"""Start perception_node on one camera, with the large-image Fast DDS profile.

Examples:
ros2 launch dali_trt_ros perception.launch.py camera:=/camera/image_raw
ros2 launch dali_trt_ros perception.launch.py camera:=/camera/image_raw/compressed
input_transport:=compressed
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    """Describe the perception node, its parameters file and the DDS profile."""
    share = get_package_share_directory('dali_trt_ros')
    profile = os.path.join(share, 'config', 'fastdds_large_images.xml')
    camera = LaunchConfiguration('camera')
    transport = LaunchConfiguration('input_transport')
    dds_profile = LaunchConfiguration('dds_profile')
    # The node subscribes to 'image' (raw) or 'image/compressed'; remap both to the camera.
    return LaunchDescription([
        DeclareLaunchArgument('camera', default_value='/camera/image_raw',
                              description='Camera topic (Image, or CompressedImage).'),
        DeclareLaunchArgument('input_transport', default_value='raw',
                              description='raw (sensor_msgs/Image) or compressed.'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'perception.yaml'),
                              description='Node parameters (YAML).'),
        DeclareLaunchArgument('dds_profile', default_value=profile,
                              description='Fast DDS profile; the same file must be used by '
                                          'the camera driver / bag player for large frames.'),
        # Fast DDS 3.x (Jazzy+) reads the first name, 2.x (Humble) the second.
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', dds_profile),
        SetEnvironmentVariable('FASTRTPS_DEFAULT_PROFILES_FILE', dds_profile),
        Node(package='dali_trt_ros', executable='perception_node', name='perception_node',
             output='screen',
             parameters=[LaunchConfiguration('params_file'), {'input_transport': transport}],
             remappings=[('image', camera), ('image/compressed', camera)]),
    ])
