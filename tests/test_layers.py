"""The layers hold: import-linter's contracts (pyproject.toml) pass, and an upward import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=120
    )


def _copy(tmp_path: Path) -> Path:
    for name in ("workflows", "service"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_its_layers(tmp_path):
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_engine_importing_the_programme_breaks_the_layers(tmp_path):
    tree = _copy(tmp_path)
    (tree / "workflows" / "engine" / "leak.py").write_text("from workflows.programme import org  # noqa\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "workflows layers: deadlines -> programme -> engine BROKEN" in result.stdout
    assert "workflows.engine.leak -> workflows.programme.org" in result.stdout


def test_programme_importing_deadlines_breaks_the_layers(tmp_path):
    tree = _copy(tmp_path)
    (tree / "workflows" / "programme" / "leak.py").write_text(
        "from workflows.deadlines import notify  # noqa\n"
    )
    result = _lint(tree)
    assert result.returncode != 0
    assert "workflows.programme.leak -> workflows.deadlines.notify" in result.stdout


def test_workflows_importing_flask_breaks_the_contract(tmp_path):
    tree = _copy(tmp_path)
    (tree / "workflows" / "engine" / "leak.py").write_text("import flask  # noqa\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "workflows never imports Flask BROKEN" in result.stdout
