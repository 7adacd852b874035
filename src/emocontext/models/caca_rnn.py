"""CACA-RNN and the models it is compared with (Sun et al., MEC 2017).

M.-C. Sun, S.-H. Hsu, M.-C. Yang, J.-H. Chien, "Context-aware Cascade Attention-based RNN for
Video Emotion Recognition", First Asian Conference on Affective Computing and Intelligent
Interaction (ACII Asia) / MEC 2017. Paper text: ``../shared/papers/caca-rnn_sun2018_mec2017.md``.

Registry names and what they implement:

=============  ===============================================  ==============
name           model                                            paper
=============  ===============================================  ==============
face_rnn       one LSTM over the face stream                    IV, Fig. 3a
context_rnn    one LSTM over the context stream                 IV, Fig. 3a
parallel_rnn   two LSTMs, last states fused by an FC network    IV, Fig. 3b
concat_rnn     one LSTM over concatenated streams               IV, Fig. 3c
caca_rnn_a     cascade attention RNN, left=context, right=face  III-D, Fig. 2
caca_rnn_b     cascade attention RNN, left=face, right=context  IV, Fig. 3d
cnn_2d3d       3D CNN over the face CNN's feature maps          VI, Fig. 4
=============  ===============================================  ==============

The paper, element by element (faithful / deviates / missing), with the parameter counts beside
Table I: FIDELITY.md, "CACA-RNN"; the training recipe: :data:`emocontext.models.recipes.CACA_RNN`.

Deviations shared by all models of this file (each class lists its own):

* **Feature sizes.** The paper's face features come from a private image-emotion CNN and its
  context features are SqueezeNet 1.1's last conv map pooled to 25,088 values (V-C). Here both
  streams are 1280-d by default: the project's FER2013 EfficientNet-Lite0 (pooled penultimate
  layer) for faces and the ImageNet EfficientNet-Lite0 (pooled) for context, because SqueezeNet
  ImageNet weights cannot ship offline (ARCHITECTURE.md, "Pretrained parts that work offline"). The
  models take any ``face_dim`` / ``context_dim``. Parameter counts therefore differ from Table I.
* **Stream encoders.** "encoded to 128 by fully-connected layers" (V-D) is implemented as
  Linear, ReLU, Dropout (:class:`~emocontext.models.base.StreamEncoder`); the paper does not
  give the nonlinearity or the regularisation.
* **Frames without a face.** The paper keeps only frames with a detected face, in both streams
  (V-B). Here every valid frame keeps its context feature, and the face stream *skips* face-less
  frames (``face_mask`` False): a face LSTM runs over the face frames only (valid steps packed to
  the front, order kept, see :func:`~emocontext.models.base.run_lstm`), attention never attends
  to a face-less face state, and the 2D-3D-CNN convolves the sequence of face frames only. Where a
  face and a context feature share one input vector (``concat_rnn``) the face part of a
  face-less frame is exactly 0. A clip without any face is predicted from its context alone
  (and, for ``face_rnn`` / ``cnn_2d3d``, from the bias).
* **Padding.** Padded frames (``mask`` False) are skipped by every LSTM (packed sequences) and
  zeroed and excluded in the CNN; the prediction is taken at the last valid step (the paper's
  "output at the last time step"), so neither their values nor their number changes a logit.
* **Dropout** (0.3 by default) after the encoders, between LSTM layers and before the
  classifier; the paper does not say.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import ConfigError
from .base import (
    EmotionModel,
    Output,
    StreamEncoder,
    batch_masks,
    compact_order,
    masked_mean,
    masked_softmax,
    require,
    run_lstm,
    zero_invalid,
)
from .recipes import CACA_RNN
from .registry import register_model

__all__ = [
    "SingleStreamRNN",
    "FaceRNN",
    "ContextRNN",
    "ParallelRNN",
    "ConcatRNN",
    "CacaRNN",
    "CNN2D3D",
]

_PAPER = "Sun et al., MEC 2017"


def _lstm(in_dim: int, hidden: int, layers: int, dropout: float) -> nn.LSTM:
    return nn.LSTM(in_dim, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)


def _classifier(in_dim: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, num_classes))


def _forward_fill(x: Tensor, valid: Tensor) -> Tensor:
    """``x`` ``(B, T, D)`` with each invalid step holding the last valid step's value (0 before the first)."""
    B, T = valid.shape
    steps = torch.arange(T, device=valid.device).expand(B, T)
    last = torch.where(valid, steps, torch.full_like(steps, -1)).cummax(1).values  # (B, T)
    filled = x.gather(1, last.clamp(min=0).unsqueeze(-1).expand_as(x))
    return zero_invalid(filled, last >= 0)


