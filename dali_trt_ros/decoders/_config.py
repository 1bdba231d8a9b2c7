"""Small validators for the ``decoder:`` mapping of a model configuration.

Every failure raises ConfigError with the dotted key path, so the operator can find the line.
"""

import math

from dali_trt_ros.errors import ConfigError


def check_mapping(value, path):
    """Return ``value`` if it is a mapping, else raise ConfigError naming ``path``."""
    if not isinstance(value, dict):
        raise ConfigError(f'{path} must be a mapping, got {type(value).__name__}')
    return value


def reject_unknown_keys(mapping, allowed, path):
    """Raise ConfigError if ``mapping`` has keys outside ``allowed`` (catches typos early)."""
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise ConfigError(f'{path}: unknown key(s) {", ".join(map(str, unknown))}; '
                          f'allowed keys are {", ".join(sorted(allowed))}')


def required(mapping, key, path):
    """Return ``mapping[key]`` or raise ConfigError naming the missing key."""
    if key not in mapping or mapping[key] is None:
        raise ConfigError(f'{path}.{key} is required but missing')
    return mapping[key]


def number(value, path, low=None, high=None, integer=False):
    """Validate a (finite) number inside [low, high]; return it as float or int."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f'{path} must be a number, got {value!r}')
    if not math.isfinite(value):
        raise ConfigError(f'{path} must be finite, got {value!r}')
    if integer and int(value) != value:
        raise ConfigError(f'{path} must be an integer, got {value!r}')
    if low is not None and value < low:
        raise ConfigError(f'{path} must be >= {low}, got {value!r}')
    if high is not None and value > high:
        raise ConfigError(f'{path} must be <= {high}, got {value!r}')
    return int(value) if integer else float(value)


def optional_positive_int(value, path):
    """Validate an optional count (None or an integer >= 1)."""
    if value is None:
        return None
    return number(value, path, low=1, integer=True)


def number_list(value, path, low=None, integer=False, length=None):
    """Validate a non-empty list of numbers (optionally of a given length)."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f'{path} must be a non-empty list, got {value!r}')
    if length is not None and len(value) != length:
        raise ConfigError(f'{path} must have {length} entries, got {len(value)}')
    return [number(item, f'{path}[{i}]', low=low, integer=integer) for i, item in enumerate(value)]


def choice(value, allowed, path):
    """Validate that ``value`` is one of ``allowed`` (case-sensitive strings)."""
    if value not in allowed:
        raise ConfigError(f'{path} must be one of {", ".join(map(str, allowed))}, got {value!r}')
    return value


def probability(value, path):
    """Validate a threshold in [0, 1]."""
    return number(value, path, low=0.0, high=1.0)
