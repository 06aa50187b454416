"""Loading both checkpoint formats, equivalence with the original architecture, round trips and clear errors."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from accelerate import init_empty_weights
from reference_original import OriginalJanus, tiny_tables
from safetensors.torch import save_file
from transformers import JanusForConditionalGeneration
from transformers_folder import assert_transformers_folder_works

import janus
from janus.checkpoint import (
    SIGLIP_PRESETS,
    VQ16_DEFAULTS,
    CorruptCheckpointError,
    _check_keys,
    config_from_original,
    config_to_original,
    original_to_transformers_state_dict,
    read_state_dict,
    transformers_to_original_state_dict,
    verify_checkpoint_files,
)
from janus.tiny import original_param_shapes

ATOL = 1e-5


@pytest.fixture(scope="module")
def original(tiny_janus_path):
    config = json.loads((tiny_janus_path / "config.json").read_text())
    state_dict = torch.load(tiny_janus_path / "pytorch_model.bin", weights_only=True)
    return config, state_dict


@pytest.fixture(scope="module")
def reference(original):
    return OriginalJanus(*original, *tiny_tables(original[0]))


def _understanding_batch(processor):
    gen = torch.Generator().manual_seed(0)
    pixels = torch.rand(2, 3, processor.image_size, processor.image_size, generator=gen) * 2 - 1
    return processor.encode_understanding(["What color is the sky?", "How many cats?"], pixels)


def test_load_original_format_config(tiny_janus):
    model, processor = tiny_janus
    assert isinstance(model, JanusForConditionalGeneration)
    assert not model.training
    config = model.config
    assert config.vision_config.num_image_tokens == processor.num_image_tokens == 16
    assert config.vq_config.num_patches == 4  # VQ latent grid == vision patch grid (32 / 8)
    assert config.image_token_id == processor.special.image_id
    assert config.tie_word_embeddings is False
    assert model.lm_head.weight.data_ptr() != model.model.language_model.embed_tokens.weight.data_ptr()
    assert model.generation_config.pad_token_id == processor.special.pad_id
    assert set(model.janus_original_extras) >= {"gen_vision_model.quantize.codebook_used"}


def test_understanding_logits_match_original(tiny_janus, reference):
    model, processor = tiny_janus
    batch = _understanding_batch(processor)
    with torch.no_grad():
        ours = model(**vars(batch)).logits
    ref = reference.understanding_logits(
        batch.input_ids, batch.attention_mask, batch.pixel_values, processor.special.image_id
    )
    mask = batch.attention_mask.bool()
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours[mask], ref[mask], atol=ATOL, rtol=1e-4)
    assert ref[mask].std() > 0.05  # not a trivially-constant comparison


def test_generation_head_logits_match_original(tiny_janus, reference):
    model, processor = tiny_janus
    batch = processor.encode_generation(["a red apple"])
    tokens = torch.tensor([[3, 77, 120, 255]])
    with torch.no_grad():
        text = model.get_input_embeddings()(batch.input_ids)
        image = model.prepare_embeddings_for_image_generation(tokens)
        hidden = model.model.language_model(inputs_embeds=torch.cat([text, image], dim=1)).last_hidden_state
        ours = model.model.generation_head(hidden)
    ref = reference.generation_logits(batch.input_ids, tokens)
    torch.testing.assert_close(ours, ref, atol=ATOL, rtol=1e-4)


def test_vq_decode_matches_original(tiny_janus, reference):
    model, _ = tiny_janus
    tokens = torch.randint(
        0, model.config.vq_config.num_embeddings, (2, 16), generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        ours = model.model.vqmodel.decode(tokens)
    ref = reference.decode_tokens(tokens)
    assert ours.shape == (2, 3, 32, 32)
    torch.testing.assert_close(ours, ref, atol=ATOL, rtol=1e-4)
    assert ours.std() > 0.1  # the tiny VQ decoder output is not constant


def test_equivalence_check_detects_swapped_qkv(tiny_janus_path, reference):
    """The reference comparison must fail for a wrong conversion (q and k swapped in one vision block)."""
    model, processor = janus.load_pretrained(tiny_janus_path, dtype=torch.float32)
    attn = model.model.vision_model.encoder.layers[0].self_attn
    with torch.no_grad():
        q = attn.q_proj.weight.clone()
        attn.q_proj.weight.copy_(attn.k_proj.weight)
        attn.k_proj.weight.copy_(q)
    batch = _understanding_batch(processor)
    with torch.no_grad():
        ours = model(**vars(batch)).logits
    ref = reference.understanding_logits(
        batch.input_ids, batch.attention_mask, batch.pixel_values, processor.special.image_id
    )
    assert not torch.allclose(ours, ref, atol=ATOL)


def test_round_trip_original_bit_exact(tiny_janus, tiny_janus_path, tmp_path):
    model, processor = tiny_janus
    out = janus.export_original(model, processor.tokenizer, tmp_path / "orig")
    before, after = read_state_dict(tiny_janus_path), read_state_dict(out)
    assert set(before) == set(after)
    for key, tensor in before.items():
        assert after[key].dtype == tensor.dtype and torch.equal(after[key], tensor), key
    exported = json.loads((out / "config.json").read_text())
    assert exported["model_type"] == "multi_modality"
    assert exported["gen_vision_config"]["params"]["ch_mult"] == [1, 1, 2, 2]
    reloaded, reloaded_processor = janus.load_pretrained(out)
    assert reloaded_processor.special == processor.special
    assert reloaded.config.to_dict()["vision_config"] == model.config.to_dict()["vision_config"]


def test_export_original_safetensors(tiny_janus, tiny_janus_path, tmp_path):
    model, processor = tiny_janus
    out = janus.export_original(model, processor.tokenizer, tmp_path / "st", safe_serialization=True)
    assert (out / "model.safetensors").is_file() and not (out / "pytorch_model.bin").exists()
    before, after = read_state_dict(tiny_janus_path), read_state_dict(out)
    assert set(before) == set(after) and all(torch.equal(after[k], v) for k, v in before.items())


def test_tiny_checkpoint_is_deterministic_and_cli_works(tiny_janus_path, tmp_path, monkeypatch):
    import runpy

    monkeypatch.setattr("sys.argv", ["make_tiny_janus.py", "--out_dir", str(tmp_path / "cli"), "--seed", "0"])
    runpy.run_path(str(Path(__file__).parents[2] / "scripts" / "make_tiny_janus.py"), run_name="__main__")
    for name in ("config.json", "tokenizer.json", "preprocessor_config.json"):
        assert (tmp_path / "cli" / name).read_bytes() == (tiny_janus_path / name).read_bytes()
    same, reference = read_state_dict(tmp_path / "cli"), read_state_dict(tiny_janus_path)
    assert all(torch.equal(same[k], v) for k, v in reference.items())
    other = read_state_dict(janus.build_tiny_checkpoint(tmp_path / "seed1", seed=1))
    assert not torch.equal(other["gen_embed.weight"], reference["gen_embed.weight"])
    assert (tiny_janus_path / "pytorch_model.bin").stat().st_size < 10_000_000  # a few MB


def test_save_transformers_format_and_export_without_extras(tiny_janus, tiny_janus_path, tmp_path):
    model, processor = tiny_janus
    hf_dir = janus.save_pretrained(model, processor, tmp_path / "hf")
    assert json.loads((hf_dir / "config.json").read_text())["model_type"] == "janus"
    loaded, loaded_processor = janus.load_pretrained(hf_dir)
    assert loaded.config.tie_word_embeddings is False
    assert loaded_processor.special == processor.special and loaded_processor.image_size == processor.image_size
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key
    # A model with no original extras: runtime weights exact, codebook_used zeros, attn_pool omitted.
    out = janus.export_original(loaded, loaded_processor.tokenizer, tmp_path / "orig")
    before, after = read_state_dict(tiny_janus_path), read_state_dict(out)
    runtime = {k for k in before if ".attn_pool." not in k}
    assert set(after) == runtime
    assert all(torch.equal(after[k], before[k]) for k in runtime if not k.endswith("codebook_used"))
    assert not after["gen_vision_model.quantize.codebook_used"].any()


def _copy_without_weights(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("pytorch_model.bin"))
    return dst


def _write_variant(src, dst, state_dict, ext: str, sharded: bool):
    """Copy of the tiny checkpoint with its weights rewritten as .bin/.safetensors, single file or two shards."""
    folder = _copy_without_weights(src, dst)
    keys = sorted(state_dict)
    parts = {"a": keys[: len(keys) // 2], "b": keys[len(keys) // 2 :]} if sharded else {"": keys}
    single = "pytorch_model.bin" if ext == "bin" else "model.safetensors"
    weight_map = {}
    for name, part_keys in parts.items():
        file = f"model-{name}.{ext}" if sharded else single
        part = {k: state_dict[k].contiguous() for k in part_keys}
        torch.save(part, folder / file) if ext == "bin" else save_file(part, str(folder / file))
        weight_map |= dict.fromkeys(part_keys, file)
    if sharded:
        (folder / f"{single}.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


@pytest.mark.parametrize(("ext", "sharded"), [("bin", True), ("safetensors", False), ("safetensors", True)])
def test_sharded_and_safetensors_variants_load_identically(
    tiny_janus, tiny_janus_path, original, tmp_path, ext, sharded
):
    model, _ = tiny_janus
    folder = _write_variant(tiny_janus_path, tmp_path / "variant", original[1], ext, sharded)
    loaded, _ = janus.load_pretrained(folder)
    expected = model.state_dict()
    assert set(loaded.state_dict()) == set(expected)
    assert all(torch.equal(v, expected[k]) for k, v in loaded.state_dict().items())


@pytest.mark.parametrize("writer", ["export_original", "save_pretrained"])
def test_writing_over_an_older_sharded_checkpoint_never_loads_the_old_weights(
    tiny_janus, tiny_janus_path, original, tmp_path, writer
):
    """Issue 25: a new single weight file beside an older shards + index checkpoint loaded the OLD weights."""
    model, processor = tiny_janus
    stale = {k: v + 1 if v.is_floating_point() else v for k, v in original[1].items()}
    folder = _write_variant(tiny_janus_path, tmp_path / "ckpt", stale, "bin", sharded=True)
    save_file({"x": torch.zeros(1)}, str(folder / "model.safetensors"))  # a stale single file of the other format
    (folder / "notes.txt").write_text("mine")
    if writer == "export_original":
        janus.export_original(model, processor.tokenizer, folder)
    else:
        janus.save_pretrained(model, processor, folder)
    loaded, _ = janus.load_pretrained(folder)
    expected = model.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.state_dict().items())
    weights = {p.name for p in folder.iterdir() if p.suffix in (".bin", ".safetensors") or "index" in p.name}
    assert weights == {"pytorch_model.bin" if writer == "export_original" else "model.safetensors"}
    assert (folder / "notes.txt").read_text() == "mine"


def test_missing_shard_is_reported(tiny_janus_path, original, tmp_path):
    folder = _write_variant(tiny_janus_path, tmp_path / "variant", original[1], "bin", sharded=True)
    (folder / "model-b.bin").unlink()
    with pytest.raises(FileNotFoundError, match="model-b.bin"):
        janus.load_pretrained(folder)


def test_bad_paths_and_formats(tiny_janus_path, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        janus.load_pretrained(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        janus.load_pretrained(empty)
    no_weights = _copy_without_weights(tiny_janus_path, tmp_path / "no_weights")
    with pytest.raises(FileNotFoundError, match="pytorch_model.bin"):
        janus.load_pretrained(no_weights)
    wrong_type = tmp_path / "wrong_type"
    shutil.copytree(tiny_janus_path, wrong_type)
    config = json.loads((wrong_type / "config.json").read_text())
    (wrong_type / "config.json").write_text(json.dumps({**config, "model_type": "llava"}))
    with pytest.raises(ValueError, match="model_type='llava'"):
        janus.load_pretrained(wrong_type)


def test_mismatched_weights_are_reported(tiny_janus_path, original, tmp_path):
    _, state_dict = original
    folder = _copy_without_weights(tiny_janus_path, tmp_path / "bad")
    bad = dict(state_dict)
    bad["gen_embed.weight"] = torch.zeros(3, 8)
    del bad["language_model.model.norm.weight"]
    torch.save(bad, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"missing=\['model.language_model.norm.weight'\].*gen_embed|generation_emb"):
        janus.load_pretrained(folder)
    bad = dict(state_dict) | {"vision_model.vision_tower.head.weight": torch.zeros(2)}
    torch.save(bad, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match="vision_tower.head.weight"):
        janus.load_pretrained(folder)


def test_dtype_argument(tiny_janus_path):
    model, _ = janus.load_pretrained(tiny_janus_path, dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def _janus_pro_config(hidden: int, layers: int) -> dict:
    """config.json of deepseek-ai/Janus-Pro-{1B,7B} (sizes from the released checkpoints)."""
    mlp = {"cls": "MlpProjector", "params": {"depth": 2, "n_embed": hidden, "projector_type": "mlp_gelu"}}
    return {
        "model_type": "multi_modality",
        "language_config": {
            "hidden_size": hidden,
            "intermediate_size": {2048: 5632, 4096: 11008}[hidden],
            "max_position_embeddings": 16384,
            "model_type": "llama",
            "num_attention_heads": hidden // 128,
            "num_hidden_layers": layers,
            "num_key_value_heads": hidden // 128,
            "torch_dtype": "bfloat16",
            "vocab_size": 102400,
        },
        "vision_config": {
            "cls": "CLIPVisionTower",
            "params": {
                "image_size": 384,
                "model_name": "siglip_large_patch16_384",
                "select_feature": "same",
                "select_layer": -1,
            },
        },
        "aligner_config": {**mlp, "params": {**mlp["params"], "input_dim": 1024}},
        "gen_vision_config": {"cls": "VQ-16", "params": {"image_token_size": 16384, "n_embed": 8}},
        "gen_aligner_config": {**mlp, "params": {**mlp["params"], "input_dim": 8}},
        "gen_head_config": {
            "cls": "vision_head",
            "params": {"image_token_embed": hidden, "image_token_size": 16384, "n_embed": hidden},
        },
    }


def test_janus_pro_1b_layout_from_config():
    config = config_from_original(_janus_pro_config(2048, 24), {}, image_token_id=100581)
    assert config.vision_config.num_image_tokens == 576 and config.vq_config.num_patches == 24
    assert config.vision_config.hidden_size == 1024 and config.vision_config.num_hidden_layers == 24
    assert list(config.vq_config.channel_multiplier) == [1, 1, 2, 2, 4] and config.vq_config.num_embeddings == 16384
    with init_empty_weights():
        model = JanusForConditionalGeneration(config)
    # Released Janus-Pro-1B: 2,089,232,011 parameters incl. the unused SigLIP MAP pool head (width 1024, mlp 4096).
    attn_pool = 1024 + 3 * (1024 * 1024 + 1024) + (1024 * 1024 + 1024) + 2 * 1024 + 2 * 1024 * 4096 + 4096 + 1024
    assert sum(p.numel() for p in model.parameters()) + attn_pool == 2_089_232_011


def test_janus_pro_1b_original_keys_convert_onto_the_model():
    """Every original Janus-Pro-1B tensor (meta tensors, no memory) maps onto transformers' model, shapes included."""
    config = _janus_pro_config(2048, 24)
    explicit = json.loads(json.dumps(config))
    explicit["vision_config"]["params"] |= SIGLIP_PRESETS["siglip_large_patch16_384"]
    explicit["gen_vision_config"]["params"] |= VQ16_DEFAULTS
    shapes = original_param_shapes(explicit)
    assert sum(math.prod(s) for k, s in shapes.items() if not k.endswith("codebook_used")) == 2_089_232_011
    state_dict = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    converted, extras = original_to_transformers_state_dict(state_dict)
    assert {k.split(".")[2] for k in extras if "attn_pool" in k} == {"attn_pool"} and len(extras) == 14
    with init_empty_weights():
        model = JanusForConditionalGeneration(config_from_original(config, state_dict, image_token_id=100581))
    _check_keys(model, converted, Path("Janus-Pro-1B"))
    assert set(transformers_to_original_state_dict(converted)) == set(shapes) - set(extras)


