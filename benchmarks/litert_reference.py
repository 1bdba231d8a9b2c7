"""One-off check of the converted ONNX models against the original TFLite files (LiteRT).

Three steps, because LiteRT lives in its own venv (``pip install ai-edge-litert==2.3.0 numpy``)::

    .venv/bin/python benchmarks/litert_reference.py export DIR   # package venv: inputs + ONNX
    /path/litert-venv/bin/python benchmarks/litert_reference.py run DIR
    .venv/bin/python benchmarks/litert_reference.py compare DIR  # prints max differences

The ``run`` step needs only numpy and ai_edge_litert. LiteRT lacks MediaPipe's custom
``Convolution2DTransposeBias``, so ``run`` rewrites it into the builtin TRANSPOSE_CONV (same
computation) before interpreting the selfie model; the reference thus shares no code with the
ONNX conversion.
"""

import sys
from pathlib import Path

# The export step imports the package from this checkout; run needs only numpy and LiteRT.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SSD_IMAGES = ('astronaut', 'chelsea', 'coffee')
SELFIE_IMAGES = ('astronaut',)


def export(directory, cache_dir=None):
    """Write the TFLite files, NHWC inputs and the ONNX outputs for the comparison."""
    import cv2
    import numpy as np
    import onnxruntime as ort
    from skimage import data

    from dali_trt_ros.models import MODELS, SOURCES, load_model_description, prepare_model
    from dali_trt_ros.models.sources import cached_package_path, read_member

    directory.mkdir(parents=True, exist_ok=True)
    for name, images in (('ssd_mobilenetv2_oidv4', SSD_IMAGES),
                         ('selfie_segmentation', SELFIE_IMAGES)):
        recipe = MODELS[name]
        prepared = prepare_model(name, cache_dir)
        source = SOURCES[recipe.source]
        member = read_member(source, cached_package_path(source, prepared.path.parent))
        tflite = member[slice(*recipe.byte_range)] if recipe.byte_range else member
        (directory / f'{name}.tflite').write_bytes(tflite)
        description = load_model_description(name, cache_dir=prepared.path.parent)
        spec = description.input
        session = ort.InferenceSession(str(prepared.path), providers=['CPUExecutionProvider'])
        for image_name in images:
            resized = cv2.resize(getattr(data, image_name)(), (spec['width'], spec['height']),
                                 interpolation=cv2.INTER_LINEAR).astype(np.float32)
            nhwc = ((resized - np.float32(spec['mean'])) / np.float32(spec['std']))[None]
            np.save(directory / f'{name}__{image_name}__input.npy', nhwc)
            outputs = session.run(None, {spec['name']: nhwc.transpose(0, 3, 1, 2)})
            np.savez(directory / f'{name}__{image_name}__onnx.npz',
                     **dict(zip(description.outputs, outputs)))


def builtin_transpose_conv(tflite_bytes):
    """Return the model with Convolution2DTransposeBias rewritten as builtin TRANSPOSE_CONV."""
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(tflite_bytes, 0)
    graph = model.subgraphs[0]
    for operator in graph.operators:
        code = model.operatorCodes[operator.opcodeIndex]
        if code.customCode != b'Convolution2DTransposeBias':
            continue
        x, weights, bias = operator.inputs
        padding, stride_h, stride_w = np.frombuffer(bytes(operator.customOptions), np.int32)[:3]
        shape_buffer = schema.BufferT()
        shape_buffer.data = np.array(graph.tensors[operator.outputs[0]].shape,
                                     np.int32).tobytes()
        model.buffers.append(shape_buffer)
        shape_tensor = schema.TensorT()
        shape_tensor.shape, shape_tensor.type = [4], schema.TensorType.INT32
        shape_tensor.buffer, shape_tensor.name = len(model.buffers) - 1, b'output_shape'
        graph.tensors.append(shape_tensor)
        builtin = schema.OperatorCodeT()
        builtin.builtinCode = builtin.deprecatedBuiltinCode = schema.BuiltinOperator.TRANSPOSE_CONV
        builtin.version = 3
        model.operatorCodes.append(builtin)
        options = schema.TransposeConvOptionsT()
        options.padding = int(padding)  # TFLite Padding enum: 0 SAME, 1 VALID, as in the op
        options.strideH, options.strideW = int(stride_h), int(stride_w)
        operator.opcodeIndex = len(model.operatorCodes) - 1
        operator.inputs = [len(graph.tensors) - 1, weights, x, bias]
        operator.builtinOptionsType = schema.BuiltinOptions.TransposeConvOptions
        operator.builtinOptions, operator.customOptions = options, None
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b'TFL3')
    return bytes(builder.Output())


def run(directory):
    """Interpret each exported TFLite on its inputs with LiteRT and save the outputs."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    for tflite_path in sorted(directory.glob('*.tflite')):
        interpreter = Interpreter(model_content=builtin_transpose_conv(tflite_path.read_bytes()))
        interpreter.allocate_tensors()
        for input_path in sorted(directory.glob(f'{tflite_path.stem}__*__input.npy')):
            interpreter.set_tensor(interpreter.get_input_details()[0]['index'],
                                   np.load(input_path))
            interpreter.invoke()
            outputs = {detail['name']: interpreter.get_tensor(detail['index'])
                       for detail in interpreter.get_output_details()}
            np.savez(str(input_path).replace('__input.npy', '__tflite.npz'), **outputs)


def compare(directory):
    """Print the largest |ONNX - TFLite| per model, image and output."""
    import numpy as np
    for onnx_path in sorted(directory.glob('*__onnx.npz')):
        onnx_outputs = np.load(onnx_path)
        tflite_outputs = np.load(str(onnx_path).replace('__onnx.npz', '__tflite.npz'))
        for key in onnx_outputs.files:
            reference = tflite_outputs[key] if key in tflite_outputs.files else \
                tflite_outputs[tflite_outputs.files[0]]
            value = onnx_outputs[key]
            if value.ndim == 4 and value.shape != reference.shape:
                value = value.transpose(0, 2, 3, 1)  # NCHW ONNX -> NHWC TFLite
            print(f'{onnx_path.name[:-len("__onnx.npz")]:40s} {key:32s} '
                  f'max|diff| {float(np.abs(value - reference).max()):.2e}')


def main(argv=None):
    """Dispatch export / run / compare."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ('export', 'run', 'compare'):
        print(__doc__, file=sys.stderr)
        return 2
    {'export': export, 'run': run, 'compare': compare}[argv[0]](Path(argv[1]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
