"""Training on several processes: PyTorch DistributedDataParallel (DDP), gloo on CPU, NCCL on CUDA.

``emocontext train --nproc N ...`` starts N processes on this machine; ``torchrun --nproc_per_node N
-m emocontext train ...`` does the same through torchrun (and, with torchrun's ``--nnodes`` and
``--rdzv-endpoint``, across machines that share the run directory and the feature store). Every
process reads the settings torchrun defines (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) in :func:`setup`; :func:`emocontext.training.fit` then asks
:func:`current` and, when it runs distributed or on CUDA, trains an epoch with :func:`train_epoch`.

What a distributed epoch does, and why it matches one process:

* **The same batches.** Every process draws the single-process run's order of clips (the same
  seeded ``DataLoader`` over the clip indices) and its global batches of ``batch_size`` clips; each
  process takes its contiguous share of every global batch (:func:`shard`). This is the job of
  ``DistributedSampler``, which draws its own order instead; drawing the single-process order keeps
  the 1- and N-process runs on the same batches.
* **The paper's random start frame per clip** (Sun et al., MEC 2017, V-C) is drawn by
  :class:`~emocontext.data.datasets.FeatureSequenceDataset` from the seed, the epoch and the clip's
  index, so it does not depend on which process reads the clip.
* **The same gradient.** Each process's loss is its share of the global batch's loss: the sum of its
  clips' (class-weighted) cross-entropies divided by the global batch's weight sum, times the number
  of processes (DDP averages the gradients over processes). The sum of the shares is the
  single-process batch loss, so the gradients agree up to floating-point summation order.
  **Deviations**: a model with its own ``loss`` (CAAN's softmax + triplet loss, whose triplets are
  mined within the batch) gets the mean of its per-process losses, which mines triplets within each
  share only; dropout draws other masks than in one process (each process seeds its own generator
  with its rank), so metrics match one process within a tolerance, not exactly
  (``benchmarks/ddp_ckplus.md`` measures it).
* **Checkpoints** are written by rank 0 only, atomically, after every epoch; all processes wait for
  it (a barrier) and every process resumes from the same ``checkpoint.pt``. Every process evaluates
  the whole validation set (identical models give identical metrics, so early stopping agrees).

Every process keeps the whole training set in memory (any clip can fall in its share of an epoch).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.nn import functional as F
from torch.utils.data import DataLoader

from ..errors import ConfigError

__all__ = ["Runtime", "current", "setup", "teardown", "launch", "shard", "train_epoch", "to_device", "barrier"]

DEVICES = ("cpu", "cuda", "auto")


@dataclass(frozen=True)
class Runtime:
    """Where this process trains: its rank among ``world_size`` processes and its torch device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes checkpoints, metrics and messages."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def active(self) -> bool:
        """Training needs :func:`train_epoch` (several processes, or a device other than the CPU)."""
        return self.distributed or self.device != "cpu"


_RUNTIME = Runtime()


def current() -> Runtime:
    """This process's :class:`Runtime` (one CPU process until :func:`setup` says otherwise)."""
    return _RUNTIME


def _device(device: str, local_rank: int) -> str:
    if device not in DEVICES:
        raise ConfigError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device is available here (torch sees none); use --device cpu")
        index = local_rank % torch.cuda.device_count()
        torch.cuda.set_device(index)
        return f"cuda:{index}"
    return "cpu"


def setup(device: str = "cpu") -> Runtime:
    """Join the process group that torchrun (or :func:`launch`) describes in the environment, if any.

    Args:
        device: ``"cpu"``, ``"cuda"`` (the GPU ``LOCAL_RANK`` of this machine) or ``"auto"`` (CUDA
            when there is one).

    Returns:
        the :class:`Runtime` now returned by :func:`current`. Without ``WORLD_SIZE`` > 1 in the
        environment this is one process on ``device``.

    Raises:
        ConfigError: unknown device, or CUDA asked for where there is none.
    """
    global _RUNTIME
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _device(device, local)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.startswith("cuda") else "gloo", rank=rank, world_size=world)
    _RUNTIME = Runtime(rank=rank, world_size=world, local_rank=local, device=dev)
    return _RUNTIME


def teardown() -> None:
    """Leave the process group (if any) and return to one CPU process."""
    global _RUNTIME
    if dist.is_initialized():
        dist.destroy_process_group()
    _RUNTIME = Runtime()


def barrier() -> None:
    """Wait for every process (nothing to wait for in one process)."""
    if _RUNTIME.distributed:
        dist.barrier()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, nproc: int, port: int, threads: int, fn: Callable, kwargs: dict) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(nproc),
        LOCAL_WORLD_SIZE=str(nproc),
    )
    torch.set_num_threads(threads)
    try:
        fn(**kwargs)
    except SystemExit as e:  # typer.Exit / sys.exit: the message was printed; keep the status
        if e.code:
            raise
    except Exception as e:
        code = getattr(e, "exit_code", None)  # click's Exit is not a SystemExit
        if code is None:
            raise
        if code:
            raise SystemExit(code) from None
    finally:
        teardown()