def _frame_logits(head: nn.Module, states: Tensor, mask: Tensor) -> Tensor:
    """Per-step logits ``(B, T, K)`` from per-step states ``(B, T, H)``, zero at padded steps."""
    return zero_invalid(head(states), mask)


# ---------------------------------------------------------------------------------------------
# Fig. 3a: one stream, one LSTM
# ---------------------------------------------------------------------------------------------


class SingleStreamRNN(EmotionModel):
    """One feature stream, FC encoder, stacked LSTM, prediction at the last valid step.

    Sun et al., MEC 2017, section IV and Fig. 3a ("Face-RNN", "Context-RNN"); Table I: "Face-RNN,
    Context-RNN ... has a two-layer LSTM with 256 hidden nodes", features "encoded to 128 by
    fully-connected layers"; the "last prediction is taken as output" (after Donahue et al.'s LRCN).

    Shapes: ``batch[stream]`` ``(B, T, D)`` -> ``Output.logits`` ``(B, K)``,
    ``Output.frame_logits`` ``(B, T, K)`` (the running prediction at each frame).

    The face variant reads only frames with a face (``face_mask``): face-less frames are skipped,
    as in the paper's face stream; its prediction is taken at the last face frame. A clip
    without any face gets the classifier's bias. Use :class:`FaceRNN` / :class:`ContextRNN`.
    """

    stream: str = ""

    def __init__(
        self,
        *,
        num_classes: int,
        in_dim: int,
        embed_dim: int = 128,
        hidden_size: int = 256,
        num_layers: int = 2,
        dropout: float = 0.3,
    ):
        super().__init__(num_classes)
        self.encoder = StreamEncoder(in_dim, embed_dim, dropout)
        self.lstm = _lstm(embed_dim, hidden_size, num_layers, dropout)
        self.head = _classifier(hidden_size, num_classes, dropout)

    def forward(self, batch: dict[str, Tensor]) -> Output:
        x = require(batch, self.stream, type(self).__name__)
        mask, face_mask = batch_masks(batch, x)
        valid = face_mask if self.stream == "face" else mask
        states, (h_n, _) = run_lstm(self.lstm, self.encoder(zero_invalid(x, valid)), valid)
        return Output(logits=self.head(h_n[-1]), frame_logits=_frame_logits(self.head, states, mask))


class FaceRNN(SingleStreamRNN):
    """Face-RNN: FC to 128, 2-layer LSTM (256), prediction at the last face frame.

    Fig. 3a: :class:`SingleStreamRNN` over ``batch["face"]`` ``(B, T, D_f)``, face frames only.
    """

    streams = ("face",)
    stream = "face"


class ContextRNN(SingleStreamRNN):
    """Context-RNN: FC to 128, 2-layer LSTM (256), prediction at the last valid frame.

    Fig. 3a: :class:`SingleStreamRNN` over ``batch["context"]`` ``(B, T, D_c)``.
    """

    streams = ("context",)
    stream = "context"


# ---------------------------------------------------------------------------------------------
# Fig. 3b: two LSTMs side by side
# ---------------------------------------------------------------------------------------------


