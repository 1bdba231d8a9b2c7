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

from dali_trt_ros import validation as check
from dali_trt_ros.errors import ConfigError
from dali_trt_ros.models.cache import default_cache_dir
from dali_trt_ros.preprocess.spec import InputSpec

PACKAGE = 'dali_trt_ros'
TOP_LEVEL_REQUIRED = ('name', 'description', 'trained', 'source', 'onnx', 'labels', 'input',
                      'outputs', 'decoder')
TOP_LEVEL_OPTIONAL = ('license', 'notes')
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
    inputs = _check_input(raw['input'], check.child(where, 'input'))
    outputs = _check_outputs(raw['outputs'], check.child(where, 'outputs'))
    decoder = _check_decoder(raw['decoder'], outputs, check.child(where, 'decoder'))
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


def _check_top_level(raw, where):
    check.known_keys(raw, TOP_LEVEL_REQUIRED + TOP_LEVEL_OPTIONAL, where)
    for key in TOP_LEVEL_REQUIRED:
        check.required(raw, key, where)
    for key in ('name', 'description', 'onnx', 'labels'):
        check.text(raw[key], check.child(where, key))
    check.boolean(raw['trained'], check.child(where, 'trained'))
    source = check.mapping(raw['source'], check.child(where, 'source'))
    needed = ('generator',) if 'generator' in source else ('package', 'version', 'sha256')
    for key in needed:
        if not source.get(key):
            raise ConfigError(f'{where}: source.{key} is required (a registry package needs '
                              'package, version and sha256; a generated model needs generator)')


def _check_input(spec, where):
    # The preprocessing's own rules, so a description loads exactly when its input builds.
    InputSpec.from_dict(spec, where)
    return dict(spec)


def _check_outputs(outputs, where):
    if not isinstance(outputs, list) or not outputs:
        raise check.invalid(where, 'a non-empty list of ONNX output names', outputs)
    return [check.text(name, check.child(where, index)) for index, name in enumerate(outputs)]


def _check_decoder(decoder, outputs, where):
    check.mapping(decoder, where)
    check.choice(decoder.get('type'), DECODER_TYPES, check.child(where, 'type'))
    for key in DECODER_OUTPUT_KEYS:
        if key in decoder:
            check.choice(decoder[key], outputs, check.child(where, key))
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
