"""Show-o original-layout loading: round trip bit for bit, clear errors for wrong or damaged folders."""

import json

import pytest
import torch
from safetensors.torch import load_file

from showo.checkpoint import WEIGHTS_NAME, load_pretrained, save_original
from showo.tiny import build_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "showo")


def test_export_is_bit_exact_and_reloads(tiny, tmp_path):
    model, tokenizer, vocab = load_pretrained(tiny)
    save_original(model, tokenizer, tmp_path / "out")
    for rel in (WEIGHTS_NAME, f"magvitv2/{WEIGHTS_NAME}"):
        before, after = load_file(tiny / rel), load_file(tmp_path / "out" / rel)
        assert before.keys() == after.keys() and all(k.startswith("showo.") for k in before if "/" not in rel)
        assert all(torch.equal(before[k], after[k]) and before[k].dtype == after[k].dtype for k in before)
    assert json.loads((tmp_path / "out/config.json").read_text()) == json.loads((tiny / "config.json").read_text())
    again, _, vocab2 = load_pretrained(tmp_path / "out")
    assert vocab2 == vocab and vocab.mask_id == vocab.vocab_size - 1 == model.config.showo["mask_token_id"]
    ids = torch.tensor([[vocab.bos_id, 5, 6, vocab.mask_id]])
    torch.testing.assert_close(again(ids).logits, model(ids).logits, rtol=0, atol=0)


def test_qk_layernorm_weights_are_used(tiny):
    model, _, _ = load_pretrained(tiny)
    assert model.showo.config.qk_layernorm and hasattr(model.showo.model.layers[0].self_attn, "q_layernorm")
    ids = torch.tensor([[1, 2, 3]])
    before = model(ids).logits
    with torch.no_grad():
        model.showo.model.layers[0].self_attn.q_layernorm.weight.mul_(3)
    assert not torch.allclose(model(ids).logits, before)


def test_truncated_weights_name_the_file(tiny, tmp_path):
    bad = tmp_path / "bad"
    import shutil

    shutil.copytree(tiny, bad)
    data = (bad / WEIGHTS_NAME).read_bytes()
    (bad / WEIGHTS_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or damaged"):
        load_pretrained(bad)


def test_wrong_config_and_missing_phi_folder(tiny, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny, bad)
    raw = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps(raw | {"vocab_size": raw["vocab_size"] + 1}))
    with pytest.raises(ValueError, match="vocab_size"):
        load_pretrained(bad)
    (bad / "config.json").write_text(json.dumps(raw | {"_class_name": "Other"}))
    with pytest.raises(ValueError, match="not a Show-o config"):
        load_pretrained(bad)
    (bad / "config.json").write_text(json.dumps(raw | {"llm_model_path": "microsoft/phi-1_5"}))
    shutil.rmtree(bad / "phi")
    with pytest.raises(ValueError, match="llm_model_path='microsoft/phi-1_5'.*phi-1_5"):
        load_pretrained(bad)


def test_weights_of_another_config_are_rejected(tiny, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny, bad)
    phi = json.loads((bad / "phi/config.json").read_text())
    (bad / "phi/config.json").write_text(json.dumps(phi | {"num_hidden_layers": 3}))
    with pytest.raises(ValueError, match="missing keys"):
        load_pretrained(bad)


def test_resave_replaces_the_earlier_save_and_keeps_other_files(tiny, tmp_path):
    model, tokenizer, _ = load_pretrained(tiny)
    out = tmp_path / "run"
    save_original(model, tokenizer, out)
    (out / "metrics.jsonl").write_text("{}\n")
    (out / "phi" / "left_over.txt").write_text("from an older save")
    state = model.state_dict()
    bias = "showo.lm_head.bias"
    state[bias] = state[bias] + 1.0
    save_original(model, tokenizer, out, state_dict=state)
    assert (out / "metrics.jsonl").read_text() == "{}\n" and not (out / "phi" / "left_over.txt").exists()
    assert torch.equal(load_file(out / WEIGHTS_NAME)[bias], state[bias])
    # A save that fails half way (no Phi tokenizer folder to copy) leaves the earlier one as it was.
    del model.showo_source
    with pytest.raises(ValueError, match="Phi tokenizer folder"):
        save_original(model, tokenizer, out)
    assert torch.equal(load_file(out / WEIGHTS_NAME)[bias], state[bias])
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "magvitv2", "metrics.jsonl", "phi", WEIGHTS_NAME]