def launch(nproc: int, fn: Callable, kwargs: dict, *, threads: int | None = None) -> int:
    """Run ``fn(**kwargs)`` in ``nproc`` new processes on this machine, as torchrun would, and wait.

    Args:
        nproc: processes (>= 2).
        fn: a module-level function (it is pickled by name: the processes are spawned).
        kwargs: its arguments (picklable).
        threads: torch threads of each process (default: the cores divided among the processes).

    Returns:
        0 when every process ended well, else the first failing process's exit status (the other
        processes are stopped).
    """
    import torch.multiprocessing as mp

    if nproc < 2:
        raise ConfigError(f"nproc must be >= 2 to launch processes, got {nproc}")
    threads = threads or max(1, (os.cpu_count() or 1) // nproc)
    try:
        mp.start_processes(
            _entry, args=(nproc, _free_port(), threads, fn, kwargs), nprocs=nproc, join=True, start_method="spawn"
        )
    except mp.ProcessExitedException as e:
        return e.exit_code or 1
    except mp.ProcessRaisedException:
        raise
    return 0


def to_device(batch: dict, device: str | None = None) -> dict:
    """The batch's tensors on ``device`` (default: this process's); other values as they are."""
    device = device or _RUNTIME.device
    if device == "cpu":
        return batch
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def shard(batch: list[int], rank: int, world_size: int) -> list[int]:
    """This process's contiguous share of a global batch of clip indices (sizes differ by at most one).

    A share can be empty when the batch has fewer clips than there are processes.
    """
    return [int(i) for i in np.array_split(np.asarray(batch, np.int64), world_size)[rank]]


def global_batches(n: int, batch_size: int, seed: int) -> list[list[int]]:
    """The single-process run's batches of clip indices: a shuffled ``DataLoader`` seeded with ``seed``
    (the same draws as ``emocontext.training.fit``'s loader, so 1 and N processes see the same batches)."""
    g = torch.Generator().manual_seed(seed)
    return [b.tolist() for b in DataLoader(range(n), batch_size=batch_size, shuffle=True, generator=g)]


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model on this process's device, wrapped in DistributedDataParallel when distributed."""
    model.to(_RUNTIME.device)
    if not _RUNTIME.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(_RUNTIME.device).index] if _RUNTIME.device.startswith("cuda") else None
    # models may leave parts unused for some inputs (a stream switched off, no face in the batch)
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def train_epoch(
    net: torch.nn.Module,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    train_ds,
    collate: Callable,
    *,
    batch_size: int,
    seed: int,
    weight: torch.Tensor | None = None,
    loss_kwargs: dict | None = None,
) -> tuple[float, int]:
    """One training epoch of this process (see the module docstring).

    Args:
        net: the model as trained (:func:`wrap`: DDP-wrapped when distributed).
        model: the model itself (its ``loss``, if it has one).
        opt: the optimiser.
        train_ds: the training dataset (``labels`` ``(N,)`` class ids, items by index).
        collate: batch maker.
        batch_size: clips per **global** batch (as in one process).
        seed: the epoch's loader seed (the single-process run's).
        weight: class weights of the cross-entropy (and of a model's own loss), or None.
        loss_kwargs: options of a model's own loss (``TrainConfig.loss_kwargs``).

    Returns:
        ``(loss summed over the epoch's clips, clips)``, over all processes: the history's
        loss is their ratio, as in one process.
    """
    rt = _RUNTIME
    if rt.distributed:  # dropout: every process its own masks
        torch.manual_seed(seed * 1_000 + rt.rank)
    labels = torch.as_tensor(np.asarray(train_ds.labels))
    w = None if weight is None else weight.to(rt.device)
    total, n = 0.0, 0
    for batch_idx in global_batches(len(train_ds), batch_size, seed):
        mine = shard(batch_idx, rt.rank, rt.world_size)
        scale = 1.0 if mine else 0.0  # an empty share still joins the gradient exchange, with no weight
        batch = to_device(collate([train_ds[i] for i in (mine or batch_idx[:1])]))
        output = net(batch)
        if hasattr(model, "loss"):  # its own objective: the mean over processes of each share's loss
            loss = model.loss(output, batch["label"], weight=w, **(loss_kwargs or {})) * scale
            part = loss.detach() * len(mine)
        else:
            denom = float(len(batch_idx) if weight is None else weight[labels[batch_idx]].sum())
            per_clip = F.cross_entropy(output.logits, batch["label"], weight=w, reduction="none")
            part = per_clip.sum() * scale / denom  # this share of the global batch loss
            loss = part * rt.world_size  # DDP divides the summed gradients by world_size
            part = part.detach() * len(batch_idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if rt.distributed:
            dist.all_reduce(part)
        total += float(part)
        n += len(batch_idx)
    return total, n
