"""A batch size beyond the data is one batch of it all, however large (``--batch-size`` past
``sys.maxsize`` was a traceback from torch's batch sampler in train and train.evaluate)."""

from __future__ import annotations

import pytest
import torch

from generator.dataformat.loader import make_loader

HUGE = 2**70


class Clips(torch.utils.data.Dataset):
    """Any dataset that names its items' video shape and dtype."""

    item_shape = (2, 3)
    item_dtype = torch.int16

    def __len__(self) -> int:
        return 7

    def __getitem__(self, i: int) -> dict:
        return {"video": torch.full(self.item_shape, i, dtype=self.item_dtype), "label": i}


def videos(loader) -> list[torch.Tensor]:
    return [b["video"].clone() for b in loader]


@pytest.mark.parametrize("recycle", [True, False])
@pytest.mark.parametrize("workers", [0, 1])
@pytest.mark.parametrize("sampler", [None, range(2, 5)])
def test_a_batch_size_past_sys_maxsize_is_one_batch_of_it_all(recycle, workers, sampler):
    ds = Clips()
    loader = make_loader(
        ds, HUGE, num_workers=workers, recycle=recycle, sampler=sampler, persistent_workers=False
    )
    (batch,) = videos(loader)
    assert torch.equal(batch, torch.stack([ds[i]["video"] for i in sampler or range(len(ds))]))


def test_drop_last_keeps_the_one_batch():
    (batch,) = videos(make_loader(Clips(), HUGE, num_workers=0, drop_last=True))
    assert len(batch) == 7


def test_an_empty_sampler_gets_slots_of_one_row_not_of_the_whole_dataset():
    """An empty range is falsy: ``sampler or dataset`` sized the slots by the dataset."""
    loader = make_loader(Clips(), HUGE, num_workers=0, sampler=range(0))
    assert loader.collate_fn.slots.shape[2] == 1
    assert videos(loader) == []


class Stream(torch.utils.data.IterableDataset):
    """No length: the batch size is left to torch."""

    def __iter__(self):
        return iter({"video": torch.tensor([i]), "label": i} for i in range(5))


def test_a_dataset_without_a_length_still_loads_without_recycling():
    (batch,) = videos(make_loader(Stream(), 8, num_workers=0, recycle=False))
    assert batch.flatten().tolist() == [0, 1, 2, 3, 4]
