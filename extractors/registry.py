"""The extractor registry: one way to name, configure and build a clip encoder.

Contract every extractor keeps (the multi-view model and the trainer rely on it):

* **Input**: one camera's clip, float ``(B, 3, T, H, W)``. T=32, H=W=64 in the
  datasets, but any T >= 8 and H, W >= 16 must work (tests use 8x32x32).
* **Output**: ``forward`` returns the embedding ``(B, D)``; the module has an
  ``int`` attribute ``embed_dim == D``.
* **Auxiliary loss** (optional): an extractor with a self-supervised objective
  (MagVIT's LFQ entropy/commitment and reconstruction terms) defines
  ``aux_loss() -> torch.Tensor | None``, returning the weighted scalar of its
  *last* forward call, already scaled by the extractor's own loss weights, or
  ``None`` when that forward computed none (eval mode). The caller adds it to
  its loss unchanged: ``loss = task_loss + out["aux_loss"]``.
  :class:`extractors.multiview.MultiViewModel` does the lookup and puts the
  value in its output dict under ``"aux_loss"`` only when it is not ``None``.
  It may be negative (the entropy term rewards codebook usage). Parameters
  that only the auxiliary objective trains (MagVIT's quantiser projection and
  decoder) get no gradient if it is left out, which DistributedDataParallel
  reports as unused parameters.

Registering::

    @register_extractor("mine", description="one line", config=MineConfig)
    def build_mine(config: MineConfig) -> nn.Module: ...

``MineConfig`` subclasses :class:`extractors.config.ExtractorConfig` and
defines presets ``tiny`` and ``base``. A duplicate name raises
:class:`DuplicateExtractorError`; an unknown one :class:`UnknownExtractorError`
with the known names, on one line.

Third-party extractors are found through the ``importlib.metadata`` entry-point
group ``trajectory_extractors``: an entry point named after the extractor whose
value is the module (or an object in it) that runs ``@register_extractor`` when
imported, e.g. in the plugin's ``pyproject.toml``::

    [project.entry-points.trajectory_extractors]
    mine = "mine_package.extractor"

Plugins load once, on the first lookup (:func:`create_extractor`,
:func:`get_extractor`, :func:`list_extractors`). A plugin that fails to import
gives a :class:`PluginLoadWarning` and is skipped: one broken package does not
take the built-in extractors down with it. Python shows such a warning as one line,
``warning: extractor plugin ...``. A plugin that imports but breaks the contract
(its factory or forward raises, a wrong output shape, a bad ``embed_dim``) is
found by :func:`check_contract`, cheaply enough for ``python -m extractors list``.
"""

from __future__ import annotations

import difflib
import re
import sys
import warnings
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, TypeVar

import torch
from torch import nn

from extractors.config import PRESET_NAMES, ExtractorConfig
from trajkit.cli import first_line, one_line, short_repr

ENTRY_POINT_GROUP = "trajectory_extractors"

BUILT_IN_MODULES = (
    "extractors.i3d",
    "extractors.magvit",
    "extractors.slowfast",
    "extractors.transformer",
)

CONTRACT_INPUT = (2, 3, 8, 16, 16)
"""The clip batch :func:`check_contract` runs: the smallest clip the contract allows, two of
them, so a forward that loses or mixes up the batch shows."""

_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_\-]*")  # fullmatch: "$" let a final newline through

Factory = TypeVar("Factory", bound=Callable[..., nn.Module])


class UnknownExtractorError(KeyError, ValueError):
    """No extractor of that name. A KeyError for lookups, a ValueError for CLIs."""

    def __str__(self) -> str:  # KeyError would print the repr of its message
        return str(self.args[0]) if self.args else ""


class DuplicateExtractorError(ValueError):
    """An extractor name is registered twice."""


class ExtractorContractError(ValueError):
    """An extractor that cannot be built or run, or whose output or ``embed_dim`` is not as
    the contract says."""


class PluginLoadWarning(UserWarning):
    """A ``trajectory_extractors`` entry point could not be loaded."""


