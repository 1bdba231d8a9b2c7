"""Typed checks for configuration values (YAML keys, ROS parameters), written once.

Every check takes the value and ``where`` it came from: a dotted YAML path (``input.mean``,
``decoder.anchors[2]``), a parameter name, or either prefixed by the file
(``models/ssd.yaml: input.mean``). A failed check raises :class:`ConfigError` that reads
``<where>: expected <what>, got <value>``, so the operator can go straight to the line.
Passing checks return the value in its canonical type (``int``, ``float``, ``tuple``...).
"""

import math

from dali_trt_ros.errors import ConfigError


def child(where, key):
    """Path of ``key`` inside ``where``: ``input`` + ``mean`` -> ``input.mean``; ints index.

    A YAML file as ``where`` is the document root: ``ssd.yaml`` + ``onnx`` -> ``ssd.yaml: onnx``.
    """
    if isinstance(key, int):
        return f'{where}[{key}]'
    if str(where).endswith(('.yaml', '.yml')):
        return f'{where}: {key}'
    return f'{where}.{key}' if where else str(key)


def invalid(where, expected, value):
    """Make the ConfigError for a value that is not what ``where`` expects (raise it)."""
    return ConfigError(f'{where}: expected {expected}, got {value!r}')


def mapping(value, where):
    """Return ``value`` if it is a dict (a YAML mapping)."""
    if not isinstance(value, dict):
        raise invalid(where, 'a mapping', value)
    return value


def known_keys(value, allowed, where):
    """Return the mapping ``value`` after checking it has no key outside ``allowed`` (typos)."""
    mapping(value, where)
    unknown = sorted(set(value) - set(allowed), key=str)
    if unknown:
        raise ConfigError(f'{where}: unknown key(s) {", ".join(map(str, unknown))}; '
                          f'known keys: {", ".join(sorted(map(str, allowed)))}')
    return value


def required(value, key, where):
    """Return ``value[key]``; a missing or null key is an error naming it."""
    if key not in value or value[key] is None:
        raise ConfigError(f'{child(where, key)}: required but missing')
    return value[key]


def number(value, where, low=None, high=None):
    """Return a finite number in [low, high] as float (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise invalid(where, 'a finite number', value)
    _check_range(value, where, low, high)
    return float(value)


def integer(value, where, low=None, high=None):
    """Return an integer in [low, high] (2.0 is accepted as 2; 2.5 and true are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or (isinstance(value, float) and not value.is_integer()):
        raise invalid(where, 'an integer', value)
    _check_range(value, where, low, high)
    return int(value)


def _check_range(value, where, low, high):
    if (low is not None and value < low) or (high is not None and value > high):
        span = (f'{low}..{high}' if low is not None and high is not None
                else f'>= {low}' if low is not None else f'<= {high}')
        raise invalid(where, f'a value {span}', value)


def probability(value, where):
    """Return a probability or threshold in [0, 1] as float."""
    return number(value, where, low=0.0, high=1.0)


def boolean(value, where):
    """Return ``value`` if it is true or false (YAML ``yes``/``1`` are not accepted)."""
    if not isinstance(value, bool):
        raise invalid(where, 'true or false', value)
    return value


def text(value, where):
    """Return a non-empty string."""
    if not isinstance(value, str) or not value:
        raise invalid(where, 'a non-empty string', value)
    return value


def choice(value, allowed, where):
    """Return ``value`` if it is one of ``allowed`` (exact match)."""
    if value not in allowed:
        raise invalid(where, f'one of {", ".join(map(str, allowed))}', value)
    return value


def numbers(value, where, length=None, low=None, high=None, whole=False):
    """Return a non-empty list of numbers as a tuple (of ints when ``whole``)."""
    count = f'{length} numbers' if length is not None else 'a non-empty list of numbers'
    if not isinstance(value, (list, tuple)) or not value \
            or (length is not None and len(value) != length):
        raise invalid(where, count, value)
    check = integer if whole else number
    return tuple(check(item, child(where, i), low=low, high=high)
                 for i, item in enumerate(value))


def per_channel(value, where, channels=3, nonzero=False):
    """Return ``channels`` floats from one number (same for every channel) or a list of them."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * channels
    if not isinstance(value, (list, tuple)) or len(value) != channels:
        raise invalid(where, f'a number or {channels} numbers', value)
    values = numbers(value, where, length=channels)
    if nonzero and 0.0 in values:
        raise invalid(where, 'numbers other than 0 (they divide)', value)
    return values


def optional(check, value, where, *args, **kwargs):
    """Return None for a missing (None) value, else ``check(value, where, ...)``."""
    return None if value is None else check(value, where, *args, **kwargs)
