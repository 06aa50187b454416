"""The original Lumina-DiMOO layout loads into LlamaForCausalLM + VQModel, writes back tensor for tensor, and bad
folders fail with errors that name the file and the fix."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import LlamaForCausalLM

from lumina_dimoo.checkpoint import (
    INDEX_NAME,
    llama_to_original_key,
    load_pretrained,
    original_to_llama_key,
    read_original_weights,
    save_original,
)
from lumina_dimoo.tiny import original_param_shapes, tiny_llada_config


def test_key_maps_are_inverse_and_cover_every_original_tensor():
    names = original_param_shapes(tiny_llada_config())
    mapped = {original_to_llama_key(k) for k in names}
    assert None not in mapped and len(mapped) == len(names)
    assert {llama_to_original_key(k) for k in mapped} == set(names)
    assert original_to_llama_key("model.transformer.blocks.1.ff_out.weight") == "model.layers.1.mlp.down_proj.weight"
    assert original_to_llama_key("model.transformer.ff_out.weight") == "lm_head.weight"


def test_loads_into_llama_with_config_read_from_the_checkpoint(tiny_dimoo):
    model, tokenizer = tiny_dimoo
    assert isinstance(model, LlamaForCausalLM)
    c = model.config
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == (64, 2, 4, 128)
    assert c.vocab_size == 134548 and not c.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    assert model.vqvae.config.num_vq_embeddings == 8192
    assert tokenizer.convert_tokens_to_ids(["<uncondition>", "<answer>", "<|mdm_mask|>"]) == [126351, 126354, 126336]


def test_save_round_trip_is_bit_exact(tiny_dimoo, tiny_dimoo_path, tmp_path):
    model, tokenizer = tiny_dimoo
    out = save_original(model, tokenizer, tmp_path / "saved")
    assert (out / "model.safetensors").read_bytes() == (tiny_dimoo_path / "model.safetensors").read_bytes()
    assert json.loads((out / "config.json").read_text()) == json.loads((tiny_dimoo_path / "config.json").read_text())
    vq_new, vq_old = (load_file(p / "vqvae" / "diffusion_pytorch_model.safetensors") for p in (out, tiny_dimoo_path))
    assert vq_new.keys() == vq_old.keys() and all(torch.equal(vq_new[k], vq_old[k]) for k in vq_old)
    reloaded, _ = load_pretrained(out)
    ids = torch.tensor([[126342, 70, 126343, 126354, 126336, 126355]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, model(ids).logits, rtol=0, atol=0)


def test_sharded_save_reads_back_and_a_given_state_dict_wins(tiny_dimoo, tmp_path):
    model, tokenizer = tiny_dimoo
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["lm_head.weight"] += 1.0  # what ZeRO-3's gathered weights would carry after an update
    out = save_original(model, tokenizer, tmp_path / "sharded", state_dict=state, max_shard_bytes=2**20)
    assert len(json.loads((out / INDEX_NAME).read_text())["weight_map"]) == len(
        original_param_shapes(tiny_llada_config())
    )
    weights = read_original_weights(out)
    torch.testing.assert_close(weights["model.transformer.ff_out.weight"], state["lm_head.weight"], rtol=0, atol=0)
    save_original(model, tokenizer, out)  # overwriting an existing folder replaces it
    assert not (out / INDEX_NAME).exists()


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_truncated_weights_name_the_file(tiny_dimoo_path, tmp_path):
    folder = _copy(tiny_dimoo_path, tmp_path / "truncated")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"model\.safetensors: not a readable safetensors file.*re-download"):
        load_pretrained(folder)


def test_wrong_config_and_missing_files_name_the_fix(tiny_dimoo_path, tmp_path):
    folder = _copy(tiny_dimoo_path, tmp_path / "wrong")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"d_model": 32}))
    with pytest.raises(ValueError, match=r"wrong: the weights do not match config.json.*wrong shapes"):
        load_pretrained(folder)
    (folder / "config.json").write_text(json.dumps(config | {"block_type": "sequential"}))
    with pytest.raises(ValueError, match=r"block_type='sequential' is not supported"):
        load_pretrained(folder)
    (folder / "config.json").write_text(json.dumps(config | {"model_type": "llama"}))
    with pytest.raises(ValueError, match=r"model_type='llama'.*'llada'"):
        load_pretrained(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config.json: line 1: not valid JSON"):
        load_pretrained(folder)
    (folder / "config.json").write_text(json.dumps(config))
    shutil.rmtree(folder / "vqvae")
    with pytest.raises(ValueError, match=r"vqvae/config.json not found"):
        load_pretrained(folder)


def test_foreign_tensors_are_refused(tiny_dimoo_path, tmp_path):
    folder = _copy(tiny_dimoo_path, tmp_path / "foreign")
    weights = load_file(folder / "model.safetensors") | {"model.transformer.blocks.0.q_norm.weight": torch.ones(64)}
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match=r"1 tensors are not part of a LLaDA/Lumina-DiMOO model.*q_norm"):
        load_pretrained(folder)
