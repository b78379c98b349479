import time

import pytest
import torch

from generator.dataformat.dataset import TrajectoryDataset
from generator.dataformat.loader import make_loader


def batches_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a
    )


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("normalize", [False, True])
def test_recycled_batches_equal_plain_dataloader_batches(small_dataset, workers, normalize):
    ds = TrajectoryDataset(small_dataset, "train", normalize=normalize)
    plain = list(torch.utils.data.DataLoader(ds, batch_size=5))  # 19 items: a short last batch
    loader = make_loader(ds, 5, num_workers=workers)
    for _ in range(2):  # the second pass reuses the slots of the first
        got = [
            {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in b.items()}
            for b in loader
        ]
        assert len(got) == len(plain) == 4
        assert all(batches_equal(a, b) for a, b in zip(got, plain, strict=True))
    assert got[0]["video"].dtype == (torch.float32 if normalize else torch.uint8)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_batch_stays_intact_while_the_next_is_taken(small_dataset, workers):
    """The documented promise; one worker is the tightest case (every batch from the same slots)."""
    ds = TrajectoryDataset(small_dataset, "train", normalize=False)
    loader = make_loader(ds, 2, num_workers=workers)
    previous = None
    for batch in loader:
        time.sleep(0.05)  # time for a worker to overwrite a slot it should not
        if previous is not None:
            held, copy = previous
            assert torch.equal(held["video"], copy), "the previous batch was overwritten"
        previous = batch, batch["video"].clone()


def test_options_the_loader_sets_itself_are_refused(small_dataset):
    ds = TrajectoryDataset(small_dataset, "train", normalize=False)
    with pytest.raises(ValueError, match="collate_fn"):
        make_loader(ds, 4, collate_fn=lambda b: b)
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(ds, 0)
    plain = make_loader(ds, 4, recycle=False, num_workers=0)
    assert plain.collate_fn is torch.utils.data.default_collate


def test_a_loader_without_persistent_workers_serves_one_pass(small_dataset):
    """Its slots belong to one generation of workers: a second pass would start another."""
    ds = TrajectoryDataset(small_dataset, "train", normalize=False)
    plain = list(torch.utils.data.DataLoader(ds, batch_size=5))
    loader = make_loader(ds, 5, num_workers=1, persistent_workers=False)
    assert not loader.persistent_workers
    got = [
        {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in b.items()} for b in loader
    ]
    assert all(batches_equal(a, b) for a, b in zip(got, plain, strict=True))
    with pytest.raises(RuntimeError, match="one pass"):
        iter(loader)
    # in one process, or without recycling, nothing is shared: passes repeat
    for loader in (
        make_loader(ds, 5, num_workers=0, persistent_workers=False),
        make_loader(ds, 5, num_workers=1, recycle=False, persistent_workers=False),
    ):
        for _ in range(2):
            assert sum(len(b["label"]) for b in loader) == len(ds)


class Clips(torch.utils.data.Dataset):
    """Not a TrajectoryDataset: any dataset that names its items' video shape and dtype."""

    item_shape = (2, 3, 4)
    item_dtype = torch.int16

    def __len__(self) -> int:
        return 7

    def __getitem__(self, i: int) -> dict:
        return {"video": torch.full(self.item_shape, i, dtype=self.item_dtype), "label": i}


def test_any_dataset_exposing_its_item_shape_is_loaded():
    ds = Clips()
    got = [b["video"].clone() for b in make_loader(ds, 3, num_workers=0, sampler=range(6, -1, -1))]
    assert [v.shape[0] for v in got] == [3, 3, 1]
    assert torch.equal(torch.cat(got), torch.stack([ds[i]["video"] for i in range(6, -1, -1)]))


@pytest.mark.parametrize("workers", [0, 1])
def test_a_batch_size_beyond_the_data_is_one_batch_of_it_all(workers):
    """As DataLoader has it; the slots are sized by the items there are, so a batch size of
    10^11 (a config typo) is not a 10^18-byte allocation."""
    ds = Clips()
    for sampler in (None, range(2, 5)):
        loader = make_loader(ds, 10**11, num_workers=workers, sampler=sampler)
        assert loader.collate_fn.slots.shape[2] == len(sampler or ds)
        (batch,) = [b["video"].clone() for b in loader]
        assert torch.equal(batch, torch.stack([ds[i]["video"] for i in sampler or range(7)]))
