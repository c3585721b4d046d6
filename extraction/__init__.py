"""Frame features from video files: decode with PyAV, run a CNN, write <corpus>_<backbone>.hdf5.

    python -m extraction --videos path/to/YouTubeClips --corpus.name MSVD

Python API: extract_videos (many videos into a resumable HDF5 file), features_for_video (one
video in memory), build_backbone and BACKBONES (the CNNs by name, with their feature sizes).
"""
from extraction.backbones import BACKBONES, DEFAULT_BACKBONE, Backbone, BackboneSpec, build_backbone
from extraction.extract import ExtractionSummary, extract_videos, features_for_video, find_videos, video_id
from extraction.video import SampledFrames, VideoReadError, read_frames

__all__ = ["BACKBONES", "DEFAULT_BACKBONE", "Backbone", "BackboneSpec", "build_backbone",
           "ExtractionSummary", "extract_videos", "features_for_video", "find_videos", "video_id",
           "SampledFrames", "VideoReadError", "read_frames"]
