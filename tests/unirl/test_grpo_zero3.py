"""End-to-end: UniRL GRPO (`open_r1/grpo.py`, tiny UniRL recipe) under 2-process DeepSpeed ZeRO-3 (gloo), on self
rows mixed with a PairUG pair, so ranks may hold different row kinds while the image judge runs on every rank."""

import json
import sys
from pathlib import Path

import pytest
import torch
from test_sft_zero3 import _env, _free_port

import janus
from data_tools.make_unirl_prompts import build_rows

REPO = Path(__file__).resolve().parents[2]
QUESTION = "What colour is the square?\nA. red\nB. blue\nC. green\nD. yellow\n"


def _write_rows(folder: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (32, 32), "red").save(folder / "red.png")
    pair = {"similarity": 0.5, "pair_type": "retrieved",
            "generate_ann": {"image_path": "red.png", "prompt": "a red square", "question": QUESTION, "answer": "A"},
            "understand_ann": {"image_path": "red.png", "question": QUESTION, "answer": "A"}}  # fmt: skip
    path = folder / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [pair, *(r.to_dict() for r in build_rows(7, seed=0))]))
    return path


@pytest.mark.slow
def test_two_process_zero3_unirl_grpo_saves_a_loadable_checkpoint(tiny_janus_path, tmp_path):
    import subprocess

    out = tmp_path / "run"
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port())),
        *(str(REPO / "open_r1" / "grpo.py"), "--config", str(REPO / "configs" / "recipes" / "unirl_tiny_cpu.yaml")),
        *("--deepspeed", str(REPO / "configs" / "zero3.json"), "--model_name_or_path", str(tiny_janus_path)),
        *("--pair_data_path", str(_write_rows(tmp_path)), "--output_dir", str(out)),
        *("--max_steps", "2", "--save_steps", "2", "--reward_funcs", "accuracy", "unirl_image", "self_check"),
        # A random tiny model answers no letter right (correctness rewards are all 0): demo_color gives the image
        # groups a spread, so a gradient flows and the saved weights must differ.
        *("demo_color", "--reward_weights", "1.0", "1.0", "1.0", "1.0"),
    ]
    result = subprocess.run(command, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=480)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "generate/reward_mean" in r]
    assert [r["step"] for r in steps] == [1, 2] and all("timing/generate_judge" in r for r in steps)
    assert all(r["understand/sampling_logp_abs_diff"] < 1e-4 for r in steps)  # same inputs at rollout and loss
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()
    assert "**UniRL**" in (out / "README.md").read_text()  # method: unirl names the method in the model card

    model, _ = janus.load_pretrained(out, dtype=torch.float32)
    initial, _ = janus.load_pretrained(tiny_janus_path, dtype=torch.float32)
    trained, start = dict(model.named_parameters()), dict(initial.named_parameters())
    assert all(p.shape == start[n].shape for n, p in trained.items())  # gathered weights, not ZeRO-3 shards
    changed = {n for n, p in trained.items() if not p.equal(start[n])}
    assert any(n.startswith("model.language_model.") for n in changed)
    assert not any(n.startswith(("model.vision_model.", "model.vqmodel.")) for n in changed)  # frozen
