"""End-to-end: `open_r1/sft.py` with the tiny UniRL recipe, 2 processes under DeepSpeed ZeRO-3 (gloo), end-to-end mode."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import janus
from data_tools.jsonl import write_jsonl
from data_tools.make_unirl_prompts import build_rows

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    extensions = Path(os.environ.get("TORCH_EXTENSIONS_DIR", REPO / ".torch_extensions"))
    extensions.mkdir(parents=True, exist_ok=True)
    for lock in extensions.glob("*/lock"):  # a killed JIT build leaves a lock that hangs every later run
        lock.unlink()
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TORCH_EXTENSIONS_DIR": str(extensions),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }


@pytest.mark.slow
def test_two_process_zero3_sft_saves_a_loadable_checkpoint(tiny_janus_path, tmp_path):
    rows = tmp_path / "rows.jsonl"
    write_jsonl(rows, [r.to_dict() for r in build_rows(8, seed=0)])
    out = tmp_path / "run"
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port())),
        *(str(REPO / "open_r1" / "sft.py"), "--config", str(REPO / "configs" / "recipes" / "unirl_sft_tiny_cpu.yaml")),
        *("--deepspeed", str(REPO / "configs" / "zero3.json"), "--model_name_or_path", str(tiny_janus_path)),
        *("--pair_data_path", str(rows), "--output_dir", str(out), "--max_steps", "2", "--save_steps", "2"),
        *("--end_to_end", "true"),
    ]
    result = subprocess.run(command, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=480)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "image_nll" in r] == [1, 2]  # the rejection-sampled image NLL ran
    assert "**UniRL**" in (out / "README.md").read_text()  # the model card names the method

    model, _ = janus.load_pretrained(out, dtype=torch.float32)
    initial, _ = janus.load_pretrained(tiny_janus_path, dtype=torch.float32)
    trained, start = dict(model.named_parameters()), dict(initial.named_parameters())
    assert all(p.shape == start[n].shape for n, p in trained.items())  # gathered weights, not ZeRO-3 shards
    changed = {n for n, p in trained.items() if not p.equal(start[n])}
    assert any(n.startswith("model.generation_head.") for n in changed)  # end-to-end reached the image head
    assert not any(n.startswith(("model.vision_model.", "model.vqmodel.")) for n in changed)  # frozen
