"""Training and evaluation of one model with its paper's recipe: :func:`fit`, checkpoints, :func:`load_model`.

Every setting of :class:`TrainConfig` left at None comes from the model's recipe
(:attr:`~emocontext.models.registry.ModelInfo.recipe`, :mod:`emocontext.models.recipes`):
optimiser, learning rate and its step schedule, weight decay, batch, epochs, early-stopping
patience, the validation metric that selects the checkpoint, the frame rate and the frames of one
training sample (CACA-RNN: Adam 1e-4, batch 32, macro precision, 5 fps; CAER-Net: 5e-3 divided by
10 every 4 epochs, 16-frame clips at 10 fps; Chao et al.: Adadelta, weight decay 5e-4, 50 epochs,
validation accuracy, 25 fps; CAAN gives none but every frame). ``emocontext models --recipes``
shows them; FIDELITY.md says what each paper gives and what is ours. A feature store sampled at
another rate than the run's is refused (:func:`~emocontext.models.recipes.check_store_fps`). The extractors are frozen
(features come from a FeatureStore); a random start frame per clip in training and the first
frame in evaluation (Sun et al., V-C). The loss is cross-entropy (weighted by inverse class
frequency with ``class_weights``), or the model's own ``loss(output, labels, weight=...,
**loss_kwargs)`` when it has one (CAAN's softmax + triplet loss), which receives the same class
weights and ``TrainConfig.loss_kwargs``.

Model selection and early stopping use the recipe's validation metric, the others breaking
ties; numbers measured on the validation clips are therefore *selection-set* numbers, optimistic,
and labelled so; the held-out number is the test split's (:func:`train_seeds`). Training repeated
over several seeds reports the median of each metric (Sun et al., V-D: "training was repeated
five times with different random seeds and median performance metrics are selected").

Audio models (``streams`` with ``"audio"``, e.g. ``av_lstm``) get ``audio_dim`` from the
datasets, and those that take it ``audio_frames_per_step`` (the AV-LSTM matches its alignment
window to it; both are recorded in the checkpoint's ``meta["dims"]``); the audio PCA whitening of
the training dataset (Chao et al. 2016, 3.3) is saved in the checkpoint's
``meta["audio_whitening"]`` (state dict as lists), so evaluation and prediction build their
datasets with ``audio_whitening=meta["audio_whitening"]``.

Resumable: a checkpoint is written atomically after every epoch; running the same
command again continues from it. Every epoch re-seeds torch and the data order
from ``seed`` and the epoch number, so a resumed run gives the same result as an
uninterrupted one.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from ..distributed import ddp
from ..errors import ConfigError, EmoContextError, IncompatibleFeaturesError
from ..features.store import FeatureStore
from ..labels import LabelSet
from ..metrics import accuracy, evaluate_probs, macro_map, macro_precision
from ..models.recipes import OPTIMIZERS, SELECTION_METRICS, check_store_fps
from ..models.registry import count_parameters, create_model, model_info
from ..outputs import atomic_write_bytes, atomic_write_text, make_dir
from .datasets import FeatureSequenceDataset, collate
from .pixels import PixelClipDataset, average_windows

__all__ = [
    "TrainConfig",
    "TrainResult",
    "resolve_config",
    "fit",
    "predict_probs",
    "clip_probs",
    "load_model",
    "check_features",
]

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run; None = the model's recipe (:func:`resolve_config`).

    ``optimizer`` ``"adam"`` / ``"adadelta"`` / ``"sgd"`` (momentum 0.9); the learning rate is
    ``lr * lr_gamma ** (epoch // lr_step)`` (constant when ``lr_step`` is 0); ``selection``
    ``"macro_precision"``, ``"macro_map"`` or ``"accuracy"`` on the validation clips picks
    ``best.pt``; ``fps`` is the frame rate of the clips (a feature store sampled at another rate is
    refused; pixel clips are decoded at it); ``max_frames`` the frames of one training sample (the
    window of a pixel model); ``loss_kwargs`` go to the model's own ``loss`` (CAAN:
    ``frame_weight``, ``clip_weight``, ``triplet_weight``, ``margin``, ``triplet``), an error for a
    model trained with plain cross-entropy.
    """

    model: str
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    class_weights: bool = False
    patience: int | None = None
    seed: int = 0
    max_frames: int | None = None
    model_kwargs: dict = field(default_factory=dict)
    optimizer: str | None = None
    lr_step: int | None = None
    lr_gamma: float | None = None
    selection: str | None = None
    loss_kwargs: dict = field(default_factory=dict)
    fps: float | None = None


