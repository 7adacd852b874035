"""The model contract, checked for any registered model (timm's ``tests/test_models.py`` pattern).

Every model of :mod:`emocontext.models` promises what :mod:`emocontext.models.base` writes down:
it reads the batch keys in its ``streams`` (plus the masks), returns an :class:`Output` of the
documented shapes with finite values, trains (finite gradients), and neither the values nor the
number of padded frames, nor the face features of frames without a face, change anything it
returns. Each ``check_*`` function below builds the model by its registry name (small inputs:
``B = 3`` clips of ``T = 4`` frames, paper widths unless ``**options`` say otherwise) and asserts
one part of that promise; ``tests/models/test_contract.py`` runs every check on every name of
:func:`~emocontext.models.list_models`, and the model test files run them on their option
variants with :func:`check_contract`.

The batch holds every stream the model declares, built from :data:`STREAM_SHAPES`: clip 0 has all
4 frames with a face gap at frame 2, clip 1 has 3 frames and no face at all, clip 2 one frame;
the audio stream has 2 frames per visual frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields

import torch
from torch import Tensor
from torch.nn import functional as F

from emocontext.errors import ConfigError
from emocontext.models import EmotionModel, Output, create_model, model_info

#: Number of classes, and the feature sizes given to every model (audio_dim where it is an option).
K = 3
DIMS = {"face_dim": 6, "context_dim": 5, "audio_dim": 4}
#: Valid frames per clip; ``T = max(LENGTHS)``.
LENGTHS = (4, 3, 1)
#: Audio frames per visual frame.
AUDIO_RATE = 2
#: Shape of each stream, from ``(B, T, T_a)``; a model reading another stream needs an entry here.
STREAM_SHAPES: dict[str, Callable[[int, int, int], tuple[int, ...]]] = {
    "face": lambda B, T, T_a: (B, T, DIMS["face_dim"]),
    "context": lambda B, T, T_a: (B, T, DIMS["context_dim"]),
    "face_map": lambda B, T, T_a: (B, T, DIMS["face_dim"], 2, 2),
    "face_pixels": lambda B, T, T_a: (B, T, 3, 16, 16),
    "context_pixels": lambda B, T, T_a: (B, T, 3, 32, 32),
    "audio": lambda B, T, T_a: (B, T_a, DIMS["audio_dim"]),
}
#: Streams of the face: never read at frames without a face (``face_mask`` False).
FACE_STREAMS = ("face", "face_map", "face_pixels")
#: Streams with their own time axis and mask (``<key>_mask``) instead of ``mask``.
OWN_TIME = {"audio": "audio_mask"}


# ---------------------------------------------------------------------------------------------
# Models and batches
# ---------------------------------------------------------------------------------------------


def build(name: str, **options) -> EmotionModel:
    """``create_model(name)`` with :data:`DIMS` and ``K`` classes, seeded, in eval mode."""
    dims = {k: v for k, v in DIMS.items() if k in ("face_dim", "context_dim") or k in model_info(name).options}
    torch.manual_seed(0)
    return create_model(name, num_classes=K, **{**dims, **options}).eval()


def make_batch(
    streams: Sequence[str],
    *,
    lengths: Sequence[int] = LENGTHS,
    T: int | None = None,
    audio_padding: int = 0,
    faces: bool = True,
    context_maps: bool = False,
    seed: int = 0,
) -> dict[str, Tensor]:
    """A batch of ``streams`` for ``len(lengths)`` clips (see the module docstring).

    ``T`` (default ``max(lengths)``) and ``audio_padding`` add padded steps; ``faces=False``
    gives every valid frame a face; ``context_maps`` makes ``context`` ``(B, T, D_c, 2, 3)`` maps.
    """
    g = torch.Generator().manual_seed(seed)
    B, T = len(lengths), T or max(lengths)
    n = torch.tensor(lengths)
    mask = torch.arange(T)[None] < n[:, None]
    face_mask = mask.clone()
    if faces:
        face_mask[0, 2:3] = False
        face_mask[1:2] = False
    T_a = AUDIO_RATE * max(lengths) + audio_padding
    batch = {"mask": mask, "face_mask": face_mask}
    for key in streams:
        if key not in STREAM_SHAPES:
            raise KeyError(f"the contract suite has no shape for stream {key!r}: add it to tests/utils.STREAM_SHAPES")
        shape = STREAM_SHAPES[key](B, T, T_a)
        if key == "context" and context_maps:
            shape = (*shape, 2, 3)
        batch[key] = torch.randn(shape, generator=g)
    if "audio" in streams:
        batch["audio_mask"] = torch.arange(T_a)[None] < AUDIO_RATE * n[:, None]
    return batch


def perturb(
    batch: dict[str, Tensor],
    where: Tensor,
    keys: Sequence[str],
    *,
    fill: str = "noise",
    seed: int = 1,
    valid_audio: bool = False,
) -> dict[str, Tensor]:
    """Copy of ``batch`` with large noise (or NaN) in ``keys`` at the ``(B, T)`` positions ``where``.

    A stream with its own time axis (audio) is changed at its padded frames instead (at its valid
    frames with ``valid_audio``).
    """
    g = torch.Generator().manual_seed(seed)
    out = dict(batch)
    for key in keys:
        if key not in batch:
            continue
        x = batch[key]
        at = (batch[OWN_TIME[key]] if valid_audio else ~batch[OWN_TIME[key]]) if key in OWN_TIME else where
        value = torch.full_like(x, float("nan")) if fill == "nan" else 100 * torch.randn(x.shape, generator=g)
        out[key] = torch.where(at.view(*at.shape, *([1] * (x.dim() - 2))), value, x)
    return out


def _tensors(out: Output) -> dict[str, Tensor]:
    """Every tensor an Output holds: its fields and its tensor ``extras``."""
    found = {f.name: getattr(out, f.name) for f in fields(out) if torch.is_tensor(getattr(out, f.name))}
    found.update({f"extras[{k!r}]": v for k, v in out.extras.items() if torch.is_tensor(v)})
    return found


def assert_same_outputs(got: Output, ref: Output, what: str) -> None:
    """Every tensor of ``got`` equals ``ref``'s exactly (same fields present)."""
    a, b = _tensors(got), _tensors(ref)
    assert a.keys() == b.keys(), f"{what}: outputs {sorted(a)} != {sorted(b)}"
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, equal_nan=False, msg=f"{what}: {key} changed")


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------


