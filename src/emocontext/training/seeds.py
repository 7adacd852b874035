"""Runs over several seeds and the clips they read: the store's manifest, train/val splits, median metrics.

Training repeated over several seeds reports the median of each metric (Sun et al., MEC 2017, section
V-D: "training was repeated five times with different random seeds and median performance metrics are
selected"). :func:`train_seeds` trains on a feature store, :func:`train_pixel_seeds` on decoded pixels.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..data.manifest import ClipEntry, FaceEntry, Manifest
from ..distributed import ddp
from ..errors import ConfigError, EmoContextError
from ..features.store import FeatureStore
from ..labels import LabelSet, get_label_set, infer_label_set
from ..metrics import evaluate_probs, plot_confusion
from ..models.registry import model_info
from ..outputs import atomic_write_text
from .datasets import FeatureSequenceDataset, fit_audio_whitening
from .fit import TrainConfig, clip_probs, fit, load_model, resolve_config
from .pixels import PixelClipDataset, load_pixel_clips, pixel_stream_config

__all__ = [
    "SUMMARY_METRICS",
    "manifest_from_store",
    "infer_label_set",
    "labelled_manifest",
    "split_train_val",
    "split_train_val_test",
    "store_splits",
    "train_seeds",
    "train_pixel_seeds",
]

#: The metrics of a run summary and of the medians over seeds: macro precision is MEC's metric (the "mAP" that
#: Sun et al. report beside the MEC 2017 baseline), macro mAP the mean over classes of the average precision.
SUMMARY_METRICS = ("accuracy", "macro_precision", "macro_map")


def manifest_from_store(store: FeatureStore, label_set: LabelSet | None = None) -> Manifest:
    """The labelled clips of a store, rebuilt from the manifest entries recorded at extraction."""
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


def split_train_val_test(
    manifest: Manifest, *, val_fraction: float = 0.15, test_fraction: float = 0.0, seed: int = 0
) -> tuple[Manifest, Manifest, Manifest | None]:
    """Train, validation (selection) and test (held-out) parts.

    The manifest's own ``test`` split when it has one; otherwise, with ``test_fraction`` > 0, that
    fraction of the clips' groups (subjects when known) is held out as the test part, before the
    validation part is chosen (:func:`split_train_val`) from the rest, so that a number reported
    on it was never used to select a checkpoint, an epoch or ensemble weights. None when there is
    no test part: then every reported number is a selection-set number.
    """
    test = manifest.split("test")
    if len(test) or not test_fraction:
        train, val = split_train_val(manifest, val_fraction=val_fraction, seed=seed)
        return train, val, (test if len(test) else None)
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction must be in [0, 1), got {test_fraction}")
    groups = sorted({e.group or e.path for e in manifest})
    np.random.default_rng((seed, 1)).shuffle(groups)
    n_test = max(1, int(round(len(groups) * test_fraction)))
    held = set(groups[:n_test])
    te = [e for e in manifest if (e.group or e.path) in held]
    rest = [e for e in manifest if (e.group or e.path) not in held]
    if not rest:
        raise ConfigError(f"{manifest.name}: too few clips ({len(manifest)}) to hold out a test set")
    train, val = split_train_val(
        Manifest(rest, manifest.label_set, manifest.name), val_fraction=val_fraction, seed=seed
    )
    return train, val, Manifest(te, manifest.label_set, manifest.name)


def labelled_manifest(manifest: Manifest, source: str | Path | None = None) -> Manifest:
    """``manifest`` ready to train on: every clip labelled, with a label set (inferred with
    :func:`infer_label_set` when it has none; set in place).

    Raises:
        EmoContextError: an unlabelled clip (the message names ``source``, default the manifest's name).
    """
    if any(e.label is None for e in manifest):
        raise EmoContextError(f"{source or manifest.name}: every clip needs a label to train on")
    if manifest.label_set is None:
        manifest.label_set = infer_label_set({e.label for e in manifest})
    return manifest


def store_splits(store_dir: str | Path, label_set: str | LabelSet | None = None, *, test_fraction: float = 0.0):
    """A store's clips ready to train on: ``(store, label set, train, val, test or None)``.

    The manifest is the one recorded in the store (:func:`manifest_from_store`); the parts are
    :func:`split_train_val_test`'s: test is the store's ``test`` split, else ``test_fraction`` of its
    groups held out (None when neither: every reported number is then a selection-set number).
    """
    store = FeatureStore(store_dir)
    manifest = manifest_from_store(store, get_label_set(label_set) if label_set else None)
    train, val, test = split_train_val_test(manifest, test_fraction=test_fraction)
    return store, manifest.label_set, train, val, test


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
    on_log: Callable[[str], object] | None = None,
    audio_pca: int | None = 50,
) -> dict:
    """Train one model per seed; report each run and the median of every metric over seeds.

    ``audio_pca``: for a model that reads audio, PCA-whiten the audio features keeping this many
    components, fitted on the ``train`` clips (Chao et al. 2016, 3.3: 50); None = raw features.

    Returns a dict with ``runs`` (per seed: validation and test metrics) and ``median``
    (accuracy, macro precision and macro mAP on val and test; :data:`SUMMARY_METRICS`),
    ``parameters`` and ``clips_per_second``.
    Writes ``out_dir/summary.json`` and a confusion-matrix PNG per seed.
    """
    whitening = None
    if audio_pca and "audio" in model_info(config.model).streams:
        whitening = fit_audio_whitening(store, train, audio_pca)
    kw = {"max_frames": config.max_frames, "audio_whitening": whitening}

    def dataset(entries, train_mode: bool = False, seed: int = 0) -> FeatureSequenceDataset:
        return FeatureSequenceDataset(store, entries, label_set, train=train_mode, seed=seed, **kw)

    return _seed_runs(config, dataset, train, val, test, label_set, out_dir, seeds, on_log)


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
    on_log: Callable[[str], object] | None = None,
) -> dict:
    """:func:`train_seeds` for the models that learn from pixels (``caer_net``, ``caer_net_s``).

    The clips are decoded once (:func:`~.pixels.load_pixel_clips`: at ``config.fps``, the recipe's
    10 fps unless given; faces 96x96, the whole face-hidden frame at 128x171) and kept in memory;
    clips that fail to decode are reported through ``on_log`` and left out. Training samples are
    random windows of ``config.max_frames`` frames (the recipe's: CAER-Net's 16-frame clips,
    CAER-Net-S's single images; None: whole clips) with random 112x112 crops, flips and colour
    jitter; validation and test clips are predicted as the mean over windows of that length
    overlapping by half (CAER-Net, section 5.1: 16 frames overlapping by 8). Returns what
    :func:`train_seeds` returns.
    """
    resolved = resolve_config(config)
    loaded = {}
    for name, entries in (("train", train), ("val", val), ("test", test or [])):
        kept, clips, failed = load_pixel_clips(
            list(entries), detector=detector, config=pixel_stream_config(resolved.fps)
        )
        for path, why in failed:
            if on_log:
                on_log(f"skipped {path}: {why}")
        loaded[name] = (kept, clips)
        if on_log and entries:
            on_log(f"{name}: {len(clips)} clips decoded ({sum(len(c) for c in clips)} frames)")
    pixels = {id(e): c for kept, clips in loaded.values() for e, c in zip(kept, clips, strict=True)}
    clip_len = resolved.max_frames or max((len(c) for c in pixels.values()), default=1)

    def dataset(entries, train_mode: bool = False, seed: int = 0) -> PixelClipDataset:
        return PixelClipDataset(
            [pixels[id(e)] for e in entries],
            [e.label for e in entries],
            label_set=label_set,
            train=train_mode,
            clip_len=clip_len,
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
        on_log,
    )


def _seed_runs(config, dataset, train, val, test, label_set, out_dir, seeds, on_log) -> dict:
    out = Path(out_dir)
    runs = []
    val_ds = dataset(val)
    test_ds = dataset(test) if test else None
    result = None
    for seed in seeds:
        cfg = TrainConfig(**{**asdict(config), "seed": seed})
        train_ds = dataset(train, True, seed)
        run_dir = out / f"seed{seed}"
        if on_log:
            on_log(f"[{cfg.model}] seed {seed}: {len(train_ds)} train / {len(val_ds)} val clips")
        result = fit(cfg, train_ds, val_ds, run_dir, label_set=label_set, on_log=on_log)
        run = {"seed": seed, "best_epoch": result.best_epoch, "val": _short(result.val_metrics)}
        if test_ds is not None:
            model, _ = load_model(result.checkpoint)
            test_metrics = evaluate_probs(test_ds.labels, clip_probs(model, test_ds), list(label_set.names))
            run["test"] = _short(test_metrics)
            if ddp.current().main:  # several processes (distributed.ddp): rank 0 writes
                plot_confusion(
                    np.array(test_metrics["confusion"]), list(label_set.names), run_dir / "confusion_test.png"
                )
                atomic_write_text(run_dir / "test_metrics.json", json.dumps(test_metrics, indent=2))
        runs.append(run)
    median = {}
    for part in ("val", "test"):
        if all(part in r for r in runs):
            median[part] = {m: statistics.median(r[part][m] for r in runs) for m in SUMMARY_METRICS}
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
    return {m: metrics[m] for m in SUMMARY_METRICS}
