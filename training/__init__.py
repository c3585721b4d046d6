"""Training phases beyond the paper's cross-entropy epochs (train.py runs them)."""
