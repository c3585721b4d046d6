"""Train SA-LSTM: validate every epoch, keep the best checkpoint, resume after interruption.

    python train.py                       # the built-in demo (built on first use)
    python train.py --preset MSVD         # MSVD with the re-implementation's settings
    python train.py --seeds 1,2,3,4,5     # one run per seed, then their mean ± std
    python train.py --eval.metrics "" --train.select_metric CIDEr-D   # without Java
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time

import torch
from tqdm import tqdm

import config as config_module
import distributed
from evaluation.predictions import evaluate, made_by, numeric, shown, write_predictions
from evaluation.scorer import NoScorer, open_scorer
from evaluation.split_cider_d import CIDER_D
from extraction.recorded import recorded_extraction
from loader.batches import caption_batch_order, make_caption_batch
from loader.corpus import load_training_data
from models import checkpoints
from models.loss import caption_nll
from models.sa_lstm import build_model
from splits.layout import describe_videos
from training.background_saves import BackgroundSaves
from training.run_folder import FolderLock, check_resumable, choose_folder
from training.run_folder import run_id  # noqa: F401  (tools and tests name run folders by it)
from training.self_critical import check_scst_config, self_critical_phase
from training.steps import check_cuda_graphs_config, training_steps
from utils import DataError, exit_status, pick_device, seed_everything, tf32_products


def make_optimizer(model, t, lr: float | None = None):
    lr = t.lr if lr is None else lr
    graphs = dict(capturable=True) if t.cuda_graphs else {}
    if t.optimizer in ("adam", "amsgrad"):
        settings = dict(lr=lr, weight_decay=t.weight_decay, amsgrad=t.optimizer == "amsgrad", **graphs)
        # torch checks a fused kernel's device only at the first step, too late for the except
        if all(p.device.type in ("cuda", "cpu") for p in model.parameters()):
            with contextlib.suppress(RuntimeError):       # a torch version without it
                return torch.optim.Adam(model.parameters(), fused=True, **settings)
        return torch.optim.Adam(model.parameters(), **settings)
    return torch.optim.Adadelta(model.parameters(), lr=lr, rho=t.adadelta_rho,
                                eps=t.adadelta_eps, weight_decay=t.weight_decay, **graphs)


def make_scheduler(optimizer, t, higher_better: bool):
    factor = t.lr_decay_factor if t.lr_decay_factor < 1.0 else 1.0 - 1e-12   # 1: a constant rate
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max" if higher_better else "min", factor=factor,
                                                      patience=t.lr_patience if t.lr_decay_factor < 1.0 else 10**9)


def summary_writer(run_dir: str):
    try:
        from tensorboardX import SummaryWriter
    except ImportError as error:      # absent, or a package it needs (protobuf) absent
        print(f"note: tensorboardX is not installed or cannot be imported ({error}), so no "
              "TensorBoard scalars are written (`pip install tensorboardX`); the epoch lines "
              "below and last.pt's history hold the same numbers", file=sys.stderr, flush=True)
        return distributed.NullWriter()
    return SummaryWriter(run_dir)


def own_word_probability(t, epoch: int) -> float:
    """Scheduled sampling's probability of feeding the model's own word in this epoch (1-based)."""
    return min(t.scheduled_sampling, t.scheduled_sampling_step * ((epoch - 1) // t.scheduled_sampling_every))


def train_epoch(model, optimizer, data, config, epoch: int, writer, step: int,
                ranks=distributed.Ranks(), steps=None) -> tuple:
    """One epoch; under torchrun each rank trains on its slice of every global batch."""
    model.train()
    if steps is None:
        steps = training_steps(model, optimizer, data, config)
    own_words = own_word_probability(config.train, epoch)
    generator = torch.Generator().manual_seed(config.train.seed * 1000 + epoch)  # order per epoch
    batches = caption_batch_order(data.train_targets, config.loader.batch_size, generator,
                                  config.loader.bucket_by_length)
    # an explicit disable= overrides tqdm's own TQDM_DISABLE (which the benchmark and logs set)
    quiet = not ranks.is_main or bool(os.environ.get("TQDM_DISABLE"))
    bar = tqdm(batches, desc=f"epoch {epoch}", leave=False, dynamic_ncols=True, disable=quiet)
    device = data.train.features.device
    running = torch.zeros((), device=device)       # summed on the device: no sync per batch
    first_bad = torch.full((), -1, device=device)  # the first batch whose loss was not finite
    for i, rows in enumerate(bar, 1):
        share = ranks.share_of(rows, data.train_targets.lengths, config.train.loss_reduction)
        batch = make_caption_batch(data.train, data.train_targets, share.rows)
        loss, nll = steps(batch, share, own_words)
        running += loss
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), i - 1, first_bad)
        step += 1
        if step % config.train.log_every == 0:       # one read (and one all-reduce) for the three
            mean_running, mean_loss, mean_nll = ranks.mean(torch.stack([running, loss, nll])).tolist()
            stop_if_not_finite(mean_running, first_bad, batches, data, epoch)
            bar.set_postfix(loss=f"{mean_running / i:.3f}")
            writer.add_scalar("loss/train", mean_loss, step)
            writer.add_scalar("loss/train_nll", mean_nll, step)
    mean_running = float(ranks.mean(running))
    stop_if_not_finite(mean_running, first_bad, batches, data, epoch)
    return mean_running / max(len(batches), 1), step


def stop_if_not_finite(loss_sum: float, first_bad: torch.Tensor, batches: list, data, epoch: int) -> None:
    if math.isfinite(loss_sum):
        return
    index = int(first_bad)
    if index < 0:
        where = "on another rank"
    else:
        videos = data.train_targets.video_index[batches[index]].unique().tolist()
        not_finite = [v for v in videos if not bool(torch.isfinite(data.train.features[v]).all())]
        named = describe_videos([data.train.video_ids[v] for v in not_finite or videos])
        where = (f"in batch {index + 1} of {len(batches)}, "
                 + (f"where the features of {named} are NaN or infinite" if not_finite else f"captions of {named}"))
    raise DataError(f"the training loss is {loss_sum} in epoch {epoch}, first {where}; training stopped before "
                    "saving anything of this epoch (last.pt and best.pt are those of the epochs before). Check "
                    "those videos' features, or lower --train.lr or --train.clip_norm")


@torch.no_grad()
def validation_loss(model, data, config) -> float:
    """Caption NLL with teacher forcing (never free-running), as in training, without dropout."""
    model.eval()
    total = torch.zeros((), device=data.val.features.device)   # on the device: one sync
    with tf32_products(config.train.tf32):
        for rows in caption_batch_order(data.val_targets, config.loader.eval_batch_size,
                                        torch.Generator().manual_seed(0), config.loader.bucket_by_length):
            batch = make_caption_batch(data.val, data.val_targets, rows)
            logits, _ = model(batch.features, batch.frame_mask, batch.inputs)
            total += caption_nll(logits, batch.targets, config.train.loss_reduction).float() * len(rows)
    return float(total) / max(len(data.val_targets), 1)


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), **({"cuda": torch.cuda.get_rng_state_all()}
                                              if torch.cuda.is_available() else {})}


def resume(last_path: str, model, optimizer, scheduler, data, config, ranks=distributed.Ranks()) -> dict:
    """Load last.pt into this run's model, optimizer, scheduler and RNGs; returns its progress.
    Read onto the CPU: torch.set_rng_state refuses RNG states on a GPU."""
    try:
        state = checkpoints.load(last_path, map_location="cpu")
        checkpoints.check_contents(state, last_path, checkpoints.RESUME_PARTS)
    except DataError as error:         # best.pt is read only then, for the way out
        best_path = os.path.join(os.path.dirname(last_path), "best.pt")
        fix = "--new_run starts a new run folder beside this one"
        with contextlib.suppress(DataError):
            best = checkpoints.load(best_path)
            fix = (f"{best_path} (epoch {best.get('epoch', '?')}) is intact: caption with it by "
                   f"python run.py --checkpoint {best_path}; {fix}")
        raise DataError(f"{error}; {fix}") from None
    check_resumable(state["config"], config, last_path, state["progress"])
    if state["vocab"] != data.vocab.to_list():
        raise DataError(f"{last_path} was trained with another vocabulary than this corpus "
                        "gives now; start a new run with --new_run")
    model.load_state_dict(state["model"])
    load_optimizer_state(optimizer, state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = distributed.own_rng_state(state, ranks, last_path)
    torch.set_rng_state(rng["torch"].cpu())
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([generator.cpu() for generator in rng["cuda"]])
    return state["progress"]


def load_optimizer_state(optimizer, saved: dict) -> None:
    """The saved state, with this device's and config's implementation choices, not the saved run's."""
    own = [{key: group[key] for key in ("fused", "foreach", "capturable") if key in group}
           for group in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for group, choices in zip(optimizer.param_groups, own):
        group.update(choices)
        if group.get("fused") or group.get("capturable"):   # these keep step counts on the device
            for param in group["params"]:
                state = optimizer.state.get(param, {})
                if "step" in state:
                    state["step"] = state["step"].to(device=param.device, dtype=torch.float32)


def check_select_metric(config) -> None:
    metric, metrics = config.train.select_metric, config.eval.metrics
    if metric in ("loss", CIDER_D):            # computed without Java, whatever eval.metrics holds
        return
    computed = ({f"Bleu_{n}" for n in range(1, 5)} if "Bleu" in metrics else set()) | set(metrics) - {"Bleu"}
    if not metrics:
        raise config_module.ConfigError(
            f"train.select_metric {metric!r} is a COCO score, but eval.metrics is empty (no scoring); choose the "
            f"best checkpoint by validation loss (--train.select_metric loss) or by the CIDEr-D computed without "
            f"Java (--train.select_metric {CIDER_D})")
    if metric not in computed:
        raise config_module.ConfigError(f"train.select_metric {metric!r} is not among the validation scores of "
                                        f"eval.metrics {metrics}; choose one of {sorted(computed) + ['loss', CIDER_D]}")


def model_payload(model, config, data, extraction: dict | None = None) -> dict:
    """What run.py needs to rebuild and use the model from a checkpoint alone."""
    extraction = recorded_extraction(config) if extraction is None else extraction
    return {"model": model.state_dict(), "config": config.to_dict(), "vocab": data.vocab.to_list(),
            "feature_size": data.feature_size, "feature_sampling": data.train.sampling,
            "feature_extraction": extraction,
            **checkpoints.learned_on(config, [data.train, data.val, data.test], data.train.dims, extraction)}


class Run:
    """What both training phases share at the end of an epoch: validation, checkpoints, logs."""

    def __init__(self, model, optimizer, scheduler, data, config, writer, progress, last_path, best_path, ranks):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.data, self.config, self.writer, self.progress = data, config, writer, progress
        self.last_path, self.best_path, self.ranks = last_path, best_path, ranks
        self.saves = BackgroundSaves()     # written while the next epoch trains
        self.extraction = recorded_extraction(config)   # read once: every checkpoint carries it

    def validate(self, scorer, epoch: int, started: float, train_loss: float, extra: dict | None = None):
        """Validation of the epoch just trained (counted over both phases); best.pt if better."""
        config, progress = self.config, self.progress
        seconds = {"train": time.perf_counter() - started}

        def validate():
            begun = time.perf_counter()
            val_loss = validation_loss(self.model, self.data, config)
            seconds["val_loss"] = time.perf_counter() - begun
            return val_loss, evaluate(self.model, self.data.val, self.data.vocab, config, scorer, seconds)[0]
        val_loss, scores = self.ranks.on_main(validate)
        if not math.isfinite(val_loss):
            raise DataError(f"the validation loss is {val_loss} after epoch {epoch}: the model is not finite; training "
                            "stopped, and last.pt and best.pt are those of the epochs before. Lower --train.lr or "
                            "--train.clip_norm")
        metric = val_loss if config.train.select_metric == "loss" else scores[config.train.select_metric]
        best = progress["best_score"]
        improved = best is None or (metric < best if config.train.select_metric == "loss" else metric > best)
        lr = self.optimizer.param_groups[0]["lr"]
        scalars = {"loss/val": val_loss, "lr": lr, **{f"seconds/{n}": v for n, v in seconds.items()},
                   **{n if "/" in n else f"val/{n}": v for n, v in {**numeric(scores), **(extra or {})}.items()}}
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, epoch)
        shown_extra = "".join(f", {name} {value:.3f}" for name, value in (extra or {}).items())
        print(f"epoch {epoch}: train loss {train_loss:.3f}{shown_extra}, val loss {val_loss:.3f}, "
              f"val {shown(scores)}, lr {lr:.2g}{' *best*' if improved else ''}\n"
              f"  seconds: {', '.join(f'{name} {value:.1f}' for name, value in seconds.items())}", flush=True)
        if improved:
            progress.update(best_score=metric, best_epoch=epoch, bad_epochs=0)
            if self.ranks.is_main:
                self.saves.save(self.best_path, {**model_payload(self.model, config, self.data, self.extraction),
                                                 "epoch": epoch, "val_scores": numeric(scores), "val_loss": val_loss})
        else:
            progress["bad_epochs"] += 1
        progress["history"].append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                                    "lr": lr, **numeric(scores), **(extra or {}),
                                    "seconds": {k: round(v, 3) for k, v in seconds.items()}})
        progress["epoch"] = epoch
        return metric

    def save_last(self) -> None:
        rng = distributed.rng_entries(self.ranks, rng_state())   # every rank's stream
        if self.ranks.is_main:
            self.saves.save(self.last_path, {**model_payload(self.model, self.config, self.data, self.extraction),
                                             "optimizer": self.optimizer.state_dict(), "progress": self.progress,
                                             "scheduler": self.scheduler.state_dict(), **rng})