def check_output_shapes(name: str, **options) -> None:
    """``Output`` fields have the documented shapes, finite values, zeros at padded frames."""
    model = build(name, **options)
    assert set(model.streams) <= set(model_info(name).streams), "the model reads streams it does not register"
    batch = make_batch(model.streams)
    B, T = batch["mask"].shape
    with torch.no_grad():
        out = model(batch)
    assert isinstance(out, Output)
    assert out.logits.shape == (B, K) and torch.isfinite(out.logits).all()
    for key, x in _tensors(out).items():
        assert not x.is_floating_point() or torch.isfinite(x).all(), f"{key} is not finite"
    if out.frame_logits is not None:
        assert out.frame_logits.shape == (B, T, K)
        assert (out.frame_logits[~batch["mask"]] == 0).all(), "frame_logits not 0 at padded frames"
    if out.temporal_attention is not None:  # (B, T), (B, T, T) or av_lstm's (B, K, T)
        a = out.temporal_attention
        assert a.dim() in (2, 3) and a.shape[0] == B and a.shape[-1] == T and (a >= 0).all()
    if out.spatial_attention is not None:
        s = out.spatial_attention
        assert s.dim() == 4 and s.shape[:2] == (B, T) and (s >= 0).all()
        assert (s[~batch["mask"]] == 0).all(), "spatial_attention not 0 at padded frames"
    if out.fusion_weights is not None:  # per frame (B, T, 2) or per clip (B, 1, 2)
        w = out.fusion_weights
        assert w.dim() == 3 and w.shape[0] == B and w.shape[1] in (1, T) and w.shape[2] == 2
        assert ((w >= 0) & (w <= 1)).all()


def check_backward(name: str, **options) -> None:
    """In training mode, a loss on the logits has finite gradients, even with NaN at padded and face-less positions."""
    model = build(name, **options).train()
    batch = make_batch(model.streams)
    faceless = batch["mask"] & ~batch["face_mask"]
    batch = perturb(batch, ~batch["mask"], list(model.streams), fill="nan")
    batch = perturb(batch, faceless, [k for k in model.streams if k in FACE_STREAMS], fill="nan")
    out = model(batch)
    loss = F.cross_entropy(out.logits, torch.arange(len(LENGTHS)) % K)
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads), "missing or non-finite gradients"
    assert any(bool(g.abs().sum() > 0) for g in grads), "every gradient is 0"


def check_padding_values(name: str, **options) -> None:
    """Large values or NaN at padded frames (and padded audio frames) change nothing the model returns."""
    model = build(name, **options)
    batch = make_batch(model.streams)
    with torch.no_grad():
        ref = model(batch)
        for fill in ("noise", "nan"):
            got = model(perturb(batch, ~batch["mask"], list(model.streams), fill=fill))
            assert_same_outputs(got, ref, f"{fill} at padded frames")


def check_faceless_frames(name: str, **options) -> None:
    """Large values or NaN in the face streams of frames without a face change nothing the model returns."""
    model = build(name, **options)
    batch = make_batch(model.streams)
    faceless = batch["mask"] & ~batch["face_mask"]
    assert faceless.any()
    with torch.no_grad():
        ref = model(batch)
        for fill in ("noise", "nan"):
            got = model(perturb(batch, faceless, FACE_STREAMS, fill=fill))
            assert_same_outputs(got, ref, f"{fill} at face-less frames")


