"""The inference runtime of the prediction path: ONNX Runtime sessions and their thread count.

``emocontext predict`` with the default model runs its networks (MTCNN's three stages and the face CNN) as
ONNX graphs in ONNX Runtime, so that it never imports torch: torch's import alone was a fifth of the wall
time of a short clip and a third of the process's memory (``benchmarks/vs_fer.md``). Training, the context
model and the paper models stay in torch; the ONNX graphs are exported from the torch networks
(``scripts/export_onnx.py``) and checked against them by the tests.

ONNX Runtime's own usage telemetry is switched off (``ORT_DISABLE_TELEMETRY=1`` unless set otherwise).

One session per graph and thread count, shared by every thread of the process (``InferenceSession.run`` is
thread-safe); :func:`set_threads` is the one place the thread count of a run is decided (torch's too, when
torch is already loaded or is loaded later through :func:`import_torch`).
"""

from __future__ import annotations

import os
import sys
import threading
from functools import lru_cache
from pathlib import Path

from .errors import WeightsError

# ONNX Runtime's Linux and macOS wheels upload usage telemetry to Microsoft by default since 2026 (and write a
# session file into the temporary folder); emocontext works offline and sends nothing: it is switched off before
# onnxruntime is first imported. A user who wants it sets ORT_DISABLE_TELEMETRY=0 themselves.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__all__ = ["import_torch", "session", "session_from_bytes", "set_threads", "threads", "torch_to_onnx"]

_threads: int | None = None
_lock = threading.Lock()


def set_threads(n: int | None) -> None:
    """Intra-op threads of every network run from now on (ONNX Runtime sessions made after the call, and
    torch); None leaves the default (:func:`threads`)."""
    global _threads
    if n is None:
        return
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    _threads = int(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(_threads)


def threads() -> int:
    """The intra-op thread count sessions are made with: :func:`set_threads`'s, else the cores (at most 4)."""
    return _threads or min(os.cpu_count() or 1, 4)


def import_torch():
    """``import torch`` with the thread count of :func:`set_threads` applied (for the paths that need torch)."""
    import torch

    if _threads is not None:
        torch.set_num_threads(_threads)
    return torch


def _options(n: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = n
    opts.inter_op_num_threads = 1
    # no busy-waiting between runs: predict runs one file per core, each with its own thread
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only: no warnings about unused initialisers on stderr
    return opts


def _new_session(graph: str | bytes, n: int, what: str):
    import onnxruntime as ort

    try:
        return ort.InferenceSession(graph, _options(n), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail / InvalidProtobuf / NoSuchFile types
        raise WeightsError(f"cannot load the ONNX graph of {what}: {e}") from e


@lru_cache(maxsize=16)
def _session(path: str, mtime_ns: int, n: int):
    return _new_session(path, n, path)


def session(path: str | os.PathLike):
    """The ONNX Runtime session of the graph file ``path`` (cached per file version and thread count).

    Raises:
        WeightsError: the file is missing or is not a valid ONNX graph.
    """
    p = Path(path)
    try:
        mtime = p.stat().st_mtime_ns
    except OSError as e:
        raise WeightsError(f"ONNX graph not found: {p}") from e
    with _lock:
        return _session(str(p), mtime, threads())


def session_from_bytes(graph: bytes, what: str):
    """A session of an in-memory graph (one converted on the fly); ``what`` names it in errors.

    Raises:
        WeightsError: the bytes are not a valid ONNX graph.
    """
    return _new_session(graph, threads(), what)


def torch_to_onnx(module, example, *, inputs: list[str], outputs: list[str], dynamic: dict, **options) -> bytes:
    """A torch module as a serialised ONNX graph (opset 17), traced on ``example`` (one input tensor).

    The TorchScript-based exporter (``dynamo=False``): it needs only the ``onnx`` package, where torch's
    newer exporter also needs ``onnxscript``; its deprecation warning is silenced here, and so are the
    tracer's warnings about sizes read as Python numbers (the EfficientNet's "same" padding: constant for the
    face CNN's fixed input size; the tests run every graph at other sizes of its free dimensions). ``dynamic``: the
    free dimensions of the input, ``options``: further ``torch.onnx.export`` arguments.
    """
    import io
    import warnings

    torch = import_torch()
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)  # the flip's Slice: folded by ORT
        torch.onnx.export(
            module,
            (example,),
            buf,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes={inputs[0]: dynamic},
            opset_version=17,
            dynamo=False,
            **options,
        )
    return buf.getvalue()
