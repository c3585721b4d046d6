"""Captioning video files and drawing each word's attention over the frames."""