def check_padding_length(name: str, **options) -> None:
    """More padding, or none (each clip alone), gives the same logits; explanations are 0 on the extra padding.

    Equal up to float rounding: a batch of another shape may take another matrix-product kernel.
    """
    model = build(name, **options)
    batch = make_batch(model.streams)
    B, T = batch["mask"].shape
    longer = make_batch(model.streams, T=T + 3, audio_padding=5, seed=7)
    for key, x in batch.items():  # the same valid data, 3 more padded frames (5 more audio frames)
        longer[key][:, : x.shape[1]] = x
    with torch.no_grad():
        ref, out = model(batch), model(longer)
        torch.testing.assert_close(out.logits, ref.logits, rtol=1e-4, atol=1e-5)
        for f in ("temporal_attention", "spatial_attention", "fusion_weights", "frame_logits"):
            a, b = getattr(out, f), getattr(ref, f)
            assert (a is None) == (b is None), f
            if a is None or a.shape == b.shape:
                continue
            index = tuple(slice(0, n) for n in b.shape)
            torch.testing.assert_close(a[index], b, rtol=1e-4, atol=1e-5, msg=f"{f} changed with more padding")
            rest = torch.ones_like(a, dtype=torch.bool)
            rest[index] = False
            assert (a[rest] == 0).all(), f"{f} not 0 at the added padding"
        for b, n in enumerate(LENGTHS):
            own_time = {*OWN_TIME, *OWN_TIME.values()}
            alone = {k: v[b : b + 1, : AUDIO_RATE * n if k in own_time else n] for k, v in batch.items()}
            torch.testing.assert_close(model(alone).logits, ref.logits[b : b + 1], rtol=1e-4, atol=1e-5)


def check_default_masks(name: str, **options) -> None:
    """Without ``mask`` / ``face_mask`` (and ``audio_mask``) every frame is valid and has a face."""
    model = build(name, **options)
    batch = make_batch(model.streams, lengths=(4, 4), faces=False)
    bare = {k: v for k, v in batch.items() if not k.endswith("mask")}
    with torch.no_grad():
        torch.testing.assert_close(model(bare).logits, model(batch).logits, rtol=0, atol=0)


def check_missing_stream(name: str, **options) -> None:
    """A batch without a stream the model declares is a ConfigError naming that stream."""
    model = build(name, **options)
    batch = make_batch(model.streams)
    for key in model.streams:
        try:
            model({k: v for k, v in batch.items() if k != key})
        except ConfigError as e:
            assert key in str(e), f"the error does not name {key!r}: {e}"
        else:
            raise AssertionError(f"no ConfigError without batch[{key!r}]")


def check_streams_used(name: str, **options) -> None:
    """Every declared stream changes the logits (at its valid frames)."""
    model = build(name, **options)
    batch = make_batch(model.streams)
    with torch.no_grad():
        ref = model(batch).logits
        for key in model.streams:
            where = batch["face_mask"] if key in FACE_STREAMS else batch["mask"]
            changed = model(perturb(batch, where, [key], valid_audio=True)).logits
            assert not torch.allclose(changed, ref), f"batch[{key!r}] does not change the logits"


def check_context_maps(name: str, **options) -> None:
    """Context feature maps ``(B, T, C, h, w)`` instead of vectors: the same contract holds (shapes, masking)."""
    model = build(name, **options)
    batch = make_batch(model.streams, context_maps=True)
    faceless = batch["mask"] & ~batch["face_mask"]
    with torch.no_grad():
        ref = model(batch)
        assert ref.logits.shape == (len(LENGTHS), K) and torch.isfinite(ref.logits).all()
        assert_same_outputs(model(perturb(batch, ~batch["mask"], list(model.streams))), ref, "padded frames")
        assert_same_outputs(model(perturb(batch, faceless, FACE_STREAMS)), ref, "face-less frames")


@dataclass(frozen=True)
class Check:
    """One part of the contract and the models it applies to (by the streams they read)."""

    name: str
    run: Callable[..., None]
    applies: Callable[[Sequence[str]], bool] = lambda streams: True


CHECKS = (
    Check("output_shapes", check_output_shapes),
    Check("backward", check_backward),
    Check("padding_values", check_padding_values),
    Check("faceless_frames", check_faceless_frames, lambda streams: any(s in FACE_STREAMS for s in streams)),
    Check("padding_length", check_padding_length),
    Check("default_masks", check_default_masks),
    Check("missing_stream", check_missing_stream),
    Check("streams_used", check_streams_used),
    Check("context_maps", check_context_maps, lambda streams: "context" in streams),
)


def contract_cases(names: Sequence[str]) -> list[tuple[str, Check]]:
    """``(model name, check)`` for every check that applies to each model (by its registered streams)."""
    return [(name, c) for name in names for c in CHECKS if c.applies(model_info(name).streams)]


@contextmanager
def one_thread():
    """Torch on one thread inside the block: tiny models run faster so, and other jobs keep their cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def check_contract(name: str, **options) -> None:
    """Every check that applies to the model built with ``options`` (for option variants)."""
    with one_thread():
        streams = build(name, **options).streams
        for c in CHECKS:
            if c.applies(streams):
                c.run(name, **options)
