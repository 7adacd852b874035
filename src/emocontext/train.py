"""Training and evaluation of the feature-sequence models (CACA-RNN and its comparison models).

The default recipe is the paper's (Sun et al., MEC 2017, section V-C): Adam,
learning rate 1e-4, batch 32, frozen extractors (features come from a
FeatureStore), a random start frame per clip in training and the first frame in
evaluation, cross-entropy (optionally weighted by inverse class frequency). A model
that defines ``loss(output, labels)`` trains with that instead (CAAN's softmax +
triplet loss).
Model selection and early stopping use the validation macro mAP (the MEC 2017
metric), ties broken by accuracy. Training repeated over several seeds reports the median of each metric
(section V-D: "training was repeated five times with different random seeds and
median performance metrics are selected").

Audio models (``streams`` with ``"audio"``, e.g. ``av_lstm``) get ``audio_dim`` from the
datasets; the audio PCA whitening of the training dataset (Chao et al. 2016, 3.3) is saved in
the checkpoint's ``meta["audio_whitening"]`` (state dict as lists), so evaluation and prediction
build their datasets with ``audio_whitening=meta["audio_whitening"]``.

Resumable: a checkpoint is written atomically after every epoch; running the same
command again continues from it. Every epoch re-seeds torch and the data order
from ``seed`` and the epoch number, so a resumed run gives the same result as an
uninterrupted one.
"""

from __future__ import annotations

import io
import json
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from .data.datasets import FeatureSequenceDataset, collate, fit_audio_whitening
from .data.manifest import ClipEntry, Manifest
from .data.pixels import PixelClipDataset, average_windows, load_pixel_clips, pixel_stream_config
from .distributed import ddp
from .errors import ConfigError, EmoContextError, IncompatibleFeaturesError
from .features.store import FeatureStore, atomic_write_bytes, atomic_write_text
from .labels import LABEL_SETS, LabelSet
from .metrics import evaluate_probs, macro_map, plot_confusion
from .models.registry import count_parameters, create_model, model_info

