"""What every benchmark driver shares: model loading, atomic and resumable outputs, the batched answer and image
runners, answer-text parsing, benchmark-file reading, result files and tables.

Deliberately not here: benchmark formats and scoring (one module per benchmark). All model calls go through the
`janus` package (templates, CFG sampler, VQ decoder), so base and trained checkpoints see identical inputs.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import logging
import os
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from backbones import BACKBONES, AnswerSampling, Backbone, ImageSampling, load_backbone
from backbones.interface import to_pil
from data_tools.image_io import to_rgb
from data_tools.jsonl import (  # the repo's one atomic writer (tmp + os.replace) and JSONL reader (file:line errors)
    atomic_write_bytes,
    atomic_write_text,
    iter_jsonl,
)
from janus.sampling import image_seed  # a pure seed hash, shared by every backbone's drivers
from open_r1.evaluation.run_key import claim_out_dir, make_key

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# ---------------------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------------------


def resolve_device(device: str | None) -> torch.device:
    """The requested device, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    """bfloat16 on GPU (Janus-Pro ships bf16 weights), float32 on CPU, unless `dtype` names one of DTYPES."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not supported; use one of {sorted(DTYPES)}.")
    return DTYPES[dtype]


def load_model(
    model_path: str | Path, device: str | None = None, dtype: str | None = None, backbone: str | None = None
) -> tuple[torch.nn.Module, Backbone]:
    """`(model, backbone)` from a local checkpoint (any layout its backbone reads), in eval mode; `backbone` None
    infers the family from the checkpoint's config.json."""
    resolved = resolve_device(device)
    found, model = load_backbone(model_path, backbone, dtype=resolve_dtype(dtype, resolved), device=resolved)
    model.eval()
    return model, found


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def is_main_process() -> bool:
    """Rank 0 (or no distributed launcher): the process that shows progress bars and summaries (issue 16)."""
    return int(os.environ.get("RANK", "0")) == 0


def progress(total: int, desc: str, unit: str) -> tqdm:
    """A tqdm bar (done/total, rate, ETA) on stderr, shown by the main process only."""
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, disable=not is_main_process())


def warn_if_too_long(model: torch.nn.Module, prompt_tokens: int, new_tokens: int, what: str) -> None:
    """Warn when prompt + new tokens exceed the language model's context (positions past it are untrained)."""
    config = getattr(model.config, "text_config", model.config)
    context = getattr(config, "max_position_embeddings", None)
    if context and prompt_tokens + new_tokens > context:
        logger.warning(
            "%s: %d prompt + %d new tokens exceed the model's context of %d tokens; outputs past it are unreliable "
            "(shorten the prompt or lower --max_new_tokens).",
            what,
            prompt_tokens,
            new_tokens,
            context,
        )


# ---------------------------------------------------------------------------------------------------------------------
# Files: atomic writes (a killed run never leaves a half-written output that resume would take as finished)
# ---------------------------------------------------------------------------------------------------------------------


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def save_png(image: Image.Image, path: Path) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


