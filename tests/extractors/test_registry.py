"""Registry lookups and errors, plugin discovery through entry points, config validation, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from extractors import registry
from extractors.__main__ import main as cli_main
from extractors.config import ExtractorConfig, ExtractorConfigError
from extractors.cost import extractor_cost
from extractors.registry import (
    DuplicateExtractorError,
    ExtractorContractError,
    UnknownExtractorError,
    check_contract,
    create_extractor,
    get_extractor,
    list_extractors,
    register_extractor,
)


class ToyConfig(ExtractorConfig):
    presets = {"tiny": {"embed_dim": 4}, "base": {"embed_dim": 8}}


class Toy(nn.Module):
    def __init__(self, config: ToyConfig) -> None:
        super().__init__()
        self.embed_dim = config.embed_dim
        self.linear = nn.Linear(3, config.embed_dim)

    def forward(self, x):
        return self.linear(x.mean(dim=(2, 3, 4)))


@pytest.fixture
def clean_registry(monkeypatch):
    """Register freely inside a test; the registry is restored afterwards."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_seen_entry_points", set(registry._seen_entry_points))
    monkeypatch.setattr(registry, "_plugins_loaded", registry._plugins_loaded)


def test_unknown_name_lists_known_ones_on_one_line():
    with pytest.raises(UnknownExtractorError) as info:
        create_extractor("i3dd")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("unknown extractor 'i3dd'; known: ")
    for name in ("i3d", "magvit", "slowfast", "transformer"):
        assert name in message
    assert "did you mean 'i3d'?" in message
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("name, meant", [("I3D", "i3d"), ("SlowFast", "slowfast")])
def test_a_name_in_other_case_is_suggested_as_registered(name, meant):
    """difflib compares case: "I3D" got no suggestion at all."""
    with pytest.raises(UnknownExtractorError, match=f"did you mean '{meant}'"):
        create_extractor(name)


def test_duplicate_name_is_an_error(clean_registry):
    with pytest.raises(DuplicateExtractorError, match="'i3d' is already registered"):
        register_extractor("i3d", description="again", config=ToyConfig)(Toy)


def test_register_then_create_with_presets_and_overrides(clean_registry):
    register_extractor("toy", description="a toy", config=ToyConfig)(Toy)
    assert "toy" in list_extractors()
    assert create_extractor("toy").embed_dim == 4
    assert create_extractor("toy", "base").embed_dim == 8
    model = create_extractor("toy", "base", embed_dim=5)
    assert model.embed_dim == 5
    assert model.extractor_name == "toy" and model.extractor_config.embed_dim == 5
    assert get_extractor("toy").description == "a toy"


def test_registration_needs_presets_and_a_good_name(clean_registry):
    class NoBase(ExtractorConfig):
        presets = {"tiny": {"embed_dim": 4}}

    with pytest.raises(ValueError, match=r"lacks presets \['base'\]"):
        register_extractor("nobase", description="x", config=NoBase)
    with pytest.raises(ValueError, match="lower case"):
        register_extractor("Bad Name", description="x", config=ToyConfig)


@pytest.mark.parametrize("name", ["evil\n", "evil\r\n", "Bad Name", "", "9lives", "ünï", 3])
def test_a_bad_name_is_refused_in_one_line(clean_registry, name):
    """``re.match`` with ``$`` let "evil\\n" through: a run folder named with a newline."""
    with pytest.raises(ValueError, match="lower case") as info:
        register_extractor(name, description="x", config=ToyConfig)
    assert "\n" not in str(info.value)
    assert name not in registry._REGISTRY


def test_factory_without_embed_dim_is_rejected(clean_registry):
    register_extractor("noembed", description="x", config=ToyConfig)(lambda config: nn.Identity())
    with pytest.raises(ExtractorContractError, match="'embed_dim'"):
        create_extractor("noembed")


