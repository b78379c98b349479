"""The multi-view model: shapes, camera identity, subsets, the aux-loss pass-through."""

from __future__ import annotations

import pytest
import torch

from extractors import MultiViewModel, build_model, create_extractor


@pytest.fixture(scope="module")
def model() -> MultiViewModel:
    torch.manual_seed(0)
    return build_model("i3d", "tiny", num_cameras=4).eval()


def test_output_shapes(model):
    with torch.no_grad():
        out = model(torch.randn(2, 4, 3, 8, 32, 32))
    assert set(out) == {"logits", "future"}
    assert out["logits"].shape == (2, 4) and out["future"].shape == (2, 3)


def test_camera_order_matters_but_ids_restore_it(model):
    """Fusion knows which camera saw what: permuting views changes the output,
    unless camera_ids are permuted along with them."""
    torch.manual_seed(1)
    video = torch.randn(2, 4, 3, 8, 32, 32)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        ref = model(video)["logits"]
        shuffled = model(video[:, perm])["logits"]
        relabelled = model(video[:, perm], camera_ids=perm)["logits"]
    assert not torch.allclose(ref, shuffled, atol=1e-5)
    torch.testing.assert_close(ref, relabelled, atol=1e-5, rtol=1e-4)


def test_camera_subset(model):
    video = torch.randn(2, 2, 3, 8, 32, 32)
    with torch.no_grad():
        out = model(video, camera_ids=torch.tensor([1, 3]))
    assert out["logits"].shape == (2, 4)


@pytest.mark.parametrize(
    ("views", "camera_ids", "match"),
    [
        (5, None, "5 views"),
        (2, torch.tensor([0, 4]), r"\[0, 4\)"),
        (2, torch.tensor([0, 1, 2]), "shape"),
        (2, torch.tensor([0.0, 1.0]), "LongTensor"),
    ],
)
def test_bad_camera_ids(views, camera_ids, match):
    model = MultiViewModel(create_extractor("transformer"), num_cameras=4)
    with pytest.raises(ValueError, match=match):
        model(torch.randn(1, views, 3, 8, 32, 32), camera_ids=camera_ids)


def test_bad_video_shape(model):
    with pytest.raises(ValueError, match=r"\(B, V, 3, T, H, W\)"):
        model(torch.randn(2, 3, 8, 32, 32))


def test_aux_loss_passes_through_when_training():
    model = build_model("magvit", "tiny", fusion_layers=2, pool="mean")
    video = torch.randn(2, 4, 3, 8, 32, 32)
    out = model(video)
    assert out["aux_loss"].dim() == 0
    model.eval()
    with torch.no_grad():
        assert "aux_loss" not in model(video)


def test_build_model_passes_overrides_to_the_extractor():
    model = build_model("transformer", "tiny", num_cameras=2, embed_dim=64, num_heads=2)
    assert model.extractor.embed_dim == 64 and model.num_cameras == 2


def test_concat_readout_gives_each_camera_its_own_slot():
    """The default heads read the cameras' tokens from fixed slots: a camera
    subset leaves the others' slots empty, and which slot a view fills is its id."""
    torch.manual_seed(0)
    model = build_model("magvit", "tiny", num_cameras=4).eval()
    assert model.pool == "concat"
    seen = {}
    model.class_head.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    video = torch.randn(1, 2, 3, 8, 32, 32)
    with torch.no_grad():
        model(video, camera_ids=torch.tensor([1, 3]))
    slots = seen["x"].view(1, 4, -1)
    assert slots[0, 0].abs().sum() == 0 and slots[0, 2].abs().sum() == 0
    assert slots[0, 1].abs().sum() > 0 and slots[0, 3].abs().sum() > 0


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_token_pooling_readouts_still_work(pool):
    model = build_model("magvit", "tiny", pool=pool).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 4, 3, 8, 32, 32))
    assert out["logits"].shape == (2, 4) and out["future"].shape == (2, 3)


@pytest.mark.parametrize("pool", ["concat", "mean"])
def test_trajectory_head_gives_steps_positions_that_train(pool):
    torch.manual_seed(0)
    model = build_model("i3d", "tiny", pool=pool, trajectory_steps=4)
    out = model(torch.randn(2, 4, 3, 8, 32, 32))
    assert set(out) == {"logits", "future", "trajectory"}
    assert out["trajectory"].shape == (2, 4, 3)
    out["trajectory"].sum().backward()
    assert all(p.grad is not None for p in model.trajectory_head.parameters())
    with pytest.raises(ValueError, match="trajectory_steps"):
        build_model("i3d", "tiny", trajectory_steps=-1)