def _format_plugin_warning(message, category, filename, lineno, line=None) -> str:
    """A :class:`PluginLoadWarning` as one line, ``warning: ...``: Python's format adds this
    module's file and line and the source line of the lookup, which say nothing to whoever
    installed the plugin. Other warnings keep their format."""
    if issubclass(category, PluginLoadWarning):
        return f"warning: {one_line(message)}\n"
    return _python_formatwarning(message, category, filename, lineno, line)


_python_formatwarning = warnings.formatwarning
warnings.formatwarning = _format_plugin_warning


@dataclass(frozen=True)
class ExtractorEntry:
    """What the registry knows about one extractor."""

    name: str
    factory: Callable[[ExtractorConfig], nn.Module]
    config_cls: type[ExtractorConfig]
    description: str
    module: str

    def make_config(self, preset: str = "tiny", **overrides: Any) -> ExtractorConfig:
        return self.config_cls.from_preset(preset, **overrides)


_REGISTRY: dict[str, ExtractorEntry] = {}
_plugins_loaded = False
_seen_entry_points: set[tuple[str, str]] = set()


def register_extractor(
    name: str, *, description: str, config: type[ExtractorConfig]
) -> Callable[[Factory], Factory]:
    """Decorator registering ``factory(config) -> nn.Module`` under ``name``."""
    if not (isinstance(name, str) and _NAME_PATTERN.fullmatch(name)):
        raise ValueError(f"extractor name {name!r} must be lower case letters, digits, '_' or '-'")
    if not (isinstance(config, type) and issubclass(config, ExtractorConfig)):
        raise TypeError(f"extractor {name!r}: config must subclass ExtractorConfig")
    missing = [p for p in PRESET_NAMES if p not in config.presets]
    if missing:
        raise ValueError(f"extractor {name!r}: config {config.__name__} lacks presets {missing}")
    description = " ".join(description.split())
    if not description:
        raise ValueError(f"extractor {name!r}: description must not be empty")

    def decorate(factory: Factory) -> Factory:
        if name in _REGISTRY:
            previous = _REGISTRY[name].module
            raise DuplicateExtractorError(
                f"extractor {name!r} is already registered (by {previous}); choose another name"
            )
        _REGISTRY[name] = ExtractorEntry(
            name=name,
            factory=factory,
            config_cls=config,
            description=description,
            module=getattr(factory, "__module__", "?"),
        )
        return factory

    return decorate


def load_plugins(*, force: bool = False) -> None:
    """Import every ``trajectory_extractors`` entry point (once per process).

    ``force`` scans again, e.g. after a distribution was added to ``sys.path``.
    """
    global _plugins_loaded
    if _plugins_loaded and not force:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if (ep.name, ep.value) in _seen_entry_points:
            continue
        _seen_entry_points.add((ep.name, ep.value))
        if ep.name in _REGISTRY:
            warnings.warn(
                f"extractor plugin {ep.name!r} ({ep.value}) skipped: the name is "
                f"already registered by {_REGISTRY[ep.name].module}",
                PluginLoadWarning,
                stacklevel=2,
            )
            continue
        try:
            with redirect_stdout(sys.stderr):  # a print there went into `list`'s table
                ep.load()
        except (Exception, SystemExit) as exc:  # a broken plugin must not break the registry
            warnings.warn(
                f"extractor plugin {ep.name!r} ({ep.value}) failed to load: "
                f"{type(exc).__name__}: {exc}",
                PluginLoadWarning,
                stacklevel=2,
            )
            continue
        if ep.name not in _REGISTRY:
            warnings.warn(
                f"extractor plugin {ep.name!r} ({ep.value}) loaded but registered "
                f"no extractor named {ep.name!r}",
                PluginLoadWarning,
                stacklevel=2,
            )


def get_extractor(name: str) -> ExtractorEntry:
    """The registry entry for ``name``; :class:`UnknownExtractorError` if none."""
    load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = sorted(_REGISTRY)
        by_case = {k.lower(): k for k in known}  # "I3D" is as close to i3d as can be
        close = difflib.get_close_matches(str(name).lower(), list(by_case), n=1)
        hint = f"; did you mean {by_case[close[0]]!r}?" if close else ""
        raise UnknownExtractorError(
            f"unknown extractor {name!r}; known: {', '.join(known) or 'none'}{hint}"
        ) from None


