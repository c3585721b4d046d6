"""Every setting of a run: defaults, presets (``--preset MSVD``) and one ``--section.field`` option
per field; the whole config is saved in every checkpoint, so ``run.py`` needs nothing else."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
import typing
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class CorpusConfig:
    name: str = "Demo"                # Demo | MSVD | MSR-VTT
    data_root: str = "data"           # corpora live in <data_root>/<name>/
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"


@dataclass
class FeatureConfig:
    # one HDF5 file per backbone, concatenated along the feature axis in this order
    backbones: list = field(default_factory=lambda: ["Appearance", "Motion"])
    n_frames: int = 28                # K: frames sampled equally spaced over the whole clip


@dataclass
class LoaderConfig:
    min_count: int = 1                # words seen fewer times in training captions become <unk>
    max_vocab: Optional[int] = None   # keep only the most frequent words (authors: 20000)
    max_caption_words: int = 30       # longer training captions are truncated (or dropped)
    drop_long_captions: bool = False  # authors dropped captions of 30+ tokens instead
    lowercase: bool = True            # normalisation of training targets only;
    strip_punctuation: bool = True    # references for scoring stay raw
    ascii_only: bool = True
    batch_size: int = 200
    eval_batch_size: int = 100
    bucket_by_length: bool = True     # batches of similar caption length: less padding


@dataclass
class ModelConfig:
    frame_projection: Optional[int] = None  # optional linear projection of each frame feature
    embedding_size: int = 468
    hidden_size: int = 512
    attention_size: Optional[int] = 256  # None: the (projected) feature size, as the authors
    attention: str = "soft"           # a registered attention (--help lists them)
    use_selector: bool = True         # beta gate on the attended feature
    deep_output: bool = True          # readout sees h_t, E[y_{t-1}] and phi_t
    init_from_mean: bool = True       # h_0, c_0 from the masked mean feature
    dropout: float = 0.5
    frame_positions: bool = False     # beyond the paper: add frame position to attention keys


@dataclass
class TrainConfig:
    epochs: int = 50
    optimizer: str = "amsgrad"        # amsgrad | adam | adadelta
    lr: float = 5e-5
    weight_decay: float = 1e-5        # L2, applied by the optimizer
    adadelta_rho: float = 0.95
    adadelta_eps: float = 1e-6
    clip_norm: float = 5.0            # global gradient norm
    loss_reduction: str = "caption_sum"  # caption_sum: sum over tokens, mean over captions | token_mean
    attention_penalty: float = 0.0    # lambda of the doubly stochastic penalty (authors 0.70602)
    label_smoothing: float = 0.0      # beyond the paper; training loss only (0: off)
    lr_decay_factor: float = 0.5      # learning rate times this when the metric plateaus (1: never)
    lr_patience: int = 3              # epochs without improvement before decaying
    early_stop_patience: int = 10     # epochs without improvement before stopping (0: never)
    select_metric: str = "CIDEr"      # picks the best checkpoint: a COCO score, loss, or CIDEr-D (no Java)
    seed: int = 1234
    device: str = "auto"              # auto | cpu | cuda | cuda:N
    # Beyond the paper (faster, other numbers): bfloat16 autocast, TF32 products and CUDA graphs.
    autocast_bf16: bool = False
    tf32: bool = False
    cuda_graphs: bool = False
    scheduled_sampling: float = 0.0   # beyond the paper: Bengio et al. 2015's top probability (0: off)
    scheduled_sampling_step: float = 0.05
    scheduled_sampling_every: int = 5
    scst_epochs: int = 0              # beyond the paper: SCST epochs on CIDEr-D after cross-entropy
    scst_lr: Optional[float] = None   # None: train.lr / 10
    scst_baseline: str = "mean_of_samples"  # mean_of_samples (Luo 2020) | greedy (Rennie et al.)
    scst_samples: int = 5             # sampled captions per clip
    scst_temperature: float = 1.0
    scst_batch_size: Optional[int] = None   # clips per SCST batch (None: loader.batch_size)
    run_root: str = "runs"
    run_name: Optional[str] = None    # None: a readable id built from the hyperparameters
    log_every: int = 10               # batches between tensorboard loss points


@dataclass
class EvalConfig:
    search: str = "beam"              # a registered search (--help lists them)
    beam_size: int = 5
    max_len: int = 30                 # generated words, <eos> excluded
    min_len: int = 1
    length_penalty: float = 0.0       # score / length**alpha; 0 is the paper's plain log-prob
    samples: int = 5                  # search sample: captions drawn per clip, the best kept
    temperature: float = 1.0          # search sample: softmax(logits / temperature); 0 is greedy
    top_p: float = 1.0                # search sample: draw from the smallest set of this mass (1: all)
    seed: int = 1234                  # search sample: its own generator's seed, at each batch
    # COCO metrics (need Java and pycocoevalcap); --eval.metrics "" for none
    metrics: list = field(default_factory=lambda: list(_METRICS))
    autocast_bf16: bool = False       # beyond the paper: decode in bfloat16 autocast (faster, other captions)
    tf32: bool = False                # beyond the paper: on CUDA, decode with TF32 products (faster)
    cuda_graphs: bool = False         # beyond the paper: on CUDA, decode replayed as CUDA graphs


@dataclass
class Config:
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        config = cls()
        for key, value in ((f"{s}.{name}", v) for s, fields in values.items() for name, v in fields.items()):
            if key == "model.use_attention" and value is False:
                set_field(config, "model.attention", "mean")
            elif key not in _NOT_READ:
                set_field(config, key, value)
        return config


# Fields that format-1 checkpoints may hold and this version does not read.
_NOT_READ = {"model.use_attention", "model.fused_cell", "train.fast_teacher_forcing"}


# Presets: each names only what differs from the defaults above, which are the settings of the popular
# PyTorch re-implementation hobincar/SA-LSTM (README: the model's switches).
_PAPER = {  # Yao et al. 2015 and the authors' Theano code (yaoli/arctic-capgen-vid)
    "model.hidden_size": 3518, "model.attention_size": None,   # attention space = feature size
    "train.optimizer": "adadelta", "train.lr": 1.0, "train.weight_decay": 1e-4, "train.clip_norm": 10.0,
    "train.attention_penalty": 0.70602, "train.select_metric": "loss", "train.early_stop_patience": 20,
    "train.epochs": 500, "eval.max_len": 50, "train.lr_decay_factor": 1.0,     # Adadelta, no schedule
    "loader.batch_size": 64, "loader.max_vocab": 20000, "loader.drop_long_captions": True,
    "loader.max_caption_words": 29}   # captions of 30+ tokens are dropped
PRESETS = {
    "Demo": {"train.epochs": 20, "train.lr": 2e-3, "train.lr_patience": 2, "train.early_stop_patience": 6,
             "loader.batch_size": 100, "model.embedding_size": 128, "model.hidden_size": 256,
             "model.attention_size": 128},
    "MSVD": {"corpus.name": "MSVD", "features.backbones": ["ResNet152"]},
    "MSR-VTT": {"corpus.name": "MSR-VTT", "features.backbones": ["ResNet152"], "train.lr": 2e-4, "train.epochs": 30},
    "MSVD-paper": {**_PAPER, "corpus.name": "MSVD", "features.backbones": ["GoogLeNet", "C3D"]},
    "MSR-VTT-paper": {**_PAPER, "corpus.name": "MSR-VTT", "features.backbones": ["GoogLeNet", "C3D"]}}
DEFAULT_PRESET = "Demo"


class ConfigError(ValueError):
    """A config field that does not exist, or a value of the wrong type."""


def _at_least(low):
    return lambda v: v >= low, f"at least {low}"


def _optional(rule):
    return lambda v: v is None or rule[0](v), f"None or {rule[1]}"


def _between(low, high, high_open=False):
    text = f"from {low} to {high}" + (" (excluded)" if high_open else "")
    return (lambda v: low <= v < high) if high_open else (lambda v: low <= v <= high), text


def _one_of(*names):
    return lambda v: v in names, "one of " + ", ".join(names)


_POSITIVE = (lambda v: v > 0, "above 0")
_DEVICE = re.compile(r"auto|cpu|mps|(cuda|xpu)(:\d+)?")

# Each field's allowed values (a legal but unusual value, such as n_frames 1, is allowed).
RULES = {
    "features.n_frames": _at_least(1), "loader.min_count": _at_least(1), "loader.max_caption_words": _at_least(1),
    "loader.max_vocab": _optional(_at_least(1)), "loader.batch_size": _at_least(1),
    "loader.eval_batch_size": _at_least(1), "model.frame_projection": _optional(_at_least(1)),
    "model.embedding_size": _at_least(1), "model.hidden_size": _at_least(1),
    "model.attention_size": _optional(_at_least(1)), "model.dropout": _between(0.0, 1.0, high_open=True),
    "train.epochs": _at_least(1), "train.optimizer": _one_of("amsgrad", "adam", "adadelta"), "train.lr": _POSITIVE,
    "train.weight_decay": _at_least(0.0), "train.adadelta_rho": _between(0.0, 1.0), "train.adadelta_eps": _POSITIVE,
    "train.clip_norm": _at_least(0.0), "train.loss_reduction": _one_of("caption_sum", "token_mean"),
    "train.attention_penalty": _at_least(0.0), "train.label_smoothing": _between(0.0, 1.0, high_open=True),
    "train.lr_decay_factor": (lambda v: 0 < v <= 1, "above 0 and at most 1 (1: never decay)"),
    "train.lr_patience": _at_least(0), "train.early_stop_patience": _at_least(0), "train.seed": _between(0, 2**32 - 1),
    "train.device": (lambda v: _DEVICE.fullmatch(v) is not None, "auto, cpu, cuda, cuda:N or mps"),
    "train.scheduled_sampling": _between(0.0, 1.0), "train.scheduled_sampling_step": _at_least(0.0),
    "train.scheduled_sampling_every": _at_least(1), "train.scst_epochs": _at_least(0),
    "train.scst_lr": _optional(_POSITIVE), "train.scst_baseline": _one_of("mean_of_samples", "greedy"),
    "train.scst_samples": _at_least(1), "train.scst_temperature": _POSITIVE,
    "train.scst_batch_size": _optional(_at_least(1)), "train.log_every": _at_least(1), "eval.beam_size": _at_least(1),
    "eval.max_len": _at_least(1), "eval.min_len": _at_least(0), "eval.samples": _at_least(1),
    "eval.temperature": _at_least(0.0), "eval.seed": _between(0, 2**32 - 1),
    "eval.top_p": (lambda v: 0 < v <= 1, "above 0 and at most 1")}
_NAMES = ("corpus.name", "corpus.data_root", "corpus.train_split", "corpus.val_split",
          "corpus.test_split", "train.run_root")        # non-empty, and used in paths
_METRICS = ("Bleu", "METEOR", "ROUGE_L", "CIDEr")       # evaluation/coco.py's; eval.metrics' default


def _has_type(value, hint) -> bool:
    if hint is list or typing.get_origin(hint) is list:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if hint in (int, float):   # an int passes as a float; a bool as neither
        return isinstance(value, (int, hint)) and not isinstance(value, bool)
    return isinstance(value, hint)


def check_section(section: str, values) -> None:
    """One section's types, finiteness, RULES and combinations: a ConfigError naming the field."""
    for name, hint in typing.get_type_hints(type(values)).items():
        key, value = f"{section}.{name}", getattr(values, name)
        optional = typing.get_origin(hint) is typing.Union       # Optional[X]
        hint = typing.get_args(hint)[0] if optional else hint
        if not (optional and value is None or _has_type(value, hint)):
            kind = ("None or " if optional else "") + ("a list of names" if hint is list else hint.__name__)
            raise ConfigError(f"{key} expects {kind}, got {value!r}; set it with --{key} VALUE")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key} is {value}; give a finite number (--{key} VALUE)")
        if key in RULES and not RULES[key][0](value):
            raise ConfigError(f"{key} must be {RULES[key][1]}, not {value!r}; set it with --{key} VALUE")
    if section == "eval" and values.min_len > values.max_len:
        raise ConfigError(f"eval.min_len ({values.min_len}) is above eval.max_len ({values.max_len}): no "
                          "caption could be generated; lower --eval.min_len or raise --eval.max_len")


