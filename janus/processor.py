"""Janus-Pro prompts, special tokens, understanding image preprocessing and batching (one place for each).

Templates follow the original "deepseek" conversation format of deepseek-ai/Janus (janus/utils/conversation.py,
janus/models/processing_vlm.py): turns `"{role}: {content}"`, user turns end with "\\n\\n", an empty final assistant
turn renders as `"{role}:"`, an optional system prompt comes first, the result is stripped and BOS is prepended.
Image placeholders are expanded at the token-id level, like the original processor. Rows are LEFT-padded.
"""

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
import transformers
from PIL import Image
from torchvision.transforms import InterpolationMode
from transformers import JanusConfig, PreTrainedTokenizerFast

from data_tools.image_io import to_rgb

USER_ROLE = "<|User|>"
ASSISTANT_ROLE = "<|Assistant|>"
# Official default system prompt of the original VLChatProcessor (used for understanding).
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful language and vision assistant. "
    "You are able to understand the visual content that the user provides, "
    "and assist the user with a variety of tasks using natural language."
)
BOS_TOKEN = "<｜begin▁of▁sentence｜>"
EOS_TOKEN = "<｜end▁of▁sentence｜>"
PAD_TOKEN = "<｜▁pad▁｜>"
BOI_TOKEN = "<begin_of_image>"
EOI_TOKEN = "<end_of_image>"
IMAGE_TOKEN = "<image_placeholder>"
BACKGROUND_COLOR = (127, 127, 127)
MIN_SIZE = 14  # smallest resized side in the original VLMImageProcessor


# Janus-Pro "deepseek" template for transformers' apply_chat_template (same text as `format_conversation`): content is
# a string or a list of {"type": "image"} / {"type": "text", "text": ...} parts joined by "\n". Like the original
# VLChatProcessor, a conversation with an image and no system message gets DEFAULT_SYSTEM_PROMPT; text-only
# conversations (text-to-image prompts) get none, as in the original generation scripts.
CHAT_TEMPLATE = (
    "{%- set ns = namespace(text='', has_image=false, has_system=false) -%}"
    "{%- for message in messages -%}"
    "{%- if message['content'] is not string -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{%- set ns.has_image = true -%}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- if message['role'] == 'system' -%}{%- set ns.has_system = true -%}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if ns.has_image and not ns.has_system -%}{%- set ns.text = '" + DEFAULT_SYSTEM_PROMPT + "\n\n' -%}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message['content'] is string -%}{%- set content = message['content'] -%}"
    "{%- else -%}{%- set parts = namespace(items=[]) -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{%- set parts.items = parts.items + ['" + IMAGE_TOKEN + "'] -%}"
    "{%- elif part['type'] == 'text' -%}{%- set parts.items = parts.items + [part['text']] -%}{%- endif -%}"
    "{%- endfor -%}{%- set content = parts.items | join('\n') -%}{%- endif -%}"
    "{%- if message['role'] == 'system' -%}{%- set ns.text = ns.text + (content | trim) + '\n\n' -%}"
    "{%- elif message['role'] == 'user' -%}"
    "{%- set ns.text = ns.text + '" + USER_ROLE + ": ' + (content | trim) + '\n\n' -%}"
    "{%- else -%}{%- set ns.text = ns.text + '" + ASSISTANT_ROLE + ": ' + (content | trim) + '" + EOS_TOKEN + "' -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{%- set ns.text = ns.text + '" + ASSISTANT_ROLE + ":' -%}{%- endif -%}"
    "{{- bos_token + (ns.text | trim) -}}"
)