def resolve_config(config: TrainConfig) -> TrainConfig:
    """``config`` with every None setting taken from the model's recipe: what :func:`fit` runs.

    Raises:
        ConfigError: unknown model, optimiser or selection metric; a non-positive epochs, batch
            size, learning rate, frame rate or ``max_frames``.
    """
    recipe = model_info(config.model).recipe.settings()
    cfg = TrainConfig(**{k: (recipe[k] if v is None and k in recipe else v) for k, v in asdict(config).items()})
    if cfg.optimizer not in OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {cfg.optimizer!r}")
    if cfg.selection not in SELECTION_METRICS:
        raise ConfigError(f"selection must be one of {', '.join(SELECTION_METRICS)}, got {cfg.selection!r}")
    if cfg.max_frames is not None and cfg.max_frames < 1:
        raise ConfigError(f"max_frames must be >= 1, got {cfg.max_frames!r}")
    for key in ("epochs", "batch_size", "lr", "fps"):
        if not getattr(cfg, key) > 0:
            raise ConfigError(f"{key} must be > 0, got {getattr(cfg, key)!r}")
    if cfg.lr_step < 0 or not 0 < cfg.lr_gamma <= 1:
        raise ConfigError(f"lr_step must be >= 0 and lr_gamma in (0, 1], got {cfg.lr_step!r}, {cfg.lr_gamma!r}")
    return cfg


def describe_config(cfg: TrainConfig) -> str:
    """One line, e.g. ``"sgd lr 0.005 x0.1 every 4 epochs, weight decay 0, batch 32, 16 epochs (patience 16),
    select on val accuracy, 10 frames/s, 16 frames a sample"``."""
    from ..models.recipes import describe_fps

    schedule = f" x{cfg.lr_gamma:g} every {cfg.lr_step} epochs" if cfg.lr_step else " constant"
    frames = "whole clips" if cfg.max_frames is None else f"{cfg.max_frames} frames a sample"
    return (
        f"{cfg.optimizer} lr {cfg.lr:g}{schedule}, weight decay {cfg.weight_decay:g}, batch {cfg.batch_size}, "
        f"{cfg.epochs} epochs (patience {cfg.patience}), select on val {cfg.selection}, "
        f"{describe_fps(cfg.fps)} frames/s, {frames}"
    )


def _optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


#: Order in which the metrics that a recipe does not select on break ties.
_TIE_BREAKERS = ("macro_map", "accuracy", "macro_precision")


def _selection_key(cfg: TrainConfig, val: dict[str, float]) -> tuple[float, ...]:
    """The recipe's metric first, the others breaking ties (macro mAP, accuracy, macro precision)."""
    return (val[cfg.selection], *(val[m] for m in _TIE_BREAKERS if m != cfg.selection))


#: What a checkpoint written before the recipes (issue 17) was trained with, for the settings it does not record.
_BEFORE_RECIPES = {"optimizer": "adam", "lr_step": 0, "lr_gamma": 0.1, "selection": "macro_map", "loss_kwargs": {}}


def _config_differences(old: dict, new: dict) -> list[str]:
    """``"lr: 0.0001 (checkpoint) vs 1.0 (now)"`` for every setting that differs between two configs."""
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} (checkpoint) vs {new.get(k)!r} (now)" for k in keys if old.get(k) != new.get(k)]


@dataclass
class TrainResult:
    """What :func:`fit` returns. ``best_epoch`` and ``history[i]["epoch"]`` count from 1, as the console does."""

    best_epoch: int
    val_metrics: dict
    history: list
    checkpoint: Path
    parameters: int
    clips_per_second: float


def _save(obj: dict, path: Path) -> None:
    if not ddp.current().main:  # several processes: rank 0 writes (emocontext.distributed.ddp)
        return
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def _loader(ds: FeatureSequenceDataset, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=g)


@torch.inference_mode()
def predict_probs(model: torch.nn.Module, ds: FeatureSequenceDataset, batch_size: int = 64) -> np.ndarray:
    """Class probabilities ``(N, K)`` of every clip of ``ds``, in order."""
    model.eval()
    device = str(next(model.parameters()).device)
    out = []
    for batch in _loader(ds, batch_size, False, 0):
        out.append(model(ddp.to_device(batch, device)).logits.softmax(-1).cpu())
    return torch.cat(out).numpy()


def clip_probs(model: torch.nn.Module, ds) -> np.ndarray:
    """Class probabilities ``(N, K)`` of every clip of ``ds``, as the model's paper evaluates them.

    Feature datasets: one pass per clip (:func:`predict_probs`). A :class:`~.pixels.PixelClipDataset`
    whose clips are longer than its ``clip_len``: the mean over windows of ``clip_len`` frames
    overlapping by half (CAER-Net, section 5.1: 16 frames overlapping by 8; CAER-Net-S's single
    frames: the mean over every frame).
    """
    if isinstance(ds, PixelClipDataset) and ds.needs_windows:
        view = ds.windows()
        return average_windows(predict_probs(model, view), view.window_clip, len(ds))
    return predict_probs(model, ds)