class PredictionLog:
    """Append-only JSONL of per-sample records keyed by `id`; reopening it skips the ids already answered.

    Each batch is appended with one write + fsync, so a killed run loses at most a partly written last line,
    which is dropped (and rewritten away) on reload.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        original = self.path.read_text(encoding="utf-8")
        lines = original.splitlines()
        kept = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):
                    logger.warning("%s: dropping a partly written last line (the run was interrupted)", self.path)
                    break
                raise ValueError(f"{self.path}:{number}: not valid JSON; delete the file to start over.") from None
            self.records[str(record["id"])] = record
            kept.append(line + "\n")
        if "".join(kept) != original:  # drop the broken tail so later appends start on a fresh line
            atomic_write_text(self.path, "".join(kept))

    def __contains__(self, item_id: object) -> bool:
        return str(item_id) in self.records

    def __len__(self) -> int:
        return len(self.records)

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
            handle.flush()
            os.fsync(handle.fileno())
        for record in records:
            self.records[str(record["id"])] = record


# ---------------------------------------------------------------------------------------------------------------------
# Benchmark files
# ---------------------------------------------------------------------------------------------------------------------


def find_files(paths: Sequence[str | Path], patterns: Sequence[str]) -> list[Path]:
    """Files named directly, plus files matching `patterns` anywhere under named folders (sorted, de-duplicated)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted({f for pattern in patterns for f in path.rglob(pattern) if f.is_file()})
        elif path.is_file():
            found.append(path)
        else:
            raise ValueError(f"data path {path} does not exist; pass the downloaded benchmark files or their folder.")
    if not found:
        raise ValueError(f"no files matching {list(patterns)} under {[str(p) for p in paths]}; check the data path.")
    return list(dict.fromkeys(found))


