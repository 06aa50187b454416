"""Test-session plumbing: the DeepSpeed op-build folder belongs to this checkout, and test modules collect together."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_torch_extensions_default_to_a_folder_of_this_checkout():
    env = {k: v for k, v in os.environ.items() if k != "TORCH_EXTENSIONS_DIR"}
    code = "import conftest, os; print(os.environ['TORCH_EXTENSIONS_DIR'])"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO / "tests", env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert Path(out.stdout.strip()) == REPO / ".torch_extensions"


def test_test_modules_have_unique_basenames():
    # The test folders are not packages (pytest's default import mode): two test_x.py files anywhere under tests/
    # make the whole `make test` collection fail, while running either folder alone passes.
    names = [p.name for p in (REPO / "tests").rglob("test_*.py")]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
