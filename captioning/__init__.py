"""Captioning video files and drawing attention pictures: features from a video (video.py), the
picture of the frames and each word's attention (attention_map.py), and the frames a split's
model saw (split_frames.py); the page of an evaluation to browse and compare (page.py)."""
