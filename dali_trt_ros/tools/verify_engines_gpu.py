"""Verify the CUDA engine paths on a GPU machine; exit non-zero on a mismatch.

For each ONNX model (default: every model prepare_models has put in the cache), one input batch
is made by
a DALI GPU pipeline (nvJPEG decode -> resize -> normalize for image inputs, else an upload of
random data) and run through:

  ort-cpu            ONNX Runtime CPU, host input (the reference)
  ort-cuda-host      ONNX Runtime CUDA, host input
  ort-cuda-zerocopy  ONNX Runtime CUDA, the DALI GPU output bound by address (no host copy)
  ort-cuda-device    as above, outputs left on the GPU and copied back with cuda_runtime

Outputs must match the reference within ``atol + rtol * max|reference|``; the table shows the
largest difference and the median time per run. The CUDA runtime binding (libcudart through
ctypes) that TensorRT buffers use is also exercised (copy round trip, stream wait).

    python -m dali_trt_ros.tools.verify_engines_gpu [model.onnx ...] [--cache-dir DIR] [--runs 50]
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np


def _jpeg_bytes(width, height):
    import cv2
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(0)
    image = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                      (x + y) % 256], axis=-1).astype(np.uint8)
    image = np.clip(image + rng.integers(0, 40, image.shape), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode('.jpg', image)
    assert ok
    return encoded.reshape(-1)


def _image_layout(tensor):
    """Return ('CHW'|'HWC', batch, height, width) for a 3-channel float image input, or None."""
    shape = tensor.shape
    if len(shape) != 4 or tensor.dtype != np.float32:
        return None
    batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else 1
    if shape[1] == 3 and all(isinstance(d, int) and d > 0 for d in shape[2:]):
        return 'CHW', batch, shape[2], shape[3]
    if shape[3] == 3 and all(isinstance(d, int) and d > 0 for d in shape[1:3]):
        return 'HWC', batch, shape[1], shape[2]
    return None


def dali_input(tensor, decoder='mixed'):
    """Build and run a DALI GPU pipeline producing one batch for ``tensor``; return outputs."""
    from nvidia.dali import fn, pipeline_def, types
    layout = _image_layout(tensor)
    if layout is None:
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in tensor.shape]
        data = np.random.default_rng(0).random(shape).astype(tensor.dtype)

        @pipeline_def(batch_size=shape[0], num_threads=2, device_id=0)
        def upload():
            return fn.external_source(source=lambda: list(data), batch=True, device='gpu')
        pipe = upload()
    else:
        order, batch, height, width = layout
        jpeg = _jpeg_bytes(640, 480)

        @pipeline_def(batch_size=batch, num_threads=2, device_id=0)
        def images():
            encoded = fn.external_source(source=lambda: [jpeg] * batch, batch=True)
            image = fn.decoders.image(encoded, device=decoder, output_type=types.RGB)
            if decoder == 'cpu':
                image = image.gpu()
            image = fn.resize(image, resize_x=width, resize_y=height)
            return fn.crop_mirror_normalize(image, dtype=types.FLOAT, output_layout=order,
                                            mean=[127.5] * 3, std=[127.5] * 3)
        pipe = images()
    pipe.build()
    return pipe, pipe.run()[0]


def _timed(function, runs):
    function()  # warm-up (allocations, cuDNN algorithm search)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - start) * 1e3)
    return result, statistics.median(times)


def _to_host(outputs, cuda):
    host = {}
    for name, value in outputs.items():
        array = np.empty(value.shape, value.dtype)
        stream = cuda.stream_create()
        cuda.memcpy_async(array.ctypes.data, value.data_ptr, value.nbytes, 2, stream)
        cuda.stream_synchronize(stream)
        cuda.stream_destroy(stream)
        host[name] = array
    return host


def verify_model(path, runs, atol, rtol):
    """Run the four ways on one model; return (rows for the table, ok)."""
    from dali_trt_ros.engines import device_buffer_from_dali, load_engine
    from dali_trt_ros.engines.cuda_runtime import cuda_runtime
    cpu = load_engine({'model': path, 'providers': ['cpu']})
    gpu = load_engine({'model': path, 'providers': ['cuda']})
    if len(cpu.inputs) != 1:
        raise SystemExit(f'{path}: this check feeds one input; the model has {len(cpu.inputs)}')
    tensor = cpu.inputs[0]
    try:
        pipe, dali_output = dali_input(tensor)
    except RuntimeError as error:  # no nvJPEG ('mixed') in this DALI build
        print(f'  mixed decoding failed ({error}); decoding on the CPU, resizing on the GPU')
        pipe, dali_output = dali_input(tensor, decoder='cpu')
    device_input = device_buffer_from_dali(dali_output)
    print(f'  DALI output: {device_input.shape} {device_input.dtype}, stream attribute '
          f'{type(getattr(dali_output.as_tensor(), "stream", None)).__name__}')
    host_input = np.array(dali_output.as_cpu().as_array()).reshape(device_input.shape)
    name = tensor.name
    reference, cpu_ms = _timed(lambda: cpu.run({name: host_input}), runs)
    cuda = cuda_runtime()
    variants = [
        ('ort-cuda-host', lambda: gpu.run({name: host_input})),
        ('ort-cuda-zerocopy', lambda: gpu.run({name: device_input})),
        ('ort-cuda-device', lambda: gpu.run({name: device_input}, outputs_on_device=True)),
    ]
    rows = [(os.path.basename(path), 'ort-cpu', 0.0, cpu_ms, True)]
    ok = True
    for label, function in variants:
        result, ms = _timed(function, runs)
        if label == 'ort-cuda-device':
            result = _to_host(result, cuda)
        worst = 0.0
        passed = True
        for out_name, expected in reference.items():
            diff = float(np.max(np.abs(result[out_name].astype(np.float64) - expected)))
            worst = max(worst, diff)
            passed &= diff <= atol + rtol * float(np.max(np.abs(expected)))
        rows.append((os.path.basename(path), label, worst, ms, passed))
        ok &= passed
    del pipe
    cpu.close()
    gpu.close()
    return rows, ok


def check_cuda_bindings():
    """Round-trip data through the CUDA runtime binding; return printable result lines."""
    from dali_trt_ros.engines.cuda_runtime import cuda_runtime
    from dali_trt_ros.errors import CudaError
    data = np.arange(1 << 20, dtype=np.float32)
    try:
        cuda = cuda_runtime()
        line = _round_trip(f'libcudart ({cuda.path})', cuda, data)
    except CudaError as error:
        return [f'libcudart: FAILED: {error}'], False
    return [line], line.endswith('identical')


def _round_trip(name, cuda, data):
    """Copy ``data`` host -> device -> device -> host across two streams; describe the result."""
    from dali_trt_ros.engines.cuda_runtime import DEVICE_TO_DEVICE, DEVICE_TO_HOST, HOST_TO_DEVICE
    cuda.set_device(0)
    device_name, capability = cuda.device_properties(0)
    stream, other = cuda.stream_create(), cuda.stream_create()
    event = cuda.event_create()
    first, second = cuda.malloc(data.nbytes), cuda.malloc(data.nbytes)
    back = np.zeros_like(data)
    cuda.memcpy_async(first, data.ctypes.data, data.nbytes, HOST_TO_DEVICE, other)
    cuda.event_record(event, other)
    cuda.stream_wait_event(stream, event)
    cuda.memcpy_async(second, first, data.nbytes, DEVICE_TO_DEVICE, stream)
    cuda.memcpy_async(back.ctypes.data, second, data.nbytes, DEVICE_TO_HOST, stream)
    cuda.stream_synchronize(stream)
    same = bool(np.array_equal(back, data))
    for pointer in (first, second):
        cuda.free(pointer)
    cuda.event_destroy(event)
    cuda.stream_destroy(stream)
    cuda.stream_destroy(other)
    return (f'{name}: {device_name} sm {capability[0]}.{capability[1]}, 4 MiB '
            f'H2D->D2D->D2H across two streams {"identical" if same else "DIFFERENT"}')


def prepared_models(cache_dir=None):
    """Return the ONNX paths of every model in the cache; exit with advice when there is none."""
    from dali_trt_ros.errors import ModelError
    from dali_trt_ros.models import MODELS, verify_model as verify_prepared
    paths = []
    for name in sorted(MODELS):
        try:
            paths.append(str(verify_prepared(name, cache_dir).path))
        except ModelError as error:
            print(f'{name}: skipped ({error})', file=sys.stderr)
    if not paths:
        raise SystemExit('no prepared model found: run prepare_models (or name ONNX files)')
    return paths


def main(argv=None):
    """Run the checks; return 0 if every path matched the CPU reference."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('models', nargs='*',
                        help='ONNX models (default: every prepared model in the cache)')
    parser.add_argument('--cache-dir', help='model cache (default: the usual one)')
    parser.add_argument('--runs', type=int, default=50)
    parser.add_argument('--atol', type=float, default=1e-3)
    parser.add_argument('--rtol', type=float, default=1e-3,
                        help='relative to the largest |reference| value of each output')
    args = parser.parse_args(argv)
    models = args.models or prepared_models(args.cache_dir)
    binding_lines, all_ok = check_cuda_bindings()
    print('CUDA bindings:')
    for line in binding_lines:
        print('  ' + line)
    table = []
    for path in models:
        print(f'model {path}')
        rows, ok = verify_model(path, args.runs, args.atol, args.rtol)
        table += rows
        all_ok &= ok
    print(f'\n{"model":28} {"path":18} {"max abs diff":>13} {"median ms":>10}  ok')
    for model, label, diff, ms, ok in table:
        print(f'{model[:28]:28} {label:18} {diff:13.3g} {ms:10.3f}  {"yes" if ok else "NO"}')
    print(f'tolerance: atol {args.atol} + rtol {args.rtol} * max|reference|')
    return 0 if all_ok else 1


if __name__ == '__main__':
    sys.exit(main())
