"""Each paper's training recipe: optimiser, learning-rate schedule, epochs, batch, model selection.

Every registered model carries one (:attr:`~emocontext.models.registry.ModelInfo.recipe`), given
at registration next to the model (``register_model(..., recipe=CAER_NET)``); ``emocontext train``
and :func:`emocontext.training.fit` use it for every setting the user does not give, and
``emocontext models --recipes`` shows it. What each paper says, and what it leaves open (filled
here, marked "ours"), is in FIDELITY.md ("Training recipes").

=================  ===========  =======  =============  ======  =====  =========  ========  ==================
recipe             optimiser    lr       schedule       decay   batch  epochs     select    source
=================  ===========  =======  =============  ======  =====  =========  ========  ==================
``CACA_RNN``       Adam         1e-4     constant       0       32     60 (ours)  mAP       Sun et al. V-C
``CAER_NET``       SGD m 0.9    5e-3     /10 every 4    0       32     16 (ours)  accuracy  Lee et al. 5.1
``CAAN``           Adam (ours)  1e-4     constant       0       32     60 (ours)  accuracy  not in the paper
``AV_LSTM``        Adadelta     1.0      constant       5e-4    32     50         accuracy  Chao et al. 4.1
=================  ===========  =======  =============  ======  =====  =========  ========  ==================

"select" is the validation metric that picks the checkpoint (and drives early stopping); the
other metric breaks ties.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import ConfigError

__all__ = ["Recipe", "OPTIMIZERS", "SELECTION_METRICS", "CACA_RNN", "CAER_NET", "CAAN", "AV_LSTM", "DEFAULT"]

#: Optimisers a recipe may name (``torch.optim`` classes; SGD with momentum 0.9).
OPTIMIZERS = ("adam", "adadelta", "sgd")
#: Validation metrics a recipe may select on.
SELECTION_METRICS = ("macro_map", "accuracy")


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
        selection: ``"macro_map"`` or ``"accuracy"`` on the validation clips: picks ``best.pt``.
        source: where the recipe comes from (paper and section).
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
    ours: str = ""

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.selection not in SELECTION_METRICS:
            raise ConfigError(f"selection must be one of {SELECTION_METRICS}, got {self.selection!r}")

    def settings(self) -> dict:
        """The training settings: every field but ``source`` and ``ours`` (TrainConfig's names)."""
        d = asdict(self)
        d.pop("source")
        d.pop("ours")
        return d

    def schedule(self) -> str:
        """``"constant"`` or ``"/10 every 4 epochs"``."""
        if not self.lr_step:
            return "constant"
        return f"x{self.lr_gamma:g} every {self.lr_step} epochs"


#: Sun et al., MEC 2017, V-C: "Adam was used with learning rate 10^-4 with mini-batch size 32."
#: Epochs, early stopping and the selection metric are not given; the MEC 2017 metric is macro mAP.
CACA_RNN = Recipe(
    optimizer="adam",
    lr=1e-4,
    batch_size=32,
    epochs=60,
    patience=15,
    selection="macro_map",
    source="Sun et al., MEC 2017, V-C",
    ours="epochs 60, patience 15, selection on macro mAP (MEC's metric)",
)

#: Lee et al., ICCV 2019, 5.1: "learning rate initialized as 5x10^-3 and dropped by a factor of 10
#: every 4 epochs ... cross-entropy ... batch size to 32". The optimiser and the number of epochs
#: are not given: SGD with momentum 0.9 (the usual optimiser for a from-scratch C3D-style network
#: at this rate), 16 epochs (four rates: 5e-3 .. 5e-6). The paper reports accuracy.
CAER_NET = Recipe(
    optimizer="sgd",
    lr=5e-3,
    lr_step=4,
    lr_gamma=0.1,
    batch_size=32,
    epochs=16,
    patience=16,
    selection="accuracy",
    source="Lee et al., ICCV 2019, 5.1",
    ours="SGD momentum 0.9, 16 epochs, no early stop, selection on accuracy (the paper's metric)",
)

#: The CAAN paper gives no training recipe. Adam 1e-4, batch 32 (as CACA-RNN), selection on top-1
#: accuracy (the metric of its Tables 2-4).
CAAN = Recipe(
    optimizer="adam",
    lr=1e-4,
    batch_size=32,
    epochs=60,
    patience=15,
    selection="accuracy",
    source="CAAN (HEIV): not given",
    ours="everything: Adam 1e-4, batch 32, 60 epochs, patience 15, selection on accuracy (the paper's metric)",
)

#: Chao et al. 2016, 4.1: "All the models are trained via Adadelta. The maximum training epoch is 50
#: ... Weight decay in all the layers with the parameter 0.0005 ... Early stopping ... The best
#: results for testing set are chosen by the best prediction accuracy in the validation set."
#: Adadelta's own rate 1.0 (Zeiler 2012 has no learning rate); batch size and patience not given.
AV_LSTM = Recipe(
    optimizer="adadelta",
    lr=1.0,
    weight_decay=5e-4,
    batch_size=32,
    epochs=50,
    patience=10,
    selection="accuracy",
    source="Chao et al. 2016, 4.1",
    ours="batch 32, patience 10, Adadelta lr 1.0 (PyTorch's rho 0.9)",
)

#: For a model registered without a recipe (a user's own model): the CACA-RNN recipe.
DEFAULT = CACA_RNN