# The fields that pick a registered variant by name, each with its registry ({name: variant}).
VARIANTS = {}


def check_variant(key: str, values) -> None:
    registry, chosen = VARIANTS[key], getattr(values, key.split(".")[1])
    if chosen not in registry:
        raise ConfigError(f"{key} {chosen!r} is not registered; choose one of {', '.join(sorted(registry))}")
    if hasattr(registry[chosen], "check"):
        registry[chosen].check(values)


def check(config: "Config", given=None) -> None:
    """Every field's type, range and combination, before any work; given: the command line's keys.
    A field the chosen variant does not read is an error when given, else a note."""
    for section in dataclasses.fields(config):
        check_section(section.name, getattr(config, section.name))
    for key, registry in VARIANTS.items():
        section, field_name = key.split(".")
        values, defaults = getattr(config, section), getattr(Config(), section)
        check_variant(key, values)
        chosen = registry[getattr(values, field_name)]
        for name in sorted({f for v in registry.values() for f in v.fields} - set(chosen.fields)):
            other, value = f"{section}.{name}", getattr(values, name)
            if given is None or value == getattr(defaults, name):
                continue
            if other in given:
                readers = ", ".join(v.name for v in registry.values() if name in v.fields)
                raise ConfigError(f"--{other}: {key} {chosen.name} does not read it ({readers} "
                                  f"does); drop it or choose another {key}")
            print(f"note: {other} {value!r} is not read by {key} {chosen.name}", file=sys.stderr)
    for key in _NAMES:
        value = getattr(getattr(config, key.split(".")[0]), key.split(".")[1])
        folder = key.endswith("_root")       # a path; the others are parts of file names
        if not value.strip() or (not folder and "/" in value):
            raise ConfigError(f"{key} must be a non-empty {'folder' if folder else 'name without /'}, not {value!r}")
    c, t = config.corpus, config.train
    if len({c.train_split, c.val_split, c.test_split}) < 3:
        raise ConfigError(f"corpus.train_split, corpus.val_split and corpus.test_split must differ, "
                          f"not {c.train_split!r}, {c.val_split!r}, {c.test_split!r}")
    backbones = config.features.backbones
    if not backbones or any(not b.strip() or "/" in b for b in backbones):
        raise ConfigError(f"features.backbones must name one feature file per backbone, e.g. "
                          f"--features.backbones ResNet152 or ResNet152,C3D; got {backbones!r}")
    if len(set(backbones)) < len(backbones):
        raise ConfigError(f"features.backbones names a backbone twice: {backbones!r}")
    if unknown := [m for m in config.eval.metrics if m not in _METRICS]:
        raise ConfigError(f'eval.metrics: unknown {unknown}; choose from {list(_METRICS)}, or '
                          '--eval.metrics "" for none')
    if t.run_name is not None and (not t.run_name.strip() or "/" in t.run_name or t.run_name in (".", "..")):
        raise ConfigError(f"train.run_name must be a folder name (no /), not {t.run_name!r}")
    for key, path in (("train.run_root", t.run_root), ("corpus.data_root", c.data_root)):
        if os.path.exists(path) and not os.path.isdir(path):
            raise ConfigError(f"{key} {path!r} is a file, not a folder; give a folder (--{key} DIR)")


