"""Plate finding and reading: ONNX text models plus US plate grammar."""
