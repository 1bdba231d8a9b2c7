"""build_engine: ONNX model in, TensorRT engine out (``ros2 run dali_trt_ros build_engine``).

``--dry-run`` prints the build plan (precision, GPU or DLA, fallback, input shapes, INT8 source,
warnings) and the cache decision without building; it needs no TensorRT when the device facts
are given (``--tensorrt-version``, ``--dla-cores``, ...), so plans for a Jetson can be checked
on any machine.
"""

import argparse
import json
import logging
import sys

from dali_trt_ros.errors import PerceptionError


def _shape_arg(text):
    name, _, dims = text.partition(':')
    if not name or not dims:
        raise argparse.ArgumentTypeError(f'expected NAME:DIMxDIM..., got {text!r}')
    return name, [int(d) for d in dims.lower().split('x')]


def _parser():
    parser = argparse.ArgumentParser(
        prog='build_engine', description='Build (or check the cache of) a TensorRT engine from '
        'an ONNX model. Shapes are NAME:1x3x300x300.')
    parser.add_argument('model', help='ONNX model file')
    parser.add_argument('-o', '--output', help='engine file (default: in --cache-dir)')
    parser.add_argument('--cache-dir', help='engine cache folder (default '
                        '~/.cache/dali_trt_ros/engines)')
    parser.add_argument('--config', help='YAML/JSON engine config; command-line options win')
    parser.add_argument('--precision', choices=['fp32', 'fp16', 'int8'])
    parser.add_argument('--dla-core', type=int, help='DLA core (-1: GPU)')
    parser.add_argument('--no-gpu-fallback', action='store_true',
                        help='fail instead of running DLA-incompatible layers on the GPU')
    parser.add_argument('--workspace-mib', type=int)
    parser.add_argument('--timing-cache', help='timing cache file (read and updated; default: '
                        'one per TensorRT version and GPU in the cache folder)')
    parser.add_argument('--optimization-level', type=int, choices=range(0, 6),
                        help='builder_optimization_level (TensorRT 8.6+): 0 builds fastest, '
                        '3 is the default')
    parser.add_argument('--tactic-sources', help='comma-separated trt.TacticSource names, e.g. '
                        'EDGE_MASK_CONVOLUTIONS,JIT_CONVOLUTIONS (default: TensorRT\'s)')
    parser.add_argument('--plugin', action='append', default=[], help='plugin library (.so)')
    parser.add_argument('--shape', action='append', default=[], type=_shape_arg,
                        help='fixed shape of a dynamic input, NAME:DIMS')
    parser.add_argument('--min-shape', action='append', default=[], type=_shape_arg)
    parser.add_argument('--opt-shape', action='append', default=[], type=_shape_arg)
    parser.add_argument('--max-shape', action='append', default=[], type=_shape_arg)
    parser.add_argument('--calib-images', help='folder of representative images (int8)')
    parser.add_argument('--calib-cache', help='calibration cache file (int8)')
    parser.add_argument('--calib-batch-size', type=int, help='must equal the opt batch (default)')
    parser.add_argument('--calib-max-batches', type=int)
    parser.add_argument('--preprocess', help='YAML/JSON file with the preprocessing mapping used '
                        'for calibration')
    parser.add_argument('--dynamic-ranges', help='per-tensor ranges file (int8 without '
                        'calibration)')
    parser.add_argument('--dry-run', action='store_true', help='print the build plan only')
    facts = parser.add_argument_group('device facts for --dry-run without TensorRT')
    facts.add_argument('--tensorrt-version', help='e.g. 8.5.2 (JetPack 5), 10.3.0 (JetPack 6)')
    facts.add_argument('--dla-cores', type=int, default=0)
    facts.add_argument('--device-name', default='unknown GPU')
    facts.add_argument('--compute-capability', default='0.0')
    parser.add_argument('-v', '--verbose', action='store_true')
    return parser


def _read_mapping(path):
    with open(path, encoding='utf-8') as stream:
        text = stream.read()
    if path.endswith('.json'):
        return json.loads(text)
    import yaml
    return yaml.safe_load(text) or {}


