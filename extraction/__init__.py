"""Frame features from video files: decode with PyAV, run a backbone, write <corpus>_<backbone>.hdf5.

Backbones: image CNNs (EfficientNet-Lite0, torchvision classifiers), CLIP's vision tower and a
Kinetics video model (VideoMAE) from transformers; docs/features.md has the recipes.

    python -m extraction --videos path/to/YouTubeClips --corpus.name MSVD
    python -m extraction.speed          # frames per second of the transformers backbones

Python API: extract_videos (many videos into a resumable HDF5 file), features_for_video (one
video in memory), build_backbone and BACKBONES (the CNNs by name, with their feature sizes).
"""
from extraction.backbones import BACKBONES, DEFAULT_BACKBONE, Backbone, BackboneSpec, build_backbone
from extraction.extract import ExtractionSummary, extract_videos, features_for_video, find_videos, video_id
from extraction.video import SampledFrames, VideoReadError, read_frames

__all__ = ["BACKBONES", "DEFAULT_BACKBONE", "Backbone", "BackboneSpec", "build_backbone",
           "ExtractionSummary", "extract_videos", "features_for_video", "find_videos", "video_id",
           "SampledFrames", "VideoReadError", "read_frames"]
