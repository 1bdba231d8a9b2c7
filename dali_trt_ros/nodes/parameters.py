"""Typed parameter declarations with descriptors; every invalid value becomes a ConfigError.

rclpy enforces a descriptor's type, range and read-only flag itself (``set_parameters`` on a
read-only parameter fails); what it raises at declaration time for a bad ``-p`` or YAML value
is turned here into a ConfigError that names the parameter, so the node can exit 2 with one
clear line instead of a traceback.
"""

import re

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.parameter import Parameter

from dali_trt_ros.errors import ConfigError
from dali_trt_ros.frame_stats import bounded_text

# A camera name becomes a namespace token: ROS 2 name rules, no slashes.
CAMERA_NAME = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')


def _declare(node, name, default, descriptor):
    try:
        return node.declare_parameter(name, default, descriptor).value
    except (ParameterException, TypeError, ValueError) as error:
        raise ConfigError(f'parameter {name!r}: {bounded_text(error, 300)}') from None


def choice(node, name, default, choices, description, read_only=True):
    """Declare a string parameter that must be one of `choices`."""
    descriptor = ParameterDescriptor(
        description=f'{description} One of: {", ".join(choices)}.', read_only=read_only,
        type=Parameter.Type.STRING.value)
    value = _declare(node, name, default, descriptor)
    if value not in choices:
        raise ConfigError(f'parameter {name!r} is {bounded_text(repr(value), 80)}; expected one '
                          f'of {list(choices)}')
    return value


def integer(node, name, default, low, high, description, read_only=True):
    """Declare an integer parameter in low..high (rclpy refuses values outside the range)."""
    descriptor = ParameterDescriptor(
        description=description, read_only=read_only, type=Parameter.Type.INTEGER.value,
        integer_range=[IntegerRange(from_value=low, to_value=high, step=1)])
    return _declare(node, name, default, descriptor)


def double(node, name, default, low, high, description, read_only=False):
    """Declare a floating-point parameter in low..high (rclpy refuses values outside the range)."""
    descriptor = ParameterDescriptor(
        description=description, read_only=read_only, type=Parameter.Type.DOUBLE.value,
        floating_point_range=[FloatingPointRange(from_value=low, to_value=high, step=0.0)])
    return _declare(node, name, default, descriptor)


def boolean(node, name, default, description, read_only=False):
    """Declare a boolean parameter."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only,
                                     type=Parameter.Type.BOOL.value)
    return _declare(node, name, default, descriptor)


def string(node, name, default, description, read_only=True):
    """Declare a string parameter."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only,
                                     type=Parameter.Type.STRING.value)
    return _declare(node, name, default, descriptor)


def string_array(node, name, description):
    """Declare a read-only list of strings (empty when not given)."""
    descriptor = ParameterDescriptor(description=description, read_only=True,
                                     type=Parameter.Type.STRING_ARRAY.value)
    value = _declare(node, name, Parameter.Type.STRING_ARRAY, descriptor)
    return [str(item) for item in (value or [])]


def camera_names(names):
    """Check the `cameras` parameter: namespace-safe, unique names."""
    for camera in names:
        if not CAMERA_NAME.match(camera):
            raise ConfigError(f"parameter 'cameras': {bounded_text(repr(camera), 80)} is not a "
                              'valid camera name (a letter, then letters, digits or _)')
    if len(set(names)) != len(names):
        raise ConfigError(f"parameter 'cameras' lists a camera twice: {names}")
    return names
