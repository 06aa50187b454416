"""Helpers of the entry point open_r1/grpo.py: DeepSpeed detection, weight dtype, resume resolution."""

from types import SimpleNamespace

import pytest
import torch

from open_r1.grpo import resume_checkpoint
from open_r1.runtime import model_dtype, uses_deepspeed


def test_uses_deepspeed_reads_argv_and_yaml(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("deepspeed: configs/zero3.json\n")
    plain = tmp_path / "p.yaml"
    plain.write_text("learning_rate: 1.0e-6\n")
    assert uses_deepspeed(["--deepspeed", "configs/zero3.json"])
    assert uses_deepspeed(["--deepspeed=configs/zero3.json"])
    assert uses_deepspeed(["--config", str(recipe)])
    assert not uses_deepspeed(["--config", str(plain), "--bf16", "false"])


@pytest.mark.parametrize(
    ("deepspeed", "bf16", "dtype", "expected"),
    [
        (None, True, "auto", torch.float32),  # no DeepSpeed: fp32 weights + autocast, 1e-6 updates survive
        ("configs/zero3.json", False, "bfloat16", torch.float32),  # CPU demo: fp32
        ("configs/zero3.json", True, "auto", None),  # stored dtype; DeepSpeed keeps fp32 master weights
        ("configs/zero3.json", True, "bfloat16", torch.bfloat16),
    ],
)
def test_model_dtype(deepspeed, bf16, dtype, expected):
    args = SimpleNamespace(deepspeed=deepspeed, bf16=bf16, fp16=False)
    assert model_dtype(dtype, args) == expected


def test_resume_checkpoint_resolves_last(tmp_path):
    def args(value):
        return SimpleNamespace(resume_from_checkpoint=value, output_dir=str(tmp_path))

    assert resume_checkpoint(args(None)) is None and resume_checkpoint(args("false")) is None
    assert resume_checkpoint(args("true")) is None  # nothing saved yet: start fresh (with a warning)
    for step in (3, 12):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "checkpoint_complete.json").write_text("{}")
    assert resume_checkpoint(args("last")) == str(tmp_path / "checkpoint-12")
    assert resume_checkpoint(args(str(tmp_path / "checkpoint-3"))) == str(tmp_path / "checkpoint-3")
