"""evaluate_bag: compare perception outputs (a bag) with golden outputs (a bag or golden JSON).

Per-frame detection matching (same class, IoU >= --iou), precision/recall/F1 per class, mean
IoU of masks, frame coverage (golden frames without an output are counted), and latency when
the outputs are a live recording (record_outputs). Writes report.md, metrics.json and PNG plots
into --report-dir; exits 1 naming every exceeded tolerance, 2 on unreadable input.
"""

import argparse
import json
import pathlib
import sys

from dali_trt_ros.errors import PerceptionError


def _optional_float(text):
    return None if text.lower() in ('none', 'off', '') else float(text)


def build_parser():
    """Command-line interface of evaluate_bag."""
    from dali_trt_ros.bags.evaluate import Tolerances
    defaults = Tolerances()
    parser = argparse.ArgumentParser(
        prog='evaluate_bag', description=__doc__.split('\n\n')[0].split(': ', 1)[1],
        epilog='tolerances take a number or "off". Golden JSON: evaluate_bag OUT --save-golden '
               'golden.json')
    parser.add_argument('outputs', help='output bag (process_bag or record_outputs)')
    parser.add_argument('golden', nargs='?', help='golden bag folder or golden JSON')
    parser.add_argument('--report-dir', help='where report.md, metrics.json and the plots go '
                        '(default: <outputs>_report)')
    parser.add_argument('--iou', type=float, default=0.5, help='box IoU for a match (0.5)')
    for name, value in vars(defaults).items():
        parser.add_argument('--' + name.replace('_', '-'), type=_optional_float, default=value,
                            metavar='X', help=f'tolerance (default {value})')
    parser.add_argument('--inputs', help='input bag, to draw --overlays output images')
    parser.add_argument('--overlays', type=int, default=4,
                        help='overlay PNGs to draw when --inputs is given (default 4)')
    parser.add_argument('--save-golden', metavar='JSON',
                        help='write the outputs as golden JSON and exit (no comparison)')
    return parser


def main(argv=None):
    """Evaluate; exit 0 when every tolerance is met."""
    args = build_parser().parse_args(argv)
    from dali_trt_ros.bags import report
    from dali_trt_ros.bags.evaluate import evaluate, Tolerances
    from dali_trt_ros.bags.outputs import read_outputs, write_golden
    try:
        outputs = read_outputs(args.outputs)
        if args.save_golden:
            if outputs.status != 'complete':
                raise PerceptionError(f'{args.outputs} is marked {outputs.status or "unknown"}'
                                      ', not complete: refusing to make golden outputs of it')
            count = write_golden(outputs, args.save_golden, note=f'from {args.outputs}')
            print(f'wrote {count} golden frames to {args.save_golden}')
            return 0
        if not args.golden:
            raise PerceptionError('a golden bag or JSON is needed (or use --save-golden)')
        golden = read_outputs(args.golden)
        tolerances = Tolerances(**{k: getattr(args, k) for k in vars(Tolerances())})
        metrics, rows = evaluate(golden, outputs, args.iou)
        failures = tolerances.check(metrics)
        if outputs.status and outputs.status != 'complete':
            failures.append(f'outputs bag is marked {outputs.status}, not complete')
        folder = pathlib.Path(args.report_dir or (str(args.outputs).rstrip('/') + '_report'))
        folder.mkdir(parents=True, exist_ok=True)
        plots = []
        if metrics['per_class']:
            report.plot_per_class(metrics, folder / 'per_class.png')
            plots.append(folder / 'per_class.png')
        if report.plot_latency(rows, folder / 'latency_hist.png',
                               folder / 'latency_timeline.png'):
            plots += [folder / 'latency_hist.png', folder / 'latency_timeline.png']
        overlays = report.render_overlays(args.inputs, outputs, folder, args.overlays) \
            if args.inputs else []
        (folder / 'metrics.json').write_text(json.dumps(
            dict(metrics, failures=failures, frames=rows), indent=1) + '\n')
        (folder / 'report.md').write_text(report.markdown(metrics, failures, tolerances, plots,
                                                          overlays))
    except PerceptionError as error:
        print(f'evaluate_bag: {error}', file=sys.stderr)
        return 2
    latency, mask = metrics['latency_ms'], metrics['mask_iou']
    print(f'frames {metrics["frames_covered"]}/{metrics["frames_golden"]} covered, '
          f'P {metrics["precision"]:.3f} R {metrics["recall"]:.3f} F1 {metrics["f1"]:.3f}, '
          f'mask IoU {"-" if mask is None else f"{mask:.4f}"}'
          + (f', latency p50 {latency["p50"]:.1f} ms p99 {latency["p99"]:.1f} ms'
             if latency else ''))
    print(f'report: {folder / "report.md"}')
    for failure in failures:
        print(f'evaluate_bag: tolerance exceeded: {failure}', file=sys.stderr)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