@pytest.mark.parametrize(
    ("name", "overrides", "field"),
    [
        ("i3d", {"stem_dim_out": -1}, "stem_dim_out"),
        ("i3d", {"model_depth": 34}, "model_depth"),
        ("slowfast", {"alpha": 0}, "alpha"),
        ("slowfast", {"slow_stem_dim_out": 10, "beta_inv": 4}, "beta_inv"),
        ("transformer", {"embed_dim": 96, "num_heads": 5}, "num_heads"),
        ("transformer", {"tubelet": (4, 8)}, "tubelet"),
        ("transformer", {"stem": "conv", "tubelet": (3, 8, 8)}, "tubelet"),
        ("transformer", {"stem": "resnet"}, "stem"),
        ("magvit", {"latent_dim": 0}, "latent_dim"),
        ("magvit", {"temporal_downsample": (True, True)}, "temporal_downsample"),
        ("magvit", {"no_such_field": 1}, "no_such_field"),
    ],
)
def test_bad_config_value_names_the_field(name, overrides, field):
    with pytest.raises(ExtractorConfigError) as info:
        create_extractor(name, **overrides)
    message = str(info.value)
    assert field in message and "\n" not in message, message


def test_a_huge_bad_value_is_shown_short():
    """A YAML alias bomb (a million items through ten-way aliases) made a 5 MB error line."""
    import yaml

    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [
        f"{q}: &{q} [{', '.join(['*' + p] * 10)}]" for p, q in zip("abcde", "bcdef", strict=True)
    ]
    bomb = yaml.safe_load("\n".join(lines))["f"]  # 10**6 strings, shared
    with pytest.raises(ExtractorConfigError) as info:
        create_extractor("i3d", embed_dim=bomb)
    message = str(info.value)
    assert "embed_dim" in message and len(message) < 1000, len(message)


def test_unknown_preset_is_named():
    with pytest.raises(ExtractorConfigError, match="unknown preset 'huge'.*base, tiny"):
        create_extractor("i3d", "huge")


def test_config_accepts_lists_from_yaml():
    model = create_extractor("transformer", tubelet=[4, 8, 8])
    assert model.extractor_config.tubelet == (4, 8, 8)


PLUGIN_MODULE = """
from torch import nn
from extractors import ExtractorConfig, register_extractor

class MeanConfig(ExtractorConfig):
    presets = {"tiny": {"embed_dim": 3}, "base": {"embed_dim": 3}}

class MeanColour(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embed_dim = config.embed_dim
        self.scale = nn.Parameter(nn.init.ones_(__import__("torch").empty(3)))

    def forward(self, x):
        return x.mean(dim=(2, 3, 4)) * self.scale

@register_extractor("meancolour", description="mean colour of the clip", config=MeanConfig)
def build(config):
    return MeanColour(config)
"""


def _install_plugin(root: Path, dist: str, module: str, entry_points: str, source: str) -> None:
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    (root / f"{module}.py").write_text(source)


def test_plugin_distribution_is_discovered(tmp_path, monkeypatch, clean_registry):
    _install_plugin(
        tmp_path,
        "traj_meancolour",
        "traj_meancolour_ext",
        """
        [trajectory_extractors]
        meancolour = traj_meancolour_ext
        """,
        PLUGIN_MODULE,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "traj_meancolour_ext", raising=False)
    monkeypatch.setattr(registry, "_plugins_loaded", False)  # as in a fresh process

    assert "meancolour" in list_extractors()
    model = create_extractor("meancolour")
    assert model.embed_dim == 3
    assert get_extractor("meancolour").module == "traj_meancolour_ext"


def test_a_plugin_printing_as_it_loads_prints_on_stderr(
    tmp_path, monkeypatch, clean_registry, capsys
):
    """Its line went into ``extractors list``'s table on stdout, which parsers read."""
    _install_plugin(
        tmp_path,
        "traj_chatty",
        "traj_chatty_ext",
        """
        [trajectory_extractors]
        meancolour = traj_chatty_ext
        """,
        "print('chatty plugin loaded')\n" + PLUGIN_MODULE,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "traj_chatty_ext", raising=False)
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    assert "meancolour" in list_extractors()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "chatty plugin loaded\n"


