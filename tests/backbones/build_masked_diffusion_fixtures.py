"""Run the ORIGINAL masked-diffusion samplers on the toy logits model and store seeds + tokens as test data.

    python tests/backbones/build_masked_diffusion_fixtures.py \
        --original-src lumina_dimoo=/tmp/Lumina-DiMOO --original-src showo=/tmp/Show-o

The sources are snapshots of Alpha-VLLM/Lumina-DiMOO and showlab/Show-o (not committed; nothing from them is copied
here). Their sampler functions (`generate_image`, `generate_text_understanding`, `Showo.t2i_generate`) run
unmodified; only the model classes they import are replaced by stand-ins that return `toy_logits`, so they need
nothing beyond torch and numpy. Output: tests/backbones/fixtures/masked_diffusion_original.json (atomic write).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import tempfile
import types
from pathlib import Path

import torch
from toy_layouts import (
    LUMINA,
    LUMINA_VOCAB,
    SHOWO,
    SHOWO_VOCAB,
    TEXT,
    lumina_image_ids,
    showo_image_ids,
    text_ids,
)
from toy_logits import toy_logits

logger = logging.getLogger("build_masked_diffusion_fixtures")
OUT = Path(__file__).resolve().parent / "fixtures" / "masked_diffusion_original.json"
SEEDS = (0, 1, 2, 3)
IMAGE_SETTINGS = ({"steps": 4, "cfg": 4.0, "tau": 1.0}, {"steps": 5, "cfg": 0.0, "tau": 0.7})
SHOWO_SETTINGS = ({"steps": 4, "cfg": 1.75, "tau": 1.0}, {"steps": 6, "cfg": 0.0, "tau": 4.5})
TEXT_SETTINGS = (
    {"steps": 4, "block": 4, "tau": 0.0, "cfg": 0.0, "remasking": "low_confidence"},
    {"steps": 4, "block": 4, "tau": 0.8, "cfg": 0.0, "remasking": "low_confidence"},
    {"steps": 8, "block": 8, "tau": 1.0, "cfg": 1.5, "remasking": "low_confidence"},
    {"steps": 2, "block": 4, "tau": 0.5, "cfg": 0.0, "remasking": "random"},
)


class StandInLLaDA(torch.nn.Module):
    """What Lumina-DiMOO's generators call: `model(x, infer=True, ...).logits`, `caching`, `empty_cache`."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # the generators read the device from a parameter

    def forward(self, ids, infer=True, **unused):
        return types.SimpleNamespace(logits=toy_logits(ids, self.vocab))

    def caching(self, use_cache):
        if use_cache:
            raise ValueError("the fixtures never use Lumina-DiMOO's ML-cache")

    def empty_cache(self):
        pass


class StandInShowo:
    """`self` for `Showo.t2i_generate`: `config.mask_token_id` and `self(ids, attention_mask=...) -> logits`."""

    def __init__(self, vocab: int, mask_id: int):
        self.vocab = vocab
        self.config = types.SimpleNamespace(mask_token_id=mask_id)

    def __call__(self, ids, attention_mask=None):
        return toy_logits(ids, self.vocab)


def load_lumina(src: Path):
    """The original generator modules, with `model.LLaDAForMultiModalGeneration` standing for the real class."""
    stand_in = types.ModuleType("model")
    stand_in.LLaDAForMultiModalGeneration = StandInLLaDA
    sys.modules["model"] = stand_in
    sys.path.insert(0, str(src))
    image = importlib.import_module("generators.image_generation_generator")
    text = importlib.import_module("generators.text_understanding_generator")
    return image.generate_image, text.generate_text_understanding


def load_showo(src: Path):
    """`Showo.t2i_generate` with its `models` package imported around stand-ins for the Phi and diffusers parts."""
    package = types.ModuleType("models")
    package.__path__ = [str(src / "models")]
    utils = types.ModuleType("models.modeling_utils")
    utils.ModelMixin, utils.ConfigMixin = torch.nn.Module, object
    utils.register_to_config = lambda init: init
    phi = types.ModuleType("models.phi")
    phi.PhiForCausalLM = object
    sys.modules.update({"models": package, "models.modeling_utils": utils, "models.phi": phi})
    return importlib.import_module("models.modeling_showo").Showo.t2i_generate