def fit(
    config: TrainConfig,
    train_ds: FeatureSequenceDataset,
    val_ds: FeatureSequenceDataset,
    out_dir: str | Path,
    *,
    label_set: LabelSet,
    on_log: Callable[[str], object] | None = None,
) -> TrainResult:
    """Train ``config.model`` on ``train_ds``, select on ``val_ds``, write checkpoints to ``out_dir``.

    The settings ``config`` leaves at None are the model's recipe (:func:`resolve_config`); the
    recipe's validation metric selects the checkpoint. Files: ``checkpoint.pt`` (last epoch, for
    resuming), ``best.pt`` (best validation metric; what :func:`load_model` reads),
    ``history.json``. ``TrainResult.val_metrics`` are measured on the selection set.

    Raises:
        ConfigError: unknown model or bad hyper-parameters.
    """
    config = resolve_config(config)
    _check_fps(config, train_ds)
    out = make_dir(out_dir)
    k = len(label_set)
    torch.manual_seed(config.seed)
    dims = {"face_dim": train_ds.face_dim, "context_dim": train_ds.context_dim}
    info = model_info(config.model)
    if "audio" in info.streams:
        dims["audio_dim"] = train_ds.audio_dim  # ConfigError when the store has no audio
        if "audio_frames_per_step" in info.options:  # the AV-LSTM's window matched to the audio rate
            dims["audio_frames_per_step"] = train_ds.audio_frames_per_step
    whitening = _whitening_state(train_ds)
    if _whitening_state(val_ds) != whitening:
        raise ConfigError("train_ds and val_ds must use the same audio whitening (fitted on the training clips)")
    model = create_model(config.model, num_classes=k, **dims, **config.model_kwargs)
    if config.loss_kwargs and not hasattr(model, "loss"):
        raise ConfigError(f"{config.model} trains with plain cross-entropy: it takes no loss options")
    net = ddp.wrap(model)  # on the device; DistributedDataParallel when several processes train
    opt = _optimizer(config, model.parameters())
    weight = None
    if config.class_weights:
        counts = np.bincount(train_ds.labels, minlength=k).astype(np.float64)
        weight = torch.tensor(counts.sum() / np.maximum(counts, 1) / k, dtype=torch.float32)
    meta = {
        "config": asdict(config),
        "label_set": label_set.name,
        "labels": list(label_set.names),
        "dims": dims,
        # the feature store's signature (extractor names, versions, weights checksums, stream settings): a
        # checkpoint is only ever evaluated on features made the same way (check_features)
        "features": getattr(train_ds, "signature", None),
    }
    if whitening is not None:
        meta["audio_whitening"] = whitening
    ckpt_path, best_path = out / "checkpoint.pt", out / "best.pt"
    start, history, best_key, best_epoch, stale = 0, [], (-1.0,), -1, 0
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ck["meta"].get("features", meta["features"]) != meta["features"]:
            raise IncompatibleFeaturesError(f"{ckpt_path} was trained on other features; use a new --out directory")
        # a checkpoint written before the frame rate was a setting ran at its store's rate, checked above
        before = {**_BEFORE_RECIPES, "fps": config.fps}
        diff = _config_differences({**before, **ck["meta"]["config"]}, meta["config"])
        if ck["meta"].get("audio_whitening") != whitening:
            diff.append("audio whitening (fitted on other training clips)")
        if diff:
            raise ConfigError(
                f"{ckpt_path} was made with another configuration ({'; '.join(diff)}); "
                "run with the same settings to resume, or use a new --out directory"
            )
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        start, history = ck["epoch"] + 1, ck["history"]
        best_key, best_epoch, stale = tuple(ck["best_key"]), ck["best_epoch"], ck["stale"]
        log.info("resuming %s after epoch %d", out, ck["epoch"])
    seen, busy = 0, 0.0
    for epoch in range(start, config.epochs):
        if stale >= config.patience:
            break
        torch.manual_seed(config.seed * 10_000 + epoch)
        lr = config.lr * config.lr_gamma ** (epoch // config.lr_step) if config.lr_step else config.lr
        for group in opt.param_groups:
            group["lr"] = lr
        train_ds.set_epoch(epoch)
        model.train()
        t0, total, n = time.perf_counter(), 0.0, 0
        if ddp.current().active:  # several processes and/or CUDA: the same global batches (distributed.ddp)
            seed = config.seed * 10_000 + epoch
            total, n = ddp.train_epoch(
                net,
                model,
                opt,
                train_ds,
                collate,
                batch_size=config.batch_size,
                seed=seed,
                weight=weight,
                loss_kwargs=config.loss_kwargs,
            )
        for batch in (
            () if ddp.current().active else _loader(train_ds, config.batch_size, True, config.seed * 10_000 + epoch)
        ):
            output = model(batch)
            if hasattr(model, "loss"):  # a model with its own objective (CAAN: softmax + triplet loss)
                loss = model.loss(output, batch["label"], weight=weight, **config.loss_kwargs)
            else:
                loss = F.cross_entropy(output.logits, batch["label"], weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(batch["label"])
            n += len(batch["label"])
        busy += time.perf_counter() - t0
        seen += n
        probs = clip_probs(model, val_ds)
        val = {
            "macro_precision": macro_precision(val_ds.labels, probs, k),
            "macro_map": macro_map(val_ds.labels, probs, k),
            "accuracy": accuracy(val_ds.labels, probs),
        }
        history.append(
            {
                "epoch": epoch + 1,
                "lr": lr,
                "loss": total / max(n, 1),
                "val_precision": val["macro_precision"],
                "val_map": val["macro_map"],
                "val_accuracy": val["accuracy"],
            }
        )
        key = _selection_key(config, val)
        if key > best_key:  # the recipe's metric first, the others break ties
            best_key, best_epoch, stale = key, epoch, 0
            _save({"model": model.state_dict(), "meta": {**meta, "epoch": epoch}}, best_path)
        else:
            stale += 1
        _save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "epoch": epoch,
                "history": history,
                "best_key": best_key,
                "best_epoch": best_epoch,
                "stale": stale,
                "meta": meta,
            },
            ckpt_path,
        )
        if ddp.current().main:
            atomic_write_text(out / "history.json", json.dumps(history, indent=2))
        ddp.barrier()  # every process resumes from, and ends with, what rank 0 wrote
        if on_log:
            on_log(
                f"epoch {epoch + 1}/{config.epochs} loss {total / max(n, 1):.4f} "
                f"val (selection) macro precision {val['macro_precision']:.4f} mAP {val['macro_map']:.4f} "
                f"acc {val['accuracy']:.4f}" + (" *" if best_epoch == epoch else "")
            )
    if not best_path.exists():
        raise EmoContextError(f"{out}: no epoch finished, nothing to evaluate")
    best_model, _ = load_model(best_path)
    val_metrics = evaluate_probs(val_ds.labels, clip_probs(best_model, val_ds), list(label_set.names))
    return TrainResult(
        best_epoch=best_epoch + 1,
        val_metrics=val_metrics,
        history=history,
        checkpoint=best_path,
        parameters=count_parameters(model),
        clips_per_second=seen / busy if busy else float("nan"),
    )


