"""Settings files: every config of the project is a YAML mapping read here, so a missing,
binary, broken or non-mapping file is the same one-line error everywhere."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml


def read_yaml_mapping(path: str | Path, error: type[Exception] = ValueError) -> dict:
    """The settings in a YAML file (empty file: none); any failure is one-line ``error``."""
    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the read forever
            raise error(f"config {path} is not a regular file")
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise error(f"cannot read config {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise error(f"config {path} is not UTF-8 text") from None
    except yaml.YAMLError as e:
        raise error(f"config {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise error(f"config {path} must be a YAML mapping of settings")
    return raw