def train(config, new_run: bool = False) -> dict:
    """Train (or resume) the run of this config; returns its best checkpoint's test scores."""
    config_module.check(config)
    check_select_metric(config)
    check_scst_config(config)
    ranks = distributed.join(pick_device(config.train.device))   # one rank without torchrun
    if ranks.world_size > 1 and config.train.scst_epochs > 0:
        raise config_module.ConfigError("self-critical training (train.scst_epochs) runs in one "
                                        "process: start it with python train.py, not torchrun")
    with (NoScorer() if not ranks.is_main else      # rank 0 alone scores
          open_scorer(config.eval, "the best checkpoint is chosen by validation loss "
                                   "(with --train.select_metric loss) or by the CIDEr-D computed "
                                   f"without Java (--train.select_metric {CIDER_D})")) as scorer:
        seed_everything(config.train.seed)
        check_cuda_graphs_config(config, ranks.device, ranks.world_size)
        with contextlib.ExitStack() as held:       # rank 0's lock on the run folder, for this whole run
            def claim_folder() -> str:
                lock = FolderLock(choose_folder(config, new_run))
                held.callback(lock.release)
                return lock.run_dir
            return train_in(ranks.on_main(claim_folder), config, scorer, ranks)


def train_in(run_dir: str, config, scorer, ranks) -> dict:
    device = ranks.device
    if config.corpus.name == "Demo":
        from splits.Demo import build_demo
        ranks.on_main(build_demo, config)                      # the others wait for the files
    data = load_training_data(config, device)
    print(f"{config.corpus.name}: {len(data.train)}/{len(data.val)}/{len(data.test)} videos, {len(data.train_targets)} "
          f"training captions, vocabulary {len(data.vocab)}, features {data.feature_size}-d, device {device}")
    last_path, best_path = os.path.join(run_dir, "last.pt"), os.path.join(run_dir, "best.pt")
    model = build_model(config, len(data.vocab), data.feature_size).to(device)
    ranks.seed_own_stream(config.train.seed)
    optimizer = make_optimizer(model, config.train)
    scheduler = make_scheduler(optimizer, config.train, config.train.select_metric != "loss")
    progress = {"epoch": 0, "step": 0, "best_score": None, "best_epoch": 0, "bad_epochs": 0,
                "finished": False, "history": []}
    if distributed.run_to_resume(ranks, last_path):
        progress = resume(last_path, model, optimizer, scheduler, data, config, ranks)
        print(f"resuming {run_dir} after epoch {progress['epoch']}")
        t = config.train
        if progress["finished"] and progress["epoch"] < t.epochs:
            print(f"note: this run stopped early after epoch {progress['epoch']} (no better val {t.select_metric} for "
                  f"{progress['bad_epochs']} epochs, train.early_stop_patience {t.early_stop_patience}), so "
                  f"--train.epochs {t.epochs} trains nothing more; its results follow. To train longer, start a run "
                  "that stops later: the same command with --train.early_stop_patience "
                  f"{2 * max(1, t.early_stop_patience)} (or 0: never), in a new run folder", flush=True)
    writer = summary_writer(run_dir) if ranks.is_main else distributed.NullWriter()
    trainer = ranks.wrap(model)                # DDP under torchrun; evaluation uses model itself
    run = Run(model, optimizer, scheduler, data, config, writer, progress, last_path, best_path, ranks)
    steps = training_steps(trainer, optimizer, data, config)   # CUDA graphs live across epochs
    try:
        while not progress["finished"] and progress["epoch"] < config.train.epochs:
            epoch = progress["epoch"] + 1
            started = time.perf_counter()
            train_loss, progress["step"] = train_epoch(trainer, optimizer, data, config, epoch,
                                                       writer, progress["step"], ranks, steps)
            scheduler.step(run.validate(scorer, epoch, started, train_loss))
            patience = config.train.early_stop_patience
            if patience and progress["bad_epochs"] >= patience:
                print(f"early stop: no better val {config.train.select_metric} for {patience} epochs")
                progress["finished"] = True
            run.save_last()
        if config.train.scst_epochs > 0:
            self_critical_phase(run, scorer, make_optimizer)
    except BaseException:                  # Ctrl-C, an error: the checkpoints on disk first
        run.saves.wait(report_only=True)
        raise
    run.saves.wait()
    if not ranks.is_main:                  # the test split is decoded and scored once, on rank 0
        return {}
    best = checkpoints.load(best_path, map_location=device)
    model.load_state_dict(best["model"])
    test = data.test.to(device)            # on the CPU until now (loader/corpus.py)
    scores, predictions = evaluate(model, test, data.vocab, config, scorer)
    writer.close()
    write_predictions(predictions, test, scores, run_dir, config.corpus.test_split,
                      made_by(best_path, config.corpus.test_split, config.eval))
    print(f"best checkpoint {best_path} (epoch {best['epoch']}); test: {shown(scores)}")
    return scores


def main(argv=None) -> int:
    parser = config_module.argument_parser(__doc__, prog="python train.py")
    config_module.add_arguments(parser)
    parser.add_argument("--new_run", action="store_true", help="start a new run folder instead of resuming")
    parser.add_argument("--seeds", default=None, metavar="S1,S2,...",
                        help="one run per seed, then their mean ± std table in train.run_root")
    args = parser.parse_args(argv)
    if args.seeds and args.new_run:
        parser.error("--seeds goes without --new_run: each seed has its own run folder")
    again = ("the same command again, with --train.run_name <the new run folder's name> instead of "
             "--new_run," if args.new_run else "the same command again")
    try:
        if args.seeds:
            from evaluation.summary import seeds_of, train_over_seeds
            return exit_status(lambda: train_over_seeds(config_module.from_args(args), seeds_of(args.seeds), train),
                               interrupted=f"interrupted: run {again} to go on (finished seeds are kept)")
        return exit_status(lambda: train(config_module.from_args(args), new_run=args.new_run),
                           interrupted=f"interrupted: run {again} to go on from the last finished epoch "
                                       "(from its last.pt, if one was written)")
    finally:
        distributed.leave()


if __name__ == "__main__":
    sys.exit(main())
