"""DEMO ONLY: a tiny Janus-Pro that has learned the toy world of coloured shapes, in the ORIGINAL DeepSeek layout.

The world is `data_tools.demo_scenes` (one colour, one shape kind, 1-3 copies on a light background, captions,
4-option questions). The build, all on CPU in about two minutes on 2 cores:
1. a random tiny checkpoint of the real Janus-Pro structure (VQ-16 blocks with downsample 8, 32 px images -> 4 x 4 = 16
   image tokens; SigLIP-style tower with patch 8), with a BPE tokenizer that knows the world's words;
2. the VQ tokenizer trained to reconstruct the scenes (straight-through estimator, L2-normalised codebook as in
   LlamaGen, one-cycle learning rate, dead codes restarted in the first half), so image tokens mean something and
   decoded images look like scenes (colours survive; at 16 tokens the shapes come out rounded);
3. a supervised warm start of the whole model: caption -> the scene's image tokens (generation head), and
   (image, question) -> " B<eos>" in the toy recipe's answer format. A share of the targets is replaced by random
   ones (`answer_noise`: a random letter; `image_noise`: another scene's tokens), so the model learns the world but
   hedges: sampled answers and images are right less often than its most likely ones (the summary's `accuracy` /
   `toy_geneval` vs `greedy_accuracy` / `greedy_toy_geneval`, e.g. 0.44 vs 0.61 and 0.23 vs 0.34). That gap is
   what RL closes first (sharpening, as RL does on real pretrained models), and it shows within 150 steps;
4. export through `janus.export_original`, so it loads through `janus.load_pretrained` like real weights.
It is not a model of anything beyond this world; it exists so `make demo` and the learning test show RL working.
It lives with the scripts, not in `janus/`: it builds on the data tools, the model package and the rewards at once.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image

from data_tools.demo_scenes import (
    COLORS,
    POSITIONS,
    Scene,
    describe,
    draw_scene,
    generation_prompt,
    multiple_choice,
    random_scene,
)
from data_tools.multiple_choice import format_mcq
from data_tools.toy_world import BACKGROUND, COUNT_WORDS, SHAPES
from janus.checkpoint import export_original, load_pretrained
from janus.logprobs import answer_token_logps, image_token_logps
from janus.processor import GenerationBatch, JanusProcessor
from janus.sampling import sample_answer_tokens, sample_image_tokens
from janus.tiny import TINY_CORPUS, build_bpe_tokenizer, tiny_config, write_random_checkpoint
from rewards.reward_toy import toy_geneval
from rewards.reward_understand import accuracy_reward

logger = logging.getLogger(__name__)

# The toy recipe's understanding turn (configs/recipes/toy_cpu.yaml: understanding_prompt_template and
# understanding_system_prompt): the question as stored, which already ends with the "answer with the letter"
# instruction, and no system prompt. The warm start trains exactly this format.
TOY_UNDERSTANDING_TEMPLATE = "{question}"
TOY_SYSTEM_PROMPT = ""
SETTINGS_FILE = "toy_settings.json"
TOY_CFG_WEIGHT = 1.0  # the toy recipe's cfg_weight (see configs/recipes/toy_cpu.yaml)
LETTERS = "ABCD"  # the world's four options
RESTART_EVERY = 20  # VQ steps between dead-code restarts
FOREGROUND_WEIGHT = 4.0  # extra reconstruction weight of shape pixels
BACKGROUND_PIXEL = torch.tensor(BACKGROUND).view(1, 3, 1, 1) / 127.5 - 1.0  # in the VQ's [-1, 1] range


@dataclass(frozen=True)
class ToySettings:
    """Everything that determines the toy checkpoint; `key()` names a cached build."""

    seed: int = 0
    image_size: int = 32  # 32 px with the VQ's downsample of 8 -> 4 x 4 = 16 image tokens
    codebook_size: int = 128
    hidden_size: int = 64
    num_layers: int = 2
    num_scenes: int = 512  # drawn scenes (the world has 96 distinct ones; repeats carry different questions)
    vq_steps: int = 300
    vq_lr: float = 5e-3
    lm_steps: int = 1000
    lm_lr: float = 3e-3
    batch_size: int = 16
    uncond_prob: float = 0.15  # share of generation rows trained on the all-pad CFG prompt
    # Share of warm-start rows whose target is replaced by a random one (a random letter; another scene's image
    # tokens): the model learns the world but hedges, like a pretrained model that is often off; RL must sharpen it.
    answer_noise: float = 0.25
    image_noise: float = 0.5
    eval_scenes: int = 64  # held-out scenes for the summary's accuracy / toy_geneval
    # Intra-op threads of the build: the sum order of float reductions depends on it, and RL on this toy amplifies
    # such differences, so the build pins it (identical weights on one machine whatever OMP_NUM_THREADS says).
    threads: int = 2

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class ToySample:
    """One scene with its image, question (already in the MCQ format), gold letter and generation prompt."""

    scene: Scene
    image: Image.Image
    question: str
    answer: str
    prompt: str


def world_corpus(base: str = TINY_CORPUS) -> str:
    """Text with every word of the world (after the tokenizer's own `base` corpus), so BPE gives short prompts."""
    rng = random.Random(0)
    lines = []
    for _ in range(200):
        scene = random_scene(rng)
        stem, options, _ = multiple_choice(scene, rng)
        lines += [format_mcq(stem, options), describe(scene), generation_prompt(scene)]
    words = [*COLORS, *SHAPES, *POSITIONS, *COUNT_WORDS.values()]
    return "\n".join([base, *lines, " ".join(words)])


def toy_config(vocab_size: int, settings: ToySettings) -> dict:
    """Original-format config.json: Janus-Pro's structure at toy width, VQ-16 with the real downsample of 16."""
    config = copy.deepcopy(tiny_config(vocab_size))
    hidden, grid_patch = settings.hidden_size, settings.image_size // 4
    config["language_config"] |= {
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": settings.num_layers,
    }
    config["vision_config"]["params"] |= {"image_size": settings.image_size, "patch_size": grid_patch, "width": 64}
    config["vision_config"]["params"] |= {"heads": 4}
    config["aligner_config"]["params"] |= {"input_dim": 64, "n_embed": hidden}
    config["gen_vision_config"]["params"] |= {
        "image_token_size": settings.codebook_size,
        "codebook_size": settings.codebook_size,
        # VQ-16's blocks with three downsamplings (8, not 16) so a 32 px image still gives a 4 x 4 token grid: the
        # 64 px / downsample-16 variant trains about 4x slower on CPU (the top conv level runs at 64 x 64).
        "ch_mult": [1, 1, 2, 2],
        "z_channels": 64,
    }
    config["gen_aligner_config"]["params"] |= {"n_embed": hidden}
    config["gen_head_config"]["params"] |= {
        "image_token_embed": hidden,
        "image_token_size": settings.codebook_size,
        "n_embed": hidden,
    }
    return config


def make_world(num: int, seed: int, size: int) -> list[ToySample]:
    """`num` random scenes with one question and one prompt each (deterministic by seed)."""
    rng = random.Random(seed)
    samples = []
    for _ in range(num):
        scene = random_scene(rng)
        stem, options, answer = multiple_choice(scene, rng)
        samples.append(
            ToySample(scene, draw_scene(scene, size), format_mcq(stem, options), answer, generation_prompt(scene))
        )
    return samples


def to_pixels(images: list[Image.Image]) -> torch.Tensor:
    """PIL RGB -> [N, 3, H, W] in [-1, 1] (the VQ's pixel range)."""
    return torch.stack([TF.pil_to_tensor(image).float() / 127.5 - 1.0 for image in images])


# ---------------------------------------------------------------------------------------------------------------------
# VQ tokenizer
# ---------------------------------------------------------------------------------------------------------------------


def _quantize(vq: torch.nn.Module, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encode with the L2-normalised codebook (as `vqmodel.decode` reads it): (latent, codes, token ids [N, h, w])."""
    latent = F.normalize(vq.quant_conv(vq.encoder(pixels)), dim=1)  # [N, C, h, w]
    codebook = F.normalize(vq.quantize.embedding.weight, dim=1)  # [K, C]
    ids = torch.einsum("nchw,kc->nhwk", latent, codebook).argmax(dim=-1)  # [N, h, w]
    codes = codebook[ids].permute(0, 3, 1, 2)  # [N, C, h, w]
    return latent, codes, ids


def train_vq(
    vq: torch.nn.Module,
    pixels: torch.Tensor,
    settings: ToySettings,
    generator: torch.Generator,
    background: torch.Tensor = BACKGROUND_PIXEL,
) -> float:
    """Reconstruction + codebook/commitment losses with a straight-through estimator; returns the last MSE.

    `vq` has Janus's VQ-16 submodule names, which diffusers' `VQModel` shares (encoder, quant_conv, quantize.embedding,
    post_quant_conv, decoder); `background` is the background colour [1, 3, 1, 1] in the range of `pixels`."""
    vq.train()
    optimizer = torch.optim.Adam(vq.parameters(), lr=settings.vq_lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.vq_lr, settings.vq_steps, pct_start=0.1)
    mse = float("nan")
    used = torch.zeros(settings.codebook_size, dtype=torch.bool)
    for step in range(settings.vq_steps):
        batch = pixels[torch.randint(len(pixels), (settings.batch_size,), generator=generator)]
        latent, codes, ids = _quantize(vq, batch)
        used[ids.flatten()] = True
        straight = latent + (codes - latent).detach()
        recon = vq.decoder(vq.post_quant_conv(straight))
        # Shapes cover a small share of the pixels: weight them up so colours are learnt before the background.
        weight = 1.0 + FOREGROUND_WEIGHT * ((batch - background).abs().amax(dim=1, keepdim=True) > 0.1)
        loss_rec = (weight * (recon - batch) ** 2).mean() / weight.mean()
        loss = loss_rec + F.mse_loss(codes, latent.detach()) + 0.25 * F.mse_loss(latent, codes.detach())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % RESTART_EVERY == 0 and step < settings.vq_steps // 2:  # the second half settles the codes
            _restart_dead_codes(vq, latent, used, generator)
            used[:] = False
        mse = loss_rec.item()
        if step % 50 == 0 or step == settings.vq_steps - 1:
            logger.info("vq step %d/%d: reconstruction mse %.4f", step + 1, settings.vq_steps, mse)
    vq.eval()
    return mse


@torch.no_grad()
def _restart_dead_codes(
    vq: torch.nn.Module, latent: torch.Tensor, used: torch.Tensor, generator: torch.Generator
) -> None:
    """Move codes no image picked since the last restart onto random current latents (avoids codebook collapse)."""
    dead = (~used).nonzero().flatten()
    vectors = latent.detach().permute(0, 2, 3, 1).reshape(-1, latent.shape[1])  # [N * h * w, C]
    picks = torch.randint(len(vectors), (len(dead),), generator=generator)
    vq.quantize.embedding.weight[dead] = vectors[picks] + 0.01 * torch.randn(
        len(dead), vectors.shape[1], generator=generator
    )


@torch.no_grad()
def image_tokens(vq: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """Token ids [N, h * w] of images, row-major like `vqmodel.decode` expects."""
    return _quantize(vq, pixels)[2].flatten(1)


# ---------------------------------------------------------------------------------------------------------------------
# Supervised warm start
# ---------------------------------------------------------------------------------------------------------------------


def answer_ids(processor: JanusProcessor, answers: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded completion ids [N, L] of `" {letter}" + EOS` (the assistant turn after "<|Assistant|>:")."""
    rows = [
        [*processor.tokenizer.encode(f" {a}", add_special_tokens=False), processor.special.eos_id] for a in answers
    ]
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), processor.special.pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
    return ids, mask


def understanding_loss(model, processor: JanusProcessor, samples: list[ToySample], answers: list[str]) -> torch.Tensor:
    """Teacher-forced answer NLL of `answers` (one letter per sample: the gold one, or a noisy one)."""
    questions = [TOY_UNDERSTANDING_TEMPLATE.format(question=s.question) for s in samples]
    batch = processor.encode_understanding(questions, [s.image for s in samples], system_prompt=TOY_SYSTEM_PROMPT)
    ids, mask = answer_ids(processor, answers)
    logps = answer_token_logps(model, batch, ids, mask)  # [N, L]
    return -(logps * mask).sum() / mask.sum()


def generation_loss(
    model, processor: JanusProcessor, samples: list[ToySample], tokens: torch.Tensor, drop: torch.Tensor
) -> torch.Tensor:
    """Teacher-forced image-token NLL; rows where `drop` is set see the all-pad CFG prompt instead of the caption."""
    batch = processor.encode_generation([s.prompt for s in samples])
    input_ids = torch.where(drop.unsqueeze(1), batch.uncond_input_ids, batch.input_ids)  # [N, T]
    batch = GenerationBatch(input_ids, batch.attention_mask, batch.uncond_input_ids)
    return -image_token_logps(model, batch, tokens, cfg_weight=None).mean()


def noisy_targets(
    world: list[ToySample], tokens: torch.Tensor, idx: torch.Tensor, settings: ToySettings, generator: torch.Generator
) -> tuple[list[str], torch.Tensor]:
    """Warm-start targets of the rows `idx`: (letters [N], image tokens [N, h * w]).

    Each letter is the gold one, or with probability `answer_noise` a uniformly random one of `LETTERS`; each token
    row is the scene's own, or with probability `image_noise` a uniformly random world sample's.
    """
    n = len(idx)
    noise = torch.tensor([[settings.answer_noise], [settings.image_noise]])
    noisy = torch.rand(2, n, generator=generator) < noise  # [task, row]
    letters = torch.randint(len(LETTERS), (n,), generator=generator).tolist()
    gold = [world[i].answer for i in idx.tolist()]
    answers = [LETTERS[k] if swap else a for a, k, swap in zip(gold, letters, noisy[0].tolist(), strict=True)]
    other = torch.randint(len(world), (n,), generator=generator)
    return answers, torch.where(noisy[1].unsqueeze(1), tokens[other], tokens[idx])


def warm_start(model, processor, world: list[ToySample], tokens: torch.Tensor, settings: ToySettings) -> None:
    """Joint steps on both tasks with the settings' label noise; every module but the VQ model learns."""

    def losses(idx, samples, drop, answers, targets, generator):
        und = understanding_loss(model, processor, samples, answers)
        return und, generation_loss(model, processor, samples, targets, drop)

    params = [p for n, p in model.named_parameters() if "vqmodel" not in n]
    joint_warm_start(model, params, world, tokens, settings, losses, "answer nll %.3f, image nll %.3f")


def joint_warm_start(
    model: torch.nn.Module,
    params: list[torch.nn.Parameter],
    world: list[ToySample],
    tokens: torch.Tensor,
    settings: ToySettings,
    losses: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    log_format: str,
) -> None:
    """The warm-start loop of both toy models: per step a batch of world rows, the CFG drop and the noisy targets
    (`noisy_targets`), then `losses(idx, samples, drop, answers, targets, generator) -> (understanding,
    generation)`, summed (`generator`: the loop's, for losses that draw, e.g. masks)."""
    generator = torch.Generator().manual_seed(settings.seed + 1)
    optimizer = torch.optim.AdamW(params, lr=settings.lm_lr, weight_decay=0.0)
    model.train()
    for step in range(settings.lm_steps):
        idx = torch.randint(len(world), (settings.batch_size,), generator=generator)
        samples = [world[i] for i in idx.tolist()]
        drop = torch.rand(len(samples), generator=generator) < settings.uncond_prob
        answers, targets = noisy_targets(world, tokens, idx, settings, generator)
        und, gen = losses(idx, samples, drop, answers, targets, generator)
        optimizer.zero_grad(set_to_none=True)
        (und + gen).backward()
        optimizer.step()
        if step % 50 == 0 or step == settings.lm_steps - 1:
            logger.info("warm start step %d/%d: " + log_format, step + 1, settings.lm_steps, und.item(), gen.item())
    model.eval()


@torch.no_grad()
def evaluate(
    model,
    processor,
    samples: list[ToySample],
    cfg_weight: float = TOY_CFG_WEIGHT,
    seed: int = 0,
    greedy: bool = False,
) -> dict[str, float]:
    """Accuracy and toy_geneval reward on `samples`: answers and images sampled at temperature 1, or greedy."""
    torch.manual_seed(seed)
    questions = [TOY_UNDERSTANDING_TEMPLATE.format(question=s.question) for s in samples]
    batch = processor.encode_understanding(questions, [s.image for s in samples], system_prompt=TOY_SYSTEM_PROMPT)
    special = processor.special
    answers = sample_answer_tokens(
        model,
        batch,
        max_new_tokens=4,
        eos_token_id=special.eos_id,
        pad_token_id=special.pad_id,
        top_k=1 if greedy else None,
    )
    texts = processor.decode_answers(answers.completion_ids)
    accuracy = accuracy_reward([s.question for s in samples], texts, answer=[s.answer for s in samples])
    prompts = [s.prompt for s in samples]
    images = sample_image_tokens(
        model, processor.encode_generation(prompts), cfg_weight=cfg_weight, top_k=1 if greedy else None
    )
    pixels = model.model.vqmodel.decode(images.tokens).clamp(-1, 1)
    reward = toy_geneval(prompts, [""] * len(prompts), images=pixels)
    return {"accuracy": sum(accuracy) / len(accuracy), "toy_geneval": sum(reward) / len(reward)}


def read_settings(out_dir: str | Path) -> dict | None:
    """The settings a toy checkpoint folder was built with (None when it is not a toy checkpoint)."""
    path = Path(out_dir) / SETTINGS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def build_toy_checkpoint(out_dir: str | Path, settings: ToySettings | None = None) -> dict:
    """Build the toy Janus-Pro into `out_dir` (original layout + `toy_settings.json`); returns the summary dict."""
    return with_pinned_threads(_build, Path(out_dir), settings or ToySettings())


def with_pinned_threads(build: Callable[[Path, ToySettings], dict], out_dir: Path, settings: ToySettings) -> dict:
    """`build(out_dir, settings)` with `settings.threads` intra-op threads (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return build(out_dir, settings)
    finally:
        torch.set_num_threads(threads)


def summarise(
    settings: ToySettings, vq_mse: float, tokens: torch.Tensor, evaluate: Callable[..., dict], start: float
) -> dict:
    """The build summary: settings and key, VQ fit, codes used, `evaluate()` sampled and `evaluate(greedy=True)`."""
    summary = {"settings": asdict(settings), "key": settings.key(), "vq_mse": vq_mse}
    summary |= {"codes_used": int(tokens.unique().numel()), **evaluate()}
    # Greedy: what the model would do if it stopped hedging, i.e. the room RL has first.
    greedy = evaluate(greedy=True)
    summary |= {f"greedy_{key}": value for key, value in greedy.items()}
    summary["build_seconds"] = round(time.monotonic() - start, 1)
    return summary


def write_summary(out: Path, summary: dict, name: str) -> dict:
    """Written last: a folder with this file is a complete toy build (the demo's cache check reads it)."""
    (out / SETTINGS_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    logger.info("%s -> %s: %s", name, out, summary)
    return summary


def _build(out_dir: Path, settings: ToySettings) -> dict:
    start = time.monotonic()
    torch.manual_seed(settings.seed)
    tokenizer = build_bpe_tokenizer(world_corpus(), vocab_size=640)
    config = toy_config(tokenizer.get_vocab_size(), settings)
    with tempfile.TemporaryDirectory() as tmp:
        model, processor = load_pretrained(write_random_checkpoint(tmp, config, tokenizer, settings.seed))
    world = make_world(settings.num_scenes, settings.seed, settings.image_size)
    pixels = to_pixels([s.image for s in world])
    generator = torch.Generator().manual_seed(settings.seed)
    vq_mse = train_vq(model.model.vqmodel, pixels, settings, generator)
    tokens = image_tokens(model.model.vqmodel, pixels)  # [N, 16]
    warm_start(model, processor, world, tokens, settings)
    held_out = make_world(settings.eval_scenes, settings.seed + 1000, settings.image_size)
    summary = summarise(settings, vq_mse, tokens, partial(evaluate, model, processor, held_out), start)
    out = export_original(model, processor.tokenizer, out_dir)
    return write_summary(out, summary, "toy Janus-Pro")