# Janus-Pro normalises understanding images with mean = std = 0.5 per channel, i.e. pixels in [-1, 1].
JANUS_MEAN_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class SpecialTokens:
    """Ids of the Janus special tokens, looked up by string (ids differ between 1B and 7B)."""

    bos_id: int
    eos_id: int
    pad_id: int
    boi_id: int
    eoi_id: int
    image_id: int

    @classmethod
    def from_tokenizer(cls, tokenizer: PreTrainedTokenizerFast) -> "SpecialTokens":
        vocab = tokenizer.get_vocab()
        strings = {
            "bos_id": BOS_TOKEN,
            "eos_id": EOS_TOKEN,
            "pad_id": PAD_TOKEN,
            "boi_id": BOI_TOKEN,
            "eoi_id": EOI_TOKEN,
            "image_id": IMAGE_TOKEN,
        }
        missing = [s for s in strings.values() if s not in vocab]
        if missing:
            raise ValueError(
                f"Tokenizer lacks the Janus special token(s) {missing}; "
                "use the tokenizer.json of a Janus-Pro checkpoint."
            )
        return cls(**{name: vocab[s] for name, s in strings.items()})


def format_conversation(turns: list[tuple[str, str]], system_prompt: str = "") -> str:
    """Render `(role, content)` turns with the deepseek template (without BOS)."""
    text = system_prompt + "\n\n" if system_prompt else ""
    for index, (role, content) in enumerate(turns):
        content = content.strip()
        if content:
            # Even turns (user) end with "\n\n", odd turns (assistant) with EOS, as in the original template.
            text += f"{role}: {content}" + ("\n\n" if index % 2 == 0 else EOS_TOKEN)
        else:
            text += f"{role}:"
    return text.strip()


@dataclass
class UnderstandingBatch:
    """input_ids/attention_mask [N,T] (left-padded, placeholders expanded), pixel_values [N,3,S,S] in [-1,1]."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    pixel_values: torch.Tensor

    def to(self, device: str | torch.device, dtype: torch.dtype | None = None) -> "UnderstandingBatch":
        """Move to `device`; `dtype` (optional) applies to pixel_values only."""
        return UnderstandingBatch(
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            pixel_values=self.pixel_values.to(device=device, dtype=dtype or self.pixel_values.dtype),
        )

    def repeat_interleave(self, k: int) -> "UnderstandingBatch":
        """Each row repeated k times consecutively ([N,...] -> [N*k,...]), e.g. G generations per prompt."""
        return replace(self, **{f.name: getattr(self, f.name).repeat_interleave(k, dim=0) for f in fields(self)})


@dataclass
class GenerationBatch:
    """input_ids/attention_mask/uncond_input_ids [N,T], left-padded, ending with boi; uncond: pad from BOS to boi."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    uncond_input_ids: torch.Tensor

    def to(self, device: str | torch.device) -> "GenerationBatch":
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def repeat_interleave(self, k: int) -> "GenerationBatch":
        """Each row repeated k times consecutively ([N,T] -> [N*k,T])."""
        return replace(self, **{f.name: getattr(self, f.name).repeat_interleave(k, dim=0) for f in fields(self)})


def _resized_size(height: int, width: int, image_size: int) -> tuple[int, int]:
    """Longer side -> image_size, aspect kept (truncating like the original), sides at least MIN_SIZE."""
    longest = max(height, width)
    if height <= 0 or width <= 0:
        raise ValueError(f"Image has an empty side ({width}x{height}); pass a non-empty image.")
    return max(int(height / longest * image_size), MIN_SIZE), max(int(width / longest * image_size), MIN_SIZE)


