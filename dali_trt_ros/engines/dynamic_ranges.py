"""Per-tensor INT8 dynamic ranges from a file, as an alternative to calibration.

Two formats are read. JSON: ``{"tensor": amax}``, ``{"tensor": [min, max]}`` or
``{"tensor": {"min": m, "max": M}}``. Text: one tensor per line, ``name amax`` or
``name min max`` (a colon after the name is allowed; ``#`` starts a comment). Names may contain
spaces or colons (``input:0``), so the numbers are taken from the end of the line. A single
``amax`` means the symmetric range [-amax, amax], which is what TensorRT uses for INT8.
"""

import json
import math

from dali_trt_ros.errors import ConfigError


def _range(where, low, high):
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise ConfigError(f'{where}: range values must be numbers, got {low!r}, {high!r}') \
            from None
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise ConfigError(f'{where}: need finite min < max, got [{low}, {high}]')
    return low, high


def _from_json_value(where, value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _range(where, -abs(value), abs(value))
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return _range(where, *value)
    if isinstance(value, dict) and set(value) == {'min', 'max'}:
        return _range(where, value['min'], value['max'])
    raise ConfigError(f'{where}: expected amax, [min, max] or {{"min": .., "max": ..}}, got '
                      f'{value!r}')


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_text(text, path):
    ranges = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        values = []
        while tokens and len(values) < 2 and _is_number(tokens[-1]):
            values.insert(0, tokens.pop())
        name = ' '.join(tokens).rstrip(':').strip()
        where = f'{path}:{number}'
        if not name or not values:
            raise ConfigError(f'{where}: expected "tensor_name amax" or "tensor_name min max", '
                              f'got {line!r}')
        if name in ranges:
            raise ConfigError(f'{where}: tensor {name!r} is listed twice')
        if len(values) == 1:
            amax = abs(float(values[0]))
            ranges[name] = _range(where, -amax, amax)
        else:
            ranges[name] = _range(where, *values)
    return ranges


def parse_dynamic_ranges(text, path='<dynamic ranges>'):
    """Parse dynamic-ranges text (JSON or line format) into name -> (min, max)."""
    stripped = text.lstrip()
    if stripped.startswith('{'):
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ConfigError(f'{path}: invalid JSON ({error})') from None
        ranges = {str(name): _from_json_value(f'{path}: {name}', value)
                  for name, value in data.items()}
    else:
        ranges = _parse_text(text, path)
    if not ranges:
        raise ConfigError(f'{path}: no tensor ranges found')
    return ranges


def load_dynamic_ranges(path):
    """Read and parse a dynamic-ranges file; raise ConfigError naming the file and line."""
    try:
        with open(path, encoding='utf-8') as stream:
            text = stream.read()
    except OSError as error:
        raise ConfigError(f'cannot read dynamic_ranges file {path!r}: {error}') from None
    return parse_dynamic_ranges(text, path)


def unmatched_ranges(ranges, network_tensor_names):
    """Return the names in ``ranges`` that the network does not have (likely typos)."""
    return sorted(set(ranges) - set(network_tensor_names))