def test_janus_pro_7b_layout_from_config():
    config = config_from_original(_janus_pro_config(4096, 30), {}, image_token_id=100581)
    assert config.text_config.hidden_size == 4096 and config.text_config.num_hidden_layers == 30
    assert config.vision_config.projection_dim == 4096 and config.vq_config.image_token_embed_dim == 4096


def test_unknown_original_keys_raise(original):
    _, state_dict = original
    with pytest.raises(ValueError, match="not_a_janus_key"):
        original_to_transformers_state_dict({**state_dict, "not_a_janus_key": torch.zeros(1)})


# ---------------------------------------------------------------------------------------------------------------
# The original code's own config semantics (issue 13): select_layer, presets, VQ-16.
# ---------------------------------------------------------------------------------------------------------------


def _exported_reference(folder: Path) -> OriginalJanus:
    """The ORIGINAL path on an exported folder: its config.json read with the original's semantics."""
    config = json.loads((folder / "config.json").read_text())
    return OriginalJanus(config, read_state_dict(folder), *tiny_tables(config))


def test_export_writes_select_layer_and_the_original_path_matches(tiny_janus, tmp_path, caplog):
    model, processor = tiny_janus
    assert model.config.vision_config.num_hidden_layers == 2  # the tiny tower is truncated by select_layer: 2
    with caplog.at_level("WARNING", logger="janus.checkpoint"):
        out = janus.export_original(model, processor.tokenizer, tmp_path / "orig")
    params = json.loads((out / "config.json").read_text())["vision_config"]["params"]
    assert params["select_layer"] == 2 and "layers" not in params
    # The tiny sizes need extension keys the original ignores: the export says so for the vision tower and the VQ.
    warned = caplog.text
    assert "IGNORES" in warned and "'width'" in warned and "not VQ-16" in warned and "'ch_mult'" in warned
    batch = _understanding_batch(processor)
    with torch.no_grad():
        ours = model(**vars(batch)).logits
    ref = _exported_reference(out).understanding_logits(
        batch.input_ids, batch.attention_mask, batch.pixel_values, processor.special.image_id
    )
    mask = batch.attention_mask.bool()
    torch.testing.assert_close(ours[mask], ref[mask], atol=ATOL, rtol=1e-4)