def read_table(path: Path) -> pd.DataFrame:
    """One benchmark file as a DataFrame: parquet, TSV, JSONL, or a JSON list of objects."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".tsv":
        return pd.read_csv(path, sep="\t", keep_default_na=False)
    if suffix == ".jsonl":
        return pd.DataFrame([row for _, row in read_jsonl_objects(path)])
    if suffix == ".json":
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            # Some benchmarks (POPE) ship JSON Lines under a .json name.
            return pd.DataFrame([row for _, row in read_jsonl_objects(path)])
        rows = [value] if isinstance(value, dict) else value  # a dict: a JSON Lines file of one line
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise ValueError(f"{path}: expected a JSON list of objects or JSON Lines (one object per line).")
        return pd.DataFrame(rows)
    raise ValueError(f"{path}: unsupported file type {suffix!r}; expected .parquet, .tsv, .jsonl or .json.")


def read_jsonl_objects(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """`("file:line", object)` for every line of a JSONL file; a bad line raises ValueError naming file:line."""
    rows = []
    for where, row in iter_jsonl(path):
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object per line, got {type(row).__name__}.")
        rows.append((where, row))
    return rows


def check_limit(limit: int | None) -> None:
    """--limit must keep at least one item: a negative one would silently drop items from the end."""
    if limit is not None and limit < 1:
        raise ValueError(f"--limit {limit}: must be >= 1 (a smoke run of N items); omit it for the full benchmark.")


def require_items(items: Sequence[Any], data: Sequence[str | Path]) -> None:
    if not items:
        raise ValueError(f"no items in {[str(p) for p in data]}; check the data path (an empty file scores nothing).")


def require_columns(frame: pd.DataFrame, columns: Sequence[str], where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing} (found {list(frame.columns)}); see the README.")


def decode_image(cell: Any, image_root: str | Path | None = None, where: str = "image") -> Image.Image:
    """An RGB image from a table cell: {"bytes", "path"} dict (HF parquet), raw bytes, base64 text (TSV) or a path."""
    if isinstance(cell, dict):
        if cell.get("bytes") is not None:
            return decode_image(cell["bytes"], image_root, where)
        if cell.get("path"):
            return decode_image(cell["path"], image_root, where)
        raise ValueError(f"{where}: image dict has neither bytes nor path.")
    if isinstance(cell, bytes | bytearray):
        return _open_image(io.BytesIO(cell), where)
    if isinstance(cell, str) and cell:
        candidate = Path(image_root) / cell if image_root else Path(cell)
        if candidate.is_file():
            return _open_image(candidate, f"{where} ({candidate})")
        try:
            data = base64.b64decode(cell, validate=True)
        except binascii.Error:
            data = None
        if data:
            return _open_image(io.BytesIO(data), where)
        raise ValueError(f"{where}: {cell[:80]!r} is neither a file (image_root={image_root}) nor base64 image data.")
    raise ValueError(f"{where}: unsupported image cell of type {type(cell).__name__}.")


def _open_image(source: io.BytesIO | Path, where: str) -> Image.Image:
    try:
        with Image.open(source) as image:
            image.load()  # decode now: a corrupt cell fails here, with its row, not mid-batch
            return to_rgb(image)  # 16-bit greyscale scaled, not clipped to white
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{where}: the image cannot be decoded ({err}); the cell or file is corrupt.") from None


# ---------------------------------------------------------------------------------------------------------------------
# Answer parsing: the accuracy reward's own parsers (rewards.reward_understand), so training and evaluation agree
# ---------------------------------------------------------------------------------------------------------------------


def extract_yes_no(completion: str) -> str | None:
    """ "yes" / "no" from a completion's answer span (the `<answer>` content, else the text minus `<think>`), first
    rule that fires: a leading yes/no, an "answer is yes/no" phrase (the last one), the first standalone yes/no."""
    from rewards.reward_understand import answer_span

    text = answer_span(completion).lower()
    leading = re.match(r"\W*(yes|no)\b", text)
    if leading:
        return leading.group(1)
    stated = re.findall(r"\banswer\b\W*(?:is\W*)?(yes|no)\b", text)
    if stated:
        return stated[-1]
    words = re.findall(r"\b(yes|no)\b", text)
    return words[0] if words else None


def choice_letter(completion: str, options: list[str] | dict[str, str] | None = None) -> str | None:
    """Option letter chosen by a completion, parsed exactly as the accuracy reward parses it."""
    from rewards.reward_understand import extract_choice

    return extract_choice(completion, options or None)


# ---------------------------------------------------------------------------------------------------------------------
# Understanding runner
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class UnderstandingItem:
    """One question about one image. `question` is the full text after the image (options and instruction included)."""

    id: str
    question: str
    answer: str
    load_image: Callable[[], Image.Image]  # decoded lazily, one batch at a time
    meta: dict[str, Any] = field(default_factory=dict)  # saved with the prediction (category, split, ...)


@dataclass
class AnswerSettings:
    """Decoding for understanding benchmarks: greedy by default, identical for base and trained models."""

    batch_size: int = 8
    max_new_tokens: int = 512
    temperature: float = 1.0
    do_sample: bool = False
    system_prompt: str | None = None  # None: the backbone's default (Janus-Pro's official system prompt)
    # Wraps each benchmark question, e.g. the trainer's think/answer template (open_r1.configs); "{question}" = as is.
    question_template: str = "{question}"
    # janus decode loop: "compiled" | "eager" | None (compiled on CUDA); same draws either way, so not in the key.
    rollout_decode: str | None = None
    # Lumina-DiMOO's VLMEvalKit mode: ONE greedy answer token in one decode step (max_new_tokens must be 1), scored
    # by the benchmark's own rule-based scorer (the wrapper's LLM judge is not reproduced).
    one_token: bool = False

    def __post_init__(self) -> None:
        check_question_template(self.question_template)
        if self.one_token and (self.max_new_tokens != 1 or self.do_sample):
            raise ValueError(
                f"one_token=True decodes one greedy token: got max_new_tokens={self.max_new_tokens}, do_sample="
                f"{self.do_sample}; set max_new_tokens=1 and do_sample=False (the CLI's --one_token does)."
            )

    def key_fields(self) -> dict[str, Any]:
        """The settings that change the answers (the run key); batch_size and rollout_decode only change speed.
        `one_token` is recorded only when set, so runs without it keep the keys they had before it existed."""
        speed_only = ("batch_size", "rollout_decode") + (() if self.one_token else ("one_token",))
        return {k: v for k, v in asdict(self).items() if k not in speed_only}


def check_question_template(template: str) -> None:
    """`template` must be a format string whose only placeholder is `{question}` (literal braces as `{{ }}`)."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise ValueError(
            f"--question_template {template!r}: not a valid format string ({err}); write literal braces as {{{{ }}}}."
        ) from None
    unknown = sorted(set(fields) - {"question"})
    if unknown or "question" not in fields:
        raise ValueError(
            f"--question_template {template!r}: must contain '{{question}}' and no other placeholder "
            f"(unknown: {unknown}); write literal braces as {{{{ }}}}."
        )


