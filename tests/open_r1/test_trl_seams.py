"""The pinned TRL still has the seams PairGRPOTrainer overrides, with the signatures it relies on."""

import inspect

import trl
from trl import GRPOConfig, GRPOTrainer

from open_r1.trainer import PairGRPOTrainer

SEAMS = {
    "_generate_and_score_completions": ["self", "inputs"],
    "_compute_loss": ["self", "model", "inputs"],
    "_get_per_token_logps_and_entropies": None,
    "_prepare_inputs": ["self", "generation_batch"],
    "_save": ["self", "output_dir", "state_dict"],
    "_load_from_checkpoint": ["self", "resume_from_checkpoint", "model"],  # LoRA resume (adapter file)
    "log": ["self", "logs", "start_time"],
}


def test_trl_version_is_pinned():
    assert trl.__version__ == "1.16.0"


def test_grpo_trainer_has_the_seams():
    for name, params in SEAMS.items():
        assert hasattr(GRPOTrainer, name), f"TRL lost the seam {name}"
        if params is not None:
            assert list(inspect.signature(getattr(GRPOTrainer, name)).parameters)[: len(params)] == params


def test_pair_trainer_overrides_only_documented_seams():
    own = {name for name, value in vars(PairGRPOTrainer).items() if callable(value) and name.startswith("_")}
    inherited = {name for name in own if hasattr(GRPOTrainer, name)}
    assert inherited <= {
        "__init__",
        "_generate_and_score_completions",
        "_compute_loss",
        "_save",
        "_load_from_checkpoint",
    }


def test_grpo_config_fields_we_rely_on():
    fields = GRPOConfig.__dataclass_fields__
    for name in ("num_generations", "epsilon", "epsilon_high", "beta", "scale_rewards", "steps_per_generation"):
        assert name in fields
    assert "max_prompt_length" not in fields  # PairGRPOConfig adds it back