def test_old_layers_extension_is_what_the_original_misreads(tiny_janus, tmp_path):
    """The previous export (select_layer -1 + `layers: 2`) makes the original build the full preset depth."""
    model, processor = tiny_janus
    out = janus.export_original(model, processor.tokenizer, tmp_path / "orig")
    config = json.loads((out / "config.json").read_text())
    config["vision_config"]["params"] |= {"select_layer": -1, "layers": 2}
    with pytest.raises(KeyError, match="blocks.2"):  # 24 blocks built, 22 of them would be random there
        OriginalJanus(config, read_state_dict(out), *tiny_tables(config))
    (out / "config.json").write_text(json.dumps(config))
    reloaded, _ = janus.load_pretrained(out)  # older exports still load here (documented extension key)
    assert reloaded.config.vision_config.num_hidden_layers == 2


def test_select_layer_semantics_on_load(tiny_janus_path, original, tmp_path):
    """select_layer 1 builds one block and ignores the stored second one (as the original); -1 with 2 stored
    blocks of a 24-block preset is refused instead of leaving 22 blocks random."""
    config, state_dict = original
    folder = _copy_without_weights(tiny_janus_path, tmp_path / "one_block")
    torch.save(state_dict, folder / "pytorch_model.bin")
    one = json.loads(json.dumps(config))
    one["vision_config"]["params"]["select_layer"] = 1
    (folder / "config.json").write_text(json.dumps(one))
    model, processor = janus.load_pretrained(folder)
    assert model.config.vision_config.num_hidden_layers == 1
    batch = _understanding_batch(processor)
    with torch.no_grad():
        ours = model(**vars(batch)).logits
    ref = OriginalJanus(one, state_dict, *tiny_tables(one)).understanding_logits(
        batch.input_ids, batch.attention_mask, batch.pixel_values, processor.special.image_id
    )
    torch.testing.assert_close(ours, ref, atol=ATOL, rtol=1e-4)
    one["vision_config"]["params"]["select_layer"] = -1
    (folder / "config.json").write_text(json.dumps(one))
    with pytest.raises(ValueError, match="select_layer=-1 builds 24 vision blocks but the weights hold only 2"):
        janus.load_pretrained(folder)