_BOOLEANS = {**dict.fromkeys(("1", "true", "yes", "on"), True), **dict.fromkeys(("0", "false", "no", "off"), False)}


def _coerce(value, hint, key: str):
    if typing.get_origin(hint) is typing.Union:  # Optional[X]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(value, typing.get_args(hint)[0], key)
    if hint is list or typing.get_origin(hint) is list:
        return [v for v in value.split(",") if v] if isinstance(value, str) else list(value)
    try:
        if hint is bool:
            return _BOOLEANS[value.lower()] if isinstance(value, str) else bool(value)
        return hint(value)
    except (TypeError, ValueError, KeyError):
        raise ConfigError(f"config field {key} expects {getattr(hint, '__name__', hint)}, got {value!r}")


def set_field(config: Config, key: str, value) -> None:
    section, _, name = key.partition(".")
    section_obj = getattr(config, section, None)
    if section_obj is None or not dataclasses.is_dataclass(section_obj) or not hasattr(section_obj, name):
        raise ConfigError(f"config field {key!r} does not exist; valid fields: {', '.join(all_keys())}")
    setattr(section_obj, name, _coerce(value, typing.get_type_hints(type(section_obj))[name], key))


def all_keys() -> list:
    return [f"{s.name}.{f.name}" for s in dataclasses.fields(Config) for f in dataclasses.fields(s.default_factory)]