__all__ = [
    "TrainConfig",
    "TrainResult",
    "fit",
    "predict_probs",
    "load_model",
    "manifest_from_store",
    "infer_label_set",
    "split_train_val",
    "train_seeds",
    "train_pixel_seeds",
    "clip_probs",
]

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (defaults: the CACA-RNN paper's recipe)."""

    model: str
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.0
    class_weights: bool = False
    patience: int = 15
    seed: int = 0
    max_frames: int | None = None
    model_kwargs: dict = field(default_factory=dict)


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

    Feature datasets: one pass per clip (:func:`predict_probs`). A :class:`~.data.pixels.PixelClipDataset`
    whose clips are longer than its ``clip_len``: the mean over 16-frame windows overlapping by 8
    (CAER-Net, section 5.1).
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
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``config.model`` on ``train_ds``, select on ``val_ds`` macro mAP, write checkpoints to ``out_dir``.

    Files: ``checkpoint.pt`` (last epoch, for resuming), ``best.pt`` (best validation
    mAP; what :func:`load_model` reads), ``history.json``.

    Raises:
        ConfigError: unknown model or bad hyper-parameters.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    k = len(label_set)
    torch.manual_seed(config.seed)
    dims = {"face_dim": train_ds.face_dim, "context_dim": train_ds.context_dim}
    if "audio" in model_info(config.model).streams:
        dims["audio_dim"] = train_ds.audio_dim  # ConfigError when the store has no audio
    whitening = _whitening_state(train_ds)
    if _whitening_state(val_ds) != whitening:
        raise ConfigError("train_ds and val_ds must use the same audio whitening (fitted on the training clips)")
    model = create_model(config.model, num_classes=k, **dims, **config.model_kwargs)
    net = ddp.wrap(model)  # on the device; DistributedDataParallel when several processes train
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
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
    start, history, best_key, best_epoch, stale = 0, [], (-1.0, -1.0), -1, 0
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ck["meta"].get("features", meta["features"]) != meta["features"]:
            raise IncompatibleFeaturesError(f"{ckpt_path} was trained on other features; use a new --out directory")
        diff = _config_differences(ck["meta"]["config"], meta["config"])
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
        train_ds.set_epoch(epoch)
        model.train()
        t0, total, n = time.perf_counter(), 0.0, 0
        if ddp.current().active:  # several processes and/or CUDA: the same global batches (distributed.ddp)
            seed = config.seed * 10_000 + epoch
            total, n = ddp.train_epoch(
                net, model, opt, train_ds, collate, batch_size=config.batch_size, seed=seed, weight=weight
            )
        for batch in (
            () if ddp.current().active else _loader(train_ds, config.batch_size, True, config.seed * 10_000 + epoch)
        ):
            output = model(batch)
            if hasattr(model, "loss"):  # a model with its own objective (CAAN: softmax + triplet loss)
                loss = model.loss(output, batch["label"])
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
        val_map = macro_map(val_ds.labels, probs, k)
        val_acc = float((probs.argmax(1) == val_ds.labels).mean())
        history.append({"epoch": epoch + 1, "loss": total / max(n, 1), "val_map": val_map, "val_accuracy": val_acc})
        if (val_map, val_acc) > best_key:  # macro mAP first, accuracy breaks ties
            best_key, best_epoch, stale = (val_map, val_acc), epoch, 0
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
        if progress:
            progress(
                f"epoch {epoch + 1}/{config.epochs} loss {total / max(n, 1):.4f} "
                f"val mAP {val_map:.4f} acc {val_acc:.4f}" + (" *" if best_epoch == epoch else "")
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

    from .features.store import signature_diff

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


def manifest_from_store(store: FeatureStore, label_set: LabelSet | None = None) -> Manifest:
    """The labelled clips of a store, rebuilt from the manifest entries recorded at extraction."""
    from .data.manifest import FaceEntry

    entries = []
    for path in sorted(store.records_dir.glob("*.npz")):
        m = store.get_meta(path)
        if m.get("label"):
            args = (m["path"], m["label"], m.get("split"), m.get("group"), m.get("start"), m.get("end"))
            if "face_id" in m:  # one of several labelled faces of an image
                entries.append(FaceEntry(*args, face_id=m["face_id"], box=tuple(m["box"])))
            else:
                entries.append(ClipEntry(*args))
    if not entries:
        raise EmoContextError(f"{store.root}: no labelled clips in this store")
    label_set = label_set or infer_label_set({e.label for e in entries})
    return Manifest(entries, label_set=label_set, name=str(store.root)).validate(check_files=False)


def infer_label_set(labels: set[str]) -> LabelSet:
    """The smallest known label set that contains every label."""
    fits = [s for s in LABEL_SETS.values() if labels <= set(s.names)]
    if not fits:
        raise ConfigError(f"labels {sorted(labels)} fit no known label set; pass --label-set")
    return min(fits, key=len)


def split_train_val(manifest: Manifest, *, val_fraction: float = 0.15, seed: int = 0) -> tuple[Manifest, Manifest]:
    """Train and validation parts: the manifest's own ``train``/``val`` splits if it has them, else a
    stratified (and subject-grouped where groups exist) random split of the non-test clips."""
    train, val = manifest.split("train"), manifest.split("val")
    if len(train) and len(val):
        return train, val
    pool = [e for e in manifest if e.split != "test"]
    rng = np.random.default_rng(seed)
    groups = sorted({e.group or e.path for e in pool})
    rng.shuffle(groups)
    n_val = max(1, int(round(len(groups) * val_fraction)))
    val_groups = set(groups[:n_val])
    tr = [e for e in pool if (e.group or e.path) not in val_groups]
    va = [e for e in pool if (e.group or e.path) in val_groups]
    if not tr or not va:
        raise ConfigError(f"{manifest.name}: too few clips ({len(pool)}) to hold out a validation set")
    return Manifest(tr, manifest.label_set, manifest.name), Manifest(va, manifest.label_set, manifest.name)


def train_seeds(
    config: TrainConfig,
    store: FeatureStore,
    train: Sequence[ClipEntry],
    val: Sequence[ClipEntry],
    test: Sequence[ClipEntry] | None,
    label_set: LabelSet,
    out_dir: str | Path,
    *,
    seeds: Sequence[int] = (0,),
    progress: Callable[[str], None] | None = None,
    audio_pca: int | None = 50,
) -> dict:
    """Train one model per seed; report each run and the median of every metric over seeds.

    ``audio_pca``: for a model that reads audio, PCA-whiten the audio features keeping this many
    components, fitted on the ``train`` clips (Chao et al. 2016, 3.3: 50); None = raw features.

    Returns a dict with ``runs`` (per seed: validation and test metrics) and ``median``
    (accuracy, macro mAP on val and test), ``parameters`` and ``clips_per_second``.
    Writes ``out_dir/summary.json`` and a confusion-matrix PNG per seed.
    """
    whitening = None
    if audio_pca and "audio" in model_info(config.model).streams:
        whitening = fit_audio_whitening(store, train, audio_pca)
    kw = {"max_frames": config.max_frames, "audio_whitening": whitening}

    def dataset(entries, train_mode: bool = False, seed: int = 0) -> FeatureSequenceDataset:
        return FeatureSequenceDataset(store, entries, label_set, train=train_mode, seed=seed, **kw)

    return _seed_runs(config, dataset, train, val, test, label_set, out_dir, seeds, progress)


def train_pixel_seeds(
    config: TrainConfig,
    train: Sequence[ClipEntry],
    val: Sequence[ClipEntry],
    test: Sequence[ClipEntry] | None,
    label_set: LabelSet,
    out_dir: str | Path,
    *,
    seeds: Sequence[int] = (0,),
    detector=None,
    fps: float = 10.0,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """:func:`train_seeds` for the models that learn from pixels (``caer_net``, ``caer_net_s``).

    The clips are decoded once (:func:`~.data.pixels.load_pixel_clips`: ``fps``, faces 96x96, the
    whole face-hidden frame at 128x171) and kept in memory; clips that fail to decode are reported
    through ``progress`` and left out. Training samples are random 16-frame windows with random
    112x112 crops, flips and colour jitter; validation and test clips are predicted as the mean over
    16-frame windows overlapping by 8 (CAER-Net, section 5.1). Returns what :func:`train_seeds` returns.
    """
    loaded = {}
    for name, entries in (("train", train), ("val", val), ("test", test or [])):
        kept, clips, failed = load_pixel_clips(list(entries), detector=detector, config=pixel_stream_config(fps))
        for path, why in failed:
            if progress:
                progress(f"skipped {path}: {why}")
        loaded[name] = (kept, clips)
        if progress and entries:
            progress(f"{name}: {len(clips)} clips decoded ({sum(len(c) for c in clips)} frames)")
    pixels = {id(e): c for kept, clips in loaded.values() for e, c in zip(kept, clips, strict=True)}

    def dataset(entries, train_mode: bool = False, seed: int = 0) -> PixelClipDataset:
        return PixelClipDataset(
            [pixels[id(e)] for e in entries],
            [e.label for e in entries],
            label_set=label_set,
            train=train_mode,
            seed=seed,
        )

    return _seed_runs(
        config,
        dataset,
        loaded["train"][0],
        loaded["val"][0],
        loaded["test"][0] or None,
        label_set,
        out_dir,
        seeds,
        progress,
    )


def _seed_runs(config, dataset, train, val, test, label_set, out_dir, seeds, progress) -> dict:
    out = Path(out_dir)
    runs = []
    val_ds = dataset(val)
    test_ds = dataset(test) if test else None
    result = None
    for seed in seeds:
        cfg = TrainConfig(**{**asdict(config), "seed": seed})
        train_ds = dataset(train, True, seed)
        run_dir = out / f"seed{seed}"
        if progress:
            progress(f"[{cfg.model}] seed {seed}: {len(train_ds)} train / {len(val_ds)} val clips")
        result = fit(cfg, train_ds, val_ds, run_dir, label_set=label_set, progress=progress)
        run = {"seed": seed, "best_epoch": result.best_epoch, "val": _short(result.val_metrics)}
        if test_ds is not None:
            model, _ = load_model(result.checkpoint)
            test_metrics = evaluate_probs(test_ds.labels, clip_probs(model, test_ds), list(label_set.names))
            run["test"] = _short(test_metrics)
            if ddp.current().main:
                plot_confusion(
                    np.array(test_metrics["confusion"]), list(label_set.names), run_dir / "confusion_test.png"
                )
                atomic_write_text(run_dir / "test_metrics.json", json.dumps(test_metrics, indent=2))
        runs.append(run)
    median = {}
    for part in ("val", "test"):
        if all(part in r for r in runs):
            median[part] = {m: statistics.median(r[part][m] for r in runs) for m in ("accuracy", "macro_map")}
    summary = {
        "model": config.model,
        "parameters": result.parameters if result else None,
        "clips_per_second": result.clips_per_second if result else None,
        "seeds": list(seeds),
        "runs": runs,
        "median": median,
    }
    if ddp.current().main:
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    return summary


def _short(metrics: dict) -> dict:
    return {"accuracy": metrics["accuracy"], "macro_map": metrics["macro_map"]}