def test_janus_pro_layout_exports_without_extension_keys(caplog):
    config = config_from_original(_janus_pro_config(2048, 24), {}, image_token_id=100581)
    with caplog.at_level("WARNING", logger="janus.checkpoint"):
        exported = config_to_original(config, torch.bfloat16)
    assert not caplog.records
    assert exported["vision_config"]["params"] == {
        "image_size": 384,
        "model_name": "siglip_large_patch16_384",
        "select_feature": "same",
        "select_layer": -1,
    }
    assert exported["gen_vision_config"]["params"] == {"image_token_size": 16384, "n_embed": 8}
    truncated = config_from_original(
        json.loads(json.dumps(_janus_pro_config(2048, 24)).replace('"select_layer": -1', '"select_layer": -2')),
        {},
        image_token_id=100581,
    )
    assert truncated.vision_config.num_hidden_layers == 23  # create_siglip_vit: 24 + (-2) + 1
    assert config_to_original(truncated, torch.bfloat16)["vision_config"]["params"]["select_layer"] == 23


# ---------------------------------------------------------------------------------------------------------------
# Folders written by janus.save_pretrained are complete transformers folders (issue 13).
# ---------------------------------------------------------------------------------------------------------------


def test_saved_folder_is_a_transformers_janus_folder(tiny_janus, tmp_path):
    model, processor = tiny_janus
    folder = janus.save_pretrained(model, processor, tmp_path / "hf")
    generation = json.loads((folder / "generation_config.json").read_text())
    assert generation["generation_kwargs"]["boi_token_id"] == processor.special.boi_id
    assert generation["guidance_scale"] == 5.0 and generation["pad_token_id"] == processor.special.pad_id
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert (
        tokenizer_config["image_token"] == "<image_placeholder>"
        and tokenizer_config["boi_token"] == "<begin_of_image>"
    )
    assert_transformers_folder_works(folder, model, processor)


