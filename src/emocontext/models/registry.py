"""Build models by name, as timm does (``timm/models/_registry.py``).

Every model family file in :mod:`emocontext.models` decorates its builder functions with
:func:`register_model`; :func:`create_model` looks a name up and calls the builder with
keyword-only arguments::

    model = create_model("caca_rnn_a", num_classes=8, face_dim=1280, context_dim=1280)
    list_models()            # ['caca_rnn_a', 'caca_rnn_b', ...]
    print(model_info("caca_rnn_a"))

Model files are discovered automatically: the first call of :func:`list_models`,
:func:`model_info` or :func:`create_model` imports every public module of the
``emocontext.models`` package, so a new family file registers itself without an edit here.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from ..errors import ConfigError

__all__ = [
    "ModelInfo",
    "register_model",
    "create_model",
    "list_models",
    "model_info",
    "count_parameters",
    "parameter_table",
]

#: Keyword arguments :func:`create_model` always passes to a builder.
_COMMON_ARGS = ("num_classes", "face_dim", "context_dim")


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model.

    Attributes:
        name: registry name.
        description: one line (by default the first line of the builder's docstring).
        paper: the paper, section and figure or equation it implements.
        streams: batch keys the model reads (``"face"``, ``"context"``, ``"face_map"``, ...).
        builder: the builder function.
        options: names of the builder's extra keyword arguments (besides ``num_classes``,
            ``face_dim``, ``context_dim``).
    """

    name: str
    description: str
    paper: str
    streams: tuple[str, ...]
    builder: Callable[..., nn.Module] = field(repr=False, compare=False)
    options: tuple[str, ...] = ()

    def __str__(self) -> str:
        streams = "+".join(self.streams) or "-"
        return f"{self.name} [{streams}]: {self.description} ({self.paper})"


_REGISTRY: dict[str, ModelInfo] = {}
_DISCOVERED = False


def register_model(
    fn: Callable | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    paper: str = "",
    streams: tuple[str, ...] = (),
):
    """Register a model builder, bare (``@register_model``) or with details (``@register_model(paper=...)``).

    The builder takes keyword-only arguments, at least ``num_classes``, ``face_dim`` and
    ``context_dim`` (it may ignore the feature sizes it does not need), and returns an
    :class:`~emocontext.models.base.EmotionModel`. Registering another function under a taken
    name raises :class:`ConfigError`.
    """

    def decorate(builder: Callable) -> Callable:
        key = name or builder.__name__
        params = inspect.signature(builder).parameters
        positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if positional:
            raise ConfigError(f"builder {key!r} must take keyword-only arguments, not {[p.name for p in positional]}")
        old = _REGISTRY.get(key)
        if old is not None and (old.builder.__module__, old.builder.__qualname__) != (
            builder.__module__,
            builder.__qualname__,
        ):
            raise ConfigError(f"model name {key!r} is already registered by {old.builder.__module__}")
        doc = inspect.getdoc(builder) or ""
        _REGISTRY[key] = ModelInfo(
            name=key,
            description=description or (doc.splitlines()[0] if doc else key),
            paper=paper,
            streams=tuple(streams),
            builder=builder,
            options=tuple(p.name for p in params.values() if p.kind is p.KEYWORD_ONLY and p.name not in _COMMON_ARGS),
        )
        return builder

    return decorate(fn) if fn is not None else decorate


def _discover() -> None:
    """Import every public module of ``emocontext.models`` once, so that their builders register."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__package__}.{module.name}")
    _DISCOVERED = True


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered models, optionally filtered by a shell pattern (``"caca*"``)."""
    _discover()
    names = sorted(_REGISTRY)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model; ``str()`` of it is a one-line summary."""
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}") from None


def create_model(
    name: str,
    *,
    num_classes: int,
    face_dim: int | None = None,
    context_dim: int | None = None,
    **kwargs,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: registry name (see :func:`list_models`).
        num_classes: number of classes ``K``.
        face_dim: size ``D_f`` of the face features (channels ``C`` of ``face_map`` for
            ``cnn_2d3d``); required by models reading the face stream.
        context_dim: size ``D_c`` of the context features; required by models reading it.
        **kwargs: the builder's own options (``model_info(name).options``).

    Returns:
        The model, with attributes ``model_name`` (``name``) and ``model_config`` (the arguments
        given here), enough to rebuild it before loading a checkpoint.

    Raises:
        ConfigError: unknown name, unknown option, missing feature size, bad value.
    """
    info = model_info(name)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive int, got {num_classes!r}")
    for dim_name, dim in (("face_dim", face_dim), ("context_dim", context_dim)):
        if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or dim < 1):
            raise ConfigError(f"{dim_name} must be a positive int or None, got {dim!r}")
    unknown = sorted(set(kwargs) - set(info.options))
    if unknown:
        raise ConfigError(
            f"model {name!r} has no option(s) {', '.join(unknown)}; "
            f"its options are: {', '.join(info.options) or 'none'}"
        )
    model = info.builder(num_classes=num_classes, face_dim=face_dim, context_dim=context_dim, **kwargs)
    model.model_name = name
    model.model_config = {"num_classes": num_classes, "face_dim": face_dim, "context_dim": context_dim, **kwargs}
    return model


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (shared parameters counted once), as in the papers' "#params"."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def parameter_table(*, num_classes: int = 8, face_dim: int = 1280, context_dim: int = 1280) -> dict[str, int | None]:
    """``{name: parameter count}`` of every registered model built with its defaults.

    The defaults are this project's setting: CHEAVD's 8 classes, 1280-d face features (the
    project's FER2013 EfficientNet-Lite0) and 1280-d context features (ImageNet EfficientNet-Lite0).
    A model that cannot be built from these arguments alone (it needs another option, such as an
    audio feature size) gets ``None``.
    """
    table: dict[str, int | None] = {}
    for name in list_models():
        try:
            model = create_model(name, num_classes=num_classes, face_dim=face_dim, context_dim=context_dim)
        except ConfigError:
            table[name] = None
        else:
            table[name] = count_parameters(model)
    return table
