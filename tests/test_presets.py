"""trajkit.presets.config_file: a path is a path, a bare name a shipped config."""

from __future__ import annotations

import os

import pytest

from trajkit.presets import config_file, preset_file


class Refused(ValueError):
    pass


def test_a_path_spelt_with_a_dot_is_no_shipped_name(tmp_path, monkeypatch):
    """``./hard`` normalised to ``hard``: a file missing here loaded the shipped preset."""
    monkeypatch.chdir(tmp_path)
    assert config_file("generator", "./hard", Refused) == tmp_path.joinpath("hard").relative_to(
        tmp_path
    )  # its reader then says it is missing
    assert config_file("generator", "hard", Refused) == preset_file("generator", "hard")


@pytest.mark.parametrize("kind", ["a folder", "a FIFO"])
def test_a_bare_name_is_the_shipped_config_whatever_else_has_that_name_here(
    tmp_path, monkeypatch, kind
):
    """A folder ``medium`` in the current folder hid the shipped preset ("not a regular
    file"); only a regular file of that name is taken instead of it."""
    monkeypatch.chdir(tmp_path)
    if kind == "a folder":
        (tmp_path / "medium").mkdir()
    else:
        os.mkfifo(tmp_path / "medium")
    assert config_file("generator", "medium", Refused) == preset_file("generator", "medium")
    with pytest.raises(Refused, match=r"config './medium' is not a regular file"):
        config_file("generator", "./medium", Refused)


def test_an_empty_config_is_said_to_be_empty(tmp_path, monkeypatch):
    """It was "config '.' is not a regular file"."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Refused) as caught:
        config_file("generator", "", Refused)
    assert str(caught.value).startswith("config '' is neither a file nor a shipped generator")