# ---------------------------------------------------------------------------------------------------------------
# Robust loading: tied heads, dtype names, tokenizer ids, truncated files (issues 9, 10, 17).
# ---------------------------------------------------------------------------------------------------------------


def test_transformers_folder_without_tie_key_loads_untied(tiny_janus, tmp_path):
    """deepseek-community conversions have no top-level tie_word_embeddings (transformers defaults it to True)."""
    model, processor = tiny_janus
    folder = janus.save_pretrained(model, processor, tmp_path / "hf")
    config = json.loads((folder / "config.json").read_text())
    config.pop("tie_word_embeddings")
    config["text_config"].pop("tie_word_embeddings", None)
    (folder / "config.json").write_text(json.dumps(config))
    loaded, _ = janus.load_pretrained(folder)
    loaded.tie_weights()
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)
    assert not torch.equal(loaded.lm_head.weight, loaded.get_input_embeddings().weight)


def test_dtype_names(tiny_janus_path):
    assert janus.load_pretrained(tiny_janus_path, dtype="bf16")[0].dtype == torch.bfloat16
    assert janus.load_pretrained(tiny_janus_path, dtype="float16")[0].dtype == torch.float16
    assert janus.load_pretrained(tiny_janus_path, dtype="auto")[0].dtype == torch.float32  # stored dtype
    with pytest.raises(ValueError, match="dtype='int8' is not supported"):
        janus.load_pretrained(tiny_janus_path, dtype="int8")


