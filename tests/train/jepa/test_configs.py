from pathlib import Path

import pytest

from train.jepa.config import ConfigError, load_config, parse_config
from train.jepa.masks import MultiBlockMaskCollator
from train.jepa.train import unreachable_levels

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "configs" / "jepa").glob("*.yaml"))


def test_every_promised_config_exists():
    names = {p.stem for p in CONFIGS}
    assert {"cifar10", "cifar100", "stl10", "imagenet100", "mixture", "tiny"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_validates_and_every_level_is_reachable(path):
    cfg = parse_config(load_config(path))
    assert cfg.name == path.stem
    collator = MultiBlockMaskCollator.from_config(cfg.mask, cfg.grid_size)
    assert unreachable_levels(cfg, collator) == []


def test_mixture_weights():
    cfg = parse_config(load_config(next(p for p in CONFIGS if p.stem == "mixture")))
    assert [(d.kind, d.weight) for d in cfg.data.datasets] == [
        ("imagenet100", 0.6),
        ("stl10", 0.3),
        ("cifar100", 0.1),
    ]
    assert cfg.data.sampling == "weighted"


def test_native_resolutions():
    by_name = {p.stem: parse_config(load_config(p)) for p in CONFIGS}
    assert (by_name["cifar10"].data.image_size, by_name["cifar10"].model.patch_size) == (32, 4)
    assert (by_name["stl10"].data.image_size, by_name["stl10"].model.patch_size) == (96, 8)
    assert (by_name["imagenet100"].data.image_size, by_name["imagenet100"].model.patch_size) == (
        224,
        16,
    )


def test_tiny_config_is_the_benchmarks_offline_shapes_run():
    """bench_jepa measures this config; its data must stay offline and its grid 8x8 so that the
    masks keep I-JEPA's proportions."""
    cfg = parse_config(load_config(next(p for p in CONFIGS if p.stem == "tiny")))
    (spec,) = cfg.data.datasets
    assert (spec.kind, spec.synthetic_kind) == ("synthetic", "shapes")
    assert cfg.grid_size == 8 and cfg.optim.ema_momentum[1] == 1.0


def test_benchmark_configs_are_offline_and_share_one_network():
    """bench_jepa's second set is real images that need no download, on tiny.yaml's network."""
    tiny, digits = (
        parse_config(load_config(next(p for p in CONFIGS if p.stem == name)))
        for name in ("tiny", "digits")
    )
    assert [d.kind for d in digits.data.datasets] == ["digits"]
    assert digits.model == tiny.model
    # the same optimiser and schedules; the epoch count is each set's own (see digits.yaml)
    assert digits.optim.model_copy(update={"epochs": tiny.optim.epochs}) == tiny.optim
    assert (digits.optim.epochs, tiny.optim.epochs) == (20, 30)
    assert digits.regularizer == tiny.regularizer


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_default_config_uses_the_measured_anti_collapse_terms(path):
    """VICReg variance + covariance won on every benchmark seed (train/jepa/README.md)."""
    r = parse_config(load_config(path)).regularizer
    assert (r.variance_weight, r.covariance_weight, r.sigreg_weight) == (1.0, 0.04, 0.0)


def _refusal(raw: dict) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(raw)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_levels_whose_weights_are_all_0_are_refused(tmp_path, jepa_files):
    """Before, the run trained with exit 0 on the regularizer alone."""
    raw = jepa_files.tiny_config(tmp_path, model={"levels": [{"weight": 0}, {"weight": 0}]})
    assert "model.levels: every level's weight is 0" in _refusal(raw)
    raw["model"]["levels"][1]["weight"] = 0.5  # one level learning is enough
    assert [level.weight for level in parse_config(raw).model.levels] == [0.0, 0.5]


@pytest.mark.parametrize(
    "ramp, where",
    [([-1.0, 1e308], "optim.weight_decay.0"), ([0.04, 1e308], "optim.weight_decay.1")],
)
def test_a_weight_decay_outside_0_to_1_is_refused(tmp_path, jepa_files, ramp, where):
    """Before, [-1, 1e308] trained into a NaN loss at epoch 2, advised to lower the lr."""
    message = _refusal(jepa_files.tiny_config(tmp_path, optim={"weight_decay": ramp}))
    assert f"{where}: Input should be" in message, message
    assert parse_config(jepa_files.tiny_config(tmp_path, optim={"weight_decay": [0.0, 1.0]}))


@pytest.mark.parametrize(
    "section, field", [("optim", "epochs"), ("optim", "batch_size"), ("run", "log_every")]
)
def test_a_count_given_as_true_is_refused(tmp_path, jepa_files, section, field):
    """Before, ``epochs: true`` trained one epoch."""
    message = _refusal(jepa_files.tiny_config(tmp_path, **{section: {field: True}}))
    assert f"{section}.{field}: true is not a whole number" in message, message


@pytest.mark.parametrize("text", ["o\nx", "o\x00x", "o\u2028x"])
@pytest.mark.parametrize("field", ["run.out", "data.data_path", "data.datasets.0.root"])
def test_a_path_holding_a_control_character_is_refused(tmp_path, jepa_files, field, text):
    """As --out and --data-path are: before, ``run.out`` "o\\nx" made a folder named so."""
    raw = jepa_files.tiny_config(tmp_path)
    if field == "data.datasets.0.root":
        raw["data"]["datasets"][0]["root"] = text
    else:
        section, key = field.split(".")
        raw[section][key] = text
    message = _refusal(raw)
    assert message == f"invalid config: {field}: {text!r} holds a control character", message
