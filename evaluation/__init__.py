"""Scoring: the COCO caption metrics, CIDEr-D in-process, and a split's predictions."""
