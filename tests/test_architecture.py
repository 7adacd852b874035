"""The layer rule of ARCHITECTURE.md, checked on the source: no upward import, no package import cycle.

Every ``import`` and ``from ... import`` of every module under ``src/emocontext`` counts, at any
depth (imports inside functions too), read with :mod:`ast` (nothing is imported).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "emocontext"

#: Bottom to top. A module may import from its own layer and the layers below, never above.
#: Names are modules or packages under ``emocontext`` (a package covers its submodules); ``""`` is
#: the package itself (``emocontext/__init__.py``, the public facade).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("errors", "hub", "labels", "metrics", "options", "outputs", "runtime", "samples", "weights")),
    ("video", ("video",)),
    ("data", ("data",)),
    ("features", ("features",)),
    ("models", ("models",)),
    ("training", ("training", "pretrained", "distributed", "distributed.ddp")),
    ("prediction", ("inference", "report", "distributed.ray")),
    ("entry points", ("", "__main__", "cli", "serve")),
)

#: A dataset reader is chosen by an entry point; library code works on Manifest / ClipEntry only.
ENTRY_POINTS_ONLY = ("data.datasets",)

#: Anything may read the version string (Python runs ``emocontext/__init__.py`` before any
#: submodule anyway, so this adds no dependency).
ALLOWED = {("", "__version__")}

#: Imports that break the rule today, with the reason. Issue 14 (item 5) removed the last one
#: (``features.extract`` -> ``data.manifest``: the manifest now sits below the features). Delete a
#: line when its import is gone (the test below fails until you do); never add one.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    importer: str  # module, relative to the package ("data.datasets", "" for __init__)
    target: str  # module or package imported, relative to the package
    name: str  # the name taken from it with ``from ... import name`` ("" otherwise)
    where: str  # file:line


def _modules() -> dict[str, Path]:
    root = SRC / PACKAGE
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports() -> list[Import]:
    found = []
    for module, path in MODULES.items():
        is_package = path.name == "__init__.py"
        here = [PACKAGE, *module.split(".")] if module else [PACKAGE]
        package = here if is_package else here[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                targets = [(a.name, "") for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                # ``from pkg import sub`` imports the submodule pkg.sub when there is one
                targets = [
                    (f"{base}.{a.name}", "") if _relative(f"{base}.{a.name}") in MODULES else (base, a.name)
                    for a in node.names
                ]
            else:
                continue
            for target, name in targets:
                rel = _relative(target)
                if rel is not None and rel != module:
                    found.append(Import(module, rel, name, where))
    return found


def _relative(dotted: str) -> str | None:
    """``emocontext.data.manifest`` -> ``data.manifest``; None outside the package."""
    if dotted == PACKAGE:
        return ""
    if dotted.startswith(PACKAGE + "."):
        return dotted[len(PACKAGE) + 1 :]
    return None


def _owner(module: str) -> str | None:
    """The LAYERS entry a module belongs to: the longest name that is the module or a package above it."""
    names = [n for _, group in LAYERS for n in group]
    matches = [n for n in names if module == n or (n and module.startswith(n + "."))]
    return max(matches, key=len) if matches else None


def _layer(module: str) -> int:
    owner = _owner(module)
    return next(i for i, (_, group) in enumerate(LAYERS) if owner in group)


IMPORTS = _imports()


def _in(module: str, names) -> bool:
    return any(module == n or module.startswith(n + ".") for n in names)


def _breaks_rule(imp: Import) -> str | None:
    """Why ``imp`` breaks the rule (None if it does not)."""
    if (imp.target, imp.name) in ALLOWED:
        return None
    if _in(imp.target, ENTRY_POINTS_ONLY) and not _in(imp.importer, ENTRY_POINTS_ONLY):
        if LAYERS[_layer(imp.importer)][0] != "entry points":
            return f"only entry points may import {imp.target}"
    lo, hi = _layer(imp.importer), _layer(imp.target)
    if hi > lo:
        return f"layer {lo + 1} ({LAYERS[lo][0]}) imports layer {hi + 1} ({LAYERS[hi][0]})"
    return None


def _key(imp: Import) -> tuple[str, str]:
    return imp.importer, imp.target


def test_every_module_has_a_layer():
    orphans = sorted(m for m in MODULES if _owner(m) is None)
    assert not orphans, f"modules in no layer: {orphans}; place them in ARCHITECTURE.md and LAYERS here"


def test_no_module_imports_across_the_layer_rule():
    broken = [
        f"{imp.where}: {imp.importer or PACKAGE} imports {imp.target} -- {why}"
        for imp in IMPORTS
        if (why := _breaks_rule(imp)) and _key(imp) not in KNOWN_EXCEPTIONS
    ]
    assert not broken, "imports against the layer rule (ARCHITECTURE.md, 'Layers'):\n" + "\n".join(broken)


def test_known_exceptions_are_still_needed():
    """The exception list only shrinks: an exception whose import is gone must be deleted."""
    present = {_key(imp) for imp in IMPORTS if _breaks_rule(imp)}
    gone = sorted(set(KNOWN_EXCEPTIONS) - present)
    assert not gone, f"no longer imported, delete from KNOWN_EXCEPTIONS: {gone}"


def _unit(module: str) -> str:
    """The package (or top-level module) a module belongs to: ``data.manifest`` -> ``data``."""
    return module.split(".")[0]


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_package_import_cycle():
    """Between packages and top-level modules (``data``, ``features``, ``train``, ...), known exceptions aside."""
    edges: dict[str, set[str]] = {}
    for imp in IMPORTS:
        a, b = _unit(imp.importer), _unit(imp.target)
        if a and b and a != b and _key(imp) not in KNOWN_EXCEPTIONS and (imp.target, imp.name) not in ALLOWED:
            edges.setdefault(a, set()).add(b)
    cycle = _cycle(edges)
    assert cycle is None, "package import cycle: " + " -> ".join(cycle)


def test_cycle_finder_and_rule_can_fail():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None
    assert _breaks_rule(Import("models.base", "training", "", "x")) == "layer 5 (models) imports layer 6 (training)"
    assert _breaks_rule(Import("inference", "data.datasets", "", "x")) == "only entry points may import data.datasets"
    assert _breaks_rule(Import("cli", "data.datasets", "", "x")) is None
    assert _breaks_rule(Import("report.html", "", "__version__", "x")) is None
    assert _breaks_rule(Import("report.html", "", "predict", "x")) is not None


def test_architecture_md_lists_the_same_layers():
    """ARCHITECTURE.md's layer table and LAYERS here say the same thing."""
    text = (REPO / "ARCHITECTURE.md").read_text()
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*(\d+)\s*\|\s*([^|]+?)\s*\|\s*([^|]*)\|", line)
        if m:
            cells = re.findall(r"`([^`]+)`", m.group(3))
            names = tuple(sorted(n.removeprefix(PACKAGE).strip("./") for n in cells))
            rows[int(m.group(1))] = (m.group(2), names)
    expected = {i + 1: (name, tuple(sorted(group))) for i, (name, group) in enumerate(LAYERS)}
    assert rows == expected
    lines = text.splitlines()
    for importer, target in KNOWN_EXCEPTIONS:
        listed = any(f"`{importer}`" in line and f"`{target}`" in line for line in lines)
        assert listed, f"ARCHITECTURE.md does not list the known exception {importer} -> {target}"