class ParallelRNN(EmotionModel):
    """Parallel-RNN: face and context 2-layer LSTMs (128), last states fused by an FC network.

    Sun et al., MEC 2017, section IV and Fig. 3b: "Two LSTMs reading two streams individually.
    Hidden states of the two LSTMs are fused together by fully-connected network for final
    prediction"; Table I: "two two-layer LSTMs of 128 hidden nodes".

    Shapes: ``face`` ``(B, T, D_f)``, ``context`` ``(B, T, D_c)`` -> ``logits`` ``(B, K)``,
    ``frame_logits`` ``(B, T, K)``. The fused vector is ``[h_face; h_context]`` (``2H``), where
    ``h_face`` is the face LSTM's top state after the last face frame (zeros if the clip has no
    face) and ``h_context`` the context LSTM's after the last valid frame.

    Deviation: the fusion network's shape is not given; here Linear(2H, H), ReLU, Dropout,
    Linear(H, K).
    """

    streams = ("face", "context")

    def __init__(
        self,
        *,
        num_classes: int,
        face_dim: int,
        context_dim: int,
        embed_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.3,
    ):
        super().__init__(num_classes)
        self.face_encoder = StreamEncoder(face_dim, embed_dim, dropout)
        self.context_encoder = StreamEncoder(context_dim, embed_dim, dropout)
        self.face_lstm = _lstm(embed_dim, hidden_size, num_layers, dropout)
        self.context_lstm = _lstm(embed_dim, hidden_size, num_layers, dropout)
        self.head = nn.Sequential(
            nn.Linear(2 * hidden_size, hidden_size),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, num_classes),
        )

    def forward(self, batch: dict[str, Tensor]) -> Output:
        face = require(batch, "face", "ParallelRNN")
        context = require(batch, "context", "ParallelRNN")
        mask, face_mask = batch_masks(batch, context)
        fs, (fh, _) = run_lstm(self.face_lstm, self.face_encoder(zero_invalid(face, face_mask)), face_mask)
        cs, (ch, _) = run_lstm(self.context_lstm, self.context_encoder(zero_invalid(context, mask)), mask)
        logits = self.head(torch.cat([fh[-1], ch[-1]], dim=-1))
        frames = _frame_logits(self.head, torch.cat([fs, cs], dim=-1), mask)
        return Output(logits=logits, frame_logits=frames)


# ---------------------------------------------------------------------------------------------
# Fig. 3c: one LSTM over both streams
# ---------------------------------------------------------------------------------------------


class ConcatRNN(EmotionModel):
    """Concatenated-RNN: one 2-layer LSTM (256) over the concatenated 128-d face and context encodings.

    One LSTM over ``[face embedding; context embedding]`` of each frame.

    Sun et al., MEC 2017, section IV and Fig. 3c: "Two feature streams are concatenated together
    as input of single LSTM ... its output at the last time step is taken to be the prediction";
    Table I: a two-layer LSTM with 256 hidden nodes, features encoded to 128 each.

    Shapes: ``face`` ``(B, T, D_f)``, ``context`` ``(B, T, D_c)`` -> ``logits`` ``(B, K)``,
    ``frame_logits`` ``(B, T, K)``. The LSTM reads every valid frame (input ``2E``); the face half
    of a face-less frame is exactly 0 (the face feature itself is never read).
    """

    streams = ("face", "context")

    def __init__(
        self,
        *,
        num_classes: int,
        face_dim: int,
        context_dim: int,
        embed_dim: int = 128,
        hidden_size: int = 256,
        num_layers: int = 2,
        dropout: float = 0.3,
    ):
        super().__init__(num_classes)
        self.face_encoder = StreamEncoder(face_dim, embed_dim, dropout)
        self.context_encoder = StreamEncoder(context_dim, embed_dim, dropout)
        self.lstm = _lstm(2 * embed_dim, hidden_size, num_layers, dropout)
        self.head = _classifier(hidden_size, num_classes, dropout)

    def forward(self, batch: dict[str, Tensor]) -> Output:
        face = require(batch, "face", "ConcatRNN")
        context = require(batch, "context", "ConcatRNN")
        mask, face_mask = batch_masks(batch, context)
        f = zero_invalid(self.face_encoder(zero_invalid(face, face_mask)), face_mask)
        c = self.context_encoder(zero_invalid(context, mask))
        states, (h_n, _) = run_lstm(self.lstm, torch.cat([f, c], dim=-1), mask)
        return Output(logits=self.head(h_n[-1]), frame_logits=_frame_logits(self.head, states, mask))


# ---------------------------------------------------------------------------------------------
# Fig. 2 / 3d: CACA-RNN
# ---------------------------------------------------------------------------------------------


