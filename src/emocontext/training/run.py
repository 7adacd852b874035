"""One training command, end to end: what ``emocontext train`` runs (:func:`run`).

It chooses how the model learns -- from a feature store (the CACA-RNN family, CAAN, the AV-LSTM,
``caer_net_features``) or from decoded pixels (``caer_net``, ``caer_net_s``: CAER-Net section 5.1
input) -- splits the clips (a held-out test split on request), trains one run per seed and returns
the median metrics (:func:`~.seeds.train_seeds`, :func:`~.seeds.train_pixel_seeds`). With
``nproc > 1`` it starts that many processes on this machine (PyTorch DistributedDataParallel,
:func:`emocontext.distributed.ddp.launch`), each running this same function, and reads their
result back from ``out_dir/summary.json``; under ``torchrun`` each process runs it directly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from ..data.manifest import Manifest
from ..distributed import ddp
from ..errors import EmoContextError
from .fit import TrainConfig, describe_config, resolve_config
from .seeds import labelled_manifest, split_train_val_test, store_splits, train_pixel_seeds, train_seeds

__all__ = ["run"]

NO_TEST_WARNING = (
    "no test split: every number below is measured on the validation clips that selected the checkpoint "
    "(optimistic); --test-fraction 0.15 holds out a test split"
)


def run(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    store: str | Path | None = None,
    manifest: Manifest | None = None,
    label_set: str | None = None,
    detector: str = "mtcnn",
    seeds: int = 1,
    test_fraction: float = 0.0,
    device: str = "cpu",
    nproc: int = 1,
    on_log: Callable[[str], None] | None = None,
    on_warn: Callable[[str], None] | None = None,
) -> dict | None:
    """Train ``config.model`` over ``seeds`` seeds (0..N-1) and return the summary (median over seeds).

    Args:
        config: the run's settings (unset ones come from the model's recipe, :func:`~.fit.resolve_config`).
        out_dir: run directory: one ``seed<k>/`` per seed (checkpoints, metrics; resumed if present) and
            ``summary.json``.
        store: the feature store (feature models).
        manifest: the clips of a pixel model (the caller reads the CSV or the dataset root, in the label
            set it wants: library code does not choose datasets).
        label_set: the label set of a feature store's clips (``ekman7``, ...; default: inferred).
        detector: face detector of the pixel clips where the dataset gives no box.
        seeds: how many seeds.
        test_fraction: without a test split, hold out this fraction of the clips (grouped by subject).
        device: ``"cpu"``, ``"cuda"`` (one GPU per process) or ``"auto"``.
        nproc: processes on this machine (> 1: DistributedDataParallel, the same global batches).
        on_log: called with each progress line (the recipe, each epoch) by the main process. With
            ``nproc > 1`` it goes to the new processes, so it must be a module-level function.
        on_warn: called with a warning (no test split), same rule.

    Returns:
        The summary of :func:`~.seeds.train_seeds` (``model``, ``parameters``, ``median``, ``runs``,
        ...); None in a process that is not the main one of a DistributedDataParallel group.

    Raises:
        EmoContextError: the wrong input for the model (a store for a pixel model, clips for a feature
            model), an unreadable store or manifest, bad settings (ConfigError), or a process of
            ``nproc`` failed.
    """
    if nproc > 1 and "WORLD_SIZE" not in os.environ:  # start the processes; each runs this function
        kwargs = dict(
            config=config,
            out_dir=out_dir,
            store=store,
            manifest=manifest,
            label_set=label_set,
            detector=detector,
            seeds=seeds,
            test_fraction=test_fraction,
            device=device,
            nproc=nproc,
            on_log=on_log,
            on_warn=on_warn,
        )
        code = ddp.launch(nproc, run, kwargs)
        if code:
            raise EmoContextError(f"a training process failed (exit status {code}); its error is above")
        return json.loads((Path(out_dir) / "summary.json").read_text())
    from ..models.registry import model_info

    main = ddp.setup(device).main  # joins torchrun's process group, if any; the main process reports
    say = on_log if main else None
    warn = on_warn if main else None
    if say:
        say(f"recipe: {describe_config(resolve_config(config))}")
    if any(s.endswith("_pixels") for s in model_info(config.model).streams):
        if manifest is None:
            raise EmoContextError(f"{config.model} learns from pixels: give the clips with --manifest, not a store")
        m = labelled_manifest(manifest)
        tr, va, te = split_train_val_test(m, test_fraction=test_fraction)
        if warn and not te:
            warn(NO_TEST_WARNING)
        from ..video.faces import create_detector

        summary = train_pixel_seeds(
            config,
            tr,
            va,
            te,
            m.label_set,
            out_dir,
            seeds=range(seeds),
            detector=create_detector(detector),
            on_log=say,
        )
    else:
        if store is None:
            raise EmoContextError(f"{config.model} reads features: give the feature store with --store")
        st, labels, tr, va, te = store_splits(store, label_set, test_fraction=test_fraction)
        if warn and not te:
            warn(NO_TEST_WARNING)
        summary = train_seeds(config, st, tr, va, te, labels, out_dir, seeds=range(seeds), on_log=say)
    return summary if main else None