def config_dict(args):
    """Merge the --config file and the command-line options into one engine config dict."""
    data = dict(_read_mapping(args.config)) if args.config else {}
    data['model'] = args.model
    data['backend'] = 'tensorrt'
    options = {'engine_path': args.output, 'engine_cache_dir': args.cache_dir,
               'precision': args.precision, 'dla_core': args.dla_core,
               'workspace_mib': args.workspace_mib, 'timing_cache': args.timing_cache,
               'dynamic_ranges': args.dynamic_ranges,
               'builder_optimization_level': args.optimization_level,
               'tactic_sources': args.tactic_sources.split(',') if args.tactic_sources
               else None}
    data.update({key: value for key, value in options.items() if value is not None})
    if args.no_gpu_fallback:
        data['gpu_fallback'] = False
    if args.plugin:
        data['plugins'] = list(data.get('plugins') or []) + args.plugin
    inputs = {item['name']: dict(item) for item in data.get('inputs') or []}
    for option, key in ((args.shape, 'shape'), (args.min_shape, 'min_shape'),
                        (args.opt_shape, 'opt_shape'), (args.max_shape, 'max_shape')):
        for name, dims in option:
            inputs.setdefault(name, {'name': name})[key] = dims
    if inputs:
        data['inputs'] = list(inputs.values())
    calibration = dict(data.get('calibration') or {})
    for key, value in (('images', args.calib_images), ('cache', args.calib_cache),
                       ('batch_size', args.calib_batch_size),
                       ('max_batches', args.calib_max_batches)):
        if value is not None:
            calibration[key] = value
    if args.preprocess:
        calibration['preprocess'] = _read_mapping(args.preprocess)
    if calibration:
        data['calibration'] = calibration
    return data


def _facts_from_args(args):
    from dali_trt_ros.engines.build_plan import DeviceFacts
    capability = tuple(int(part) for part in args.compute_capability.split('.'))
    return DeviceFacts(args.tensorrt_version, args.device_name, capability, args.dla_cores)


def _facts_from_machine(config):
    from dali_trt_ros.engines.cuda_runtime import cuda_runtime
    from dali_trt_ros.engines.tensorrt_engine import (device_facts, import_tensorrt,
                                                      tensorrt_logger)
    trt = import_tensorrt()
    runtime = trt.Runtime(tensorrt_logger(trt))
    return device_facts(trt, runtime, cuda_runtime(), config.device_id)


def dry_run(config, facts):
    """Print the build plan and the engine cache decision for ``config`` on ``facts``."""
    from dali_trt_ros.engines.engine_request import resolve_engine
    from dali_trt_ros.engines.onnx_model import read_model_io
    inputs, outputs = read_model_io(config.model)
    request = resolve_engine(config, facts, inputs)
    print(f'model: {config.model}')
    print('model inputs: ' + '; '.join(t.describe() for t in inputs))
    print('model outputs: ' + '; '.join(t.describe() for t in outputs))
    print(f'TensorRT {facts.tensorrt_version} on {facts.device_name} (sm '
          f'{".".join(map(str, facts.compute_capability))}, {facts.num_dla_cores} DLA cores)')
    for line in request.plan.describe():
        print(line)
    print(f'engine: {request.engine_path}')
    print(f'cache: {"reuse" if request.decision.reuse else "build"} '
          f'({request.decision.reason})')
    print(f'timing cache: {request.timing_cache_path}')
    print(f'cache key: {request.key.digest()}')
    return request.plan


def main(argv=None):
    """Run the build_engine command line; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format='%(levelname)s %(name)s: %(message)s')
    from dali_trt_ros.engines.config import EngineConfig
    try:
        config = EngineConfig.from_dict(config_dict(args))
        if args.dry_run:
            facts = _facts_from_args(args) if args.tensorrt_version else \
                _facts_from_machine(config)
            dry_run(config, facts)
            return 0
        from dali_trt_ros.engines.tensorrt_engine import load_tensorrt_engine
        with load_tensorrt_engine(config) as engine:
            print(f'engine {"built" if engine.built else "loaded from the cache"} in '
                  f'{engine.load_seconds:.1f} s')
            print('inputs: ' + '; '.join(t.describe() for t in engine.inputs))
            print('outputs: ' + '; '.join(t.describe() for t in engine.outputs))
        return 0
    except (PerceptionError, OSError) as error:
        print(f'build_engine: error: {error}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
