"""Configuration for PairGRPO: `PairScriptArguments` (data) and `PairGRPOConfig` (only what PairUni adds to TRL's GRPOConfig).

Defaults are the paper's Janus-Pro-1B settings (PairUni §4.1); everything the paper leaves open is a documented field.
The config describes the run; what depends on the machine (backend, bf16 support) is decided in `open_r1.runtime`.
"""

import dataclasses
import logging
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from trl import GRPOConfig

from backbones import BACKBONES, AnswerSampling, ImageSampling
from backbones.interface import IMAGE_LOGPROB_MODES
from backbones.registry import check_module_groups
from open_r1.advantages import PAIR_WEIGHTING_MODES
from open_r1.runtime import launch_world_size
from open_r1.trainer.loss import LOSS_TYPES
from rewards import JUDGED_REWARDS
from rewards.reward_unirl import DEFAULT_JUDGE_MODE, JUDGE_MODES

logger = logging.getLogger(__name__)

# The method a run implements (model card, validation): PairUni's PairGRPO, or UniRL's GRPO (arXiv 2505.23380).
METHODS = ("pairgrpo", "unirl")
# TRL options the PairGRPO rollout / loss do not implement: refused when set to anything but TRL's default.
UNSUPPORTED_TRL_OPTIONS = (
    "delta",
    "importance_sampling_level",
    "mask_truncated_completions",
    "top_entropy_quantile",
    "entropy_coef",
    "use_adaptive_entropy",
    "use_vllm",
    "sync_ref_model",
    "min_p",
    "repetition_penalty",
    "generation_kwargs",
    "chat_template_kwargs",
    "cache_implementation",
    "vllm_importance_sampling_correction",
    "off_policy_mask_threshold",
    "cast_lm_head_to_fp32",
    "use_liger_kernel",
    "model_init_kwargs",
    "num_generations_eval",
    "multi_objective_aggregation",
    "log_completions",
    "max_tool_calling_iterations",
    "use_transformers_paged",
    "use_transformers_continuous_batching",
)
DEFAULT_UNDERSTANDING_TEMPLATE = (
    "{question}\nFirst think about the question step by step inside <think> </think> tags, then give the final "
    "answer (the option's letter only) inside <answer> </answer> tags, e.g. <think> ... </think><answer>A</answer>."
)


def check_field_types(config: object) -> None:
    """Refuse a float in an integer field (`num_generations: 4.5`) and a scalar in a list field
    (`trainable_modules: language_model`, which would be read letter by letter): YAML values skip argparse's type
    conversion, so without this the run fails after the model loads, in a message that does not name the field."""
    # The declared annotations: transformers' HfArgumentParser rewrites `Field.type` in place when it parses.
    hints = typing.get_type_hints(type(config))
    for spec in dataclasses.fields(config):
        value, annotation = getattr(config, spec.name, None), hints.get(spec.name)
        if annotation in (int, int | None) and isinstance(value, float):
            fix = f"{int(value)}" if value.is_integer() else f"{math.floor(value)} or {math.ceil(value)}"
            raise ValueError(f"{spec.name}: {value!r} is not an integer; fix: set {spec.name} to a whole number, "
                             f"e.g. {fix}")  # fmt: skip
        if _is_list_field(annotation) and value is not None and not isinstance(value, list | tuple):
            kind = type(value).__name__
            raise ValueError(f"{spec.name}: {value!r} is a {kind}, not a list; fix: write it as a YAML list, "
                             f"e.g. {spec.name}: [{value}]")  # fmt: skip


def _is_list_field(annotation: object) -> bool:
    """`list[...]` or `list[...] | None`, but not a field that also takes a string (TRL's `report_to`)."""
    if typing.get_origin(annotation) is list:
        return True
    members = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    return any(typing.get_origin(m) is list for m in members) and str not in members


