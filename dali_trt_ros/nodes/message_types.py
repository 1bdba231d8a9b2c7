"""Helpers of the ROS tools: message classes from type names, rcl's share of argv."""

import importlib


def message_class(type_name):
    """Import the rclpy message class of 'pkg/msg/Name'; ValueError saying what to install."""
    parts = type_name.split('/')
    if len(parts) != 3 or parts[1] != 'msg':
        raise ValueError(f'type {type_name!r}: expected package/msg/Name')
    try:
        return getattr(importlib.import_module(f'{parts[0]}.msg'), parts[2])
    except (ImportError, AttributeError):
        raise ValueError(f'type {type_name} is not available to rclpy here; install the '
                         f'{parts[0]} package (ros-$ROS_DISTRO-{parts[0].replace("_", "-")})'
                         ) from None


def split_ros_args(argv):
    """Split a tool's arguments: (its own, ['prog', '--ros-args', ...] for rclpy.init)."""
    if '--ros-args' not in argv:
        return list(argv), ['tool']
    index = argv.index('--ros-args')
    return list(argv[:index]), ['tool', *argv[index:]]
