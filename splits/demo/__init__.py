"""The built-in demo corpus: synthetic clips of coloured shapes, rendered with numpy (docs/demo.md)."""
from splits.demo.clips import render_frames  # noqa: F401  (the entry point for attention pictures)
