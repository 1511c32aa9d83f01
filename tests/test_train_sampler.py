"""The data stream: a function of (seed, sample number) only — not of workers, processes, resume."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader
from train_helpers import make_frames

from afvsr.data import build_train_dataset
from afvsr.train.sampler import SeededSamples, StepBatchSampler, worker_init_fn


def test_processes_split_each_global_batch_and_resume_skips_exactly():
    one = StepBatchSampler(10, seed=7, global_batch=4)
    ranks = [StepBatchSampler(10, seed=7, global_batch=4, world_size=2, rank=r) for r in (0, 1)]
    for m in range(6):  # crosses epochs (10 items, 4 per batch)
        assert one.batch(m) == ranks[0].batch(m) + ranks[1].batch(m)
    indices = [one.item(n)[0] for n in range(10)]
    assert sorted(indices) == list(range(10))  # each epoch is a permutation
    assert [one.item(n)[0] for n in range(10, 20)] != indices  # and a different one next epoch
    resumed = iter(StepBatchSampler(10, seed=7, global_batch=4, start_batch=3))
    assert [next(resumed) for _ in range(3)] == [one.batch(m) for m in (3, 4, 5)]
    other_seed = StepBatchSampler(10, seed=8, global_batch=4)
    assert other_seed.batch(0) != one.batch(0)
    with pytest.raises(ValueError, match="divisible by the 3 processes"):
        StepBatchSampler(10, seed=0, global_batch=4, world_size=3)


def test_samples_do_not_depend_on_workers(tmp_path):
    frames = make_frames(tmp_path / "frames")
    dataset = build_train_dataset(
        {"dataset": "folder", "root": str(frames), "num_frames": 3, "patch_size": 8}
    )

    def batches(workers: int, start: int) -> list[torch.Tensor]:
        sampler = StepBatchSampler(len(dataset), seed=5, global_batch=3, start_batch=start)
        loader = DataLoader(
            SeededSamples(dataset),
            batch_sampler=sampler,
            num_workers=workers,
            worker_init_fn=worker_init_fn if workers else None,
        )
        it = iter(loader)
        return [next(it)["lq"] for _ in range(5 - start)]

    plain = batches(0, 0)
    assert all(not torch.equal(a, b) for a, b in zip(plain, plain[1:], strict=False))
    for got, want in zip(batches(2, 0), plain, strict=True):
        assert torch.equal(got, want)
    for got, want in zip(batches(0, 2), plain[2:], strict=True):  # resume at micro-batch 2
        assert torch.equal(got, want)
