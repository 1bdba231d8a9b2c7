"""Checks that configured and fed tensors match what a model really has.

Every backend calls :func:`validate_bindings` when it loads a model and :func:`check_feeds` on
each run, so a wrong name, rank, size or dtype fails early with a message listing what the model
actually has.
"""

import numpy as np

from dali_trt_ros.engines.base import DeviceBuffer, format_shape, is_dynamic_dim
from dali_trt_ros.errors import BindingMismatchError


def describe_tensors(tensors):
    """Return a one-line listing of tensors, e.g. 'images (1, 3, 300, 300) float32'."""
    return '; '.join(tensor.describe() for tensor in tensors) or '(none)'


def shape_mismatch(expected, actual):
    """Return why shape ``expected`` cannot bind to ``actual``, or '' if it can.

    A dynamic entry on either side matches any size; an expected shape of None matches all.
    """
    if expected is None:
        return ''
    if len(expected) != len(actual):
        return f'rank {len(expected)} != {len(actual)}'
    for axis, (want, have) in enumerate(zip(expected, actual)):
        if is_dynamic_dim(want) or is_dynamic_dim(have):
            continue
        if int(want) != int(have):
            return f'dimension {axis} is {want}, the model has {have}'
    return ''


def validate_bindings(configured, actual, kind, model_name):
    """Check configured tensors (names, shapes, dtypes) against the model's ``actual`` tensors.

    ``configured`` may be empty (nothing to check) or name a subset; ``kind`` is 'input' or
    'output'. Raises BindingMismatchError listing every problem and what the model has.
    """
    by_name = {tensor.name: tensor for tensor in actual}
    problems = []
    for want in configured:
        have = by_name.get(want.name)
        if have is None:
            problems.append(f'no {kind} named {want.name!r}')
            continue
        why = shape_mismatch(want.shape, have.shape)
        if why:
            problems.append(f'{kind} {want.name!r} shape {format_shape(want.shape)}: {why}')
        if want.dtype is not None and have.dtype is not None and want.dtype != have.dtype:
            problems.append(f'{kind} {want.name!r} dtype {want.dtype.name} != {have.dtype.name}')
    if problems:
        raise BindingMismatchError(
            f'{model_name}: configured {kind}s do not match the model: ' + '; '.join(problems)
            + f'. The model has {kind}s: {describe_tensors(actual)}. '
            'Fix the engine configuration (or use the model it was written for).')


def check_feeds(feeds, inputs, model_name):
    """Check a run's feeds (name -> ndarray or DeviceBuffer) against the engine inputs.

    Returns the feeds with host arrays made C-contiguous; raises BindingMismatchError on a
    missing or unknown name, wrong rank, size or dtype.
    """
    expected = {tensor.name: tensor for tensor in inputs}
    missing = sorted(set(expected) - set(feeds))
    unknown = sorted(set(feeds) - set(expected))
    if missing or unknown:
        raise BindingMismatchError(
            f'{model_name}: feeds do not match the inputs (missing {missing}, unknown {unknown}); '
            f'the engine takes: {describe_tensors(inputs)}')
    checked = {}
    for name, value in feeds.items():
        if not isinstance(value, (np.ndarray, DeviceBuffer)):
            raise BindingMismatchError(
                f'{model_name}: feed {name!r} is a {type(value).__name__}; pass a numpy array or '
                'a DeviceBuffer (see device_buffer_from_dali)')
        want = expected[name]
        why = shape_mismatch(want.shape, value.shape)
        if why:
            raise BindingMismatchError(
                f'{model_name}: feed {name!r} has shape {tuple(value.shape)}: {why}; '
                f'the engine takes {want.describe()}')
        if want.dtype is not None and np.dtype(value.dtype) != want.dtype:
            raise BindingMismatchError(
                f'{model_name}: feed {name!r} is {np.dtype(value.dtype).name}, the engine takes '
                f'{want.dtype.name}; convert it in preprocessing (e.g. DALI output dtype)')
        if isinstance(value, np.ndarray):
            value = np.ascontiguousarray(value)
        checked[name] = value
    return checked
