import numpy as np
import pytest

from train.saliency.batching import GridDataset, collate, to_grid
from train.saliency.records import Sample, StimulusRef
from train.saliency.splits import split_indices


def _refs(counts: dict[str, int]) -> list[StimulusRef]:
    return [StimulusRef(f"{c}/{i:03d}.jpg", c) for c, n in counts.items() for i in range(n)]


def test_split_is_seeded_disjoint_and_per_category():
    refs = _refs({"Action": 20, "Indoor": 10, "Sketch": 30})
    a = split_indices(refs, 0.1, 0.2, seed=3)
    assert a == split_indices(refs, 0.1, 0.2, seed=3)
    assert a != split_indices(refs, 0.1, 0.2, seed=4)
    all_idx = a["train"] + a["val"] + a["test"]
    assert sorted(all_idx) == list(range(len(refs)))
    for cat, n in {"Action": 20, "Indoor": 10, "Sketch": 30}.items():
        in_cat = {i for i, r in enumerate(refs) if r.category == cat}
        assert len(in_cat & set(a["val"])) == round(n * 0.1)
        assert len(in_cat & set(a["test"])) == round(n * 0.2)


def test_one_category_growing_leaves_the_others_alone():
    small = _refs({"Action": 20, "Indoor": 10})
    big = _refs({"Action": 20, "Indoor": 15})
    keys = lambda refs, idx: {refs[i].key for i in idx}  # noqa: E731
    a, b = split_indices(small, 0.2, 0.2, 0), split_indices(big, 0.2, 0.2, 0)
    for part in ("train", "val", "test"):
        ka = {k for k in keys(small, a[part]) if k.startswith("Action")}
        kb = {k for k in keys(big, b[part]) if k.startswith("Action")}
        assert ka == kb


def _sample(h: int, w: int, fx: int, fy: int) -> Sample:
    """A dark image with a bright 4x4 block whose corner is the one fixation."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[fy : fy + 4, fx : fx + 4] = 255
    return Sample("k", "c", img, np.array([[fx + 1.5, fy + 1.5]]), None)


@pytest.mark.parametrize("mode", ["resize", "letterbox"])
@pytest.mark.parametrize("h, w, fx, fy", [(40, 80, 60, 8), (80, 40, 4, 70), (50, 50, 24, 24)])
def test_fixations_stay_on_their_content(mode, h, w, fx, fy):
    g = to_grid(_sample(h, w, fx, fy), 32, mode)
    ((gx, gy),) = g.fixations
    assert g.mask[gy, gx]
    assert g.image[:, gy, gx].mean() > 100  # the bright block (255) is under the fixation
    assert g.fixation_map.sum() == pytest.approx(1.0)
    assert g.fixation_map[~g.mask].sum() == 0
    assert np.unravel_index(g.fixation_map.argmax(), g.fixation_map.shape) == (gy, gx)


def test_letterbox_pads_and_masks():
    g = to_grid(_sample(40, 80, 0, 0), 32, "letterbox")
    assert g.mask.sum() == 32 * 16 and g.mask[8:24].all() and not g.mask[:8].any()
    assert g.image[:, :8].max() == 0


def test_collate_pads_fixations(mit1003_dir):
    from train.saliency.layouts import open_source

    ds = GridDataset(open_source(mit1003_dir), [0, 1, 2], 16, "letterbox")
    batch = collate([ds[0], ds[1]])
    assert batch["image"].shape == (2, 3, 16, 16)
    assert batch["fixations"].shape == (2, 3, 2)
    assert batch["fix_valid"].tolist() == [[True, True, True], [True, True, False]]