def answer_items(
    model: torch.nn.Module,
    backbone: Backbone,
    items: Sequence[UnderstandingItem],
    log: PredictionLog,
    settings: AnswerSettings,
) -> list[dict[str, Any]]:
    """Answer every item not yet in `log` in batches (appending each batch), and return all items' records."""
    if settings.batch_size < 1:
        raise ValueError(f"batch_size={settings.batch_size} must be >= 1.")
    pending = [item for item in items if item.id not in log]
    logger.info(
        "%d/%d items already answered in %s; answering %d",
        len(items) - len(pending),
        len(items),
        log.path,
        len(pending),
    )
    with progress(len(pending), "answering", "question") as bar:
        for start in range(0, len(pending), settings.batch_size):
            chunk = pending[start : start + settings.batch_size]
            texts = _answer_batch(model, backbone, chunk, settings)
            log.append(
                [
                    {**item.meta, "id": item.id, "question": item.question, "answer": item.answer, "prediction": text}
                    for item, text in zip(chunk, texts)
                ]
            )
            bar.update(len(chunk))
    return [log.records[item.id] for item in items]


def _answer_batch(
    model: torch.nn.Module,
    backbone: Backbone,
    items: Sequence[UnderstandingItem],
    settings: AnswerSettings,
) -> list[str]:
    images = [item.load_image() for item in items]
    questions = [settings.question_template.format(question=item.question) for item in items]
    options = AnswerSampling(
        max_new_tokens=settings.max_new_tokens, temperature=settings.temperature, do_sample=settings.do_sample,
        system_prompt=settings.system_prompt, decode=settings.rollout_decode, one_token=settings.one_token,
    )  # fmt: skip
    with torch.no_grad():
        rollout = backbone.sample_answers(model, questions, images, options)
    prompt_ids = rollout.record.get("input_ids")  # the backbones' convention for the prompt tokens [N, T]
    if prompt_ids is not None:
        warn_if_too_long(model, prompt_ids.shape[1], settings.max_new_tokens, f"question {items[0].id!r}")
    return backbone.decode_answers(rollout.completion_ids.cpu())


# ---------------------------------------------------------------------------------------------------------------------
# Image runner
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class GenerationJob:
    """One prompt to draw. `index` is stable across runs (GenEval line, WISE prompt_id): it fixes its images' seeds."""

    index: int
    prompt: str
    is_done: Callable[[], bool]
    write: Callable[[list[Image.Image]], None]


@dataclass
class GenerationSettings:
    """Image sampling for generation benchmarks (PairUni and Janus-Pro: CFG 5, temperature 1, no top-k)."""

    samples_per_prompt: int = 4
    cfg_weight: float = 5.0
    temperature: float = 1.0
    seed: int = 0
    # Prompts per sampler call: only speed. Every image has its own generator, seeded from (seed, prompt index,
    # image index), and the sampler draws each row from its own generator, so images do not depend on this value
    # (up to float rounding of the batched forward, which can rarely change a draw; see janus.sample_image_tokens).
    prompts_per_batch: int = 1
    decode_batch_size: int = 16
    rollout_decode: str | None = None  # "compiled" | "eager" | None (compiled on CUDA); speed only

    def key_fields(self) -> dict[str, Any]:
        """The settings that change the images (the run key); the batch sizes only change speed."""
        speed_only = ("prompts_per_batch", "decode_batch_size", "rollout_decode")
        return {k: v for k, v in asdict(self).items() if k not in speed_only}


