"""Captioning video files, drawing each word's attention over the frames, and the page of an evaluation."""
