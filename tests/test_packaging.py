"""What `pip install .` gives: ranges not pins, every import declared, extras that say so when
missing, console scripts, and the shipped configs outside the checkout (a built wheel)."""

from __future__ import annotations

import ast
import importlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path
from types import SimpleNamespace

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from trajkit.cli import entry_point

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OWN = {"trajkit", "generator", "extractors", "train"}
SHIPPED = ("trajkit", "generator", "extractors", "train")


def requirements() -> dict[str, list[Requirement]]:
    """Core dependencies under "", each extra under its name."""
    groups = {"": PYPROJECT["dependencies"], **PYPROJECT["optional-dependencies"]}
    return {k: [Requirement(r) for r in v] for k, v in groups.items()}


def constraints() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = [x.split("==") for x in lines if x.strip() and not x.startswith("#")]
    return {canonicalize_name(name): version for name, version in pins}


def test_dependencies_are_ranges_and_the_tested_versions_fit_them():
    pinned = constraints()
    for group, reqs in requirements().items():
        for req in reqs:
            assert not any(s.operator in ("==", "===") for s in req.specifier), (
                f"{req} is an exact pin in {group or 'dependencies'}"
            )
            name = canonicalize_name(req.name)
            if name == canonicalize_name(PYPROJECT["name"]):
                continue
            assert name in pinned, f"{req.name}: no tested version in constraints.txt"
            assert req.specifier.contains(pinned[name], prereleases=True), (
                f"constraints.txt has {req.name}=={pinned[name]}, outside {req}"
            )


def imported_modules(package: Path) -> dict[str, str]:
    """Top-level module of every absolute import under ``package`` -> one file importing it."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared():
    declared = {canonicalize_name(r.name) for reqs in requirements().values() for r in reqs}
    owners = packages_distributions()
    undeclared = []
    for package in SHIPPED:
        for module, where in imported_modules(ROOT / package).items():
            if module in OWN or module in sys.stdlib_module_names:
                continue
            dists = {canonicalize_name(d) for d in owners.get(module, [module])}
            if not dists & declared:
                undeclared.append(f"{module} ({where})")
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def blocked(module: str, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where importing ``module`` fails, as when absent."""
    prelude = f"import sys; sys.modules[{module!r}] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_h5py_only_the_hdf5_layout_asks_for_the_extra(tmp_path):
    (tmp_path / "h5").mkdir()
    (tmp_path / "h5" / "stimuli.hdf5").write_bytes(b"")
    (tmp_path / "h5" / "fixations.hdf5").write_bytes(b"")
    code = (
        "from train.saliency.synthetic import write_synthetic\n"
        "from train.saliency.verify import main\n"
        f"write_synthetic({str(tmp_path / 'img')!r}, 4)\n"
        f"print('images', main([{str(tmp_path / 'img')!r}, '--quiet']))\n"
        f"sys.exit(main([{str(tmp_path / 'h5')!r}]))\n"
    )
    proc = blocked("h5py", code)
    assert "images 0" in proc.stdout, proc.stderr
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert "pip install 'trajectory-suite[hdf5]'" in proc.stderr


def test_without_dask_its_backend_names_the_extra(monkeypatch):
    from generator.pipeline.backends import BackendError, open_backend

    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    request = SimpleNamespace(backend="dask", scheduler="tcp://127.0.0.1:1", workers=1)
    with pytest.raises(BackendError, match=re.escape("pip install 'trajectory-suite[dask]'")):
        with open_backend(request):
            pass


def test_every_console_script_is_an_entry_point_run():
    """Each script runs what ``python -m`` runs: ``trajkit.cli.entry_point(main)``, so a stop
    at its exit is one line there too."""
    scripts = PYPROJECT["scripts"]
    assert all(name == "trajgen" or name.startswith("trajgen-") for name in scripts)
    for name, target in scripts.items():
        module, func = target.split(":")
        run = getattr(importlib.import_module(module), func)
        assert func == "run" and run.func is entry_point(run.args[0]).func, name
    modules = {t.split(":")[0].removesuffix(".__main__") for t in scripts.values()}
    runnable = {  # every `python -m` entry point of the shipped packages
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__main__")
        for package in SHIPPED
        for p in (ROOT / package).rglob("*.py")
        if 'if __name__ == "__main__"' in p.read_text() or p.name == "__main__.py"
    }
    runnable.discard("train.jepa")  # its __main__ runs train.jepa.train, which has a script
    runnable.discard("generator.preview")  # also `trajgen preview`
    assert runnable <= modules, f"no console script for {sorted(runnable - modules)}"