def test_tokenizer_without_the_pad_token_is_refused(tiny_janus_path, tmp_path):
    folder = shutil.copytree(tiny_janus_path, tmp_path / "no_pad")
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    tokenizer["added_tokens"] = [t for t in tokenizer["added_tokens"] if t["content"] != "<｜▁pad▁｜>"]
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(ValueError, match=r"tokenizer.json lacks the special token\(s\) \{'pad_token'"):
        janus.load_pretrained(folder)


def test_tokenizer_of_another_checkpoint_is_refused(tiny_janus, tmp_path):
    model, processor = tiny_janus
    folder = janus.save_pretrained(model, processor, tmp_path / "hf")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "image_token_id": processor.special.image_id + 1}))
    with pytest.raises(ValueError, match="disagree on special token ids"):
        janus.load_pretrained(folder)


@pytest.mark.parametrize("name", ["model.safetensors", "pytorch_model.bin"])
def test_truncated_weight_file_names_the_file(tiny_janus, tiny_janus_path, tmp_path, name):
    model, processor = tiny_janus
    folder = janus.save_pretrained(model, processor, tmp_path / "hf") if name.endswith("safetensors") else None
    folder = folder or shutil.copytree(tiny_janus_path, tmp_path / "orig")
    path = folder / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorruptCheckpointError, match=rf"{name}: .*truncated or corrupt"):
        janus.load_pretrained(folder)
    with pytest.raises(CorruptCheckpointError, match=name):
        verify_checkpoint_files(folder)


