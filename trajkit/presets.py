"""The shipped configs, found the same way in a checkout and in an installed wheel.

``configs/`` at the top of the repository is where a user edits and copies from: a link
to ``trajkit/configs``, which the wheel installs as package data of ``trajkit`` (a
top-level ``configs`` package in site-packages would clash with any other project's),
so one lookup beside this file finds it in both cases. A config argument is either a
file or the name of a shipped one (``tiny``, ``cifar10``, ``baseline_tiny``).
"""

from __future__ import annotations

from pathlib import Path

from trajkit.cli import short_repr

CONFIG_ROOT = Path(__file__).resolve().parent / "configs"


def preset_dir(kind: str) -> Path:
    """``configs/<kind>``: ``train``, ``jepa``, ``saliency`` or ``generator``."""
    return CONFIG_ROOT / kind


def preset_names(kind: str) -> list[str]:
    return sorted(p.stem for p in preset_dir(kind).glob("*.yaml"))


def preset_file(kind: str, name: str) -> Path | None:
    """The shipped ``configs/<kind>/<name>.yaml``, or None when ``name`` is not one."""
    if not name or "/" in name or name.startswith("."):
        return None
    path = preset_dir(kind) / (name if name.endswith(".yaml") else f"{name}.yaml")
    return path if path.is_file() else None


def config_file(kind: str, value: str | Path, error: type[Exception]) -> Path:
    """A config file given as a path or as a shipped preset's name; a bare name that is
    neither is ``error`` naming the shipped ones. A bare name is the shipped config unless a
    regular file here has it (a folder or a FIFO of that name hid the preset), and anything
    spelt with a ``/`` is a path (``./hard`` normalised to ``hard``, the preset)."""
    text, path = str(value), Path(value)
    try:
        if path.is_file():
            return path
        shipped = preset_file(kind, text) if text and "/" not in text else None
        if shipped is None and text and path.exists():  # a folder, a FIFO that would block
            raise error(f"config {text!r} is not a regular file")
        if shipped is None and "/" in text:  # a path: its reader names what is wrong with it
            return path
    except OSError as e:  # a name over the filesystem's limit, a folder it may not search
        raise error(f"cannot read config {short_repr(text)}: {e.strerror or e}") from None
    if shipped is not None:
        return shipped
    known = ", ".join(preset_names(kind)) or "none"
    raise error(f"config {text!r} is neither a file nor a shipped {kind} config ({known})")
