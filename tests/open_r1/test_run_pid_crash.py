"""run.pid does not outlive a run that dies of an exception (issue 25: it was left with dead PIDs)."""

import subprocess
import sys
from pathlib import Path

from open_r1.run_dir import PID_FILE, remove_pid_file

REPO = Path(__file__).resolve().parents[2]
CRASHING_RUN = """
import sys
from types import SimpleNamespace
from open_r1.run_dir import RunDirCallback
args = SimpleNamespace(should_save=True, output_dir=sys.argv[1])
RunDirCallback().on_train_begin(args, SimpleNamespace(), None)
raise RuntimeError("a step failed")
"""


def test_run_pid_is_removed_when_training_dies_of_an_exception(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, str(tmp_path)], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 1 and "a step failed" in done.stderr
    assert not (tmp_path / PID_FILE).exists()


def test_a_newer_runs_pid_file_is_left_alone(tmp_path):
    path = tmp_path / PID_FILE
    path.write_text("4242\n")  # another run started in the folder since
    remove_pid_file(path, "1234\n")
    assert path.read_text() == "4242\n"
    remove_pid_file(path, "4242\n")
    assert not path.exists()
