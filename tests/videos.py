"""Video helpers shared by the extraction and captioning tests: a synthetic clip, the MSVD
references of the three fixture clips, and a model trained until it recites them."""
from pathlib import Path

import av
import numpy as np
import torch

from evaluation.predictions import caption_videos
from loader.batches import make_caption_batch
from loader.corpus import load_training_data
from models.loss import training_loss
from models.sa_lstm import build_model
from utils import pick_device

ANNOTATIONS = Path(__file__).resolve().parents[1] / "data" / "MSVD" / "annotations"
CLIP_TO_VID = {"WTf5EgVY5uU_124_128": "vid1025", "j2Dhf-xFUxU_13_20": "vid1429",
               "qvg9eM4Hmzk_4_10": "vid1712"}


def synthetic_video(path, n=30, codec="mpeg4", pix_fmt="yuv420p"):
    """n frames of 64x48, frame i filled with grey level 8 i, so a frame tells its index
    (codec ffv1 with yuv444p: losslessly)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def msvd_references() -> dict:
    """{vidN: [captions]} of the three clips, from the shipped English release."""
    wanted, references = set(CLIP_TO_VID.values()), {}
    for name in ("sents_train_lc_nopunc.txt", "sents_test_lc_nopunc.txt"):
        for line in (ANNOTATIONS / name).read_text(encoding="utf-8").splitlines():
            vid, _, caption = line.partition("\t")
            if vid in wanted:
                references.setdefault(vid, []).append(caption)
    return references


def train_until_it_recites(config, references: dict, max_steps=1500):
    """Full-batch Adam on the training captions until every clip gets one of its own."""
    device = pick_device(config.train.device)
    data = load_training_data(config, device)
    torch.manual_seed(0)
    model = build_model(config, len(data.vocab), data.feature_size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = make_caption_batch(data.train, data.train_targets, torch.arange(len(data.train_targets)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # ops this small gain nothing from threads, and busy cores stall them
    try:
        for step in range(1, max_steps + 1):
            model.train()
            logits, alphas = model(batch.features, batch.frame_mask, batch.inputs)
            loss, _ = training_loss(logits, alphas, batch.targets, batch.frame_mask, config.train)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 20 == 0:
                predictions = caption_videos(model, data.train, data.vocab, config.eval, 8)
                if all(p["caption"] in references[p["video_id"]] for p in predictions):
                    break
    finally:
        torch.set_num_threads(threads)
    return model.eval(), data
