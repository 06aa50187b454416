"""open_r1.logs: exact-message warning filters, warn_once on the main process (also under torchrun, 2 processes)."""

import logging
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch.distributed as dist
from transformers import LlamaConfig, LlamaForCausalLM, TrainingArguments

from open_r1.logs import KNOWN_HARMLESS_WARNINGS, KnownWarning, filter_known_warnings, warn_once

REPO = Path(__file__).resolve().parents[2]


def _shown(*emit) -> list[str]:
    """Messages that get through `filter_known_warnings` (everything else set to always show)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filter_known_warnings()
        for message, category in emit:
            warnings.warn(message, category, stacklevel=1)
    return [str(w.message) for w in caught]


def test_only_the_listed_messages_are_filtered():
    listed = [(w.message, w.category) for w in KNOWN_HARMLESS_WARNINGS]
    assert _shown(*listed) == []
    first = KNOWN_HARMLESS_WARNINGS[0].message
    new = [
        (first + " Also: your gradients are NaN.", FutureWarning),  # longer text: not the known warning
        (first, UserWarning),  # same text, other category
        ("`torch.distributed.all_gather_into_tensor` is broken.", FutureWarning),
        ("a brand-new deprecation", FutureWarning),
    ]
    assert _shown(*new) == [message for message, _ in new]


def test_listed_messages_match_the_installed_libraries():
    # The exact text is the contract: a pinned-version bump that rewords a warning must show up here.
    assert dist.all_gather_into_tensor.__deprecated__ == KNOWN_HARMLESS_WARNINGS[0].message
    assert dist.reduce_scatter_tensor.__deprecated__ == KNOWN_HARMLESS_WARNINGS[1].message
    # What TRL 1.16 triggers in transformers 5.23: the config default, and the old names around every rollout.
    model = LlamaForCausalLM(LlamaConfig(vocab_size=16, hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                                         num_attention_heads=1, num_key_value_heads=1))  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TrainingArguments(output_dir="unused", gradient_checkpointing=True)
        model.gradient_checkpointing_enable()
        assert model.is_gradient_checkpointing
        model.gradient_checkpointing_disable()
    texts = {str(w.message) for w in caught if issubclass(w.category, FutureWarning)}
    assert texts == {w.message for w in KNOWN_HARMLESS_WARNINGS[2:]}


def test_filter_accepts_a_custom_list():
    custom = (KnownWarning(UserWarning, "noise (harmless)", "test"),)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filter_known_warnings(custom)
        warnings.warn("noise (harmless)", UserWarning, stacklevel=1)  # regex characters are matched literally
        warnings.warn("noise (harmless) and more", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["noise (harmless) and more"]


def test_warn_once_per_key_and_main_process_only(caplog, monkeypatch):
    logger = logging.getLogger("open_r1.test_logs")
    monkeypatch.setenv("RANK", "0")
    with caplog.at_level(logging.WARNING):
        assert warn_once(logger, ("constant", "understand"), "constant %s", "understand")
        assert not warn_once(logger, ("constant", "understand"), "constant %s", "understand")
        assert warn_once(logger, ("constant", "generate"), "constant %s", "generate")
        monkeypatch.setenv("RANK", "1")
        assert not warn_once(logger, "replica key", "from a replica")
        assert warn_once(logger, "replica key 2", "every rank", main_process_only=False)
    assert caplog.messages == ["constant understand", "constant generate", "every rank"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(mode: str, out: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port"]
    command += [str(free_port()), str(REPO / "tests/open_r1/runlog_worker.py"), mode, str(out)]
    return subprocess.Popen(command, env=env, text=True, **kwargs)


@pytest.mark.slow
def test_two_processes_log_once(tmp_path):
    """Under torchrun: one project warning and one progress line (not two), no torch deprecation, new warnings kept."""
    proc = torchrun("logs", tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    assert output.count("project warning at step 1") == 1 and "project warning at step 2" not in output
    assert output.count("step 1/2 | reward generate 0.25 | loss 0.5 | grad_norm 1") == 1
    assert "all_gather_into_tensor" not in output
    assert output.count("FutureWarning: an unlisted third-party warning") == 2
    # The run ended, so its PIDs are dead: run.pid is removed at exit rather than left listing them (issue 25).
    assert not (tmp_path / "run.pid").exists()