def argument_parser(description: str, prog: Optional[str] = None) -> argparse.ArgumentParser:
    """No abbreviated options: a mistyped config field is an error, not a guess."""
    return argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_arguments(parser: argparse.ArgumentParser, default_preset: Optional[str] = DEFAULT_PRESET) -> None:
    """One --section.field option per config field, plus --preset unless default_preset is None."""
    if default_preset is not None:
        parser.add_argument("--preset", choices=sorted(PRESETS), default=default_preset,
                            help=f"start from a preset (default: {default_preset})")
    for key, default in ((f"{s}.{name}", v) for s, fields in Config().to_dict().items() for name, v in fields.items()):
        names = f" (registered: {', '.join(sorted(VARIANTS[key]))})" if key in VARIANTS else ""
        parser.add_argument(f"--{key}", dest=key, default=None, metavar="VALUE",
                            help=f"default {json.dumps(default)}{names}")


def given_keys(args: argparse.Namespace) -> list:
    return [key for key in all_keys() if getattr(args, key, None) is not None]


def override(config: Config, args: argparse.Namespace) -> Config:
    """Every --section.field given on the command line, then the checks."""
    for key in given_keys(args):
        set_field(config, key, getattr(args, key))
    check(config, given_keys(args))
    return config


def from_args(args: argparse.Namespace) -> Config:
    """Defaults, then the preset, then every --section.field given on the command line."""
    return override(build(getattr(args, "preset", None) or DEFAULT_PRESET), args)


def build(preset: str = DEFAULT_PRESET, **overrides) -> Config:
    """Config from Python: build("MSVD", **{"train.lr": 1e-4})."""
    config = Config()
    for key, value in {**PRESETS[preset], **overrides}.items():
        set_field(config, key, value)
    return config
