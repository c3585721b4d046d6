"""Frame features from video files: decode with PyAV, run a backbone, write <corpus>_<backbone>.hdf5
(docs/features.md)."""
from extraction.backbones import BACKBONES, DEFAULT_BACKBONE, Backbone, BackboneSpec, build_backbone
from extraction.extract import ExtractionSummary, extract_videos, features_for_video, find_videos, video_id
from extraction.video import SampledFrames, VideoReadError, read_frames

__all__ = ["BACKBONES", "DEFAULT_BACKBONE", "Backbone", "BackboneSpec", "build_backbone",
           "ExtractionSummary", "extract_videos", "features_for_video", "find_videos", "video_id",
           "SampledFrames", "VideoReadError", "read_frames"]
