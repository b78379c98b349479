"""An epoch's batches (crops, masks, order) do not depend on the number of loader workers."""

import pytest
import torch

from train.jepa.config import parse_config
from train.jepa.data_pipeline import build_pretrain_data, epoch_loader


def _epoch(cfg, epoch: int) -> list:  # noqa: ANN001
    mixture, sampler, collator = build_pretrain_data(cfg)
    return list(epoch_loader(cfg, mixture, sampler, collator, epoch))


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_draw_the_crops_and_masks_the_main_process_draws(tmp_path, jepa_files, workers):
    """With no workers the crops and masks came from the main process's RNG, with workers from
    one stream a worker: 0 and 2 workers trained different runs (loss 0.5495 against 0.6136)."""

    def cfg(n: int):  # noqa: ANN202
        return parse_config(jepa_files.tiny_config(tmp_path, data={"num_workers": n}))

    torch.manual_seed(1)  # whatever the main process's RNG holds
    alone = _epoch(cfg(0), 1)
    torch.manual_seed(2)
    loaded = _epoch(cfg(workers), 1)
    assert len(alone) == len(loaded) == 3
    for ((a_img, a_ids), a_ctx, a_tgt), ((b_img, b_ids), b_ctx, b_tgt) in zip(
        alone, loaded, strict=True
    ):
        assert torch.equal(a_img, b_img) and torch.equal(a_ids, b_ids)
        for a, b in zip(a_ctx + a_tgt, b_ctx + b_tgt, strict=True):
            assert torch.equal(a, b)
    assert not torch.equal(alone[0][0][0], _epoch(cfg(0), 2)[0][0][0])  # each epoch draws anew
