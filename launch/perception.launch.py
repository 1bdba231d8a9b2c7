"""Start perception_node for one camera (default) or several, with the large-image DDS profile.

Examples:
  ros2 launch dali_trt_ros perception.launch.py
  ros2 launch dali_trt_ros perception.launch.py namespace:=front input_transport:=compressed
  ros2 launch dali_trt_ros perception.launch.py cameras:=front,left backend:=tensorrt
Topics are relative to the namespace: image_raw (or image_raw/compressed) in; detections,
segmentation, overlay, label_info out; with cameras, each camera's topics under its name.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from dali_trt_ros.nodes.launch_support import dds_profile_environment, parse_camera_list

PACKAGE = 'dali_trt_ros'


def _node_actions(context):
    """Build the node from the resolved arguments (empty ones leave the params file's value)."""
    share = get_package_share_directory(PACKAGE)
    arg = {name: LaunchConfiguration(name).perform(context)
           for name in ('cameras', 'namespace', 'params_file', 'backend', 'input_transport',
                        'log_level', 'dds_profile')}
    actions = [SetEnvironmentVariable(name, value) for name, value in dds_profile_environment(
        os.path.join(share, 'config', 'fastdds_large_images.xml'), arg['dds_profile'],
        os.environ).items()]
    overrides = {}
    if arg['cameras']:
        overrides['cameras'] = parse_camera_list(arg['cameras'])
    for name in ('backend', 'input_transport'):
        if arg[name]:
            overrides[name] = arg[name]
    actions.append(Node(
        package=PACKAGE, executable='perception_node', name='perception_node',
        namespace=arg['namespace'], output='both',  # an exit's reason lands in the log too
        parameters=[arg['params_file'], overrides],
        arguments=['--ros-args', '--log-level', arg['log_level']]))
    return actions


def generate_launch_description():
    """Declare the arguments; the node is built once they are known."""
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument('cameras', default_value='',
                              description='Camera names, e.g. front,left (empty: one camera, '
                                          'topics in the namespace).'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node and its topics.'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'perception.yaml'),
                              description='Node parameters (YAML keyed /**).'),
        DeclareLaunchArgument('backend', default_value='',
                              description='onnxruntime or tensorrt (empty: the params file).'),
        DeclareLaunchArgument('input_transport', default_value='',
                              description='raw or compressed (empty: the params file).'),
        DeclareLaunchArgument('log_level', default_value='info',
                              description='debug, info, warn, error.'),
        DeclareLaunchArgument('dds_profile', default_value='',
                              description='Fast DDS profile (empty: the package profile, unless '
                                          'one is already exported). Use the same in every '
                                          'process of the graph.'),
        OpaqueFunction(function=_node_actions),
    ])
