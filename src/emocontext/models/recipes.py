"""Each paper's training recipe: optimiser, learning-rate schedule, epochs, batch, model selection, sampling.

Every registered model carries one (:attr:`~emocontext.models.registry.ModelInfo.recipe`), given
at registration next to the model (``register_model(..., recipe=CAER_NET)``); ``emocontext train``
and :func:`emocontext.training.fit` use it for every setting the user does not give, and
``emocontext models --recipes`` shows it. What each paper says, and what it leaves open (filled
here, marked "ours"), is in FIDELITY.md ("Training recipes").

==============  ===========  ====  ===========  =====  =====  =========  ===============  ===========  ======
recipe          optimiser    lr    schedule     decay  batch  epochs     select           frames/s     frames
==============  ===========  ====  ===========  =====  =====  =========  ===============  ===========  ======
``CACA_RNN``    Adam         1e-4  constant     0      32     60 (ours)  macro precision  5            all
``CAER_NET``    SGD m 0.9    5e-3  /10 every 4  0      32     16 (ours)  accuracy         10           16
``CAER_NET_S``  SGD m 0.9    5e-3  /10 every 4  0      32     16 (ours)  accuracy         10           1
``CAAN``        Adam (ours)  1e-4  constant     0      32     60 (ours)  accuracy         every frame  all
``AV_LSTM``     Adadelta     1.0   constant     5e-4   32     50         accuracy         25           all
==============  ===========  ====  ===========  =====  =====  =========  ===============  ===========  ======

Sources: Sun et al. V-C (CACA-RNN), Lee et al. 5.1 (CAER-Net, CAER-Net-S), Chao et al. 4.1 (AV-LSTM); the
CAAN paper gives no recipe but its sampling. ``CAER_NET_FEATURES`` is ``CAER_NET`` with whole clips.

"select" is the validation metric that picks the checkpoint (and drives early stopping); the
others break ties. "frames/s" is the rate the model's videos are sampled at: ``emocontext extract
--model NAME`` extracts at it (:func:`sampling_fps`), and ``train`` refuses a store sampled at
another rate unless ``--fps`` says to train at that one (:func:`check_store_fps`). "frames" is the
number of frames of one training sample (pixel models: a window of that many frames, predicted
over windows overlapping by half; "all": the whole clip from a random start).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..errors import ConfigError, IncompatibleFeaturesError

__all__ = [
    "Recipe",
    "OPTIMIZERS",
    "SELECTION_METRICS",
    "EVERY_FRAME",
    "CACA_RNN",
    "CAER_NET",
    "CAER_NET_S",
    "CAER_NET_FEATURES",
    "CAAN",
    "AV_LSTM",
    "DEFAULT",
    "describe_fps",
    "sampling_fps",
    "check_store_fps",
]

#: Optimisers a recipe may name (``torch.optim`` classes; SGD with momentum 0.9).
OPTIMIZERS = ("adam", "adadelta", "sgd")
#: The ``fps`` of a recipe that reads every frame of a video (CAAN: "V = (v_1, ..., v_K) ... K is the total
#: number of frames"). Asked for more frames per second than a file has,
#: :func:`emocontext.video.decode.iter_frames` yields each decoded frame once (no copies), so a rate above
#: any real file's takes every frame; their timestamps are then rounded up to the millisecond.
EVERY_FRAME = 1000.0
#: Validation metrics a recipe may select on.
SELECTION_METRICS = ("macro_precision", "macro_map", "accuracy")


@dataclass(frozen=True)
class Recipe:
    """A training recipe.

    Attributes:
        optimizer: ``"adam"``, ``"adadelta"`` or ``"sgd"`` (momentum 0.9).
        lr: initial learning rate.
        lr_step: divide the learning rate by ``1 / lr_gamma`` every ``lr_step`` epochs; 0 = constant.
        lr_gamma: the factor of each step (0.1 = "dropped by a factor of 10").
        weight_decay: L2 penalty (the optimiser's ``weight_decay``).
        batch_size: clips per batch.
        epochs: maximum number of epochs.
        patience: stop after this many epochs without a better selection metric.
        selection: ``"macro_precision"`` (MEC's metric, :func:`emocontext.metrics.macro_precision`),
            ``"macro_map"`` or ``"accuracy"`` on the validation clips: picks ``best.pt``.
        source: where the recipe comes from (paper and section).
        fps: frames sampled per second of video, for the feature store (``extract --model``) and for
            the pixel clips; :data:`EVERY_FRAME` for every frame of the file.
        max_frames: frames of one training sample: a pixel model's window (CAER-Net's 16-frame
            clips, CAER-Net-S's single images); None = the whole clip (from a random start).
        ours: the settings the paper does not give, filled here.
    """

    optimizer: str
    lr: float
    batch_size: int
    epochs: int
    selection: str
    source: str
    lr_step: int = 0
    lr_gamma: float = 0.1
    weight_decay: float = 0.0
    patience: int = 15
    fps: float = 5.0
    max_frames: int | None = None
    ours: str = ""

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.selection not in SELECTION_METRICS:
            raise ConfigError(f"selection must be one of {SELECTION_METRICS}, got {self.selection!r}")
        if not self.fps > 0:
            raise ConfigError(f"fps must be > 0, got {self.fps!r}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"max_frames must be >= 1 or None, got {self.max_frames!r}")

    def settings(self) -> dict:
        """The training settings: every field but ``source`` and ``ours`` (TrainConfig's names)."""
        d = asdict(self)
        d.pop("source")
        d.pop("ours")
        return d

    def schedule(self) -> str:
        """``"constant"`` or ``"x0.1 every 4 epochs"``."""
        if not self.lr_step:
            return "constant"
        return f"x{self.lr_gamma:g} every {self.lr_step} epochs"

    def sampling(self) -> str:
        """``"5"``, ``"25"`` or ``"every frame"``: the frames per second this recipe's videos are sampled at."""
        return describe_fps(self.fps)

    def frames(self) -> str:
        """``"all"`` or the number of frames of one training sample."""
        return "all" if self.max_frames is None else str(self.max_frames)


#: Sun et al., MEC 2017, V-C: "Adam was used with learning rate 10^-4 with mini-batch size 32"; "Videos
#: are downsampled to 5 fps in both training and inference phases". Epochs and early stopping are not
#: given. Selection on macro precision, the mean over classes of TP / (TP + FP): the "mAP" the paper
#: reports beside the MEC 2017 baseline, which the MEC overview defines so (FIDELITY.md).
CACA_RNN = Recipe(
    optimizer="adam",
    lr=1e-4,
    batch_size=32,
    epochs=60,
    patience=15,
    selection="macro_precision",
    fps=5.0,
    source="Sun et al., MEC 2017, V-C",
    ours="epochs 60, patience 15, selection on macro precision (the MEC metric; the paper selects on nothing it names)",
)

#: Lee et al., ICCV 2019, 5.1: "learning rate initialized as 5x10^-3 and dropped by a factor of 10
#: every 4 epochs ... cross-entropy ... batch size to 32"; "single non-overlapped consecutive 16 frame
#: clips from every training video which sampled at 10 frames per second". The optimiser and the number
#: of epochs are not given: SGD with momentum 0.9 (the usual optimiser for a from-scratch C3D-style
#: network at this rate), 16 epochs (four rates: 5e-3 .. 5e-6). The paper reports accuracy.
CAER_NET = Recipe(
    optimizer="sgd",
    lr=5e-3,
    lr_step=4,
    lr_gamma=0.1,
    batch_size=32,
    epochs=16,
    patience=16,
    selection="accuracy",
    fps=10.0,
    max_frames=16,
    source="Lee et al., ICCV 2019, 5.1",
    ours="SGD momentum 0.9, 16 epochs, no early stop, selection on accuracy (the paper's metric)",
)

#: CAER-Net-S (5.1: "We also trained static model of CAER-Net-S with CAER-S dataset"): CAER-Net's recipe
#: on single images: each training sample is one frame of a clip (``max_frames=1``); a video is
#: predicted as the mean over its frames. ``--max-frames 16`` trains it on 16-frame windows with the loss
#: on their averaged logits instead (the only form before issue 25).
CAER_NET_S = replace(
    CAER_NET,
    max_frames=1,
    ours=CAER_NET.ours + "; a video is the mean over its frames (CAER-S is images)",
)

#: ``caer_net_features`` (not in the paper: CAER-Net's attention and fusion on frozen per-frame features):
#: CAER-Net's optimiser, schedule and rate; every frame of a clip per sample, as the other feature models.
CAER_NET_FEATURES = replace(
    CAER_NET,
    max_frames=None,
    source="Lee et al., ICCV 2019, 5.1 (for a model not in the paper)",
    ours=CAER_NET.ours + "; the whole clip per sample",
)

#: The CAAN paper gives no training recipe. Adam 1e-4, batch 32 (as CACA-RNN), selection on top-1
#: accuracy (the metric of its Tables 2-4). Sampling: every frame (4.1: "V = (v_1, v_2, ..., v_K) ...
#: K is the total number of frames"; the frames with a face are the model's ``drop_faceless``).
CAAN = Recipe(
    optimizer="adam",
    lr=1e-4,
    batch_size=32,
    epochs=60,
    patience=15,
    selection="accuracy",
    fps=EVERY_FRAME,
    source="CAAN (HEIV): not given",
    ours="everything but the sampling: Adam 1e-4, batch 32, 60 epochs, patience 15, selection on accuracy "
    "(the paper's metric)",
)

#: Chao et al. 2016, 4.1: "All the models are trained via Adadelta. The maximum training epoch is 50
#: ... Weight decay in all the layers with the parameter 0.0005 ... Early stopping ... The best
#: results for testing set are chosen by the best prediction accuracy in the validation set."
#: Adadelta's own rate 1.0 (Zeiler 2012 has no learning rate); batch size and patience not given.
#: 25 frames per second: AFEW's rate, which the alignment window assumes (2.1, Fig. 2: four audio
#: frames at 31.25 per second around each of 25 video frames per second).
AV_LSTM = Recipe(
    optimizer="adadelta",
    lr=1.0,
    weight_decay=5e-4,
    batch_size=32,
    epochs=50,
    patience=10,
    selection="accuracy",
    fps=25.0,
    source="Chao et al. 2016, 4.1",
    ours="batch 32, patience 10, Adadelta lr 1.0 (PyTorch's rho 0.9)",
)

#: For a model registered without a recipe (a user's own model): the CACA-RNN recipe.
DEFAULT = CACA_RNN


def describe_fps(fps: float) -> str:
    """``"5"``, ``"12.5"`` or ``"every frame"`` (:data:`EVERY_FRAME`)."""
    return "every frame" if fps >= EVERY_FRAME else f"{fps:g}"


def sampling_fps(model: str | None = None, fps: float | None = None) -> float:
    """The frames per second to sample videos at for ``model``: ``fps`` when given, else the model's
    recipe's (CACA-RNN 5, CAER-Net 10, CAAN every frame, AV-LSTM 25), else :data:`DEFAULT`'s.

    What ``emocontext extract --model NAME [--fps F]`` extracts a store at.

    Raises:
        ConfigError: unknown model, or ``fps`` not > 0.
    """
    from .registry import model_info

    if fps is not None:
        if not fps > 0:
            raise ConfigError(f"fps must be > 0, got {fps!r}")
        return float(fps)
    return (model_info(model).recipe if model else DEFAULT).fps


def check_store_fps(model: str, fps: float, store_fps: float | None, paths: Sequence[str], store: str | Path) -> None:
    """Refuse to train ``model`` at ``fps`` on a store sampled at another rate.

    Nothing to check when the store records no rate (``store_fps`` None) or holds still images
    only (one frame at any rate).

    Args:
        model: registry name (for the message).
        fps: the rate training runs at (``TrainConfig.fps``: the recipe's unless ``--fps`` is given).
        store_fps: the rate recorded in the store's signature.
        paths: the media files of the clips.
        store: the store (for the message).

    Raises:
        IncompatibleFeaturesError: the rates differ; the message names ``extract --model`` and ``--fps``.
    """
    from ..video.decode import is_image

    if store_fps is None or math.isclose(fps, store_fps, rel_tol=1e-6) or all(is_image(p) for p in paths):
        return
    from .registry import model_info

    recipe = model_info(model).recipe
    said = "its recipe" if math.isclose(fps, recipe.fps) else "--fps"
    raise IncompatibleFeaturesError(
        f"{store} was sampled at {describe_fps(store_fps)} frames/s but {model} trains at {describe_fps(fps)} "
        f"({said}; {recipe.source}): re-extract with `emocontext extract --model {model}`, or train at the "
        f"store's rate with `--fps {store_fps:g}`"
    )
