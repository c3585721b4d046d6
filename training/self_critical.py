"""Self-critical sequence training (Rennie et al. 2017; Luo 2020) after cross-entropy: sampled captions
(clip-major rows) rewarded with CIDEr-D (no Java), the REINFORCE loss and its two baselines."""
from __future__ import annotations

import math
import os
import time

import torch
from tqdm import tqdm

from config import ConfigError
from evaluation.cider_d import CiderD
from loader.captions import tokenized_captions
from models import checkpoints
from models.searches import Rows, decode_rows, greedy_search, sampled
from training.update import descend
from utils import DataError, autocast_bf16, tf32_products, to_device


def sample_captions(model, features, mask, samples_per_clip: int = 5, max_len: int = 30,
                    temperature: float = 1.0, min_len: int = 1) -> Rows:
    """K sampled captions per clip, gradients into log_probs; draws by torch's global generator."""
    return decode_rows(model, features, mask, samples_per_clip, sampled(temperature), max_len, min_len)


def self_critical_loss(sample_log_probs: torch.Tensor, sample_mask: torch.Tensor, rewards: torch.Tensor,
                       baseline: torch.Tensor) -> torch.Tensor:
    """-(1/N) sum_i (r_i - b_i) sum_t log p(w_it): a caption is one action, as Rennie et al. write it."""
    if sample_log_probs.shape != sample_mask.shape or rewards.shape != baseline.shape \
            or rewards.shape != sample_log_probs.shape[:1]:
        raise ValueError(f"self_critical_loss wants log-probs and mask (N, L), rewards and baseline (N,); got "
                         f"{tuple(sample_log_probs.shape)}, {tuple(sample_mask.shape)}, {tuple(rewards.shape)}, "
                         f"{tuple(baseline.shape)}")
    advantage = (rewards - baseline).detach().to(sample_log_probs.dtype)
    caption_log_prob = (sample_log_probs * sample_mask.to(sample_log_probs.dtype)).sum(1)
    return -(advantage * caption_log_prob).mean()


def mean_of_others_baseline(rewards: torch.Tensor, samples_per_clip: int) -> torch.Tensor:
    """Luo 2020's baseline: the mean reward of the clip's other K-1 samples; rewards (B*K,)."""
    k = samples_per_clip
    if rewards.dim() != 1 or rewards.numel() % k:
        raise ValueError(f"rewards must be (B*K,) with K={k} samples per clip, got {tuple(rewards.shape)}")
    per_clip = rewards.detach().view(-1, k)
    return ((per_clip.sum(1, keepdim=True) - per_clip) / (k - 1)).reshape(-1)


def greedy_baseline(greedy_rewards: torch.Tensor, samples_per_clip: int) -> torch.Tensor:
    """Rennie et al.'s baseline: each clip's greedy caption's reward, once per sample."""
    return greedy_rewards.detach().repeat_interleave(samples_per_clip)


def check_scst_config(config) -> None:
    t = config.train
    if t.scst_epochs <= 0:
        return
    if t.scst_baseline == "mean_of_samples" and t.scst_samples < 2:
        raise ConfigError("train.scst_baseline mean_of_samples needs train.scst_samples of 2 or more")
    if t.select_metric == "loss":      # SCST raises CIDEr-D and the validation NLL with it
        raise ConfigError("self-critical training is chosen by a validation score, not loss: set train.select_metric "
                          "with train.scst_epochs, e.g. CIDEr (COCO, needs Java) or CIDEr-D (computed in-process, "
                          "no Java: --eval.metrics \"\" --train.select_metric CIDEr-D)")


def reward_model(data, config) -> CiderD:
    return CiderD(tokenized_captions(data.train.references, config.loader), data.vocab)


def scst_epoch(model, optimizer, data, config, rewards: CiderD, epoch: int, writer, step: int) -> tuple:
    """One pass over the training clips; (mean loss, mean reward, mean baseline, step)."""
    t = config.train
    model.train()
    batches = list(torch.randperm(len(data.train), generator=torch.Generator().manual_seed(t.seed * 1000 + epoch))
                   .split(t.scst_batch_size or config.loader.batch_size))
    device = data.train.features.device
    totals = torch.zeros(3, device=device)               # loss, reward, baseline: no sync per batch
    with tf32_products(t.tf32):       # the model's products; CIDEr-D has none
        for rows in tqdm(batches, desc=f"scst epoch {epoch}", leave=False, dynamic_ncols=True):
            rows = to_device(rows, device)
            features, mask = data.train.features[rows], data.train.frame_mask[rows]
            with autocast_bf16(device.type, t.autocast_bf16):
                drawn = sample_captions(model, features, mask, t.scst_samples, config.eval.max_len,
                                        t.scst_temperature, config.eval.min_len)
            reward = rewards.score(drawn.tokens, rows.repeat_interleave(t.scst_samples))
            if t.scst_baseline == "greedy":
                model.eval()                                  # the test-time caption: no dropout
                greedy = greedy_search(model, features, mask, config.eval.max_len, config.eval.min_len)
                model.train()
                baseline = greedy_baseline(rewards.score(greedy.tokens, rows), t.scst_samples)
            else:
                baseline = mean_of_others_baseline(reward, t.scst_samples)
            loss = self_critical_loss(drawn.log_probs, drawn.mask, reward, baseline)
            descend(model, optimizer, loss, t.clip_norm)
            totals += torch.stack([loss.detach(), reward.mean(), baseline.mean()])
            step += 1
            if step % t.log_every == 0:
                writer.add_scalar("scst/reward", float(reward.mean()), step)
                writer.add_scalar("scst/baseline", float(baseline.mean()), step)
    loss, reward, baseline = (totals / max(len(batches), 1)).tolist()
    if not math.isfinite(loss):
        raise DataError(f"the self-critical loss is {loss} in epoch {epoch}; training stopped before saving anything "
                        "of this epoch (last.pt and best.pt are those of the epochs before). Lower --train.scst_lr "
                        "or --train.clip_norm")
    return loss, reward, baseline, step


def self_critical_phase(run, scorer, make_optimizer) -> None:
    """train.scst_epochs epochs after cross-entropy; resumes from last.pt inside the phase."""
    model, data, config, progress = run.model, run.data, run.config, run.progress
    t = config.train
    if progress.get("phase") != "scst":
        run.saves.wait()                                  # best.pt may still be being written
        best = checkpoints.load(run.best_path, map_location=data.train.features.device)
        checkpoints.save(os.path.join(os.path.dirname(run.best_path), "best_xe.pt"), best)  # best.pt moves on
        model.load_state_dict(best["model"])
        lr = t.scst_lr if t.scst_lr is not None else t.lr / 10
        run.optimizer = make_optimizer(model, t, lr=lr)
        progress.update(phase="scst", scst_epoch=0, finished=True)
        print(f"self-critical training from {run.best_path} (epoch {best['epoch']}): {t.scst_epochs} "
              f"epoch{'s' if t.scst_epochs != 1 else ''}, lr {lr:g}, {t.scst_samples} samples per clip, "
              f"baseline {t.scst_baseline}")
    rewards = reward_model(data, config)
    while progress["scst_epoch"] < t.scst_epochs:
        epoch = progress["epoch"] + 1
        started = time.perf_counter()
        loss, reward, baseline, progress["step"] = scst_epoch(model, run.optimizer, data, config, rewards,
                                                              epoch, run.writer, progress["step"])
        run.validate(scorer, epoch, started, loss, {"scst/reward": reward, "scst/baseline": baseline})
        progress["scst_epoch"] += 1
        run.save_last()
