"""Checkpoints: written atomically, loaded with weights_only=True, checked before use.

best.pt holds weights, config, vocabulary and what the model learned on ("backbones" in order,
"corpus" with its split digests); last.pt adds what resuming needs (optimizer, scheduler, RNGs)."""
from __future__ import annotations

import hashlib
import json
import os

import torch

import config as config_module
from loader.vocabulary import Vocabulary
from models.sa_lstm import build_model
from sharing import is_shared, load_shared
from utils import DataError, atomic_torch_save

FORMAT = 1
MODEL_PARTS = {"model": dict, "config": dict, "vocab": list, "feature_size": int}   # what run.py reads
RESUME_PARTS = {**MODEL_PARTS, "optimizer": dict, "scheduler": dict, "progress": dict}


def save(path: str, payload: dict) -> None:
    atomic_torch_save({"format": FORMAT, **payload}, path)


def load(path: str, map_location="cpu") -> dict:
    if is_shared(path):                # a folder of `python -m sharing export`, or a Hub id
        return load_shared(path)
    if os.path.isdir(path):
        raise DataError(f"checkpoint {path} is a folder; give a file in it, e.g. {os.path.join(path, 'best.pt')}")
    if not os.path.isfile(path):
        raise DataError(f"checkpoint {path} does not exist; train one with `python train.py` "
                        "(it is written to runs/<run id>/best.pt)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # pickle, zip and weights_only errors all mean the same to a user
        raise DataError(f"checkpoint {path} cannot be read ({type(error).__name__}: {error}); "
                        "it is damaged or not a checkpoint of this project") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"checkpoint {path} is not a format-{FORMAT} SA-LSTM checkpoint of this project")
    return payload


def check_contents(payload: dict, path: str, required: dict = MODEL_PARTS) -> None:
    missing = [key for key, kind in required.items() if not isinstance(payload.get(key), kind)]
    if missing:
        raise DataError(f"checkpoint {path} lacks {', '.join(missing)} (or holds another kind of value there): it "
                        "was not written by train.py")


def model_from_checkpoint(payload: dict, path: str = "checkpoint"):
    check_contents(payload, path)
    try:
        config = config_module.Config.from_dict(payload["config"])
    except config_module.ConfigError as error:
        raise DataError(f"checkpoint {path}: {error}. It was written by another (newer?) version of "
                        "this project: caption with that version, or train anew with this one") from None
    vocab = Vocabulary(payload["vocab"])
    model = build_model(config, len(vocab), payload["feature_size"])
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise DataError(f"{path}: its weights do not fit the model its config describes ({str(error).splitlines()[0]})"
                        "; the checkpoint comes from another version of this project or was edited") from None
    return model, config, vocab


def check_features_fit(payload: dict, feature_size: int, path: str) -> None:
    if payload["feature_size"] != feature_size:
        raise DataError(f"{path} was trained on features of size {payload['feature_size']} "
                        f"({'+'.join(payload['config']['features']['backbones'])}), but these features have size "
                        f"{feature_size}; use features of the same backbones")


def split_digest(video_ids: list, references: list) -> str:
    text = json.dumps([list(video_ids), [list(r) for r in references]], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def learned_on(config, splits: list, dims: dict, extraction: dict) -> dict:
    return {"backbones": [{"name": name, "feature_size": dims.get(name), "extraction": extraction.get(name)}
                          for name in config.features.backbones],
            "corpus": {"data_root": os.path.abspath(config.corpus.data_root),
                       "splits": {split.name: split_digest(split.video_ids, split.references) for split in splits}}}


def check_backbones(payload: dict, backbones: list, path: str) -> None:
    trained = ([entry["name"] for entry in payload["backbones"]] if isinstance(payload.get("backbones"), list)
               else list(payload["config"]["features"]["backbones"]))
    if list(backbones) != trained:
        raise DataError(f"{path} was trained on the backbones {','.join(trained)} (in this order), but "
                        f"--features.backbones asks for {','.join(backbones)}; features are concatenated "
                        "in order, so drop that option (or train a model on these backbones)")


def check_split_fits(payload: dict, split_name: str, video_ids: list, references: list, dims: dict,
                     data_root: str, path: str, fix: str) -> None:
    """The split read now is the one the checkpoint was trained with, at the same feature sizes."""
    for entry in payload.get("backbones") or []:
        if entry["feature_size"] is not None and dims.get(entry["name"]) != entry["feature_size"]:
            raise DataError(f"{path} was trained on {entry['name']} features of size {entry['feature_size']}, but "
                            f"those in {data_root} have size {dims.get(entry['name'])}; give --corpus.data_root of "
                            "the corpus it was trained on")
    recorded = ((payload.get("corpus") or {}).get("splits") or {}).get(split_name)
    if recorded is not None and recorded != split_digest(video_ids, references):
        raise DataError(f"the {split_name} split in {data_root} holds other videos or captions than the one "
                        f"{path} was trained with ({payload['corpus']['data_root']}); give --corpus.data_root "
                        f"of that corpus, or rebuild it as it was: {fix}")
