"""Settings files: every config of the project is a YAML mapping read here, so a missing,
binary, broken or non-mapping file is the same one-line error everywhere."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml

from trajkit.cli import first_line


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping: YAML keeps the
    last silently, so the line a researcher edited could be the one ignored."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        lines: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # "<<" may be overridden, as YAML says
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                first = lines.get(key)
            except TypeError:  # an unhashable key: the base class refuses it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    problem=f"key {key!r} is given twice (lines {first} and {line})",
                    problem_mark=key_node.start_mark,
                )
            lines[key] = line
        return super().construct_mapping(node, deep)


def read_yaml_mapping(path: str | Path, error: type[Exception] = ValueError) -> dict:
    """The settings in a YAML file (empty file: none); any failure is one-line ``error``."""
    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the read forever
            raise error(f"config {path} is not a regular file")
        text = path.read_text()
    except OSError as e:
        raise error(f"cannot read config {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise error(f"config {path} is not UTF-8 text") from None
    try:
        raw = yaml.load(text, Loader=_Loader) or {}
    except yaml.YAMLError as e:
        raise error(f"config {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise error(f"config {path} is nested too deeply to read") from None
    except ValueError as e:  # a value YAML's types cannot hold: a 5,000-digit int, month 13
        raise error(f"config {path} is not valid YAML: {first_line(e)}") from None
    if not isinstance(raw, dict):
        raise error(f"config {path} must be a YAML mapping of settings")
    return raw


def read_settings(path: str | Path, error: type[Exception], hint: str) -> dict:
    """``read_yaml_mapping`` of a ``--config`` file, refusing one that holds no settings (an
    emptied hard.yaml made an easy dataset); ``hint`` says what to give instead."""
    raw = read_yaml_mapping(path, error)
    if not raw:
        raise error(f"config {path} holds no settings: {hint}")
    return raw
