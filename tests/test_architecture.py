"""The layering of docs/architecture.md holds and ``make lint`` would notice if it broke.

The contracts live in pyproject.toml ([tool.importlinter]); these tests run the real checker on
a copy of the tree with one bad import planted, so a contract that cannot fail is caught too.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("trajkit", "generator", "extractors", "train")
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / "pyproject.toml", copy)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return copy


def test_the_contracts_hold_today(tree):
    result = _lint(tree)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "module, planted, contract",
    [
        # a wrong-way import: the format reaching up into the pipeline
        ("generator/dataformat/layout.py", "import generator.pipeline.generate", "generator:"),
        # the renderer and the format must not know each other
        ("generator/render/arith.py", "import generator.dataformat.layout", "generator:"),
        # shared infrastructure importing a product package
        ("trajkit/files.py", "import generator.config", "packages:"),
        # the S3 store reaching up into pull
        ("trajkit/s3sync/store.py", "import trajkit.s3sync.download", "s3sync:"),
        # JEPA depending on the trajectory trainer
        ("train/jepa/masks.py", "import train.trajectory.inputs", "JEPA and saliency"),
        # a cycle between two sibling modules of one layer
        (
            "generator/dataformat/layout.py",
            "import generator.dataformat.sources",
            "no import cycles",
        ),
    ],
)
def test_a_planted_bad_import_breaks_lint(tree, module, planted, contract):
    path = tree / module
    original = path.read_text()
    try:
        path.write_text(original + f"\n{planted}  # noqa\n")
        result = _lint(tree)
    finally:
        path.write_text(original)
    assert result.returncode == 1
    broken = result.stdout.split("Broken contracts")[-1]
    assert contract in broken, result.stdout[-3000:]


def test_no_private_name_is_imported_from_another_module():
    """``from a.b import _x`` ties a caller to another module's internals (as convert once took
    ``_positive`` from the generator's entry point)."""
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    if node.module.split(".")[0] not in PACKAGES:
                        continue
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    if private:
                        offenders.append(f"{path.relative_to(ROOT)}: {node.module}.{private}")
    assert not offenders, offenders


def test_no_function_is_defined_twice():
    """A function copied into a second module drifts from the first one; the second place
    imports it instead (``renderer_of`` was in both the renderer and the dataset format)."""
    places: dict[tuple[str, str], list[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.FunctionDef):
                    body = node.body[1:] if ast.get_docstring(node) else node.body
                    code = ast.dump(ast.Module(body=body, type_ignores=[]))
                    places.setdefault((node.name, code), []).append(str(path.relative_to(ROOT)))
    copied = {name: paths for (name, _), paths in places.items() if len(paths) > 1}
    assert not copied, copied