def list_extractors() -> list[str]:
    """Registered names, sorted, plugins included."""
    load_plugins()
    return sorted(_REGISTRY)


def create_extractor(name: str, preset: str = "tiny", **overrides: Any) -> nn.Module:
    """Build extractor ``name`` from ``preset`` with config ``overrides`` on top.

    The returned module keeps its validated config as ``extractor_config`` and
    its registry name as ``extractor_name``.
    """
    entry = get_extractor(name)
    config = entry.make_config(preset, **overrides)
    model = entry.factory(config)
    _check_embed_dim(entry, model)
    model.extractor_name = name
    model.extractor_config = config
    return model


def check_contract(
    name: str, preset: str = "tiny", clips: tuple[int, ...] = CONTRACT_INPUT, **overrides: Any
) -> None:
    """Build extractor ``name`` on the CPU and run one forward on zeros of shape ``clips``
    (``(B, C, T, H, W)``, by default :data:`CONTRACT_INPUT`): a plugin that breaks the
    contract is :class:`ExtractorContractError`, one line naming it, here rather than a
    traceback mid-training. A bad ``preset`` or ``overrides`` is still
    :class:`~extractors.config.ExtractorConfigError`, an unknown name
    :class:`UnknownExtractorError`. At ``tiny`` a built-in takes 0.04-0.3 s."""
    entry = get_extractor(name)
    config = entry.make_config(preset, **overrides)
    # One thread: a forward this small gains nothing from more, and on a busy 2-core machine
    # two threads waiting on each other took 1-6 s per built-in where one took 0.04-0.3 s.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # a real forward, whatever the caller's default device; the caller's random numbers
        # untouched (a resumed run restores its generator's state before anything draws)
        with torch.device("cpu"), torch.random.fork_rng(devices=[]):
            model = _built(entry, config)
            embed_dim = _check_embed_dim(entry, model)
            out = _forward(entry, model, clips)
    finally:
        torch.set_num_threads(threads)
    expected = (clips[0], embed_dim)
    if not isinstance(out, torch.Tensor):
        raise _broken(entry, f"forward returned a {type(out).__name__}, not a tensor")
    if tuple(out.shape) != expected:
        raise _broken(
            entry,
            f"forward on a {_shape(clips)} clip returned {_shape(out.shape)}, not "
            f"{_shape(expected)} (batch, embed_dim)",
        )


def _built(entry: ExtractorEntry, config: ExtractorConfig) -> nn.Module:
    try:
        return entry.factory(config)
    except (Exception, SystemExit) as exc:  # anything a third party's factory raises
        raise _broken(entry, f"building it raised {_described(exc)}") from exc


def _forward(entry: ExtractorEntry, model: nn.Module, clips: tuple[int, ...]) -> object:
    model.eval()
    try:
        with torch.no_grad():
            return model(torch.zeros(clips))
    except (Exception, SystemExit) as exc:
        shown = _shape(clips)
        raise _broken(entry, f"its forward on a {shown} clip raised {_described(exc)}") from exc


def _check_embed_dim(entry: ExtractorEntry, model: nn.Module) -> int:
    embed_dim = getattr(model, "embed_dim", None)
    if not isinstance(embed_dim, int) or isinstance(embed_dim, bool) or embed_dim <= 0:
        got = short_repr(embed_dim)
        raise _broken(entry, f"its module must set a positive int 'embed_dim', got {got}")
    return embed_dim


def _broken(entry: ExtractorEntry, what: str) -> ExtractorContractError:
    return ExtractorContractError(
        one_line(f"extractor {entry.name!r} ({entry.module}) breaks the contract: {what}")
    )


def _described(exc: BaseException) -> str:
    return first_line(f"{type(exc).__name__}: {exc}")


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


# The built-in extractors register themselves on import, so importing the registry gives them
# before any plugin can take their names. By name, as plugins are: each imports this module.
for _module in BUILT_IN_MODULES:
    import_module(_module)
