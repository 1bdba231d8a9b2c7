"""Model description files (config/models/<name>.yaml): loading and validation.

A description says what a model is (trained or not, where it came from), where its ONNX file
is in the model cache, its labels, how frames must be prepared for it (``input``, read by the
preprocessing) and how its outputs are decoded (``decoder``, read by the decoders). Every
problem raises ConfigError naming the file and the dotted key.
"""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dali_trt_ros.errors import ConfigError
from dali_trt_ros.models.cache import default_cache_dir

PACKAGE = 'dali_trt_ros'
TOP_LEVEL_REQUIRED = ('name', 'description', 'trained', 'source', 'onnx', 'labels', 'input',
                      'outputs', 'decoder')
TOP_LEVEL_OPTIONAL = ('license', 'notes')
INPUT_KEYS = ('name', 'width', 'height', 'resize', 'interpolation', 'antialias', 'color',
              'layout', 'dtype', 'mean', 'std')
# Optional: the letterbox fill value the preprocessing also accepts.
INPUT_OPTIONAL = ('pad_value',)
INPUT_CHOICES = {
    'resize': ('stretch', 'letterbox'),
    'interpolation': ('linear', 'nearest', 'cubic'),
    'color': ('RGB', 'BGR'),
    'layout': ('NCHW', 'NHWC'),
    'dtype': ('float32', 'float16'),
}
DECODER_TYPES = ('ssd', 'segmentation')
# Decoder keys that name ONNX outputs; each must be listed under ``outputs``.
DECODER_OUTPUT_KEYS = ('box_output', 'score_output', 'class_output', 'count_output',
                       'detection_output', 'output')


@dataclass(frozen=True)
class ModelDescription:
    """A validated model description; ``raw`` keeps the file's mapping untouched."""

    name: str
    description: str
    trained: bool
    source: dict
    onnx: str
    onnx_path: Path
    labels_path: Path
    labels: list
    input: dict
    outputs: list
    decoder: dict
    path: Path
    raw: dict = field(repr=False)

    @property
    def decoder_type(self):
        """Return 'ssd' or 'segmentation'."""
        return self.decoder['type']

    @property
    def num_classes(self):
        """Return the number of labels (background included where the model has one)."""
        return len(self.labels)


def config_dir():
    """Return the package's config folder: the source tree's, else the installed share one."""
    candidates = [Path(__file__).resolve().parents[2] / 'config',
                  Path(sys.prefix) / 'share' / PACKAGE / 'config']
    for candidate in candidates:
        if (candidate / 'models').is_dir():
            return candidate
    try:
        from ament_index_python.packages import get_package_share_directory
        installed = Path(get_package_share_directory(PACKAGE)) / 'config'
        if (installed / 'models').is_dir():
            return installed
    except (ImportError, LookupError, KeyError, ValueError):
        pass
    raise ConfigError(f'cannot find the {PACKAGE} config folder (looked in '
                      f'{", ".join(map(str, candidates))} and the ament index); source the '
                      'workspace setup file or pass a description file path')


def model_description_path(name_or_path):
    """Resolve a model name (config/models/<name>.yaml) or an explicit YAML path."""
    text = str(name_or_path)
    if text.endswith(('.yaml', '.yml')) or os.sep in text:
        path = Path(text).expanduser()
    else:
        path = config_dir() / 'models' / f'{text}.yaml'
    if not path.is_file():
        known = ''
        try:
            known = ', '.join(sorted(p.stem for p in (config_dir() / 'models').glob('*.yaml')))
        except ConfigError:
            pass
        raise ConfigError(f'model description {path} does not exist'
                          + (f'; known models: {known}' if known else ''))
    return path


def load_model_description(name_or_path, cache_dir=None):
    """Load and validate a model description; labels and the ONNX path come resolved."""
    import yaml
    path = model_description_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding='utf-8'))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f'{path}: cannot read the model description: {error}') from error
    where = str(path)
    _check_top_level(raw, where)
    inputs = _check_input(raw['input'], f'{where}: input')
    outputs = _check_outputs(raw['outputs'], f'{where}: outputs')
    decoder = _check_decoder(raw['decoder'], outputs, f'{where}: decoder')
    labels_path = _resolve_labels_path(raw['labels'], path)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    onnx_path = Path(raw['onnx']).expanduser()
    if not onnx_path.is_absolute():
        onnx_path = cache_dir / onnx_path
    return ModelDescription(
        name=raw['name'], description=raw['description'], trained=raw['trained'],
        source=dict(raw['source']), onnx=raw['onnx'], onnx_path=onnx_path,
        labels_path=labels_path, labels=read_labels(labels_path), input=inputs,
        outputs=outputs, decoder=decoder, path=path, raw=raw)


