"""The readouts: the trajectory readout keeps time order and where; the global one keeps neither."""

from __future__ import annotations

import pytest
import torch

from extractors import create_extractor, list_extractors
from extractors.config import ExtractorConfigError
from extractors.readout import GlobalReadout, MultiScaleReadout, TrajectoryReadout


def test_trajectory_readout_shape_for_any_length():
    readout = TrajectoryReadout(in_channels=6, steps=4, dim=5, heads=2)
    assert readout.embed_dim == 20
    for t in (1, 3, 4, 9):
        assert readout(torch.randn(2, 6, t, 3, 3)).shape == (2, 20)


def test_time_order_survives_the_trajectory_readout_but_not_the_global_one():
    torch.manual_seed(0)
    features = torch.randn(2, 6, 8, 3, 3)
    reversed_in_time = features.flip(2)
    trajectory = TrajectoryReadout(6, steps=8, dim=4).eval()
    pooled = GlobalReadout(6, 4).eval()
    with torch.no_grad():
        torch.testing.assert_close(pooled(features), pooled(reversed_in_time))
        assert not torch.allclose(trajectory(features), trajectory(reversed_in_time), atol=1e-4)


def test_soft_argmax_finds_the_hot_cell():
    """Attention scored on channel 0, which is hot in one cell per step: the
    coordinates the readout computes are that cell's (u, v) in [-1, 1]."""
    readout = TrajectoryReadout(in_channels=2, steps=2, dim=3, heads=1)
    with torch.no_grad():
        readout.score.weight.zero_()
        readout.score.weight[0, 0] = 50.0
    x = torch.zeros(1, 2, 2, 5, 5)
    x[0, 0, 0, 1, 4] = 1.0  # step 0: row 1, column 4
    x[0, 0, 1, 3, 0] = 1.0  # step 1: row 3, column 0
    captured = {}
    readout.proj.register_forward_hook(lambda m, inp, out: captured.update(x=inp[0]))
    readout(x)
    per_step = captured["x"][0]  # (steps, features + coordinates + peaks)
    coords = per_step[:, 2:4]  # after the one head's 2 pooled channels
    torch.testing.assert_close(coords[0], torch.tensor([1.0, -0.5]), atol=1e-3, rtol=0)
    torch.testing.assert_close(coords[1], torch.tensor([-1.0, 0.5]), atol=1e-3, rtol=0)


@pytest.mark.parametrize("name", ["i3d", "slowfast", "magvit"])
def test_cnn_extractors_read_an_8x8_early_map_and_the_last_one(name):
    """For the tiny presets' 32 x 32 frames the last map is small (1 x 1 for the
    ResNets); the fine readout must get a map where the ball still has a place."""
    assert name in list_extractors()
    model = create_extractor(name, "tiny").eval()
    assert isinstance(model.readout, MultiScaleReadout)
    assert model.embed_dim == model.readout.embed_dim
    shapes = {}
    for part in ("fine", "coarse"):
        getattr(model.readout, part).register_forward_hook(
            lambda m, inp, out, part=part: shapes.update({part: tuple(inp[0].shape)})
        )
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32, 32))
    assert shapes["fine"][-2:] == (8, 8), shapes
    assert shapes["coarse"][-2] <= 4, shapes


@pytest.mark.parametrize("stem", ["tubelet", "conv"])
def test_transformer_reads_its_patch_token_grid(stem):
    model = create_extractor("transformer", "tiny", stem=stem).eval()
    assert isinstance(model.readout, TrajectoryReadout)
    seen = {}
    model.readout.register_forward_hook(lambda m, inp, out: seen.update(x=tuple(inp[0].shape)))
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32, 32))
    assert seen["x"] == (1, 96, 8, 4, 4)  # (B, dim, time tubelets, 4 x 4 patches)


@pytest.mark.parametrize("name", ["i3d", "slowfast", "magvit"])
def test_global_readout_is_still_available(name):
    model = create_extractor(name, "tiny", readout="global").eval()
    assert isinstance(model.readout, GlobalReadout)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 8, 32, 32)).shape == (1, model.embed_dim)


def test_embed_dim_must_split_into_steps():
    with pytest.raises(ExtractorConfigError, match="readout_steps"):
        create_extractor("i3d", "tiny", embed_dim=250, readout_steps=8)
    with pytest.raises(ExtractorConfigError, match="readout_fine"):
        create_extractor("i3d", "tiny", embed_dim=264, readout_steps=8)  # 33 per step
    assert create_extractor("i3d", "tiny", embed_dim=264, readout_fine=False).embed_dim == 264


def test_transformer_conv_stem_is_convolutions_down_to_the_tubelet_grid():
    stem = create_extractor("transformer", "tiny", stem="conv").patch_embed
    convs = [m for m in stem if isinstance(m, torch.nn.Conv3d)]
    strides = torch.tensor([c.stride for c in convs]).prod(0).tolist()
    assert strides == [4, 8, 8] and len(convs) == 4  # 3 strided 3x3x3 layers, 1x1x1 out
    assert all(c.kernel_size == (3, 3, 3) for c in convs[:-1])
    assert convs[-1].out_channels == 96
