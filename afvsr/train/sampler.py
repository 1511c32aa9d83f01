"""Infinite, seeded, resumable, distributed-aware sampling for the iteration-based loop.

Every training sample has a *global sample number* ``n`` = its position in the stream of all
samples the run consumes (over all processes and micro-steps). From ``n`` alone follow

- which dataset item it is: ``permutation(seed, epoch)[n % len]`` with ``epoch = n // len``
  (a fresh permutation per pass over the data, as a shuffling sampler would give), and
- the seed of its augmentation: the global RNGs of Python, NumPy and torch are seeded from
  ``(seed, n)`` right before ``dataset[i]`` (``SeededSamples``), and a dataset with
  ``set_epoch(e)`` (``afvsr.data``'s samples, which draw from their own
  ``default_rng([data seed, e, i])``) is told ``e = derive_seed(seed, epoch)`` first.

So a sample does not depend on the DataLoader worker that loads it, on the number of workers or
processes, or on whether the run was resumed: micro-batch ``m`` is always samples
``m*B .. m*B + B - 1`` (``B`` the global batch), and process ``r`` of ``N`` takes the ``r``-th
``B/N`` of them (what a ``DistributedSampler`` does, without epochs).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def derive_seed(*numbers: int) -> int:
    """A well-mixed 32-bit seed from integers (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([int(n) for n in numbers]).generate_state(1)[0])


@contextlib.contextmanager
def seeded_rngs(seed: int) -> Iterator[None]:
    """Seed Python's, NumPy's and torch's (CPU) global RNGs with ``seed``; restore them after."""
    py_state, np_state = random.getstate(), np.random.get_state()
    torch_state = torch.random.default_generator.get_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.random.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.random.default_generator.set_state(torch_state)


class SeededSamples(Dataset):
    """Wraps a task's dataset: item ``(index, epoch key, seed)`` → ``dataset[index]`` drawn under
    RNGs seeded with ``seed`` (and ``dataset.set_epoch(epoch key)`` when it has that method)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.set_epoch = getattr(dataset, "set_epoch", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int, int]) -> dict:
        index, epoch_key, seed = item
        if self.set_epoch is not None:
            self.set_epoch(epoch_key)
        with seeded_rngs(seed):
            return self.dataset[index]


class StepBatchSampler(Sampler[list[tuple[int, int, int]]]):
    """Yields this process's share of micro-batch ``start_batch``, ``start_batch + 1``, … forever.

    Each batch is a list of ``(dataset index, epoch key, sample seed)`` for ``SeededSamples``.

    Args:
        num_items: ``len(dataset)``.
        seed: the run's seed.
        global_batch: samples per micro-batch over all processes.
        world_size, rank: this process's share is ``global_batch // world_size`` samples.
        start_batch: the first micro-batch to yield (resume: ``step * accumulate``).
    """

    def __init__(
        self,
        num_items: int,
        *,
        seed: int,
        global_batch: int,
        world_size: int = 1,
        rank: int = 0,
        start_batch: int = 0,
    ) -> None:
        if num_items < 1:
            raise ValueError(f"expected a non-empty dataset, got {num_items} items")
        if global_batch % world_size:
            raise ValueError(
                f"expected a global batch divisible by the {world_size} processes, got {global_batch}"
            )
        self.num_items, self.seed = num_items, seed
        self.global_batch, self.world_size, self.rank = global_batch, world_size, rank
        self.local_batch = global_batch // world_size
        self.start_batch = start_batch
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def item(self, n: int) -> tuple[int, int, int]:
        """Dataset index, epoch key and augmentation seed of global sample ``n``."""
        epoch, pos = divmod(n, self.num_items)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(derive_seed(self.seed, 1, epoch))
            self._epoch, self._perm = epoch, torch.randperm(self.num_items, generator=g)
        return int(self._perm[pos]), derive_seed(self.seed, 4, epoch), derive_seed(self.seed, 2, n)

    def batch(self, m: int) -> list[tuple[int, int, int]]:
        """This process's part of micro-batch ``m``."""
        first = m * self.global_batch + self.rank * self.local_batch
        return [self.item(n) for n in range(first, first + self.local_batch)]

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        m = self.start_batch
        while True:
            yield self.batch(m)
            m += 1


def worker_init_fn(worker_id: int) -> None:
    """Seed a DataLoader worker from torch's per-worker seed (itself from the loader's generator).

    Samples reseed the RNGs themselves (``SeededSamples``); this only keeps anything else a
    worker might draw reproducible.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
