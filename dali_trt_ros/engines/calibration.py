"""INT8 calibration data: host batches made by the real preprocessing from a folder of images.

The batches must look exactly like what the engine sees at run time, so they come from the
package's preprocessing (``preprocessor_batch_fn``); the generator itself only takes a function
``list of encoded image bytes -> (k, ...) array`` and is independent of DALI and TensorRT. The
TensorRT calibrator class (in tensorrt_engine) is a thin adapter over it.
"""

import hashlib
import json
import logging
import os

import numpy as np

from dali_trt_ros.errors import ConfigError

LOG = logging.getLogger(__name__)
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')


def list_calibration_images(folder):
    """Return the JPEG/PNG files in ``folder`` (not recursive), sorted by name."""
    if not os.path.isdir(folder):
        raise ConfigError(f'calibration.images folder {folder!r} not found')
    paths = sorted(os.path.join(folder, name) for name in os.listdir(folder)
                   if name.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise ConfigError(f'calibration.images folder {folder!r} has no .jpg/.jpeg/.png files; '
                          'copy a few hundred representative camera frames there')
    return paths


def calibration_data_sha256(image_paths, preprocess_config, batch_size, max_batches):
    """Return a hash of everything the calibration scales depend on.

    That is the image names and bytes, the preprocessing settings and the amount of data used;
    a change in any of them invalidates cached engines and calibration caches.
    """
    digest = hashlib.sha256()
    settings = {'preprocess': preprocess_config, 'batch_size': batch_size,
                'max_batches': max_batches}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in image_paths:
        digest.update(os.path.basename(path).encode() + b'\0')
        with open(path, 'rb') as stream:
            digest.update(hashlib.sha256(stream.read()).digest())
    return digest.hexdigest()


def calibration_batches(image_paths, make_batch, batch_size, max_batches=None):
    """Yield C-contiguous batches of exactly ``batch_size`` rows from the images.

    ``make_batch(list_of_bytes)`` returns a (k, ...) array with one row per image it could
    process (k may be smaller: corrupt images are skipped, and rows carry over to the next
    batch). A tail of fewer than ``batch_size`` rows is dropped, since TensorRT calibrates with
    one fixed batch size. Stops after ``max_batches`` batches.
    """
    if batch_size < 1:
        raise ConfigError(f'calibration.batch_size must be >= 1, got {batch_size}')
    pending = []
    produced = 0
    for start in range(0, len(image_paths), batch_size):
        chunk = image_paths[start:start + batch_size]
        encoded = []
        for path in chunk:
            with open(path, 'rb') as stream:
                encoded.append(stream.read())
        rows = np.asarray(make_batch(encoded))
        if len(rows) < len(chunk):
            LOG.warning('calibration: %d of %d images in %s.. could not be preprocessed',
                        len(chunk) - len(rows), len(chunk), os.path.basename(chunk[0]))
        pending.extend(rows)
        while len(pending) >= batch_size:
            batch, pending = pending[:batch_size], pending[batch_size:]
            yield np.ascontiguousarray(np.stack(batch))
            produced += 1
            if max_batches is not None and produced >= max_batches:
                return
    if produced == 0:
        raise ConfigError(f'calibration: {len(image_paths)} image(s) gave no full batch of '
                          f'{batch_size}; add images or lower calibration.batch_size')
    if pending:
        LOG.info('calibration: %d leftover row(s) dropped (not a full batch)', len(pending))


def preprocessor_batch_fn(preprocess_config, input_name, device_id=None):
    """Return ``make_batch`` built on the package's DALI preprocessing for one model input.

    ``preprocess_config`` is the preprocessing mapping (PreprocessSpec.from_dict); with
    ``device_id=None`` DALI runs on the CPU, otherwise on that GPU. The result rows are host
    arrays in the input's layout and dtype.
    """
    if not preprocess_config:
        raise ConfigError('calibration.preprocess is required for calibration from images: give '
                          'the same preprocessing mapping the node uses')
    from dali_trt_ros.preprocess.dali_backend import DaliPreprocessor
    from dali_trt_ros.preprocess.inputs import EncodedFrame
    from dali_trt_ros.preprocess.spec import PreprocessSpec
    spec = PreprocessSpec.from_dict(preprocess_config)
    if input_name not in [item.name for item in spec.inputs]:
        raise ConfigError(f'calibration.preprocess has no input {input_name!r}; it has '
                          f'{[item.name for item in spec.inputs]}')
    preprocessor = DaliPreprocessor(spec, device_id=device_id)

    def make_batch(encoded_images):
        result = preprocessor.run([EncodedFrame(data) for data in encoded_images])
        for index, error in result.errors.items():
            LOG.warning('calibration image %d skipped: %s', index, error)
        rows = result.tensors.get(input_name)
        return rows if rows is not None else []
    return make_batch
