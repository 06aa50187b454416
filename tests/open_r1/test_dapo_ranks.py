"""The dapo normaliser across 2 real processes (torchrun, gloo, CPU, ZeRO-3 config) whose ranks count different
answer tokens, with a generation batch serving 2 optimizer steps of 2 accumulated micro-batches (issue 25 §1):
each counted token of an optimizer step weighs 1 / (the step's tokens on both ranks)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pairgrpo_helpers import write_pairs
from test_zero3 import _env, _free_port

WORKER = Path(__file__).with_name("dapo_worker.py")


@pytest.fixture(scope="module")
def rank_results(tiny_janus_path, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("dapo_ranks")
    pairs = write_pairs(out / "data", num_pairs=16)  # 2 ranks x 2 pairs x 4 micro-batches per generation batch
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port"]
    command += [str(_free_port()), str(WORKER), str(tiny_janus_path), pairs, str(out)]
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
def test_each_token_weighs_one_over_the_step_tokens_of_both_ranks(rank_results):
    understand = [r["understand"] for r in rank_results]
    assert understand[0]["rank_step_tokens"] * 4 == understand[1]["rank_step_tokens"]  # 2 vs 8 tokens per answer
    for task in ("understand", "generate"):
        both = sum(r[task]["rank_step_tokens"] for r in rank_results)
        for rank, result in enumerate(rank_results):
            counts = result[task]
            assert counts["step_tokens"] == both, (task, rank)
            # Rank loss = sum / (step tokens / 2), and the 2 ranks' gradients are averaged: 1 / step tokens each.
            wanted = counts["weight"] * 2 / both
            assert counts["token_weights"] == pytest.approx([wanted] * counts["micro_tokens"], rel=1e-4), (task, rank)
            assert counts["uncounted_grad_max"] == 0.0, (task, rank)


@pytest.mark.slow
def test_rank_averaged_gradient_is_the_gradient_of_the_step_objective(rank_results):
    # The objective written out in the worker: both ranks' counted tokens of -A * ratio, / the step's tokens.
    for result in rank_results:
        assert result["grad_rel_err"] < 1e-4
