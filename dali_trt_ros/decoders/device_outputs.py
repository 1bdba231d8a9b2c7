"""Tensor names shared by the post-processing appended to model graphs and the decoders.

``dali_trt_ros.models.variants`` appends the graphs; the decoders read what they produce and
say which extra inputs a run needs (``SegmentationDecoder.device_feeds``).
"""

MASK_OUTPUT = 'dtr_mask'                # (N, H_orig, W_orig) uint8 class ids
LABEL_MAP_OUTPUT = 'dtr_label_map'      # (N, h, w) uint8 class ids at output resolution
ROWS_INPUT = 'dtr_source_rows'          # (H_orig,) int32 output-map row per original row
COLUMNS_INPUT = 'dtr_source_columns'    # (W_orig,) int32 output-map column per original column
THRESHOLD_INPUT = 'dtr_threshold'       # (1,) float32 probability threshold
CANDIDATE_SCORES = 'dtr_candidate_scores'    # (N, K) float32 activated scores, descending
CANDIDATE_INDICES = 'dtr_candidate_indices'  # (N, K) int64 anchor * C_fg + foreground column
DEFAULT_CANDIDATES = 1000