class CacaRNN(EmotionModel):
    """Context-Aware Cascade Attention-based RNN (CACA-RNN).

    Sun et al., MEC 2017, section III-D, Fig. 2 and 3d, eq. (2)-(5), Table I. Variant A
    (``left="context"``): the left LSTM reads the context stream and the right LSTM the face
    stream; variant B (``left="face"``) swaps them.

    1. Both streams are encoded per frame to ``E`` = 128 by FC layers.
    2. The left LSTM (2 layers, ``H`` = 128) reads its whole stream, giving states
       ``h_left_t`` (top layer), ``t = 1..T``.
    3. Its final ``(h, c)`` at its last valid step "initiates the first state" of the right LSTM
       (1 layer, ``H`` = 128): the left top layer's state initialises every right layer (layer by
       layer when both have the same depth).
    4. At each step ``i`` the right LSTM attends over all left states with Luong's dot score,
       eq. (2): ``a_i = softmax_t(q_i . h_left_t)``, masked so that invalid keys (padding, or
       face-less frames when the left stream is the face) get weight exactly 0; eq. (3)/(5):
       ``c_i = sum_t a_it h_left_t``.
    5. Output of step ``i``, eq. (4)'s ``p(y_i | ...) = h(x_i, c_i, h_i)``: the attentional hidden
       state ``h~_i = tanh(W_c [c_i; h_i; x_i])`` (Luong's ``tanh(W_c [c_i; h_i])`` with the input
       ``x_i``, the right stream's 128-d encoding, added as eq. (4) lists it), classified by
       Dropout + Linear(H, K). ``attention_input=False`` drops ``x_i`` (Luong's form, the only one
       before issue 25). The clip prediction is the output at the right stream's last valid step.

    **Resolving eq. (4)-(5).** As printed they are circular: ``h_i = f(h_{i-1}, x_i, c_i)`` while
    ``c_i`` is scored with ``h_i``. ``attention_query`` picks one of the two standard readings:

    * ``"previous"`` (default; Bahdanau-style): the query is the right LSTM's previous state
      ``q_i = h_{i-1}`` (``h_0`` = the state copied from the left LSTM), and the LSTM reads
      ``[x_i; c_i]``, so ``h_i = f(h_{i-1}, x_i, c_i)`` exactly as in eq. (4): the attention
      context drives the recurrence, as the paper's "the right LSTM's hidden states are generated
      from its input and attention" says. (This feeds ``c_i``, not the previous attentional
      state ``h~_{i-1}`` of Luong's "input feeding".)
    * ``"current"`` (Luong's global attention without input feeding): the right LSTM reads
      ``x_i`` only, then ``q_i = h_i``, exactly eq. (5)'s score, but ``c_i`` only reaches the
      output through ``h~_i``, not the recurrence. Faster (no Python loop over time).

    **Which LSTM has two layers.** Section V-C (the submitted model) gives the *face* RNN two
    layers and the context RNN one; V-D (Table I) gives the *first* (left) LSTM two layers and
    the second one. The defaults follow V-D, the setting of the Table I comparison this module
    reproduces; ``left_layers=1, right_layers=2`` is V-C's for ``caca_rnn_a`` (FIDELITY.md).

    **The context path of V-C.** V-D encodes both streams "to 128 by fully-connected layers"
    (the default); V-C's submitted model adds the FC layer "after the face CNN" only and feeds the
    25,088-d pooled SqueezeNet map to the context RNN directly: ``context_fc=False`` (with
    ``extract --context-pool flatten`` features).

    Shapes: ``face`` ``(B, T, D_f)``, ``context`` ``(B, T, D_c)`` -> ``logits`` ``(B, K)``;
    ``temporal_attention`` ``(B, T, T)`` = ``a[b, i, t]`` for query step ``i`` (right stream) and
    key step ``t`` (left stream): rows of valid right steps sum to 1 over valid keys, rows of
    steps the right stream skipped (padding, face-less frames when it is the face) are all 0, and
    so is everything of a clip whose left stream is empty; ``frame_logits`` ``(B, T, K)`` the
    running prediction (0 at padded frames); ``extras``: ``left_stream``, ``right_stream``.

    Face-less frames: when the face is the right stream (A), the right LSTM skips them (its
    state is carried over), so the prediction comes from the last face frame; a clip without
    any face is predicted from ``h~_0`` built from the copied left state. When the face is the
    left stream (B), face-less frames are skipped by the left LSTM and are invalid keys.

    Deviations: the feature sizes and encoders of this module's docstring; the eq. (4)-(5)
    resolution above; ``h(.)`` as ``tanh(W_c [c; h; x])`` and a linear classifier (the paper does
    not define ``h(.)``); the initialisation rule for unequal depths (the paper does not say which
    layer's state is used). Parameter counts beside Table I: FIDELITY.md.
    """

    streams = ("face", "context")

    def __init__(
        self,
        *,
        num_classes: int,
        face_dim: int,
        context_dim: int,
        left: Literal["context", "face"] = "context",
        embed_dim: int = 128,
        hidden_size: int = 128,
        left_layers: int = 2,
        right_layers: int = 1,
        dropout: float = 0.3,
        attention_query: Literal["previous", "current"] = "previous",
        attention_input: bool = True,
        context_fc: bool = True,
    ):
        super().__init__(num_classes)
        if left not in ("context", "face"):
            raise ConfigError(f"left must be 'context' or 'face', got {left!r}")
        if attention_query not in ("previous", "current"):
            raise ConfigError(f"attention_query must be 'previous' or 'current', got {attention_query!r}")
        if left_layers < 1 or right_layers < 1:
            raise ConfigError("left_layers and right_layers must be >= 1")
        self.left_stream = left
        self.right_stream = "face" if left == "context" else "context"
        self.attention_query = attention_query
        self.attention_input = bool(attention_input)
        dims = {"face": face_dim, "context": context_dim}

        def encoder(stream: str) -> tuple[nn.Module, int]:  # V-C: the context features feed the LSTM as they are
            if stream == "context" and not context_fc:
                return nn.Identity(), context_dim
            return StreamEncoder(dims[stream], embed_dim, dropout), embed_dim

        self.left_encoder, left_in = encoder(self.left_stream)
        self.right_encoder, right_in = encoder(self.right_stream)
        self.left_lstm = _lstm(left_in, hidden_size, left_layers, dropout)
        if attention_query == "previous":
            sizes = [right_in + hidden_size] + [hidden_size] * (right_layers - 1)
            self.right_cells = nn.ModuleList(nn.LSTMCell(s, hidden_size) for s in sizes)
            self.right_dropout = nn.Dropout(dropout)
        else:
            self.right_lstm = _lstm(right_in, hidden_size, right_layers, dropout)
        self.right_layers = right_layers
        extra = right_in if self.attention_input else 0
        self.combine = nn.Linear(2 * hidden_size + extra, hidden_size, bias=False)  # W_c of h(x_i, c_i, h_i)
        self.head = _classifier(hidden_size, num_classes, dropout)

    def _init_state(self, h_n: Tensor, c_n: Tensor) -> tuple[Tensor, Tensor]:
        """Right LSTM's initial ``(h, c)`` ``(right_layers, B, H)`` from the left's final states."""
        if h_n.shape[0] == self.right_layers:
            return h_n, c_n
        L = self.right_layers
        return h_n[-1:].expand(L, -1, -1).contiguous(), c_n[-1:].expand(L, -1, -1).contiguous()

    def _attend(self, query: Tensor, keys: Tensor, key_valid: Tensor) -> tuple[Tensor, Tensor]:
        """Dot attention, eq. (2)-(3). ``query`` ``(B, Q, H)``, ``keys`` ``(B, T, H)``, ``key_valid``
        ``(B, T)`` -> weights ``(B, Q, T)``, context ``(B, Q, H)``."""
        weights = masked_softmax(query @ keys.transpose(1, 2), key_valid.unsqueeze(1))
        return weights, weights @ keys

    def _output(self, context: Tensor, h: Tensor, x: Tensor) -> Tensor:
        """Eq. (4)'s ``h(x_i, c_i, h_i)`` before the classifier: ``tanh(W_c [c; h; x])`` (``tanh(W_c [c; h])``,
        Luong's attentional hidden state, with ``attention_input=False``)."""
        parts = [context, h, x] if self.attention_input else [context, h]
        return torch.tanh(self.combine(torch.cat(parts, dim=-1)))

    def forward(self, batch: dict[str, Tensor]) -> Output:
        name = f"CacaRNN(left={self.left_stream})"
        x_left = require(batch, self.left_stream, name)
        x_right = require(batch, self.right_stream, name)
        mask, face_mask = batch_masks(batch, x_left)
        left_valid = face_mask if self.left_stream == "face" else mask
        right_valid = face_mask if self.right_stream == "face" else mask

        left_in = self.left_encoder(zero_invalid(x_left, left_valid))
        keys, (h_n, c_n) = run_lstm(self.left_lstm, left_in, left_valid)
        keys = zero_invalid(keys, left_valid)
        h0, c0 = self._init_state(h_n, c_n)
        right_in = zero_invalid(self.right_encoder(zero_invalid(x_right, right_valid)), right_valid)

        if self.attention_query == "current":
            states, _ = run_lstm(self.right_lstm, right_in, right_valid, (h0, c0))
            weights, contexts = self._attend(states, keys, left_valid)
            # forward-filled (states, and here the inputs): outputs[:, -1] is the output at the last valid step
            outputs = self._output(contexts, states, _forward_fill(right_in, right_valid))
            final = outputs[:, -1]
        else:
            outputs, weights, final = self._loop(right_in, right_valid, keys, left_valid, h0, c0)

        attention = weights * right_valid.unsqueeze(-1).to(weights.dtype)
        return Output(
            logits=self.head(final),
            temporal_attention=attention,
            frame_logits=_frame_logits(self.head, outputs, mask),
            extras={"left_stream": self.left_stream, "right_stream": self.right_stream},
        )

    def _loop(
        self, x: Tensor, valid: Tensor, keys: Tensor, key_valid: Tensor, h0: Tensor, c0: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Right LSTM with query ``h_{i-1}``, reading ``[x_i; c_i]``; steps where ``valid`` is False keep the state.

        Returns per-step outputs ``h~`` ``(B, T, H)`` (forward-filled), attention ``(B, T, T)``,
        and the output at the last valid step ``(B, H)`` (``h~_0`` if there is none).
        """
        h, c = list(h0.unbind(0)), list(c0.unbind(0))
        _, ctx0 = self._attend(h[-1].unsqueeze(1), keys, key_valid)
        out = self._output(ctx0.squeeze(1), h[-1], x.new_zeros(x.shape[0], x.shape[-1]))  # h~_0: no input yet
        outputs, rows = [], []
        for i in range(x.shape[1]):
            a, ctx = self._attend(h[-1].unsqueeze(1), keys, key_valid)
            a, ctx = a.squeeze(1), ctx.squeeze(1)
            inp = torch.cat([x[:, i], ctx], dim=-1)
            step = valid[:, i].unsqueeze(-1)
            for layer, cell in enumerate(self.right_cells):
                h_new, c_new = cell(inp, (h[layer], c[layer]))
                h[layer] = torch.where(step, h_new, h[layer])
                c[layer] = torch.where(step, c_new, c[layer])
                inp = self.right_dropout(h_new)
            out = torch.where(step, self._output(ctx, h[-1], x[:, i]), out)
            outputs.append(out)
            rows.append(a)
        return torch.stack(outputs, 1), torch.stack(rows, 1), out


# ---------------------------------------------------------------------------------------------
# Fig. 4: 2D-3D-CNN
# ---------------------------------------------------------------------------------------------


class CNN2D3D(EmotionModel):
    """2D-3D-CNN: 3D convolutions over the face CNN's feature maps, adaptive (masked) pooling.

    Sun et al., MEC 2017, section VI and Fig. 4: "Each face of face stream is first encoded by a
    pre-trained CNN face feature extractor to high level feature maps. Then a 3D convolution
    neural network learns spatiotemporal kernel from the feature map stream. There is an adaptive
    pooling before classifier to handle various length of input." The 2D part is the frozen face
    CNN upstream; this module is the 3D part.

    Layers (the paper gives none, so these are ours): Conv3d 1x1x1 ``C -> channels`` (channel
    reduction), ReLU, Conv3d 3x3x3 pad 1, ReLU, Conv3d 3x3x3 pad 1 with temporal stride
    ``temporal_stride``, ReLU; then the adaptive pooling: mean over the valid time steps and over
    all cells (any ``T``, ``H``, ``W``); Dropout, Linear(channels, K).

    Shapes: ``face_map`` ``(B, T, C, H, W)`` (``C`` = 1280 and ``H = W`` = 5 for the project's
    face CNN, EfficientNet-Lite0 on 80-px faces with output stride 16) -> ``logits`` ``(B, K)``.

    Masking: the face stream is the sequence of face frames (as in the paper, V-B): face frames
    are moved to the front in their order, everything after them is set to 0 and re-set to 0
    after every convolution, so the network sees exactly the face frames with zero padding at
    the sequence's borders. Neither the values nor the number of padded or face-less frames
    changes a logit (a plain adaptive pool over the padded time axis would let the padding
    length change it; no batch normalisation for the same reason). A clip without a face gets
    the classifier's bias.
    """

    streams = ("face_map",)

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 1280,
        channels: int = 128,
        temporal_stride: int = 2,
        dropout: float = 0.3,
    ):
        super().__init__(num_classes)
        if temporal_stride < 1:
            raise ConfigError("temporal_stride must be >= 1")
        self.temporal_stride = temporal_stride
        self.reduce = nn.Conv3d(in_channels, channels, 1)
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, 3, stride=(temporal_stride, 1, 1), padding=1)
        self.dropout = nn.Dropout(dropout)
        self.head = _classifier(channels, num_classes, dropout)

    def forward(self, batch: dict[str, Tensor]) -> Output:
        fmap = require(batch, "face_map", "CNN2D3D", "(B, T, C, H, W)")
        if fmap.dim() != 5:
            raise ConfigError(f"CNN2D3D: batch['face_map'] must be (B, T, C, H, W), got {tuple(fmap.shape)}")
        _, face_mask = batch_masks(batch, fmap)
        B, T = face_mask.shape
        order, lengths = compact_order(face_mask)
        x = fmap.gather(1, order.view(B, T, 1, 1, 1).expand_as(fmap))
        valid = torch.arange(T, device=fmap.device) < lengths.unsqueeze(1)  # (B, T), a prefix

        def remask(y: Tensor, v: Tensor) -> Tensor:  # y (B, C, T', H, W), v (B, T')
            return torch.where(v.view(B, 1, -1, 1, 1), y, torch.zeros((), dtype=y.dtype, device=y.device))

        x = remask(zero_invalid(x, valid).transpose(1, 2), valid)  # (B, C, T, H, W)
        x = remask(self.dropout(F.relu(self.reduce(x))), valid)
        x = remask(F.relu(self.conv1(x)), valid)
        valid = valid[:, :: self.temporal_stride]
        x = remask(F.relu(self.conv2(x)), valid)
        pooled = masked_mean(x.mean((3, 4)).transpose(1, 2), valid)  # (B, channels)
        return Output(logits=self.head(pooled))


# ---------------------------------------------------------------------------------------------
# Registry names (options: each class's keyword arguments)
# ---------------------------------------------------------------------------------------------


register_model(
    FaceRNN, name="face_rnn", paper=f"{_PAPER}, IV, Fig. 3a, Table I", dims={"face_dim": "in_dim"}, recipe=CACA_RNN
)
register_model(
    ContextRNN,
    name="context_rnn",
    paper=f"{_PAPER}, IV, Fig. 3a, Table I",
    dims={"context_dim": "in_dim"},
    recipe=CACA_RNN,
)
register_model(ParallelRNN, name="parallel_rnn", paper=f"{_PAPER}, IV, Fig. 3b, Table I", recipe=CACA_RNN)
register_model(ConcatRNN, name="concat_rnn", paper=f"{_PAPER}, IV, Fig. 3c, Table I", recipe=CACA_RNN)
register_model(
    CacaRNN,
    name="caca_rnn_a",
    paper=f"{_PAPER}, III-D, Fig. 2, eq. (2)-(5), Table I",
    description="CACA-RNN A: context LSTM (2x128) initialises and is attended by a face LSTM (128).",
    fixed={"left": "context"},
    recipe=CACA_RNN,
)
register_model(
    CacaRNN,
    name="caca_rnn_b",
    paper=f"{_PAPER}, IV, Fig. 3d, Table I",
    description="CACA-RNN B: face LSTM (2x128) initialises and is attended by a context LSTM (128).",
    fixed={"left": "face"},
    recipe=CACA_RNN,
)
# in_channels (channels C of face_map) defaults to face_dim: the project's face CNN gives a
# 1280 x h x w map whose spatial mean is the 1280-d face feature.
register_model(
    CNN2D3D, name="cnn_2d3d", paper=f"{_PAPER}, VI, Fig. 4", dims={"face_dim": "in_channels"}, recipe=CACA_RNN
)