@pytest.mark.parametrize(
    "source, said",
    [
        ("raise ImportError('missing dependency')\n", "ImportError: missing dependency"),
        ("import sys\nsys.exit(3)\n", "SystemExit: 3"),  # it ended the caller (extractors list)
    ],
)
def test_broken_plugin_warns_and_the_rest_still_works(
    tmp_path, monkeypatch, clean_registry, source, said
):
    _install_plugin(
        tmp_path,
        "traj_broken",
        "traj_broken_ext",
        """
        [trajectory_extractors]
        broken = traj_broken_ext
        i3d = traj_broken_ext
        """,
        source,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "traj_broken_ext", raising=False)
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    with pytest.warns(registry.PluginLoadWarning) as caught:
        names = list_extractors()
    messages = [str(w.message) for w in caught]
    assert any("'broken'" in m and said in m for m in messages), messages
    assert any("'i3d'" in m and "already registered" in m for m in messages), messages
    assert "i3d" in names and "broken" not in names


def test_a_plugin_naming_its_extractor_with_a_newline_is_one_warning(
    tmp_path, monkeypatch, clean_registry
):
    _install_plugin(
        tmp_path,
        "traj_evil",
        "traj_evil_ext",
        """
        [trajectory_extractors]
        evil = traj_evil_ext
        """,
        PLUGIN_MODULE.replace('"meancolour"', '"evil\\n"'),
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "traj_evil_ext", raising=False)
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    with pytest.warns(registry.PluginLoadWarning) as caught:
        names = list_extractors()
    (message,) = [str(w.message) for w in caught]
    assert "'evil' (traj_evil_ext) failed to load: ValueError: extractor name 'evil\\n'" in message
    assert not [name for name in names if "evil" in name]


