"""Build models by name, as timm does (``timm/models/_registry.py``).

Every model family file in :mod:`emocontext.models` registers its models with
:func:`register_model`, one line per name: the model class, the paper, and the keyword values
that make the variant (timm's ``build_model_with_cfg``, torchvision's ``_video_resnet``)::

    register_model(CacaRNN, name="caca_rnn_a", paper="...", fixed={"left": "context"})

The options a user may pass are read from the class's ``__init__``, so they are never restated.
:func:`create_model` looks a name up and builds the model with keyword-only arguments::

    model = create_model("caca_rnn_a", num_classes=8, face_dim=1280, context_dim=1280)
    list_models()            # ['caca_rnn_a', 'caca_rnn_b', ...]
    print(model_info("caca_rnn_a"))

A model that needs more than its class (the ensemble builds its members by name) registers a
builder function instead: ``@register_model(paper=...)`` on a function taking keyword-only
arguments ``num_classes``, ``face_dim``, ``context_dim`` and its options.

Model files are discovered automatically: the first call of :func:`list_models`,
:func:`model_info` or :func:`create_model` imports every public module of the
``emocontext.models`` package, so a new family file registers itself without an edit here.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..errors import ConfigError
from .recipes import DEFAULT as DEFAULT_RECIPE
from .recipes import Recipe

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
#: Feature sizes :func:`create_model` takes for every model; a class receives the ones it reads.
_DIMS = ("face_dim", "context_dim")


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model.

    Attributes:
        name: registry name.
        description: one line (by default the first line of the builder's or class's docstring).
        paper: the paper, section and figure or equation it implements.
        streams: batch keys the model reads (``"face"``, ``"context"``, ``"face_map"``, ...); by
            default the class's :attr:`~emocontext.models.base.EmotionModel.streams`.
        builder: ``builder(*, num_classes, face_dim, context_dim, **options) -> model``.
        options: names of the extra keyword arguments :func:`create_model` accepts (besides
            ``num_classes``, ``face_dim``, ``context_dim``).
        model_class: the registered class (None for a builder function).
        recipe: the paper's training recipe (:mod:`emocontext.models.recipes`), which
            :func:`emocontext.training.fit` uses for every setting not given.
    """

    name: str
    description: str
    paper: str
    streams: tuple[str, ...]
    builder: Callable[..., nn.Module] = field(repr=False, compare=False)
    options: tuple[str, ...] = ()
    model_class: type | None = field(default=None, repr=False, compare=False)
    recipe: Recipe = field(default=DEFAULT_RECIPE, repr=False, compare=False)

    def __str__(self) -> str:
        streams = "+".join(self.streams) or "-"
        return f"{self.name} [{streams}]: {self.description} ({self.paper})"


_REGISTRY: dict[str, ModelInfo] = {}
_DISCOVERED = False


def _init_params(cls: type) -> dict[str, inspect.Parameter]:
    """Keyword parameters of ``cls.__init__``; a ``**kwargs`` there continues with the parent's ``__init__``."""
    params: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        more = False
        for p in list(inspect.signature(init).parameters.values())[1:]:
            if p.kind is p.VAR_KEYWORD:
                more = True
            elif p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                params.setdefault(p.name, p)
        if not more:
            break
    return params


def _class_builder(
    key: str,
    cls: type,
    *,
    fixed: Mapping[str, Any],
    defaults: Mapping[str, Any],
    unused: Sequence[str],
    dims: Mapping[str, str] | None,
) -> tuple[Callable[..., nn.Module], tuple[str, ...]]:
    """The builder of a registered class and its option names (see :func:`register_model`)."""
    params = _init_params(cls)
    if "num_classes" not in params:
        raise ConfigError(f"model {key!r}: {cls.__name__}.__init__ must take num_classes")
    dim_map = {d: d for d in _DIMS if d in params}
    dim_map.update(dims or {})
    for what, names in (
        ("fixed", fixed),
        ("defaults", defaults),
        ("unused", unused),
        ("dims", dim_map.values()),
    ):
        unknown = sorted(set(names) - set(params))
        if unknown:
            raise ConfigError(f"model {key!r}: {what} names {unknown} that {cls.__name__}.__init__ does not take")
    if set(dim_map) - set(_DIMS):
        raise ConfigError(f"model {key!r}: dims maps {sorted(set(dim_map) - set(_DIMS))}; only {_DIMS} exist")
    # A feature size's parameter is an option only where the class gives it a default (cnn_2d3d's in_channels).
    hidden = {*_COMMON_ARGS, *fixed, *unused, *(t for t in dim_map.values() if params[t].default is params[t].empty)}
    options = tuple(p for p in params if p not in hidden)
    required = [p for p, v in params.items() if v.default is v.empty and p != "num_classes"]

    def build(*, num_classes: int, face_dim: int | None = None, context_dim: int | None = None, **kwargs):
        given = {"face_dim": face_dim, "context_dim": context_dim}
        kw = {**defaults, **kwargs, **fixed}
        absent = []
        for dim, target in dim_map.items():
            if kwargs.get(target) is not None:
                continue
            if given[dim] is None:
                absent.append(dim + (f" or {target}" if target in options else ""))
            kw[target] = given[dim]
        if absent:
            raise ConfigError(f"{key} needs {' and '.join(absent)}")
        missing = [p for p in required if p not in kw]
        if missing:
            raise ConfigError(f"{key} needs {', '.join(missing)}")
        return cls(num_classes=num_classes, **kw)

    build.__name__ = build.__qualname__ = key
    build.__module__ = cls.__module__
    return build, options