def _check_fps(config: TrainConfig, ds) -> None:
    """A feature store must be sampled at the run's frame rate (pixel clips are decoded at it)."""
    signature = getattr(ds, "signature", None) or {}
    store_fps = (signature.get("streams") or {}).get("fps")
    paths = [e.path for e in getattr(ds, "entries", ())]
    check_store_fps(config.model, config.fps, store_fps, paths, getattr(ds, "root", "the feature store"))


def _whitening_state(ds: FeatureSequenceDataset) -> dict | None:
    w = getattr(ds, "audio_whitening", None)
    return None if w is None else {k: np.asarray(v).tolist() for k, v in w.state_dict().items()}


def load_model(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Model and metadata (config, labels, feature dims) from a ``best.pt``/``checkpoint.pt``.

    ``meta["audio_whitening"]`` (only for models trained with whitened audio) is the state of the
    training audio whitening: pass it as ``FeatureSequenceDataset(..., audio_whitening=...)``.
    """
    path = Path(path)
    if not path.exists():
        raise EmoContextError(f"{path}: no such checkpoint")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    meta = ck["meta"]
    cfg = meta["config"]
    model = create_model(cfg["model"], num_classes=len(meta["labels"]), **meta["dims"], **cfg["model_kwargs"])
    model.load_state_dict(ck["model"])
    return model.eval(), meta


def check_features(meta: dict, store: FeatureStore) -> None:
    """Refuse to evaluate a checkpoint on features made by other extractors (e.g. a model trained on face CNN
    version 3, 7 classes, run on a version-4 store).

    Raises:
        IncompatibleFeaturesError: the checkpoint's recorded store signature differs from ``store``'s.

    Checkpoints written before signatures were recorded carry none: they get a warning, not an error.
    """
    import warnings

    from ..features.store import signature_diff

    made_with = meta.get("features")
    if made_with is None:
        warnings.warn(
            "this checkpoint does not record which features it was trained on (written by an older emocontext); "
            "make sure the store was extracted with the same face CNN version",
            stacklevel=2,
        )
        return
    diff = signature_diff(made_with, store.signature)
    if diff:
        raise IncompatibleFeaturesError(
            f"the checkpoint was trained on other features than the store {store.root} holds: {diff}. "
            "Re-extract the store with the checkpoint's extractors, or retrain on this store."
        )