def lumina_image_cases(generate_image) -> list[dict]:
    cases = []
    for setting in IMAGE_SETTINGS:
        for seed in SEEDS:
            ids, uncond_prefix, code_start = lumina_image_ids()
            codes = generate_image(
                StandInLLaDA(LUMINA_VOCAB),
                ids,
                seq_len=LUMINA["height"] * LUMINA["width"],
                newline_every=LUMINA["width"],
                timesteps=setting["steps"],
                mask_token_id=LUMINA["mask"],
                newline_id=LUMINA["newline"],
                temperature=setting["tau"],
                cfg_scale=setting["cfg"],
                uncon_ids=uncond_prefix,
                code_start=code_start,
                codebook_size=LUMINA["codebook"],
                text_vocab_size=LUMINA["text_vocab"],
                generator=torch.Generator().manual_seed(seed),
            )
            cases.append({**setting, "seed": seed, "tokens": codes[0].tolist()})
    return cases


def showo_image_cases(t2i_generate) -> list[dict]:
    cases = []
    config = types.SimpleNamespace(
        model=types.SimpleNamespace(
            showo=types.SimpleNamespace(
                num_vq_tokens=SHOWO["tokens"],
                num_new_special_tokens=SHOWO["specials"],
                llm_vocab_size=SHOWO["llm_vocab"],
            )
        ),
        dataset=types.SimpleNamespace(preprocessing=types.SimpleNamespace(max_seq_length=SHOWO["max_seq_length"])),
    )
    for setting in SHOWO_SETTINGS:
        for seed in SEEDS:
            cond, uncond = showo_image_ids()
            codes = t2i_generate(
                StandInShowo(SHOWO_VOCAB, SHOWO["mask"]),
                input_ids=cond,
                uncond_input_ids=uncond if setting["cfg"] > 0 else None,
                attention_mask=None,
                temperature=setting["tau"],
                timesteps=setting["steps"],
                guidance_scale=setting["cfg"],
                generator=torch.Generator().manual_seed(seed),
                config=config,
            )
            cases.append({**setting, "seed": seed, "tokens": codes[0].tolist()})
    return cases


def text_cases(generate_text) -> list[dict]:
    cases = []
    start = len(TEXT["prompt"])
    for setting in TEXT_SETTINGS:
        for seed in SEEDS:
            torch.manual_seed(seed)  # the original draws from the global RNG
            out = generate_text(
                StandInLLaDA(TEXT["vocab"]),
                text_ids(),
                steps=setting["steps"],
                gen_length=TEXT["gen_length"],
                block_length=setting["block"],
                temperature=setting["tau"],
                cfg_scale=setting["cfg"],
                remasking=setting["remasking"],
                mask_id=TEXT["mask"],
                code_start=start,
            )
            cases.append({**setting, "seed": seed, "tokens": out[0, start : start + TEXT["gen_length"]].tolist()})
    return cases


def write_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        json.dump(payload, handle)
    os.replace(handle.name, path)


def parse_sources(values: list[str]) -> dict[str, Path]:
    sources = {}
    for value in values:
        name, _, path = value.partition("=")
        if (
            name not in ("lumina_dimoo", "showo")
            or not Path(path, "models" if name == "showo" else "generators").is_dir()
        ):
            raise ValueError(
                f"--original-src {value!r}: use lumina_dimoo=<Lumina-DiMOO snapshot> or showo=<Show-o snapshot> "
                "(a folder holding generators/ or models/)."
            )
        sources[name] = Path(path)
    return sources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original-src", action="append", required=True, help="name=path, for both originals")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    sources = parse_sources(args.original_src)
    payload = {"toy_seed": 0, "torch": torch.__version__}
    if "lumina_dimoo" in sources:
        generate_image, generate_text = load_lumina(sources["lumina_dimoo"])
        payload["lumina_dimoo_image"] = lumina_image_cases(generate_image)
        payload["llada_text"] = text_cases(generate_text)
    if "showo" in sources:
        payload["showo_image"] = showo_image_cases(load_showo(sources["showo"]))
    write_atomic(args.out, payload)
    logger.info("wrote %s (%s)", args.out, ", ".join(k for k in payload if k.endswith(("image", "text"))))


if __name__ == "__main__":
    main()
