"""The one validation helper: canonical values back, and messages that name where and what."""

import pytest

from dali_trt_ros import validation as check
from dali_trt_ros.errors import ConfigError


def test_valid_values_come_back_in_canonical_types():
    assert check.number(3, 'a') == 3.0 and isinstance(check.number(3, 'a'), float)
    assert check.integer(2.0, 'a', low=1) == 2 and isinstance(check.integer(2.0, 'a'), int)
    assert check.probability(1, 'a') == 1.0
    assert check.boolean(False, 'a') is False
    assert check.choice('NCHW', ('NCHW', 'NHWC'), 'a') == 'NCHW'
    assert check.numbers([1, 2.5], 'a') == (1.0, 2.5)
    assert check.numbers([1, 2], 'a', whole=True) == (1, 2)
    assert check.per_channel(127.5, 'a') == (127.5, 127.5, 127.5)
    assert check.per_channel([1, 2, 3], 'a') == (1.0, 2.0, 3.0)
    assert check.optional(check.integer, None, 'a') is None
    assert check.required({'k': 0}, 'k', 'a') == 0
    assert check.child('input', 'mean') == 'input.mean'
    assert check.child('input.mean', 2) == 'input.mean[2]'
    assert check.child('', 'models') == 'models'
    assert check.child('config/models/ssd.yaml', 'input') == 'config/models/ssd.yaml: input'


@pytest.mark.parametrize('call, message', [
    (lambda: check.per_channel('x', 'models/ssd.yaml: input.mean'),
     "models/ssd.yaml: input.mean: expected a number or 3 numbers, got 'x'"),
    (lambda: check.per_channel([1, 'x', 3], 'input.mean'),
     "input.mean[1]: expected a finite number, got 'x'"),
    (lambda: check.per_channel([1, 0, 3], 'input.std', nonzero=True),
     'input.std: expected numbers other than 0 (they divide), got [1, 0, 3]'),
    (lambda: check.number(float('nan'), 'score_threshold'),
     'score_threshold: expected a finite number, got nan'),
    (lambda: check.number(True, 'x'), 'x: expected a finite number, got True'),
    (lambda: check.integer(2.5, 'device_id'), 'device_id: expected an integer, got 2.5'),
    (lambda: check.integer(0, 'input.width', low=1, high=8192),
     'input.width: expected a value 1..8192, got 0'),
    (lambda: check.integer(-1, 'cpu_threads', low=0),
     'cpu_threads: expected a value >= 0, got -1'),
    (lambda: check.probability(1.5, 'mask_threshold'),
     'mask_threshold: expected a value 0.0..1.0, got 1.5'),
    (lambda: check.boolean('yes', 'input.antialias'),
     "input.antialias: expected true or false, got 'yes'"),
    (lambda: check.text('', 'input.name'), "input.name: expected a non-empty string, got ''"),
    (lambda: check.choice('NWHC', ('NCHW', 'NHWC'), 'input.layout'),
     "input.layout: expected one of NCHW, NHWC, got 'NWHC'"),
    (lambda: check.numbers([1, 2], 'anchors.strides', length=3),
     'anchors.strides: expected 3 numbers, got [1, 2]'),
    (lambda: check.numbers([], 'anchors.strides'),
     'anchors.strides: expected a non-empty list of numbers, got []'),
    (lambda: check.mapping([1], 'decoder'), 'decoder: expected a mapping, got [1]'),
    (lambda: check.known_keys({'widht': 3}, ('width', 'height'), 'input'),
     'input: unknown key(s) widht; known keys: height, width'),
    (lambda: check.required({'output': None}, 'output', 'decoder'),
     'decoder.output: required but missing'),
])
def test_failures_name_where_and_what(call, message):
    with pytest.raises(ConfigError) as error:
        call()
    assert str(error.value) == message