def build_wheel(tmp_path: Path) -> Path:
    """Build from a copy of the sources, so nothing (build/, *.egg-info) lands in the checkout."""
    src = tmp_path / "src"
    src.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in SHIPPED:
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("trajectory_suite-*.whl")
    return wheel


def throwaway_venv(where: Path, wheel: Path) -> Path:
    """A venv that sees this interpreter's installed dependencies (a .pth file), with the
    wheel installed into it alone; returns its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    shared = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    Path(site, "shared-dependencies.pth").write_text("\n".join(sorted(shared)) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(python),
         "install", "--no-deps", "--ignore-installed", "--no-index", "-q", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return where / "bin"


def test_the_wheel_alone_generates_trains_and_plans_saliency(tmp_path):
    wheel = build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/")[0] for name in archive.namelist() if ".dist-info/" not in name}
        shipped = [n for n in archive.namelist() if n.startswith("trajkit/configs/")]
    assert top == set(SHIPPED)  # no generic top-level name (configs) to clash with others'
    assert len(shipped) == len(list((ROOT / "configs").glob("*/*.yaml"))) > 0
    bin_dir = throwaway_venv(tmp_path / "venv", wheel)
    work = tmp_path / "elsewhere"  # no checkout here or above
    work.mkdir()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path),
        "OMP_NUM_THREADS": "1",
        "MPLCONFIGDIR": str(tmp_path / "mpl"),
    }

    def run(*argv: str) -> str:
        proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{argv}: {proc.stderr[-2000:]}"
        return proc.stdout

    where = run("python", "-c", "import trajkit.presets as p; print(p.CONFIG_ROOT)").strip()
    assert Path(where).is_relative_to(tmp_path / "venv"), where
    (work / "small.yaml").write_text("image_size: 32\nframes: 8\n")
    run(
        "trajgen", "--n", "48", "--out", "ds", "--workers", "1", "--config", "small.yaml", "--quiet"
    )
    run("trajgen", "validate", "ds")
    out = run("trajgen-train", "--extractor", "i3d", "--data", "ds", "--epochs", "1",
              "--out", "run", "--workers", "0", "--threads", "1")  # fmt: skip
    assert "val accuracy" in out and (work / "run" / "results.json").is_file()
    run("trajgen-saliency-synthetic", "sal", "--n", "8")
    out = run("trajgen-saliency-parallel", "--data", "sal", "--out", "runs", "--launcher", "slurm")
    assert "sbatch not found" in out
    for variant in ("baseline", "entropy_reg"):  # the shipped default configs, found in the wheel
        script = (work / "runs" / "slurm" / f"{variant}.sbatch").read_text()
        assert str(Path(where) / "saliency" / f"{variant}.yaml") in script
    assert "i3d" in run("trajgen-extractors", "list", "i3d", "--preset", "tiny")


def test_a_shipped_config_is_found_by_name_from_any_folder(in_tmp_path):
    from train.jepa.config import load_config as jepa_config
    from train.saliency.config import ConfigError, load_config
    from train.trajectory.config import TrainConfigError, build_config

    assert jepa_config("cifar10") == jepa_config(ROOT / "configs" / "jepa" / "cifar10.yaml")
    assert load_config("baseline_tiny").name == "baseline_tiny"
    values = {"extractor": "i3d", "data": "d", "out": "o", "epochs": 1}
    assert (
        build_config(values, "base").lr == build_config(values, ROOT / "configs/train/base.yaml").lr
    )
    with pytest.raises(
        ConfigError, match=r"'nope' is neither a file nor a shipped saliency config \(baseline,"
    ):
        load_config("nope")
    with pytest.raises(TrainConfigError, match="neither a file nor a shipped train config"):
        build_config(values, "tiny.yml")