def register_model(
    target: type | Callable | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    paper: str = "",
    streams: tuple[str, ...] | None = None,
    fixed: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    unused: Sequence[str] = (),
    dims: Mapping[str, str] | None = None,
    recipe: Recipe | None = None,
):
    """Register a model class (or a builder function) under a name; returns ``target``.

    Called with a class, ``register_model(CacaRNN, name="caca_rnn_b", paper=..., fixed={"left": "face"})``;
    as a decorator, bare (``@register_model``) or with details (``@register_model(paper=...)``),
    on a class or a builder function.

    A **class** (an :class:`~emocontext.models.base.EmotionModel`) is built with keyword
    arguments: ``num_classes``; ``face_dim`` / ``context_dim`` for the parameters of those names,
    or for the ones ``dims`` names (``{"face_dim": "in_dim"}``), which are then required; ``fixed``
    (the variant: always passed, not an option); ``defaults`` (passed unless the user gives
    another value). Its options are the other keyword parameters of its ``__init__`` (a
    ``**kwargs`` continues with the parent class's), except ``unused`` ones (that the variant
    ignores). A parameter without a default that nothing supplies gives a :class:`ConfigError`
    naming it when the model is created.

    A **builder function** takes keyword-only arguments, at least ``num_classes``, ``face_dim``
    and ``context_dim`` (it may ignore the feature sizes it does not need), and returns an
    :class:`~emocontext.models.base.EmotionModel`; its options are its other keyword arguments.

    Args:
        name: registry name; by default the class's or function's ``__name__``.
        description: one line; by default the first line of the docstring.
        paper: the paper, section and figure or equation implemented.
        streams: batch keys read; by default the class attribute ``streams`` (a builder
            function should give them; they are empty otherwise).
        fixed, defaults, unused, dims: for a class, see above.
        recipe: the paper's training recipe (default :data:`emocontext.models.recipes.DEFAULT`).

    Raises:
        ConfigError: the name is taken by another class or function; a builder function with
            positional arguments; ``fixed`` / ``defaults`` / ``unused`` / ``dims`` naming
            parameters the class does not take.
    """

    def decorate(obj: type | Callable) -> type | Callable:
        key = name or obj.__name__
        old = _REGISTRY.get(key)
        old_obj = old and (old.model_class or old.builder)
        if old_obj is not None and (old_obj.__module__, old_obj.__qualname__) != (obj.__module__, obj.__qualname__):
            raise ConfigError(f"model name {key!r} is already registered by {old_obj.__module__}")
        doc = inspect.getdoc(obj) or ""
        if isinstance(obj, type):
            builder, options = _class_builder(
                key, obj, fixed=dict(fixed or {}), defaults=dict(defaults or {}), unused=tuple(unused), dims=dims
            )
            model_class, default_streams = obj, getattr(obj, "streams", ())
        else:
            if fixed or defaults or unused or dims:
                raise ConfigError(f"model {key!r}: fixed, defaults, unused and dims apply to a class, not a builder")
            params = inspect.signature(obj).parameters
            positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            if positional:
                raise ConfigError(
                    f"builder {key!r} must take keyword-only arguments, not {[p.name for p in positional]}"
                )
            builder, model_class, default_streams = obj, None, ()
            options = tuple(p.name for p in params.values() if p.kind is p.KEYWORD_ONLY and p.name not in _COMMON_ARGS)
        _REGISTRY[key] = ModelInfo(
            name=key,
            description=description or (doc.splitlines()[0] if doc else key),
            paper=paper,
            streams=tuple(default_streams if streams is None else streams),
            builder=builder,
            options=options,
            model_class=model_class,
            recipe=recipe or DEFAULT_RECIPE,
        )
        return obj

    return decorate(target) if target is not None else decorate


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
