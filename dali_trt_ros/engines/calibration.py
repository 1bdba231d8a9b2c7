"""INT8 calibration data: host batches made by the real preprocessing from a folder of images.

The batches must look exactly like what the engine sees at run time, so they come from the
package's preprocessing, chosen the way the node chooses it (``preprocessor_batch_fn`` goes
through ``create_preprocessor``: DALI with nvJPEG where it works, CPU decode + GPU resize on
Jetson builds without nvJPEG, the CPU backend without a GPU). The generator itself only takes a
function ``list of encoded image bytes -> (k, ...) array`` and is independent of DALI and
TensorRT. TensorRT calibrates an explicit-batch network at the calibration profile's opt shape,
so every batch has exactly that shape. The TensorRT calibrator (in tensorrt_engine) is a thin
adapter over it.
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


def calibration_data_sha256(image_paths, preprocess_config, batch_shape, max_batches):
    """Return a hash of everything the calibration scales depend on.

    That is the image names and bytes, the preprocessing settings and the amount of data used;
    a change in any of them invalidates cached engines and calibration caches.
    """
    digest = hashlib.sha256()
    settings = {'preprocess': preprocess_config, 'batch_shape': batch_shape,
                'max_batches': max_batches}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in image_paths:
        digest.update(os.path.basename(path).encode() + b'\0')
        with open(path, 'rb') as stream:
            digest.update(hashlib.sha256(stream.read()).digest())
    return digest.hexdigest()


def calibration_batches(image_paths, make_batch, batch_shape, max_batches=None):
    """Yield C-contiguous batches of exactly ``batch_shape`` from the images.

    ``batch_shape`` is the calibration profile's opt shape (batch first). ``make_batch(list of
    bytes)`` returns a (k, ...) array with one row per image it could process (k may be smaller:
    corrupt images are skipped, and rows carry over to the next batch). A tail of fewer rows
    than a batch is dropped. Stops after ``max_batches`` batches.
    """
    batch_shape = tuple(int(dim) for dim in batch_shape)
    batch_size = batch_shape[0]
    if batch_size < 1:
        raise ConfigError(f'calibration batch shape {batch_shape} has no rows')
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
        if len(rows) and tuple(rows.shape[1:]) != batch_shape[1:]:
            raise ConfigError(f'calibration.preprocess makes rows of shape {rows.shape[1:]}, '
                              f'but the engine calibrates at {batch_shape}: give calibration the '
                              'same preprocessing mapping the node uses for this model')
        pending.extend(rows)
        while len(pending) >= batch_size:
            batch, pending = pending[:batch_size], pending[batch_size:]
            yield np.ascontiguousarray(np.stack(batch))
            produced += 1
            if max_batches is not None and produced >= max_batches:
                return
    if produced == 0:
        raise ConfigError(f'calibration: {len(image_paths)} image(s) gave no full batch of '
                          f'{batch_size}; add images or lower the opt batch')
    if pending:
        LOG.info('calibration: %d leftover row(s) dropped (not a full batch)', len(pending))


class CalibrationPreprocessing:
    """``make_batch`` for calibration_batches, on the package's preprocessing for one input.

    Call it with a list of encoded images; close() frees the preprocessor (a DALI pipeline holds
    GPU memory).
    """

    def __init__(self, preprocess_config, input_name, device_id=None):
        if not preprocess_config:
            raise ConfigError('calibration.preprocess is required for calibration from images: '
                              'give the same preprocessing mapping the node uses')
        from dali_trt_ros.preprocess.factory import create_preprocessor
        from dali_trt_ros.preprocess.spec import PreprocessSpec
        spec = PreprocessSpec.from_dict(preprocess_config)
        if input_name not in [item.name for item in spec.inputs]:
            raise ConfigError(f'calibration.preprocess has no input {input_name!r}; it has '
                              f'{[item.name for item in spec.inputs]}')
        self.input_name = input_name
        # The node's choice: GPU when DALI can (nvJPEG or CPU decode + GPU resize), else CPU.
        device = 'cpu' if device_id is None else 'auto'
        self.preprocessor = create_preprocessor(spec, device=device, device_id=device_id or 0,
                                                logger=LOG)
        self.backend = self.preprocessor.backend

    def __call__(self, encoded_images):
        """Return the preprocessed rows (k, ...) of the images that could be processed."""
        from dali_trt_ros.preprocess.inputs import EncodedFrame
        result = self.preprocessor.run([EncodedFrame(data) for data in encoded_images])
        for index, error in result.errors.items():
            LOG.warning('calibration image %d skipped: %s', index, error)
        rows = result.tensors.get(self.input_name)
        if rows is None and result.device_tensors and self.input_name in result.device_tensors:
            rows = np.array(result.device_tensors[self.input_name].as_cpu().as_array())
        return rows if rows is not None else []

    def close(self):
        """Release the preprocessor."""
        close = getattr(self.preprocessor, 'close', None)
        if close is not None:
            close()


def preprocessor_batch_fn(preprocess_config, input_name, device_id=None):
    """Return a CalibrationPreprocessing (``make_batch``) for one model input.

    ``device_id=None`` keeps preprocessing on the CPU; a GPU id lets create_preprocessor pick
    the GPU path this machine supports, like the node does.
    """
    return CalibrationPreprocessing(preprocess_config, input_name, device_id)