def generate_jobs(
    model: torch.nn.Module,
    backbone: Backbone,
    jobs: Sequence[GenerationJob],
    settings: GenerationSettings,
) -> int:
    """Draw images for every job whose outputs are incomplete; returns how many prompts were drawn.

    Images are seeded per (seed, job index, image index), so a resumed run redraws exactly the missing prompts'
    images, whatever `prompts_per_batch` either run used.
    """
    if settings.prompts_per_batch < 1 or settings.samples_per_prompt < 1:
        raise ValueError(
            f"prompts_per_batch={settings.prompts_per_batch} and samples_per_prompt={settings.samples_per_prompt} "
            "must be >= 1."
        )
    todo = [job for job in sorted(jobs, key=lambda j: j.index) if not job.is_done()]
    with progress(len(todo), "drawing", "prompt") as bar:
        for start in range(0, len(todo), settings.prompts_per_batch):
            group = todo[start : start + settings.prompts_per_batch]
            prompts = [job.prompt for job in group]
            images = sample_images(model, backbone, prompts, settings, [job.index for job in group])
            for job, job_images in zip(group, images):
                job.write(job_images)
            bar.update(len(group))
    return len(todo)


def sample_images(
    model: torch.nn.Module,
    backbone: Backbone,
    prompts: Sequence[str],
    settings: GenerationSettings,
    indices: Sequence[int],
) -> list[list[Image.Image]]:
    """`samples_per_prompt` images for each prompt with the backbone's CFG sampler; image s of prompt `indices[p]`
    draws from its own generator seeded by `image_seed(settings.seed, indices[p], s)`, so it does not depend on the
    batch.
    """
    device = model_device(model)
    k = settings.samples_per_prompt
    rows = [prompt for prompt in prompts for _ in range(k)]  # rows: p0 x k, p1 x k, ...
    seeds = [image_seed(settings.seed, index, sample) for index in indices for sample in range(k)]  # same row order
    generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
    options = ImageSampling(
        cfg_weight=settings.cfg_weight, temperature=settings.temperature, decode=settings.rollout_decode
    )
    with torch.no_grad():
        images = backbone.sample_images(model, rows, options, generators, decode=False)  # decoded per prompt below
    tokens = images.rollout.completion_ids  # [P * k, I]
    prompt_ids = images.rollout.record.get("input_ids")
    if prompt_ids is not None:
        warn_if_too_long(model, prompt_ids.shape[1], tokens.shape[1], f"prompt {indices[0]}")
    return [
        decode_images(model, backbone, prompt_tokens, settings.decode_batch_size) for prompt_tokens in tokens.split(k)
    ]


def decode_images(
    model: torch.nn.Module, backbone: Backbone, tokens: torch.LongTensor, batch_size: int
) -> list[Image.Image]:
    """PIL images of one prompt's image tokens [k, I], decoded `batch_size` at a time.

    Per prompt, not per sampler call: a VQ decoder's float output moves by ~1e-6 with its batch size (enough to
    flip a rounded pixel), so decode batches must not depend on `prompts_per_batch` for the PNGs to be identical
    (which is why the sampler is asked not to decode).
    """
    images: list[Image.Image] = []
    for start in range(0, tokens.shape[0], batch_size):
        with torch.no_grad():
            pixels = backbone.decode_images(model, tokens[start : start + batch_size])  # [b, 3, H, W]
        images += to_pil(pixels.float().cpu())
    return images


# ---------------------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class BenchmarkResult:
    """What `results.json` holds; `compare_runs` reads `benchmark` and `headline`."""

    benchmark: str
    model: str
    headline_metric: str
    headline: float
    num_samples: int
    metrics: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | Path) -> Path:
        """Write `<out_dir>/results.json`, refusing to replace another benchmark's result (one per folder)."""
        path = Path(out_dir) / "results.json"
        if path.is_file():
            previous = read_results_json(path).get("benchmark")
            if previous != self.benchmark:
                raise ValueError(
                    f"{path} holds a {previous!r} result; give each benchmark its own --out_dir (e.g. eval/run/"
                    f"{self.benchmark})."
                )
        write_json(path, asdict(self))
        return path


