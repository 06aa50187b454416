"""LoRA option: only adapters train, the base model is the KL reference, saves merge like peft's merge_and_unload."""

import copy
import functools

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from trl import ModelConfig

import janus
from open_r1.trainer import PairGRPOTrainer
from open_r1.trainer.lora import (
    DEFAULT_LORA_TARGET,
    apply_lora,
    build_lora_config,
    load_adapter,
    lora_scaling,
    merge_lora_state_dict,
)


def _lora_config(**overrides) -> LoraConfig:
    # init_lora_weights=False: random B, so the adapted model differs from the base from step 0.
    kwargs = dict(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=DEFAULT_LORA_TARGET, init_lora_weights=False)
    return LoraConfig(**(kwargs | overrides))


LORA_B = "model.language_model.layers.0.self_attn.q_proj.lora_B.default.weight"


class _Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj = torch.nn.Linear(6, 5, bias=True)
        self.down_proj = torch.nn.Linear(5, 3, bias=False)
        self.head = torch.nn.Linear(3, 2)


@pytest.mark.parametrize("use_rslora", [False, True])
def test_merge_lora_state_dict_matches_peft_merge_and_unload(use_rslora):
    torch.manual_seed(0)
    config = _lora_config(target_modules=["q_proj", "down_proj"], use_rslora=use_rslora, lora_alpha=6)
    peft_model = get_peft_model(_Block(), config)
    state = peft_model.base_model.model.state_dict()
    before = {k: v.clone() for k, v in state.items()}
    merged = merge_lora_state_dict(state, lora_scaling(config))
    assert all(torch.equal(state[k], before[k]) for k in before)  # input untouched
    expected = peft_model.merge_and_unload().state_dict()  # merges in place, into the tensors of `state`
    assert merged.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(merged[key], expected[key], msg=key)
    assert not torch.equal(merged["q_proj.weight"], before["q_proj.base_layer.weight"])  # the delta was applied


def test_build_lora_config_defaults_and_rejections():
    assert build_lora_config(ModelConfig(use_peft=False)) is None
    config = build_lora_config(ModelConfig(use_peft=True, lora_r=8, lora_alpha=16))
    assert config.target_modules == DEFAULT_LORA_TARGET and config.r == 8 and lora_scaling(config) == 2.0
    custom = build_lora_config(ModelConfig(use_peft=True, lora_target_modules=["q_proj", "v_proj"]))
    assert set(custom.target_modules) == {"q_proj", "v_proj"}
    single = build_lora_config(ModelConfig(use_peft=True, lora_target_modules=["q_proj"]))
    assert list(single.target_modules) == ["q_proj"]  # a suffix name, not a full-name regex that matches nothing
    with pytest.raises(ValueError, match="use_dora"):
        build_lora_config(ModelConfig(use_peft=True, use_dora=True))


def test_default_targets_only_the_language_model(tiny_janus):
    model = copy.deepcopy(tiny_janus[0])
    trainable, frozen = apply_lora(model, _lora_config())
    lora = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == sum(p.numel() for n, p in model.named_parameters() if n in lora) and frozen > trainable
    assert lora and all(n.startswith("model.language_model.layers.") and ".lora_" in n for n in lora)
    kinds = {n.split(".")[-4] for n in lora}  # "<proj>.lora_A.default.weight"
    assert kinds == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@pytest.fixture
def lora_run(make_trainer, tmp_path):
    """One PairGRPO step with LoRA and beta > 0: (trainer, model, parameters before the step)."""
    trainer_cls = functools.partial(PairGRPOTrainer, peft_config=_lora_config())
    trainer, model = make_trainer(tmp_path, trainer_cls=trainer_cls, beta=0.04)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer.train()
    return trainer, model, before


def test_lora_step_trains_only_adapters_against_the_base_reference(lora_run):
    trainer, model, before = lora_run
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(".lora_" in name for name in changed), sorted(changed)[:5]
    assert any(".lora_A." in n for n in changed) and any(".lora_B." in n for n in changed)
    assert all(p.requires_grad == (".lora_" in n) for n, p in model.named_parameters())  # restored after the ref
    logs = trainer.state.log_history[0]
    # The reference is the base model (adapters off): with random B the policy already differs from it at step 0.
    assert logs["understand/kl"] > 0 and logs["generate/kl"] > 0
    assert logs["understand/ratio_mean"] == pytest.approx(1.0, abs=1e-6)


def test_lora_save_is_merged_and_adapter_loads_with_peft(lora_run, tiny_janus_path, tmp_path):
    trainer, model, _ = lora_run
    trainer.save_model(str(tmp_path / "final"))
    loaded, _ = janus.load_pretrained(tmp_path / "final")
    base, _ = janus.load_pretrained(tiny_janus_path, dtype=torch.float32)
    expected = PeftModel.from_pretrained(base, tmp_path / "final").merge_and_unload()
    names = [n for n, _ in loaded.named_parameters()]
    assert names == [n for n, _ in expected.named_parameters()] and not any("lora" in n for n in names)
    for (name, p), (_, q) in zip(loaded.named_parameters(), expected.named_parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=name)
    q_proj = "model.language_model.layers.0.self_attn.q_proj"
    assert not torch.equal(
        loaded.get_parameter(f"{q_proj}.weight"), model.get_parameter(f"{q_proj}.base_layer.weight")
    )
    # Resume path: the adapter file restores exactly the trained adapter weights.
    fresh, _ = janus.load_pretrained(tiny_janus_path, dtype=torch.float32)
    apply_lora(fresh, _lora_config())
    load_adapter(fresh, tmp_path / "final")
    for (name, p), (_, q) in zip(model.named_parameters(), fresh.named_parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=name)


def test_lora_with_gradient_checkpointing_and_resume(make_trainer, tmp_path):
    trainer_cls = functools.partial(PairGRPOTrainer, peft_config=_lora_config())
    common = dict(trainer_cls=trainer_cls, max_steps=2, gradient_checkpointing=True)
    trainer, model = make_trainer(tmp_path, save_strategy="steps", save_steps=1, **common)
    trainer.train()
    assert {"adapter_model.safetensors", "adapter_config.json"} <= {
        p.name for p in (tmp_path / "checkpoint-1").iterdir()
    }
    resumed, resumed_model = make_trainer(tmp_path / "resumed", **common)
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-1"))
    assert resumed.state.global_step == 2
    # Adapters, optimizer, RNG and data position restored: step 2 repeats the uninterrupted run's step 2.
    for (name, p), (_, q) in zip(model.named_parameters(), resumed_model.named_parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=name)
