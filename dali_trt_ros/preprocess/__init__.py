"""Preprocessing: decode, resize and normalize camera frames into model input tensors."""
