"""process_bag: camera bag(s) -> perception_node's pipeline -> output bag(s), no ROS graph needed.

Each input camera topic (<ns>/image_raw or <ns>/image_raw/compressed) gets <ns>/detections
(vision_msgs/Detection2DArray) and <ns>/segmentation (mono8) in the output bag, with the input's
header and log time, plus <output>.summary.json and <output>.frames.csv next to it. Frames are
batched across time and cameras. Ctrl-C leaves a readable output bag marked partial
(metadata.yaml custom_data dali_trt_ros.status) and exits 130.

Several bags (paths, globs, or folders of bags) run in parallel with --jobs N, or one Ray task
per bag on a cluster with --ray-address auto|HOST:PORT|local.
"""

import argparse
import json
import logging
import sys

from dali_trt_ros.errors import PerceptionError


def _csv(text):
    return tuple(item for item in text.split(',') if item)


def build_parser():
    """Command-line interface of process_bag."""
    from dali_trt_ros.bags.process import DEFAULT_MODELS, NODE_THRESHOLDS
    parser = argparse.ArgumentParser(
        prog='process_bag', description=__doc__.split('\n\n')[0].split(': ', 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('inputs', nargs='+', help='bag folder(s), globs, or folders of bags')
    parser.add_argument('-o', '--output', help='output bag (one input only); default: '
                        '<input>_perception next to the input, or under --output-prefix')
    parser.add_argument('--output-prefix', help='folder for the outputs of several bags')
    parser.add_argument('--topics', type=_csv, help='camera topics (default: every Image and '
                        'CompressedImage topic)')
    parser.add_argument('--models', type=_csv, default=DEFAULT_MODELS,
                        help=f'model descriptions (default {",".join(DEFAULT_MODELS)})')
    parser.add_argument('--batch', type=int, default=8, help='frames per batch (default 8)')
    parser.add_argument('--backend', choices=('onnxruntime', 'tensorrt'), default='onnxruntime')
    parser.add_argument('--providers', type=_csv, default=('cpu',),
                        help='ONNX Runtime providers, e.g. cuda,cpu (default cpu)')
    parser.add_argument('--device', choices=('auto', 'gpu', 'cpu'), default='auto',
                        help='preprocessing device (default auto)')
    parser.add_argument('--device-id', type=int, default=0)
    parser.add_argument('--precision', choices=('fp32', 'fp16'), default='fp32',
                        help='model weights (fp16: the FP16 ONNX variant)')
    parser.add_argument('--postprocess', choices=('auto', 'host', 'device'), default='auto',
                        help='decode masks/scores in the model graph (device) or on the host; '
                             'auto: device when the models run on a GPU')
    parser.add_argument('--score-threshold', type=float, default=NODE_THRESHOLDS['score'])
    parser.add_argument('--nms-iou-threshold', type=float, default=NODE_THRESHOLDS['nms_iou'])
    parser.add_argument('--mask-threshold', type=float, default=NODE_THRESHOLDS['mask'])
    parser.add_argument('--no-masks', action='store_true', help='write detections only')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    parser.add_argument('--overwrite', action='store_true', help='replace existing outputs')
    parser.add_argument('--jobs', type=int, default=1, help='bags processed in parallel here')
    parser.add_argument('--ray-address', help='run one Ray task per bag: auto, HOST:PORT, or '
                        'local (start Ray here)')
    parser.add_argument('--gpus-per-task', type=float, default=0.0,
                        help='GPUs Ray reserves per bag (e.g. 1, or 0.5 to share)')
    parser.add_argument('--cpus-per-task', type=float, default=1.0)
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('-v', '--verbose', action='store_true', help='log every batch')
    return parser


def make_jobs(args):
    """One Job per input bag."""
    from dali_trt_ros.bags.fleet import check_job, expand_inputs, Job, output_for
    bags = expand_inputs(args.inputs)
    if args.output and len(bags) != 1:
        raise PerceptionError(f'--output names one bag but {len(bags)} inputs were given; use '
                              '--output-prefix')
    thresholds = {'score': args.score_threshold, 'nms_iou': args.nms_iou_threshold,
                  'mask': args.mask_threshold}
    jobs = [Job(str(bag), str(args.output or output_for(bag, args.output_prefix)),
                tuple(args.models), args.batch, args.backend, tuple(args.providers),
                args.device, args.device_id, args.topics, args.storage, args.overwrite,
                not args.no_masks, thresholds, args.precision, args.postprocess)
            for bag in bags]
    for job in jobs:
        check_job(job)  # every input is readable and has its topics before any work starts
    return jobs


def main(argv=None):
    """Process the bags; exit 0 when all completed, 1 when one failed, 130 on Ctrl-C."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format='process_bag: %(message)s')
    from dali_trt_ros.bags import fleet
    try:
        jobs = make_jobs(args)
        if args.ray_address:
            summaries = fleet.run_ray(jobs, args.ray_address, args.gpus_per_task,
                                      args.cpus_per_task)
        elif len(jobs) == 1:
            summaries = [fleet.process_job(jobs[0], progress=not args.no_progress)]
        else:
            summaries = fleet.run_local(jobs, args.jobs)
    except PerceptionError as error:
        print(f'process_bag: {error}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('process_bag: interrupted; outputs written so far are marked partial',
              file=sys.stderr)
        return 130
    failed = 0
    for summary in summaries:
        if summary.get('complete'):
            print(f'{summary["input"]} -> {summary["output"]}: {summary["frames_out"]}/'
                  f'{summary["frames_in"]} frames, {summary["frames_per_s"]} frames/s, '
                  f'detections {json.dumps(summary["detections_per_class"])}')
        else:
            failed += 1
            print(f'process_bag: {summary["input"]}: {summary["reason"]}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