def read_labels(path):
    """Return the class names of a label file: one per line, index = line number."""
    try:
        lines = Path(path).read_text(encoding='utf-8').splitlines()
    except OSError as error:
        raise ConfigError(f'label file {path} cannot be read: {error}') from error
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ConfigError(f'label file {path} is empty')
    return [line.strip() for line in lines]


def _expect_type(value, expected, key, type_name):
    if isinstance(value, bool) and expected is not bool:
        raise ConfigError(f'{key} must be {type_name}, got {value!r}')
    if not isinstance(value, expected):
        raise ConfigError(f'{key} must be {type_name}, got {value!r}')
    return value


def _check_top_level(raw, where):
    _expect_type(raw, dict, f'{where}: the document', 'a mapping')
    for key in TOP_LEVEL_REQUIRED:
        if key not in raw or raw[key] is None:
            raise ConfigError(f'{where}: required key {key!r} is missing')
    unknown = sorted(set(raw) - set(TOP_LEVEL_REQUIRED) - set(TOP_LEVEL_OPTIONAL))
    if unknown:
        raise ConfigError(f'{where}: unknown key(s) {", ".join(unknown)}')
    for key in ('name', 'description', 'onnx', 'labels'):
        _expect_type(raw[key], str, f'{where}: {key}', 'a string')
    _expect_type(raw['trained'], bool, f'{where}: trained', 'true or false')
    source = _expect_type(raw['source'], dict, f'{where}: source', 'a mapping')
    needed = ('generator',) if 'generator' in source else ('package', 'version', 'sha256')
    for key in needed:
        if not source.get(key):
            raise ConfigError(f'{where}: source.{key} is required (a registry package needs '
                              'package, version and sha256; a generated model needs generator)')


def _check_input(spec, where):
    _expect_type(spec, dict, where, 'a mapping')
    missing = [key for key in INPUT_KEYS if key not in spec]
    if missing:
        raise ConfigError(f'{where}.{missing[0]} is required but missing')
    unknown = sorted(set(spec) - set(INPUT_KEYS) - set(INPUT_OPTIONAL))
    if unknown:
        raise ConfigError(f'{where}: unknown key(s) {", ".join(unknown)}; allowed keys are '
                          f'{", ".join(INPUT_KEYS + INPUT_OPTIONAL)}')
    _expect_type(spec['name'], str, f'{where}.name', 'a string')
    for key in ('width', 'height'):
        if _expect_type(spec[key], int, f'{where}.{key}', 'an integer') <= 0:
            raise ConfigError(f'{where}.{key} must be positive, got {spec[key]!r}')
    for key, allowed in INPUT_CHOICES.items():
        if spec[key] not in allowed:
            raise ConfigError(f'{where}.{key} must be one of {", ".join(allowed)}, '
                              f'got {spec[key]!r}')
    _expect_type(spec['antialias'], bool, f'{where}.antialias', 'true or false')
    for key in ('mean', 'std'):
        values = _expect_type(spec[key], list, f'{where}.{key}', 'a list of 3 numbers')
        if len(values) != 3:
            raise ConfigError(f'{where}.{key} must have 3 entries (one per channel), '
                              f'got {len(values)}')
        for index, value in enumerate(values):
            _expect_type(value, (int, float), f'{where}.{key}[{index}]', 'a number')
    if any(value <= 0 for value in spec['std']):
        raise ConfigError(f'{where}.std entries must be > 0, got {spec["std"]!r}')
    return dict(spec)


def _check_outputs(outputs, where):
    _expect_type(outputs, list, where, 'a list of ONNX output names')
    if not outputs:
        raise ConfigError(f'{where} must name at least one ONNX output')
    for index, name in enumerate(outputs):
        _expect_type(name, str, f'{where}[{index}]', 'a string')
    return list(outputs)


def _check_decoder(decoder, outputs, where):
    _expect_type(decoder, dict, where, 'a mapping')
    if decoder.get('type') not in DECODER_TYPES:
        raise ConfigError(f'{where}.type must be one of {", ".join(DECODER_TYPES)}, '
                          f'got {decoder.get("type")!r}')
    for key in DECODER_OUTPUT_KEYS:
        if key in decoder and decoder[key] not in outputs:
            raise ConfigError(f'{where}.{key} is {decoder[key]!r}, which is not one of the '
                              f'outputs ({", ".join(outputs)})')
    return dict(decoder)


def _resolve_labels_path(labels, description_path):
    path = Path(labels).expanduser()
    if path.is_absolute():
        return path
    # Label paths are relative to the config folder holding models/ (e.g. labels/coco.txt).
    base = description_path.parent
    if base.name == 'models':
        base = base.parent
    return base / path