class JanusProcessor:
    """Tokenizer + special tokens + Janus-Pro templates + understanding image preprocessing."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerFast,
        image_size: int,
        num_image_tokens: int,
        background_color: tuple[int, int, int] = BACKGROUND_COLOR,
        image_mean: tuple[float, float, float] = JANUS_MEAN_STD,
        image_std: tuple[float, float, float] = JANUS_MEAN_STD,
    ):
        self.tokenizer = tokenizer
        self.special = SpecialTokens.from_tokenizer(tokenizer)
        self.image_size = int(image_size)
        self.num_image_tokens = int(num_image_tokens)
        self.background_color = tuple(int(c) for c in background_color)
        self.image_mean = tuple(float(m) for m in image_mean)
        self.image_std = tuple(float(s) for s in image_std)

    @classmethod
    def from_folder(
        cls, folder: str | Path, tokenizer: PreTrainedTokenizerFast, config: JanusConfig
    ) -> "JanusProcessor":
        """Build from a checkpoint folder's image settings (either format) and the model config (`JanusConfig`)."""
        vision = config.vision_config
        image_size, num_image_tokens = vision.image_size, vision.num_image_tokens
        path, settings = _image_settings(Path(folder))
        if settings.get("image_size", image_size) != image_size:
            raise ValueError(
                f"{path}: image size {settings['image_size']} but the vision tower expects {image_size}; "
                "fix the image size in that file."
            )
        return cls(
            tokenizer,
            image_size=image_size,
            num_image_tokens=num_image_tokens,
            background_color=tuple(settings.get("background_color") or BACKGROUND_COLOR),
            image_mean=tuple(settings.get("image_mean", JANUS_MEAN_STD)),
            image_std=tuple(settings.get("image_std", JANUS_MEAN_STD)),
        )

    def save_pretrained(self, out_dir: str | Path) -> None:
        """Write transformers' Janus processor files: tokenizer (with image_token/boi_token/eoi_token),
        JanusImageProcessor and JanusProcessor settings in processor_config.json, chat_template.jinja."""
        self.to_transformers().save_pretrained(str(out_dir))

    def to_transformers(self) -> "transformers.JanusProcessor":
        """The equivalent `transformers.JanusProcessor` (same tokenizer, image settings and Janus-Pro template)."""
        from transformers import JanusImageProcessor
        from transformers import JanusProcessor as TransformersJanusProcessor

        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=self.tokenizer.backend_tokenizer,
            bos_token=BOS_TOKEN,
            eos_token=EOS_TOKEN,
            pad_token=PAD_TOKEN,
            # Named extra tokens become tokenizer attributes, which transformers' JanusProcessor reads.
            extra_special_tokens={"image_token": IMAGE_TOKEN, "boi_token": BOI_TOKEN, "eoi_token": EOI_TOKEN},
            model_max_length=self.tokenizer.model_max_length,
            padding_side="left",
        )
        image_processor = JanusImageProcessor(
            size={"height": self.image_size, "width": self.image_size},
            image_mean=list(self.image_mean),
            image_std=list(self.image_std),
            min_size=MIN_SIZE,
        )
        image_processor.background_color = self.background_color
        return TransformersJanusProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            chat_template=CHAT_TEMPLATE,
            num_image_tokens=self.num_image_tokens,
        )

    # ------------------------------------------------------------------ prompts

    def understanding_prompt(self, question: str, system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> str:
        """Unexpanded understanding prompt: `<|User|>: <image_placeholder>\\n{question}\\n\\n<|Assistant|>:`."""
        if IMAGE_TOKEN in question:
            raise ValueError(f"question contains {IMAGE_TOKEN!r}; pass the question text only (one image per row).")
        turns = [(USER_ROLE, f"{IMAGE_TOKEN}\n{question}"), (ASSISTANT_ROLE, "")]
        return format_conversation(turns, system_prompt)

    def generation_prompt(self, prompt: str) -> str:
        """Text-to-image prompt: `<|User|>: {prompt}\\n\\n<|Assistant|>:<begin_of_image>` (no system prompt)."""
        return format_conversation([(USER_ROLE, prompt), (ASSISTANT_ROLE, "")], system_prompt="") + BOI_TOKEN

    def _encode(self, text: str) -> list[int]:
        # BOS is added here rather than by the tokenizer's post-processor, so any tokenizer.json behaves the same.
        return [self.special.bos_id, *self.tokenizer.encode(text, add_special_tokens=False)]

    def _expand_images(self, ids: list[int]) -> list[int]:
        """Each <image_placeholder> id -> boi + num_image_tokens x image id + eoi (as the original add_image_token)."""
        image = [self.special.boi_id, *[self.special.image_id] * self.num_image_tokens, self.special.eoi_id]
        out: list[int] = []
        for token in ids:
            out.extend(image if token == self.special.image_id else [token])
        return out

    def _left_pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        length = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), length), self.special.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            input_ids[i, length - len(row) :] = torch.tensor(row, dtype=torch.long)
            attention_mask[i, length - len(row) :] = 1
        return input_ids, attention_mask

    def encode_understanding(
        self,
        questions: list[str],
        images: list[Image.Image] | torch.Tensor,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    ) -> UnderstandingBatch:
        """One image per question -> left-padded ids with expanded image tokens, and preprocessed pixels."""
        if len(questions) != len(images):
            raise ValueError(f"questions ({len(questions)}) and images ({len(images)}) must have the same length.")
        rows = [self._expand_images(self._encode(self.understanding_prompt(q, system_prompt))) for q in questions]
        input_ids, attention_mask = self._left_pad(rows)
        return UnderstandingBatch(input_ids, attention_mask, self.preprocess_images(images))

    def encode_generation(self, prompts: list[str]) -> GenerationBatch:
        """Left-padded text-to-image prompts ending with boi, plus same-length unconditional CFG prompts."""
        rows = [self._encode(self.generation_prompt(p)) for p in prompts]
        input_ids, attention_mask = self._left_pad(rows)
        uncond = input_ids.clone()
        # Original CFG prompt: tokens between BOS and the final boi become pad (left padding is pad already).
        body = attention_mask.bool()
        body[:, -1] = False
        body[torch.arange(len(rows)), attention_mask.argmax(dim=1)] = False  # first real token = BOS
        uncond[body] = self.special.pad_id
        return GenerationBatch(input_ids, attention_mask, uncond)

    def decode_answers(self, completion_ids: torch.Tensor) -> list[str]:
        """Decode completions [N,L]: cut at the first EOS, skip special tokens, strip whitespace."""
        answers = []
        for row in completion_ids.tolist():
            if self.special.eos_id in row:
                row = row[: row.index(self.special.eos_id)]
            answers.append(self.tokenizer.decode(row, skip_special_tokens=True).strip())
        return answers

    # ------------------------------------------------------------------ images

    def preprocess_images(self, images: list[Image.Image] | torch.Tensor) -> torch.Tensor:
        """PIL images or Tensor[N,3,H,W] in [-1,1] -> Tensor[N,3,S,S] in [-1,1] (resize longer side, grey pad)."""
        if isinstance(images, torch.Tensor):
            return self._preprocess_tensor(images)
        if len(images) == 0:
            return torch.zeros(0, 3, self.image_size, self.image_size)
        return torch.stack([self._preprocess_pil(image) for image in images])

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.image_mean, dtype=x.dtype).view(3, 1, 1)
        std = torch.tensor(self.image_std, dtype=x.dtype).view(3, 1, 1)
        return (x - mean) / std

    def _preprocess_pil(self, image: Image.Image) -> torch.Tensor:
        image = to_rgb(image)  # 16-bit greyscale rescaled, not clipped to white
        width, height = image.size
        size = _resized_size(height, width, self.image_size)
        image = TF.resize(image, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)
        side = max(image.size)
        canvas = Image.new("RGB", (side, side), self.background_color)
        canvas.paste(image, ((side - image.size[0]) // 2, (side - image.size[1]) // 2))
        return self._normalize(TF.pil_to_tensor(canvas).float() / 255.0)

    def _preprocess_tensor(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images tensor must be [N,3,H,W] in [-1,1], got shape {tuple(images.shape)}.")
        height, width = images.shape[-2:]
        if height == width == self.image_size:
            # e.g. VQ-decoded images: no resampling, but still the processor's own statistics (issue 25: identity
            # only when mean = std = 0.5, as Janus-Pro's; a CLIP-normalised tower needs the real shift).
            return self._normalize((images + 1) / 2)
        size = _resized_size(height, width, self.image_size)
        # Resample in [0,1] and clamp like the uint8 PIL path, then pad with the grey background.
        x = TF.resize(((images.float() + 1) / 2), list(size), InterpolationMode.BICUBIC, antialias=True).clamp(0, 1)
        side = max(size)
        top, left = (side - size[0]) // 2, (side - size[1]) // 2
        canvas = torch.empty(images.shape[0], 3, side, side, dtype=x.dtype)
        canvas[:] = torch.tensor(self.background_color, dtype=x.dtype).view(1, 3, 1, 1) / 255.0
        canvas[:, :, top : top + size[0], left : left + size[1]] = x
        return self._normalize(canvas).to(images.dtype)


def _image_settings(folder: Path) -> tuple[Path, dict]:
    """(file, {image_size, background_color, image_mean, image_std}) from preprocessor_config.json (the original
    VLMImageProcessor's or an older transformers JanusImageProcessor's) or transformers' processor_config.json
    (`image_processor` entry); empty settings when neither exists."""
    path = folder / "preprocessor_config.json"
    if path.is_file():
        settings = json.loads(path.read_text(encoding="utf-8"))
    else:
        path = folder / "processor_config.json"
        settings = json.loads(path.read_text(encoding="utf-8")).get("image_processor", {}) if path.is_file() else {}
    if isinstance(settings.get("size"), dict) and "image_size" not in settings:  # transformers: {"height", "width"}
        settings["image_size"] = settings["size"].get("height")
    return path, settings


def write_processor_files(
    out_dir: str | Path,
    image_size: int,
    num_image_tokens: int,
    background_color: tuple[int, int, int] = BACKGROUND_COLOR,
    image_mean: tuple[float, float, float] = JANUS_MEAN_STD,
    image_std: tuple[float, float, float] = JANUS_MEAN_STD,
) -> None:
    """processor_config.json / preprocessor_config.json with the original VLChatProcessor key names."""
    out = Path(out_dir)
    processor_config = {
        "add_special_token": False,
        "ignore_id": -100,
        "image_tag": IMAGE_TOKEN,
        "mask_prompt": True,
        "num_image_tokens": num_image_tokens,
        "processor_class": "VLChatProcessor",
        "sft_format": "deepseek",
    }
    preprocessor_config = {
        "background_color": list(background_color),
        "do_normalize": True,
        "image_mean": list(image_mean),
        "image_processor_type": "VLMImageProcessor",
        "image_size": image_size,
        "image_std": list(image_std),
        "min_size": MIN_SIZE,
        "processor_class": "VLChatProcessor",
        "rescale_factor": 1 / 255,
    }
    for name, obj in (("processor_config.json", processor_config), ("preprocessor_config.json", preprocessor_config)):
        (out / name).write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def write_original_tokenizer_files(tokenizer: PreTrainedTokenizerFast, out_dir: str | Path) -> None:
    """tokenizer.json + tokenizer_config.json / special_tokens_map.json as the original Janus-Pro repos ship them."""
    out = Path(out_dir)
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    core = {BOS_TOKEN, EOS_TOKEN, PAD_TOKEN}
    added = tokenizer.backend_tokenizer.get_added_tokens_decoder().values()
    special_map = {
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "pad_token": PAD_TOKEN,
        "additional_special_tokens": [t.content for t in added if t.special and t.content not in core],
    }
    tokenizer_config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "legacy": True,
        "model_max_length": 16384,
        "tokenizer_class": "LlamaTokenizerFast",
        **special_map,
    }
    for name, obj in (("special_tokens_map.json", special_map), ("tokenizer_config.json", tokenizer_config)):
        (out / name).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
