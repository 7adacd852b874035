"""Running on more than one process or machine.

* :mod:`.ray`: ``emocontext extract --ray`` and ``emocontext predict DIR --ray``: files are mapped
  over a pool of Ray actors that load the models once each (layer 7, prediction).
* :mod:`.ddp`: ``emocontext train --nproc N`` and ``torchrun -m emocontext train``: PyTorch
  DistributedDataParallel, gloo on CPU, NCCL on CUDA (layer 6, training).

Nothing here is imported unless asked for: Ray is an optional extra (``pip install -e ".[ray]"``).
"""