@pytest.mark.parametrize("module", ["data.manifest", "models.registry", "video.faces"])
def test_imports_are_found(module):
    """The AST walk sees the imports it must judge (a silent walk would pass every rule)."""
    assert any(imp.importer == module and imp.target == "errors" for imp in IMPORTS)


def _pyav_uses(module: str, path: Path) -> list[str]:
    """``file:line`` of every ``import av`` / ``from av ...`` (at any depth) and every ``av.open(`` in a module."""
    found = []
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        if any(n == "av" or n.startswith("av.") for n in names):
            found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if "av.open(" in line:
            found.append(f"{path.relative_to(REPO)}:{i}")
    return found


def test_media_is_opened_only_under_video():
    """PyAV (``import av``, ``av.open(``) appears only in ``video/``, with no exception: one place opens, probes
    and decodes media (the service's upload check included: :func:`emocontext.video.decode.identify_media`)."""
    outside = {m: uses for m, p in MODULES.items() if not _in(m, ("video",)) and (uses := _pyav_uses(m, p))}
    assert not outside, f"PyAV used outside video/ (open media with emocontext.video.decode): {outside}"
    assert _pyav_uses("video.decode", MODULES["video.decode"])  # the scan sees what it must judge


def test_no_command_module_over_250_lines():
    """One module per command, each short enough to read at once (issue 21)."""
    long = {m: n for m, p in MODULES.items() if _in(m, ("cli",)) and (n := len(p.read_text().splitlines())) > 250}
    assert not long, f"command modules over 250 lines: {long}"