def test_verify_checkpoint_files_checks_zero_shards(tiny_janus, tmp_path):
    model, processor = tiny_janus
    folder = janus.save_pretrained(model, processor, tmp_path / "checkpoint-2")
    shard = folder / "global_step2" / "zero_pp_rank_0_mp_rank_00_model_states.pt"
    shard.parent.mkdir()
    torch.save({"module": {"w": torch.ones(1000)}}, shard)
    assert shard in verify_checkpoint_files(folder)
    shard.write_bytes(shard.read_bytes()[:-200])
    with pytest.raises(CorruptCheckpointError, match="zero_pp_rank_0_mp_rank_00_model_states.pt"):
        verify_checkpoint_files(folder)


def test_transformers_preprocessor_config_is_read(tiny_janus, tmp_path):
    """Conversions ship transformers' JanusImageProcessor settings (`size` dict) in preprocessor_config.json."""
    model, processor = tiny_janus
    folder = janus.save_pretrained(model, processor, tmp_path / "hf")
    settings = {
        "image_processor_type": "JanusImageProcessor",
        "size": {"height": 32, "width": 32},
        "image_mean": [0.4] * 3,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(settings))
    assert janus.load_pretrained(folder)[1].image_mean == (0.4, 0.4, 0.4)
    settings["size"] = {"height": 64, "width": 64}
    (folder / "preprocessor_config.json").write_text(json.dumps(settings))
    with pytest.raises(ValueError, match="preprocessor_config.json: image size 64 but the vision tower expects 32"):
        janus.load_pretrained(folder)
