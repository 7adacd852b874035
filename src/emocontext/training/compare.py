"""Comparing models on one feature store: a Table-I-style comparison, the fitted ensemble, evaluation files.

:func:`compare_models` trains every model over its seeds (:func:`~.seeds.train_seeds`), optionally adds a
linear weighted ensemble of some of them (Sun et al., MEC 2017, Table II: weights fitted on the validation
clips, :func:`~emocontext.models.ensemble.fit_ensemble_weights`) and writes ``table.md``;
:func:`evaluate_checkpoint` scores one trained model on one split.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import EmoContextError
from ..labels import LabelSet
from ..metrics import accuracy, evaluate_probs, macro_map, macro_precision, plot_confusion
from ..models.ensemble import fit_ensemble_weights
from ..models.registry import count_parameters
from ..outputs import atomic_write_text
from .datasets import FeatureSequenceDataset
from .fit import TrainConfig, check_features, load_model, predict_probs
from .seeds import store_splits, train_seeds

__all__ = ["compare_models", "compare_table", "ensemble_summary", "evaluate_checkpoint", "write_evaluation"]


def ensemble_summary(members: Sequence[str], out_dir: Path, store, labels: LabelSet, val, test) -> dict:
    """Fit ensemble weights on the val probabilities of the members' seed-0 checkpoints
    (``out_dir/<member>/seed0/best.pt``); evaluate the ensemble like a model.

    Returns a summary like :func:`~.seeds.train_seeds`' (``model``, ``parameters``, ``median`` val/test
    accuracy, macro precision and macro mAP) plus ``weights``: member -> fitted weight. Its val numbers
    are selection-set numbers twice over (the members' checkpoints and the weights were chosen on val).
    """
    models = [load_model(Path(out_dir) / m / "seed0" / "best.pt") for m in members]
    k = len(labels)

    def probs(entries):
        outs = []
        for model, meta in models:
            ds = FeatureSequenceDataset(store, entries, labels, max_frames=meta["config"]["max_frames"])
            outs.append(predict_probs(model, ds))
        return outs, ds.labels

    val_probs, y_val = probs(val)
    weights = fit_ensemble_weights(val_probs, y_val)
    median = {}
    for part, entries in (("val", val), ("test", test)):
        if entries:
            p, y = probs(entries)
            mixed = np.tensordot(weights, np.stack(p), 1)
            median[part] = {
                "accuracy": accuracy(y, mixed),
                "macro_precision": macro_precision(y, mixed, k),
                "macro_map": macro_map(y, mixed, k),
            }
    name = "ensemble(" + " ".join(f"{w:.2f}*{m}" for m, w in zip(members, weights, strict=True)) + ")"
    return {
        "model": name,
        "parameters": sum(count_parameters(m) for m, _ in models),
        "clips_per_second": None,
        "median": median,
        "weights": dict(zip(members, weights.tolist(), strict=True)),
    }


def compare_table(summaries: Sequence[dict], part: str, note: str) -> str:
    """The markdown table of ``summaries`` on ``part`` (``"test"``, held out, or ``"val"``, the selection
    set, labelled as such), then ``note``: macro precision (MEC's metric), macro mAP (mean average
    precision) and accuracy."""
    what = "test (held out)" if part == "test" else "val (selection set: optimistic)"
    lines = [
        f"| model | parameters | {what} macro precision | {what} mAP | {what} accuracy | train clips/s |",
        "|---|---|---|---|---|---|",
    ]
    for s in summaries:
        m = s["median"][part]
        speed = "-" if s["clips_per_second"] is None else f"{s['clips_per_second']:.0f}"
        lines.append(
            f"| {s['model']} | {s['parameters']:,} | {m['macro_precision']:.4f} | {m['macro_map']:.4f} "
            f"| {m['accuracy']:.4f} | {speed} |"
        )
    return "\n".join(lines) + "\n" + note


def compare_models(
    store_dir: str | Path,
    out_dir: str | Path,
    names: Sequence[str],
    *,
    ensemble: Sequence[str] = (),
    epochs: int | None = None,
    seeds: int = 1,
    batch_size: int | None = None,
    lr: float | None = None,
    fps: float | None = None,
    label_set: str | None = None,
    test_fraction: float = 0.0,
    on_log: Callable[[str], object] | None = None,
) -> tuple[list[dict], Path]:
    """Train and evaluate each model of ``names`` over ``seeds`` seeds on one store; write ``out_dir/table.md``.

    Args:
        ensemble: models (among ``names``) to combine by a weighted ensemble fitted on val (Table II).
        epochs, batch_size, lr: None = each model's recipe (:mod:`emocontext.models.recipes`).
        fps: train every model at this frame rate (the store's); None = each model's recipe, and a
            model whose recipe samples at another rate than the store is refused.
        test_fraction: without a test split in the store, hold out this fraction of the groups as one
            (:func:`~.seeds.split_train_val_test`); the table then reports it, else the val numbers, labelled
            as selection-set numbers.
        on_log: called with ``"<model>: done"`` after each model.

    Returns:
        The summaries (one per model, then the ensemble's) and the path of ``table.md`` (written atomically).

    Raises:
        EmoContextError: an ensemble member is not among ``names``; errors of the store and of training.
    """
    out_dir = Path(out_dir)
    missing = [m for m in ensemble if m not in names]
    if missing:
        raise EmoContextError(f"--ensemble members {missing} are not among --models {list(names)}")
    st, labels, tr, va, te = store_splits(store_dir, label_set, test_fraction=test_fraction)
    summaries = []
    for name in names:
        cfg = TrainConfig(model=name, epochs=epochs, batch_size=batch_size, lr=lr, fps=fps)
        summaries.append(train_seeds(cfg, st, tr, va, te, labels, out_dir / name, seeds=range(seeds)))
        if on_log:
            on_log(f"{name}: done")
    if ensemble:
        summaries.append(ensemble_summary(ensemble, out_dir, st, labels, va, te))
    note = f"\nMedian over {seeds} seed(s); store `{store_dir}`; {len(tr)} train, {len(va)} val"
    note += f", {len(te)} test clips.\n" if te else " clips.\n"
    if not te:
        note += (
            "No test split: the numbers are on the validation clips that selected each checkpoint (and fitted "
            "the ensemble weights), so they are optimistic. `--test-fraction` holds out a test split.\n"
        )
    table = atomic_write_text(out_dir / "table.md", compare_table(summaries, "test" if te else "val", note))
    return summaries, table


def evaluate_checkpoint(
    checkpoint: str | Path, store_dir: str | Path, split: str = "test", *, test_fraction: float = 0.0
):
    """Score a trained model on one split of a store: ``(metrics, label set, checkpoint meta)``.

    ``metrics`` is :func:`~emocontext.metrics.evaluate_probs`' (accuracy, macro precision, macro mAP,
    per-class AP, support, confusion matrix). ``test_fraction`` must be the value the model was trained
    with (the splits are rebuilt, :func:`~.seeds.store_splits`). The val split selected the checkpoint:
    its numbers are optimistic.

    Raises:
        EmoContextError: no checkpoint, no clips in ``split``, or features made by other extractors.
    """
    model, meta = load_model(checkpoint)
    st, labels, tr, va, te = store_splits(store_dir, meta["label_set"], test_fraction=test_fraction)
    check_features(meta, st)
    entries = {"train": tr, "val": va, "test": te}.get(split)
    if not entries:
        hint = ""
        if split == "test" and not test_fraction:
            hint = (
                "; the store has no test split of its own: if the model was trained with --test-fraction F, "
                "give evaluate the same --test-fraction F (it rebuilds the same held-out clips)"
            )
        raise EmoContextError(f"{store_dir}: no clips in split {split!r}{hint}")
    ds = FeatureSequenceDataset(st, entries, labels, max_frames=meta["config"]["max_frames"])
    return evaluate_probs(ds.labels, predict_probs(model, ds), list(labels.names)), labels, meta


def write_evaluation(metrics: dict, labels: LabelSet, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``metrics.json`` and ``confusion.png`` into ``out_dir`` (atomically); returns both paths."""
    out_dir = Path(out_dir)
    path = atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    png = plot_confusion(np.array(metrics["confusion"]), list(labels.names), out_dir / "confusion.png")
    return path, png
