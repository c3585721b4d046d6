"""Scoring and predictions: the COCO caption metrics (coco.py) and decoding a split into
predictions and score files (predictions.py)."""