@dataclass
class PairScriptArguments:
    """
    Data arguments of `open_r1/grpo.py`.

    Args:
        pair_data_path (`str`):
            PairUG-format JSONL file of (understanding, generation) pairs, UniRL self rows (prompt + question, no
            image: data_tools/make_unirl_prompts.py), or both mixed (see `open_r1.dataset`).
        image_root (`str`, *optional*):
            Folder that relative image paths in the pair file are resolved against (default: the file's folder).
        max_train_pairs (`int`, *optional*):
            Keep only the first N pairs (smoke tests).
        overwrite_output_dir (`bool`, *optional*, defaults to `False`):
            Delete a previous run's outputs in `output_dir` before training (see `open_r1.run_dir`).
        skip_invalid (`bool`, *optional*, defaults to `False`):
            Drop invalid pair lines (schema errors, missing or undecodable images) with a warning that counts them,
            instead of failing before the first step with the full list.
        pair_types (`list[str]`, *optional*):
            Train only on these pair types (`aligned`, `retrieved`, `random`; `self` for UniRL self rows): the PairUni
            §4 pairing ablation.
    """

    pair_data_path: str = field(
        metadata={"help": "JSONL of PairUG pairs and/or UniRL self rows (prompt + question, no image)."}
    )
    image_root: str | None = field(
        default=None,
        metadata={"help": "Folder relative image paths are resolved against (default: the file's folder)."},
    )
    max_train_pairs: int | None = field(default=None, metadata={"help": "Keep only the first N pairs (smoke tests)."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Delete a previous run's outputs in output_dir first (refuses if it holds other files)."},
    )
    skip_invalid: bool = field(
        default=False,
        metadata={"help": "Drop invalid pair lines (counted, with a warning) instead of failing with the full list."},
    )
    pair_types: list[str] | None = field(
        default=None,
        metadata={"help": "Train only on these pair types (aligned, retrieved, random, self): the pairing ablation."},
    )


@dataclass
class PairGRPOConfig(GRPOConfig):
    r"""
    Configuration for [`open_r1.trainer.PairGRPOTrainer`]: TRL's `GRPOConfig` plus the PairUni fields below.

    Batch meaning (as in PairUni's launch command and the T2I-R1 / TRL-0.14 lineage): `per_device_train_batch_size`
    counts PAIRS per device per micro-step. Each device rolls out its own K answers and K images for each of its pairs
    (TRL's sampler repeats a pair row K = `num_generations` times; each repeated row yields one answer and one image,
    so K_u = K_g and every rank runs both branches every step, as ZeRO-3 needs). One optimizer step trains
    `per_device_train_batch_size * world_size * gradient_accumulation_steps` pairs x K rollouts per task: the published
    command (1 pair per device, 2 accumulation steps, 8 GPUs) trains 16 pairs x 8 rollouts. After construction
    `per_device_train_batch_size` holds rows (pairs x K, what TRL's dataloader needs) and `pairs_per_device` the pairs.

    > Parameters that control the batch

    global_pairs_per_step (`int`, *optional*):
        Pairs per optimizer step over all devices (paper: 16). When set, `gradient_accumulation_steps` is derived
        from it, the world size and `per_device_train_batch_size`; it must divide evenly.

    > Parameters that control the backbone

    backbone (`str`, *optional*):
        The unified model family (`backbones.BACKBONES`; `janus` today). `None`: inferred from the
        checkpoint's config.json (open_r1/grpo.py).

    > Parameters that control the rollouts

    num_generations_text (`int`, *optional*):
        K_u, answers per pair. Must equal `num_generations_image`; sets TRL's `num_generations` (paper: 8 for 1B,
        4 for 7B).
    num_generations_image (`int`, *optional*):
        K_g, images per pair.
    max_prompt_length (`int`, *optional*, defaults to `512`):
        Maximum text tokens of a question or caption (the 576 expanded image tokens are not counted); longer texts
        keep their last tokens (TRL's left truncation). `None` disables truncation.
    cfg_weight (`float`, *optional*, defaults to `5.0`):
        Classifier-free guidance weight for image sampling (paper: 5).
    image_temperature (`float`, *optional*, defaults to `1.0`):
        Sampling temperature for image tokens (the answer temperature is TRL's `temperature`).
    rollout_decode (`str`, *optional*):
        Decode loop of both samplers: `"compiled"` (static KV cache, one `torch.compile`d step; CUDA graphs on GPU)
        or `"eager"` (the reference). `None`: compiled on CUDA, eager on CPU. Same draws either way (README
        "Benchmarks").
    image_top_k (`int`, *optional*):
        Top-k filter for image tokens (`None`: full distribution, as in the paper).
    image_steps (`int`, *optional*):
        Decode steps of a masked-diffusion image sampler (`None`: the backbone's default; PairUni App. E: 35 for
        Lumina-DiMOO). Autoregressive backbones (Janus-Pro) ignore it.
    text_steps (`int`, *optional*):
        Decode steps of a masked-diffusion text sampler (PairUni App. E: 2 for Lumina-DiMOO).
    text_block_length (`int`, *optional*):
        Block length of a semi-autoregressive masked-diffusion text sampler (`None`: the whole answer is one block).
    step_group (`int`, *optional*, defaults to `1`):
        Masked diffusion: decode steps scored per loss forward (1 = every step's own state, exact; larger = fewer
        forwards, each scoring a group of steps at the group's first state).
    understanding_prompt_template (`str`):
        Python format string with `{question}` turning the pair's question into the user turn.
    understanding_system_prompt (`str`, *optional*):
        System prompt of the understanding turn (`None`: Janus-Pro's default).

    > Parameters that control the loss

    image_logprob (`str`, *optional*, defaults to `"cfg"`):
        Policy log-prob of an image token: `"cfg"` = the CFG-mixed, temperature-scaled distribution that sampled the
        token (importance ratio is exactly on-policy; costs an unconditional forward), or `"conditional"` = the
        conditional head only (cheap; what T2I-R1 did, which makes the ratio compare a different distribution than
        the sampler's). The reference model uses the same definition.
    pair_weighting (`str`, *optional*, defaults to `"sqrt"`):
        w_p for retrieved pairs: `"sqrt"` (paper) -> sqrt(s_p), `"linear"` -> s_p, `"none"` -> 1. Aligned pairs get 1.
    understanding_loss_weight (`float`, *optional*, defaults to `1.0`):
        Weight of the understanding loss (a token mean over answer tokens).
    generation_loss_weight (`float`, *optional*, defaults to `1.0`):
        Weight of the generation loss (a token mean over the 576 image tokens, so they do not swamp answers).
    trainable_modules (`list[str]`, *optional*, defaults to `["language_model"]`):
        Module groups that train; the rest is frozen before the optimizer is built. Groups are the backbone's
        (`module_groups`); Janus-Pro's: `language_model` (LM body + text head, like T2I-R1/PairUni), `text_head` (the
        text head alone), `vision_model`, `aligner`, `vqmodel`, `generation_embeddings`, `generation_head`.

    loss_type (`str`, *optional*, defaults to `"dapo"`):
        How a task's per-token losses are normalised: `"dapo"` = token sum divided by the task's token count of the
        whole optimizer step over all ranks (every answer token weighs the same whatever its micro-batch; TRL's
        default), `"grpo"` = mean per sequence then over sequences, per micro-batch.

    > Parameters that control the rewards

    reward_funcs (`list[str]`, *optional*, defaults to `["accuracy", "hps_v2.1"]`):
        Reward names from `rewards.REWARD_NAMES`; each applies to its own task. Weights: TRL's `reward_weights`.
        The paper's rewards are exactly these two; `format` (the `<think>/<answer>` layout) is this project's
        opt-in addition (configs/recipes/janus_pro_1b_format.yaml).
    hps_checkpoint (`str`, *optional*):
        Local path of `HPS_v2.1_compressed.pt` (needed by `hps_v2.1`).
    reward_device (`str`, *optional*):
        Device of reward models (default: the training device).
    hps_precision (`str`, *optional*, defaults to `"fp32"`):
        Matmul precision of the HPS forward: `"fp32"`, `"bf16"` (autocast; scores within 1e-2 of fp32) or `"tf32"`.

    > Parameters that control UniRL (arXiv 2505.23380) and the self-check reward

    method (`str`, *optional*, defaults to `"pairgrpo"`):
        The method the run implements: `"pairgrpo"` (PairUni) or `"unirl"` (UniRL's GRPO on self rows; requires the
        `unirl_image` reward). Named in the model card.
    unirl_judge (`str`, *optional*, defaults to `"greedy"`):
        Which answer judges a generated image for `unirl_image` / `self_check`: `"sampled"` (the understanding
        rollout's own answer; self rows only), `"greedy"` (a greedy answer of the current policy, so an image is not
        penalised for an unlucky answer sample; one extra answer decode per row), or `"frozen"` (a greedy answer of
        a frozen copy of the initial policy, kept whole on every rank).
    judge_max_new_tokens (`int`, *optional*):
        Answer length of the greedy / frozen judge (default: `max_completion_length`).
    answer_judge_model (`str`, *optional*):
        Model of an OpenAI-compatible server that grades free-form gold answers ("same / not same") when normalised
        matching fails (`rewards.answer_judge.LLMAnswerJudge`; API key from `OPENAI_API_KEY`); multiple-choice
        letters never reach it.
    answer_judge_base_url (`str`, *optional*):
        Base URL of that server (default: the `openai` client's, `OPENAI_BASE_URL`).
    answer_judge_cache_dir (`str`, *optional*):
        Disk cache of its verdicts (required with `answer_judge_model`), so a rerun never pays twice.

    > Parameters that control logging

    log_images_steps (`int`, *optional*, defaults to `50`):
        Every N optimizer steps write a grid of sampled images with prompt and score to `output_dir/samples/` and to
        the tracker (`report_to`). `0` disables it.
    num_images_to_log (`int`, *optional*, defaults to `8`):
        Images per grid.
    """

    backbone: str | None = field(
        default=None,
        metadata={
            "help": f"Unified model family, one of {sorted(BACKBONES)} (default: from the checkpoint's config)."
        },
    )
    global_pairs_per_step: int | None = field(
        default=None,
        metadata={
            "help": "Pairs per optimizer step over all devices (paper: 16); derives gradient_accumulation_steps."
        },
    )
    pairs_per_device: int = field(default=0, init=False, metadata={"help": "Derived: pairs per device micro-step."})
    num_generations_text: int | None = field(
        default=None, metadata={"help": "K_u, answers per pair; must equal num_generations_image (paper: 8 / 4)."}
    )
    num_generations_image: int | None = field(default=None, metadata={"help": "K_g, images per pair (paper: 8 / 4)."})
    max_prompt_length: int | None = field(
        default=512, metadata={"help": "Max text tokens of a question/caption (image tokens not counted); None: off."}
    )
    cfg_weight: float = field(default=5.0, metadata={"help": "CFG weight for image sampling (paper: 5)."})
    image_temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of image tokens."})
    image_top_k: int | None = field(default=None, metadata={"help": "Top-k for image tokens (None: full softmax)."})
    image_steps: int | None = field(
        default=None, metadata={"help": "Masked-diffusion image decode steps (None: the backbone's default)."}
    )
    text_steps: int | None = field(default=None, metadata={"help": "Masked-diffusion text decode steps."})
    text_block_length: int | None = field(
        default=None, metadata={"help": "Masked-diffusion text block length (None: one block)."}
    )
    step_group: int = field(default=1, metadata={"help": "Masked diffusion: decode steps scored per loss forward."})
    rollout_decode: str | None = field(
        default=None, metadata={"help": "Sampler decode loop: compiled | eager (default: compiled on CUDA)."}
    )
    understanding_prompt_template: str = field(
        default=DEFAULT_UNDERSTANDING_TEMPLATE,
        metadata={"help": "Format string with {question} for the understanding user turn."},
    )
    understanding_system_prompt: str | None = field(
        default=None, metadata={"help": "System prompt of the understanding turn (None: Janus-Pro default)."}
    )
    image_logprob: str = field(
        default="cfg",
        metadata={"help": "Image-token log-prob: 'cfg' (CFG-mixed, what sampled them) or 'conditional' (cheap)."},
    )
    pair_weighting: str = field(default="sqrt", metadata={"help": "w_p for retrieved pairs: sqrt | linear | none."})
    understanding_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the understanding loss."})
    generation_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the generation loss."})
    trainable_modules: list[str] = field(
        default_factory=lambda: ["language_model"],
        metadata={"help": "Module groups that train (the backbone's module_groups); the rest is frozen."},
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: ["accuracy", "hps_v2.1"],
        metadata={"help": "Reward names (rewards.REWARD_NAMES); weights go in reward_weights."},
    )
    hps_checkpoint: str | None = field(default=None, metadata={"help": "Local path of HPS_v2.1_compressed.pt."})
    reward_device: str | None = field(default=None, metadata={"help": "Device of reward models (default: training)."})
    hps_precision: str = field(default="fp32", metadata={"help": "HPS forward precision: fp32 | bf16 | tf32."})
    loss_type: str = field(
        default="dapo",
        metadata={
            "help": "Per-task normalisation: 'dapo' (tokens of the whole step, default) or 'grpo' (sequence mean)."
        },
    )
    method: str = field(default="pairgrpo", metadata={"help": f"The run's method, one of {METHODS}."})
    unirl_judge: str = field(
        default=DEFAULT_JUDGE_MODE,
        metadata={"help": f"Judge of generated images for unirl_image/self_check, one of {JUDGE_MODES}."},
    )
    judge_max_new_tokens: int | None = field(
        default=None, metadata={"help": "Answer length of the greedy/frozen judge (default: max_completion_length)."}
    )
    answer_judge_model: str | None = field(
        default=None, metadata={"help": "OpenAI-compatible model grading free-form answers (optional)."}
    )
    answer_judge_base_url: str | None = field(default=None, metadata={"help": "Base URL of that server."})
    answer_judge_cache_dir: str | None = field(default=None, metadata={"help": "Disk cache of its verdicts."})
    log_images_steps: int = field(default=50, metadata={"help": "Image grid every N steps (0: off)."})
    num_images_to_log: int = field(default=8, metadata={"help": "Images per logged grid."})

    def __post_init__(self):
        check_field_types(self)
        self._resolve_rollout_counts()
        self._resolve_batch()
        if self.gradient_checkpointing:
            # Reentrant checkpointing drops gradients when the checkpointed block's inputs do not require grad
            # (frozen generation embeddings feed the LM); non-reentrant checkpointing has no such trap.
            self.gradient_checkpointing_kwargs = {"use_reentrant": False, **(self.gradient_checkpointing_kwargs or {})}
        super().__post_init__()
        self._validate()

    def _resolve_batch(self) -> None:
        """Pairs per device -> rows per device; accumulation from `global_pairs_per_step` (see the class docstring).

        Runs before TRL's `__post_init__`, which derives the generation batch (and DeepSpeed's "auto" batch sizes)
        from rows and accumulation steps; the world size is the launcher's (`open_r1.runtime.launch_world_size`).
        """
        pairs = self.per_device_train_batch_size
        if pairs < 1:
            raise ValueError(f"per_device_train_batch_size={pairs} counts pairs per device; use 1 or more.")
        if self.global_pairs_per_step is not None:
            world = launch_world_size()
            if self.global_pairs_per_step % (pairs * world) != 0:
                raise ValueError(
                    f"global_pairs_per_step={self.global_pairs_per_step} is not a multiple of "
                    f"per_device_train_batch_size ({pairs} pairs) x {world} processes; change one of them "
                    "(accumulation steps = global pairs / (pairs per device x processes))."
                )
            self.gradient_accumulation_steps = self.global_pairs_per_step // (pairs * world)
        self.pairs_per_device = pairs
        self.per_device_train_batch_size = pairs * self.num_generations

    def image_sampling(self) -> ImageSampling:
        """The image sampler's options (and what the loss scores), as every backbone takes them."""
        return ImageSampling(
            cfg_weight=self.cfg_weight, temperature=self.image_temperature, top_k=self.image_top_k,
            logprob=self.image_logprob, steps=self.image_steps, step_group=self.step_group, decode=self.rollout_decode,
        )  # fmt: skip

    def answer_sampling(self, greedy: bool = False, max_new_tokens: int | None = None) -> AnswerSampling:
        """The answer sampler's options; `greedy` for UniRL's greedy judge."""
        return AnswerSampling(
            max_new_tokens=max_new_tokens or self.max_completion_length, temperature=self.temperature,
            top_p=self.top_p, top_k=self.top_k, do_sample=not greedy,
            system_prompt=self.understanding_system_prompt, steps=self.text_steps,
            block_length=self.text_block_length, step_group=self.step_group, decode=self.rollout_decode,
        )  # fmt: skip

    @property
    def judges_images(self) -> bool:
        """Whether a reward reads the judge's answers about the generated images (the judge then runs every step)."""
        return any(name in JUDGED_REWARDS for name in self.reward_funcs)

    @property
    def uses_frozen_judge(self) -> bool:
        return self.judges_images and self.unirl_judge == "frozen"

    def step_summary(self, num_processes: int) -> str:
        """The one-line meaning of an optimizer step, logged once at start."""
        pairs = self.pairs_per_device * num_processes * self.gradient_accumulation_steps
        return (
            f"optimizer step = {pairs} pairs x {self.num_generations} rollouts per task ({self.pairs_per_device} "
            f"pairs per device, {self.gradient_accumulation_steps} accumulation steps, {num_processes} processes)"
        )

    def _resolve_rollout_counts(self) -> None:
        k_u, k_g = self.num_generations_text, self.num_generations_image
        if k_u is None and k_g is None:
            k_u = k_g = self.num_generations if self.num_generations is not None else 8
        k_u, k_g = (k_u if k_u is not None else k_g), (k_g if k_g is not None else k_u)
        if k_u != k_g:
            raise ValueError(
                f"num_generations_text={k_u} != num_generations_image={k_g}: each repeated pair row yields one answer "
                "and one image, so both must be equal (the paper uses K_u = K_g). Set both to the same value."
            )
        self.num_generations_text = self.num_generations_image = self.num_generations = k_u

    def _validate(self) -> None:
        choices = {
            "image_logprob": IMAGE_LOGPROB_MODES,
            "backbone": (None, *BACKBONES),
            "pair_weighting": PAIR_WEIGHTING_MODES,
            "loss_type": LOSS_TYPES,
            "scale_rewards": ("group", "none"),
            "method": METHODS,
            "unirl_judge": JUDGE_MODES,
            "rollout_decode": (None, "compiled", "eager"),
            "hps_precision": ("fp32", "bf16", "tf32"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not supported; use one of {allowed}.")
        check_module_groups(self.trainable_modules, self.backbone)
        if "{question}" not in self.understanding_prompt_template:
            raise ValueError("understanding_prompt_template must contain '{question}' where the question goes.")
        if min(self.understanding_loss_weight, self.generation_loss_weight) < 0:
            raise ValueError("understanding_loss_weight and generation_loss_weight must be >= 0.")
        if self.cfg_weight < 0 or self.image_temperature <= 0:
            raise ValueError(
                f"cfg_weight={self.cfg_weight} must be >= 0 and image_temperature={self.image_temperature} > 0."
            )
        self._refuse_unsupported()
        self._validate_unirl()
        if self.reward_weights is not None and len(self.reward_weights) != len(self.reward_funcs):
            raise ValueError(
                f"reward_weights has {len(self.reward_weights)} entries for {len(self.reward_funcs)} reward_funcs "
                f"{self.reward_funcs}; give one weight per reward."
            )

    def _validate_unirl(self) -> None:
        if self.method == "unirl" and "unirl_image" not in self.reward_funcs:
            raise ValueError(
                f"method='unirl' rewards generation by whether its image is answered correctly, but reward_funcs="
                f"{self.reward_funcs} lacks 'unirl_image'; add it (configs/recipes/unirl_janus_pro_1b.yaml)."
            )
        if "self_check" in self.reward_funcs and self.unirl_judge == "sampled":
            raise ValueError(
                "self_check with unirl_judge='sampled': a PairUG row's sampled answer is about its understanding image, "
                "not its generated one; use unirl_judge='greedy' or 'frozen'."
            )
        if self.answer_judge_model and not self.answer_judge_cache_dir:
            raise ValueError(
                "answer_judge_model is set without answer_judge_cache_dir; give a folder for its cached verdicts."
            )
        if self.answer_judge_cache_dir and Path(self.answer_judge_cache_dir).is_file():
            raise ValueError(
                f"answer_judge_cache_dir={self.answer_judge_cache_dir!r} is a file; fix: give a folder for the judge's "
                "cached verdicts"
            )

    def _refuse_unsupported(self) -> None:
        """TRL options the overridden rollout / loss do not implement must not be silently ignored."""
        defaults = {f.name: f for f in dataclasses.fields(GRPOConfig)}
        for name in UNSUPPORTED_TRL_OPTIONS:
            spec = defaults[name]
            default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
            if getattr(self, name) != default:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is a TRL option PairGRPO does not implement (its Janus rollout and "
                    f"loss replace TRL's); remove it or set it to TRL's default {default!r}."
                )
        if self.eval_strategy != "no" or self.do_eval:
            raise ValueError(
                f"eval_strategy={self.eval_strategy!r}: PairGRPOTrainer takes no eval dataset; set eval_strategy='no' "
                "and evaluate checkpoints with scripts/eval_*.py."
            )