def read_results_json(path: Path) -> dict[str, Any]:
    """A `results.json` as a dict; a file that is not one (truncated, hand-edited) raises `ValueError` naming it."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{path}: not valid JSON ({err}); fix: rerun the benchmark into a fresh --out_dir, or delete the file"
        ) from err
    if not isinstance(result, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(result).__name__}; fix: rerun the benchmark")
    return result


def percent(numerator: float, denominator: float) -> float:
    """100 * numerator / denominator, 0 for an empty denominator (rounded to 2 decimals for readable JSON)."""
    return round(100.0 * numerator / denominator, 2) if denominator else 0.0


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 1 or value == 0 else f"{value:.3f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(format_value(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------------


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def add_checkpoint_args(parser: argparse.ArgumentParser) -> None:
    """--model_path, --backbone, --device, --dtype: what `load_model` takes (also the CLIs in scripts/)."""
    parser.add_argument(
        "--model_path",
        required=True,
        help="Local checkpoint folder (e.g. Janus-Pro, DeepSeek or transformers layout).",
    )
    parser.add_argument(
        "--backbone", default=None, choices=sorted(BACKBONES), help="Model family (default: from its config.json)."
    )
    parser.add_argument("--device", default=None, help="Default: cuda if available, else cpu.")
    parser.add_argument(
        "--dtype", default=None, choices=sorted(DTYPES), help="Default: bfloat16 on GPU, else float32."
    )


def add_model_args(parser: argparse.ArgumentParser) -> None:
    add_checkpoint_args(parser)
    parser.add_argument(
        "--out_dir", required=True, help="Output folder; rerunning the same run (see run_key.json) resumes."
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="Only the first N items (smoke runs; part of the key)."
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="Delete the outputs of a different run in --out_dir and start over."
    )


def dtype_name(model_or_args: torch.nn.Module | argparse.Namespace) -> str:
    """The compute dtype as the run key records it, from a loaded model or from --device/--dtype before loading."""
    if isinstance(model_or_args, torch.nn.Module):
        return str(next(model_or_args.parameters()).dtype)
    return str(resolve_dtype(model_or_args.dtype, resolve_device(model_or_args.device)))


def model_path_of(model: torch.nn.Module) -> str:
    """The folder a model was loaded from (janus.load_pretrained records it), for the run key."""
    path = getattr(model.config, "_name_or_path", "")
    if not path or not Path(path).exists():
        raise ValueError("the model's config does not name its checkpoint folder; pass model_path=... explicitly.")
    return path


def decode_mode(requested: str | None, device: torch.device | str) -> str:
    """The janus decode loop for `--rollout_decode` (None: compiled on CUDA, eager elsewhere)."""
    from janus.static_decode import default_decode

    return requested or default_decode(device)


def add_decode_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rollout_decode",
        choices=("compiled", "eager"),
        default=None,
        help="Decode loop: 'compiled' (static KV cache, torch.compile; CUDA graphs on GPU) or 'eager' (the reference). "
        "Default: compiled on CUDA, eager on CPU. Same samples either way.",
    )


def add_answer_args(parser: argparse.ArgumentParser) -> None:
    defaults = AnswerSettings()
    add_decode_arg(parser)
    parser.add_argument("--batch_size", type=int, default=defaults.batch_size)
    parser.add_argument(
        "--max_new_tokens", type=int, default=None, help=f"Default: {defaults.max_new_tokens} (1 with --one_token)."
    )
    parser.add_argument(
        "--one_token",
        action="store_true",
        help="Lumina-DiMOO's own MMMU/MMStar mode (its VLMEvalKit wrapper): one greedy answer token in one decode "
        "step, scored by this benchmark's usual rule-based scorer (the wrapper's LLM judge is not reproduced).",
    )
    parser.add_argument(
        "--system_prompt", default=None, help="Override the backbone's default system prompt (same for all runs)."
    )
    parser.add_argument(
        "--question_template",
        default=defaults.question_template,
        help="Format string wrapping each question, e.g. the training template; default: the question as is.",
    )


def answer_settings_from_args(args: argparse.Namespace) -> AnswerSettings:
    if args.one_token and args.max_new_tokens not in (None, 1):
        raise ValueError(f"--one_token decodes one token; drop --max_new_tokens {args.max_new_tokens} (or use 1).")
    max_new_tokens = AnswerSettings.max_new_tokens if args.max_new_tokens is None else args.max_new_tokens
    max_new_tokens = 1 if args.one_token else max_new_tokens
    return AnswerSettings(
        batch_size=args.batch_size,
        max_new_tokens=max_new_tokens,
        one_token=args.one_token,
        system_prompt=args.system_prompt,
        question_template=args.question_template,
        rollout_decode=args.rollout_decode,
    )


def add_generation_args(parser: argparse.ArgumentParser, samples_per_prompt: int) -> None:
    defaults = GenerationSettings()
    add_decode_arg(parser)
    parser.add_argument("--samples_per_prompt", type=int, default=samples_per_prompt)
    parser.add_argument("--cfg_weight", type=float, default=defaults.cfg_weight)
    parser.add_argument("--temperature", type=float, default=defaults.temperature)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--prompts_per_batch",
        type=int,
        default=defaults.prompts_per_batch,
        help="Prompts per sampler call (faster on GPU); images do not depend on it (one seeded generator per image).",
    )


def generation_settings_from_args(args: argparse.Namespace) -> GenerationSettings:
    return GenerationSettings(
        samples_per_prompt=args.samples_per_prompt,
        cfg_weight=args.cfg_weight,
        temperature=args.temperature,
        seed=args.seed,
        prompts_per_batch=args.prompts_per_batch,
        rollout_decode=args.rollout_decode,
    )


def add_understanding_args(parser: argparse.ArgumentParser, data_help: str) -> None:
    """The flags every understanding driver takes: model, data files, output folder, decoding."""
    add_model_args(parser)
    parser.add_argument("--data", nargs="+", required=True, help=data_help)
    add_answer_args(parser)


def answer_and_save(
    model: torch.nn.Module,
    backbone: Backbone,
    items: Sequence[UnderstandingItem],
    out_dir: str | Path,
    settings: AnswerSettings,
) -> list[dict[str, Any]]:
    """Answer `items` into `<out_dir>/predictions.jsonl` (resuming it) and return one record per item."""
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("benchmark items have duplicate ids; pass each benchmark file once.")
    log = PredictionLog(Path(out_dir) / "predictions.jsonl")
    return answer_items(model, backbone, items, log, settings)


def understanding_outputs(out_dir: Path) -> list[Path]:
    """What an understanding driver writes into its folder (what --overwrite deletes)."""
    return [p for p in (out_dir / "predictions.jsonl", out_dir / "results.json") if p.is_file()]


# ---------------------------------------------------------------------------------------------------------------------
# Understanding benchmarks: one run / CLI for all; each benchmark module supplies its loader, scorer and table
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnderstandingBenchmark:
    """A question-answering benchmark (MMMU, MMStar, MME, POPE): what is its own, plus the shared `run` and `main`.

    `load_items(data, limit=..., **loader_options)` reads the benchmark files (`find_files(data, file_patterns)`);
    `score(records)` returns the metrics, of which `metrics[headline_metric]` is the headline; `table(result)` is
    the markdown the CLI prints. `loader_options` maps extra CLI flags (forwarded to `load_items`, default None) to
    their help text.
    """

    name: str  # results.json's "benchmark"
    headline_metric: str
    load_items: Callable[..., list[UnderstandingItem]]
    score: Callable[[Sequence[dict[str, Any]]], dict[str, Any]]
    table: Callable[[BenchmarkResult], str]
    description: str  # the CLI's --help text (the benchmark module's docstring)
    data_help: str
    file_patterns: tuple[str, ...]
    loader_options: dict[str, str] = field(default_factory=dict)

    def load_checked(
        self, data: Sequence[str | Path], limit: int | None, **loader_options: Any
    ) -> list[UnderstandingItem]:
        """The items, with --limit and empty data refused before any model is loaded."""
        check_limit(limit)
        items = self.load_items(data, limit=limit, **loader_options)
        require_items(items, data)
        return items

    def run_key(
        self,
        model_path: str | Path,
        data: Sequence[str | Path],
        settings: AnswerSettings,
        limit: int | None,
        dtype: str,
        loader_options: dict[str, Any],
    ) -> dict[str, Any]:
        """What makes two runs the same run: model files, data file hashes, every output-changing setting."""
        recorded = {**settings.key_fields(), "limit": limit, "dtype": dtype, **loader_options}
        return make_key(self.name, model_path, find_files(data, self.file_patterns), recorded)

    def run(
        self,
        model: torch.nn.Module,
        backbone: Backbone,
        data: Sequence[str | Path],
        out_dir: str | Path,
        settings: AnswerSettings,
        limit: int | None = None,
        model_path: str | Path | None = None,
        overwrite: bool = False,
        **loader_options: Any,
    ) -> BenchmarkResult:
        """Answer the items into `<out_dir>/predictions.jsonl` (resuming the same run), score, save `results.json`."""
        items = self.load_checked(data, limit, **loader_options)
        key = self.run_key(
            model_path or model_path_of(model), data, settings, limit, dtype_name(model), loader_options
        )
        with claim_out_dir(out_dir, key, understanding_outputs, overwrite):
            return self._answer_and_score(model, backbone, items, out_dir, settings, key)

    def _answer_and_score(
        self,
        model: torch.nn.Module,
        backbone: Backbone,
        items: Sequence[UnderstandingItem],
        out_dir: str | Path,
        settings: AnswerSettings,
        key: dict[str, Any],
    ) -> BenchmarkResult:
        records = answer_and_save(model, backbone, items, out_dir, settings)
        metrics = self.score(records)
        result = BenchmarkResult(
            self.name,
            key["model"]["path"],
            self.headline_metric,
            metrics[self.headline_metric],
            len(records),
            metrics,
            key["settings"],
        )
        result.save(out_dir)
        return result

    def build_parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(
            description=self.description, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        add_understanding_args(parser, self.data_help)
        for name, help_text in self.loader_options.items():
            parser.add_argument(f"--{name}", default=None, help=help_text)
        return parser

    def main(self, argv: Sequence[str] | None = None) -> str | None:
        """The benchmark's CLI: check the data and the output folder, load the model, run; returns the summary the
        script prints (None on non-main ranks)."""
        setup_logging()
        args = self.build_parser().parse_args(argv)
        options = {name: getattr(args, name) for name in self.loader_options}
        settings = answer_settings_from_args(args)
        items = self.load_checked(args.data, args.limit, **options)
        key = self.run_key(args.model_path, args.data, settings, args.limit, dtype_name(args), options)
        with claim_out_dir(args.out_dir, key, understanding_outputs, args.overwrite):
            model, backbone = load_model(args.model_path, args.device, args.dtype, args.backbone)
            result = self._answer_and_score(model, backbone, items, args.out_dir, settings, key)
        if not is_main_process():
            return None
        out = Path(args.out_dir)
        return (
            f"{self.table(result)}\n{self.name}: {result.headline_metric} = {format_value(result.headline)} "
            f"over {result.num_samples} items; wrote {out / 'predictions.jsonl'} and {out / 'results.json'}"
        )
