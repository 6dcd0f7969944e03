"""A non-editable ``pip install .`` carries what a lab needs: the image sources, the topologies, ogfs.

The fast test checks that pyproject's data-files cover every file under images/ and topologies/ (a new
directory needs its line); the slow one installs into a fresh virtualenv and runs labctl from another
directory."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


def _data_files() -> dict[str, list[str]]:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return dict(tomllib.load(fh)["tool"]["setuptools"]["data-files"])


def _tree(top: str) -> set[str]:
    out = set()
    for path in (ROOT / top).rglob("*"):
        rel = path.relative_to(ROOT)
        if path.is_file() and not (CACHES & set(rel.parts)):
            out.add(rel.as_posix())
    return out


def test_data_files_cover_every_image_source_and_topology() -> None:
    covered: dict[str, str] = {}
    for dest, patterns in _data_files().items():
        for pattern in patterns:
            for match in glob.glob(str(ROOT / pattern)):
                rel = Path(match).relative_to(ROOT).as_posix()
                if Path(match).is_file():
                    covered[rel] = f"{dest}/{Path(match).name}"
    wanted = _tree("images") | {p for p in _tree("topologies") if p.endswith(".yaml")}
    missing = sorted(wanted - set(covered))
    assert not missing, f"add these to [tool.setuptools.data-files] in pyproject.toml: {missing}"
    for rel, dest in covered.items():  # installed at the same place under share/labctl/
        assert dest == "share/labctl/" + rel, (rel, dest)


@pytest.mark.slow
def test_pip_install_then_labctl_from_another_directory(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    # a copy, so the build's by-products (build/, *.egg-info) never land in the work tree
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns(*CACHES, "*.pyc", "*.egg-info")
    for name in ("labctl", "ogfs", "images", "topologies"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore, symlinks=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    res = subprocess.run([str(py), "-m", "pip", "install", "-q", str(src)], capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    shutil.rmtree(src)  # the installed labctl must not need the sources
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dropped = ("PYTHONPATH", "LABCTL_ASSETS", "LABCTL_TOPOLOGIES")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    labctl = str(venv / "bin" / "labctl")

    help_ = subprocess.run([labctl, "--help"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert help_.returncode == 0 and "labctl up two-node" in help_.stdout, help_.stderr

    out = elsewhere / "rendered"
    render = subprocess.run([labctl, "render", "two-node", "--out", str(out)], cwd=elsewhere, env=env,
                            capture_output=True, text=True)
    assert render.returncode == 0, render.stderr
    assert "hostdata=192.168.1.2" in (out / "barney" / "etc" / "ha.d" / "haresources").read_text()
    render = subprocess.run([labctl, "render", "trio", "--out", str(elsewhere / "trio")], cwd=elsewhere,
                            env=env, capture_output=True, text=True)
    assert render.returncode == 0, render.stderr

    # the image sources are found in the installation, and give the same tags as this checkout
    script = (
        "import json; from labctl.runtime import images; r = images.assets_root(); "
        "print(json.dumps([str(r), str(images.ogfs_source(r)), images.ImageSet.compute().as_dict()]))"
    )
    probe = subprocess.run([str(py), "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    root, ogfs, tags = json.loads(probe.stdout)
    assert root.startswith(str(venv)) and ogfs.startswith(str(venv)), (root, ogfs)
    init = Path(root) / "images" / "node" / "rootfs" / "usr" / "local" / "sbin" / "labctl-init"
    assert init.stat().st_mode & 0o111

    sys.path.insert(0, str(ROOT))
    try:
        from labctl.runtime.images import ImageSet

        assert tags == ImageSet.compute(ROOT).as_dict()
    finally:
        sys.path.remove(str(ROOT))