def test_cli_list_shows_every_extractor_and_preset(capsys):
    assert cli_main(["list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["name", "preset", "params", "MACs/clip", "description"]
    for name in list_extractors():
        row = next(line for line in lines if line.startswith(name + " "))
        assert get_extractor(name).description in row
        assert row.split()[1] == "tiny"
    assert sum(line.split()[0] == "base" for line in lines[1:] if line.strip()) == len(
        list_extractors()
    )
    assert "3x32x64x64" in lines[-1]


def test_cli_unknown_name_exits_2_said_as_argparse_says_its_errors(capsys):
    assert cli_main(["list", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m extractors list: error: unknown extractor 'nope'; known: ")
    assert err.count("\n") == 1


def test_cli_names_and_presets_given_twice_are_shown_once(capsys):
    assert cli_main(["list", "i3d", "i3d", "--preset", "tiny", "--preset", "tiny"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[1:-1]] == [["i3d", "tiny"]], lines
    assert lines[-1].count("tiny") == 1, lines[-1]


class Changed(Toy):
    """A Toy whose output is passed through ``change``."""

    def __init__(self, config: ToyConfig, change) -> None:
        super().__init__(config)
        self.change = change

    def forward(self, x):
        return self.change(super().forward(x))


def with_embed_dim(value):
    def build(config: ToyConfig) -> nn.Module:
        model = Toy(config)
        model.embed_dim = value
        return model

    return build


def factory_fails(config: ToyConfig) -> nn.Module:
    raise KeyError("factory fails")


def exits(y):
    sys.exit(3)


def refuses(y):
    raise ValueError("forward\nrefuses")


@pytest.mark.parametrize(
    ("factory", "said"),
    [
        (
            lambda c: Changed(c, lambda y: torch.cat([y, y], dim=1)),
            "forward on a 2x3x8x16x16 clip returned 2x8, not 2x4 (batch, embed_dim)",
        ),
        (
            lambda c: Changed(c, lambda y: y[:, :, None]),
            "returned 2x4x1, not 2x4 (batch, embed_dim)",
        ),
        (lambda c: Changed(c, lambda y: y[:1]), "returned 1x4, not 2x4 (batch, embed_dim)"),
        (lambda c: Changed(c, lambda y: (y, y)), "forward returned a tuple, not a tensor"),
        (with_embed_dim("4"), "its module must set a positive int 'embed_dim', got '4'"),
        (with_embed_dim(0), "'embed_dim', got 0"),
        (with_embed_dim(True), "'embed_dim', got True"),
        (with_embed_dim(None), "'embed_dim', got None"),
        (with_embed_dim([0] * 10**6), "'embed_dim', got [0, 0, 0, 0, 0, 0, ...]"),  # not 3 MB
        (factory_fails, "building it raised KeyError: 'factory fails'"),
        (
            lambda c: Changed(c, refuses),
            "its forward on a 2x3x8x16x16 clip raised ValueError: forward",
        ),
        (lambda c: Changed(c, exits), "its forward on a 2x3x8x16x16 clip raised SystemExit: 3"),
    ],
)
def test_an_extractor_that_breaks_the_contract_is_one_line_naming_it(clean_registry, factory, said):
    register_extractor("broken", description="x", config=ToyConfig)(factory)
    with pytest.raises(ExtractorContractError) as info:
        check_contract("broken")
    message = str(info.value)
    assert message.startswith(f"extractor 'broken' ({__name__}) breaks the contract: "), message
    assert message.endswith(said) and "\n" not in message, message


class CountsThreads(Toy):
    """Notes the torch threads its forward runs on."""

    seen: list[int] = []

    def forward(self, x):
        self.seen.append(torch.get_num_threads())
        return super().forward(x)


def test_extractors_that_keep_the_contract_pass(clean_registry):
    """On one thread (two were 1-6 s per built-in on a busy machine), then the caller's again;
    on the CPU, whatever the caller's default device."""
    register_extractor("counter", description="x", config=ToyConfig)(CountsThreads)
    torch.set_num_threads(2)  # the conftest's one thread is restored after the test
    with torch.device("meta"):
        for name in list_extractors():
            check_contract(name)
    check_contract("counter", "base", embed_dim=6)
    assert CountsThreads.seen == [1, 1]
    assert torch.get_num_threads() == 2


def test_a_bad_option_is_a_config_error_not_a_broken_contract():
    with pytest.raises(ExtractorConfigError, match="stem_dim_out"):
        check_contract("i3d", stem_dim_out=-1)
    with pytest.raises(UnknownExtractorError):
        check_contract("i3dd")


class Parameterless(nn.Module):
    """A fixed projection, no weights: it has MACs but no parameters."""

    embed_dim = 3

    def __init__(self, config: ToyConfig) -> None:
        super().__init__()

    def forward(self, x):
        return x.mean(dim=(2, 3, 4)) @ torch.eye(3)


def test_a_parameter_free_extractor_is_measured(clean_registry):
    register_extractor("fixed", description="no weights", config=ToyConfig)(Parameterless)
    assert extractor_cost("fixed", "tiny") == (0, 9)  # a 3 x 3 matrix product


class ReadsValues(Toy):
    """Keeps the contract, but reads a value, which a tensor on the meta device has none of."""

    def forward(self, x):
        return super().forward(x) * float(x.abs().max() + 1)


def test_cli_an_extractor_that_cannot_be_measured_is_one_warning_and_the_rest_print(
    clean_registry, capsys
):
    register_extractor("reader", description="reads values", config=ToyConfig)(ReadsValues)
    assert cli_main(["list", "reader", "i3d"]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        f"warning: extractor 'reader' ({__name__}) could not be measured at tiny, base: "
        "RuntimeError: Tensor.item() cannot be called on meta tensors\n"
    )
    rows = [line.split()[:4] for line in captured.out.splitlines()[1:5]]
    assert rows == [
        ["reader", "tiny", "?", "?"],
        ["base", "?", "?"],
        ["i3d", "tiny", "446.81k", "22.66M"],
        ["base", "28.11M", "9.29G"],
    ]


def test_cli_an_extractor_that_breaks_the_contract_is_one_warning_and_the_rest_print(
    clean_registry, capsys
):
    """Its row looked normal, and python -m train then failed with a traceback."""
    register_extractor("wide", description="too wide", config=ToyConfig)(
        lambda config: Changed(config, lambda y: torch.cat([y, y], dim=1))
    )
    assert cli_main(["list", "wide", "i3d", "--preset", "tiny"]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        f"warning: extractor 'wide' ({__name__}) breaks the contract: forward on a "
        "2x3x8x16x16 clip returned 2x8, not 2x4 (batch, embed_dim)\n"
    )
    rows = [line.split()[:4] for line in captured.out.splitlines()[1:3]]
    assert rows == [["wide", "tiny", "?", "?"], ["i3d", "tiny", "446.81k", "22.66M"]]


def test_cli_plugin_problems_are_one_line_each(tmp_path):
    """In a process of its own, as a user sees it: Python's own format took two lines a
    warning (this module's file and line, then the source line of the lookup)."""
    _install_plugin(
        tmp_path,
        "traj_hostile",
        "traj_hostile_ext",
        """
        [trajectory_extractors]
        broken = traj_hostile_missing
        boom = traj_hostile_ext
        """,
        PLUGIN_MODULE.replace("meancolour", "boom").replace(
            "return x.mean(dim=(2, 3, 4)) * self.scale", "raise ValueError('forward exploded')"
        ),
    )
    done = subprocess.run(
        [sys.executable, "-m", "extractors", "list", "boom", "i3d", "--preset", "tiny"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "warning: extractor plugin 'broken' (traj_hostile_missing) failed to load: "
        "ModuleNotFoundError: No module named 'traj_hostile_missing'",
        "warning: extractor 'boom' (traj_hostile_ext) breaks the contract: its forward on a "
        "2x3x8x16x16 clip raised ValueError: forward exploded",
    ]
    assert [line.split()[:4] for line in done.stdout.splitlines()[1:3]] == [
        ["boom", "tiny", "?", "?"],
        ["i3d", "tiny", "446.81k", "22.66M"],
    ]


def test_cli_module_loads_no_torch_before_it_can_be_stopped():
    """``python -m extractors`` imports the package first: torch there, Ctrl-C was a traceback."""
    code = "import sys, extractors.__main__; print('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert done.stdout.strip() == "False", done.stderr


def test_cli_a_stop_while_a_plugin_loads_is_one_line_exit_130(tmp_path):
    """It was a KeyboardInterrupt traceback: the plugin marks its import, then hangs."""
    started = tmp_path / "plugin-importing"
    _install_plugin(
        tmp_path,
        "traj_slow",
        "traj_slow_ext",
        """
        [trajectory_extractors]
        slow = traj_slow_ext
        """,
        f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\ntime.sleep(600)\n",
    )
    lister = subprocess.Popen(
        [sys.executable, "-m", "extractors", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    try:
        deadline = time.monotonic() + 300  # torch loads first: seconds on a busy machine
        while not started.exists():
            assert lister.poll() is None, lister.communicate()
            assert time.monotonic() < deadline, "the plugin was never imported"
            time.sleep(0.1)
        lister.send_signal(signal.SIGINT)
        out, err = lister.communicate(timeout=60)
    finally:
        if lister.poll() is None:
            lister.kill()
            lister.communicate()
    assert (lister.returncode, err.splitlines(), out) == (
        130,
        ["interrupted: listing reads only; nothing was changed"],
        "",
    )


def test_the_readme_recipe_for_a_new_extractor_runs_as_written(clean_registry):
    """A new user copies it: an earlier recipe ("a pydantic model with tiny and base presets")
    could not work as written (a plain model refuses an unannotated ``presets``)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    after = readme[readme.index("Add your own: a factory") :]
    block = after[after.index("```python\n") + len("```python\n") : after.index("\n```\n")]
    namespace: dict = {"__name__": "readme_recipe"}
    exec(compile(block, "README.md", "exec"), namespace)
    check_contract("meanpool")
    check_contract("meanpool", "base")
    model = create_extractor("meanpool", "base")
    assert model.embed_dim == 256
    assert model(torch.zeros(2, 3, 8, 16, 16)).shape == (2, 256)
