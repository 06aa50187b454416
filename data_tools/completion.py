"""Cross-modal semantic completion (PairUni §1 step 2) with an OpenAI-compatible API, verified and cached.

Understanding medoid -> a caption containing every visual detail needed to answer its question;
generation medoid -> a 4-option multiple-choice question (letter answer) about what its prompt names.
Each draft is checked by a verify call (structured verdict: contradiction / hallucination vs the image
and the original text); a rejected draft is regenerated with the verifier's reason, up to
`max_regenerations` times, then the sample is dropped and counted (a redraft identical to a rejected
one keeps its cached verdict).

Every call goes through `Completer.call`: on-disk cache keyed by sha256(model, task, prompts, image
bytes, schema) written atomically (a crash or rerun never repeats a finished call), retries with
exponential backoff + jitter on 429 / 5xx / timeouts / connection errors / malformed JSON, and a usage
tally. Samples run concurrently on a thread pool (`max_in_flight` requests); results keep input order.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, Protocol

import openai
import pydantic
from pydantic import BaseModel, Field

from data_tools.jsonl import atomic_write_json
from data_tools.multiple_choice import format_mcq
from data_tools.schema import GenerationSample, UnderstandingSample

logger = logging.getLogger(__name__)


class Caption(BaseModel):
    caption: str = Field(description="One paragraph describing the image, including every detail the question needs.")


class MultipleChoice(BaseModel):
    question: str = Field(description="The question stem, without the options.")
    # The count is checked locally (`_mcq_problem`), not in the schema: strict structured-output
    # schemas on some OpenAI-compatible servers reject minItems/maxItems.
    options: list[str] = Field(description="Exactly four distinct answer options.")
    answer: Literal["A", "B", "C", "D"] = Field(description="Letter of the correct option.")


class Verdict(BaseModel):
    contradiction: bool = Field(description="The new text contradicts the image or the original text.")
    hallucination: bool = Field(description="The new text states something not supported by the image or text.")
    reason: str = Field(description="One sentence explaining the verdict.")

    @property
    def accepted(self) -> bool:
        return not (self.contradiction or self.hallucination)


SYSTEM = "You write precise, factual annotations of images for a vision-language training set."
CAPTION_PROMPT = (
    "Here are an image and a question about it.\nQuestion: {question}\nAnswer: {answer}\n\n"
    "Write a caption for a text-to-image model that describes this image and contains every visual detail "
    "needed to answer the question (objects, counts, colours, text, positions). Do not mention the question."
)
MCQ_PROMPT = (
    "Here are an image and the text-to-image prompt it was made from.\nPrompt: {prompt}\n\n"
    "Write one multiple-choice question about visual elements named in the prompt that can be answered from "
    "the image, with exactly four distinct options and the letter (A-D) of the correct one."
)
VERIFY_CAPTION_PROMPT = (
    "Original question: {question}\nOriginal answer: {answer}\nNew caption: {caption}\n\n"
    "Check the new caption against the image and the original question/answer. Does it contradict them, "
    "or state details that are not in the image (hallucination)?"
)
VERIFY_MCQ_PROMPT = (
    "Original prompt: {prompt}\nNew question:\n{question}\nStated answer: {answer}\n\n"
    "Check the new question against the image and the original prompt. Is the stated answer wrong or "
    "contradicted by them, or does the question ask about something not in the image (hallucination)?"
)
RETRY_NOTE = "\n\nA previous draft was rejected by a reviewer: {reason} Write a corrected version."
# Dry-run estimate: one image in high detail (~512x512 tiles) and average output lengths per call;
# reasoning models (o3) add hidden reasoning tokens that cannot be estimated in advance.
IMAGE_TOKENS_ESTIMATE = 765
OUTPUT_TOKENS_ESTIMATE = {"caption": 150, "mcq": 120, "verify_caption": 60, "verify_mcq": 60}


@dataclass(frozen=True)
class ChatRequest:
    """One structured-output call about one image; `context` carries the texts for offline backends."""

    task: str  # "caption" | "mcq" | "verify_caption" | "verify_mcq"
    user: str
    image_path: str
    response_model: type[BaseModel]
    context: dict = field(default_factory=dict, hash=False)
    system: str = SYSTEM


@dataclass(frozen=True)
class Reply:
    parsed: BaseModel
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatBackend(Protocol):
    model: str

    def __call__(self, request: ChatRequest) -> Reply: ...


class MalformedResponse(Exception):
    """The server answered, but not with JSON that fits the response schema (retried)."""


# Status errors (429, 5xx) are decided by code in `is_retryable`; these are the other retryable failures.
RETRYABLE = (
    openai.APITimeoutError,
    openai.APIConnectionError,
    MalformedResponse,
    pydantic.ValidationError,
    json.JSONDecodeError,
)


# Failures of one sample's request that persisted through the retries: the server keeps refusing it, answering it
# with output that does not fit the schema or with a body that is not JSON, or rejects the request itself (400/422,
# e.g. an image it cannot read). That sample is dropped and counted. Anything else (a rejected key, a server still
# down after the retries, a bug) stops the build; the cache makes the rerun resume where it stopped.
SAMPLE_ERRORS = (
    MalformedResponse,
    pydantic.ValidationError,
    json.JSONDecodeError,
    openai.APIResponseValidationError,
    openai.BadRequestError,
    openai.UnprocessableEntityError,
)


class RetriesExhausted(RuntimeError):
    """Transient errors alone (429, 5xx, timeouts) outlasted one call's retries: the build stops with one line."""


def is_retryable(err: BaseException) -> bool:
    """429, 5xx, timeouts, dropped connections and malformed structured output are worth retrying."""
    if isinstance(err, openai.APIStatusError):
        return err.status_code == 429 or err.status_code >= 500
    return isinstance(err, RETRYABLE)


def image_data_url(path: str | Path) -> str:
    data = Path(path).read_bytes()
    mime = {".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp", ".gif": "gif"}.get(Path(path).suffix.lower(), "png")
    return f"data:image/{mime};base64,{base64.b64encode(data).decode()}"


class OpenAIBackend:
    """`chat.completions.parse` with a pydantic `response_format`; the client's own retries are off (ours apply)."""

    def __init__(self, model: str = "o3", base_url: str | None = None, api_key: str | None = None, timeout=120.0):
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise ValueError("no API key; fix: set OPENAI_API_KEY or pass --api-key (or --dry-run to estimate cost)")
        self.model = model
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)

    def check_credentials(self) -> None:
        """One free request (`GET /models`) before any expensive stage: a rejected key or an unreachable server
        fails here with one line. A server without `/models` is not an error (the first real call decides)."""
        try:
            self.client.models.list()
        except (openai.AuthenticationError, openai.PermissionDeniedError) as err:
            raise ValueError(
                f"API key rejected by {self.client.base_url} (HTTP {err.status_code}); "
                "fix: pass a valid --api-key or set OPENAI_API_KEY"
            ) from err
        except openai.APIConnectionError as err:
            raise ValueError(f"cannot reach {self.client.base_url} ({err}); fix: check --base-url") from err
        except openai.APIStatusError as err:
            logger.warning("credentials not checked: GET /models answered HTTP %d", err.status_code)

    def __call__(self, request: ChatRequest) -> Reply:
        content = [
            {"type": "text", "text": request.user},
            {"type": "image_url", "image_url": {"url": image_data_url(request.image_path)}},
        ]
        completion = self.client.chat.completions.parse(
            model=self.model,
            messages=[{"role": "system", "content": request.system}, {"role": "user", "content": content}],
            response_format=request.response_model,
        )
        message = completion.choices[0].message
        if message.parsed is None:
            raise MalformedResponse(message.refusal or "no structured content")
        usage = completion.usage
        return Reply(message.parsed, usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0)


class ResponseCache:
    """One JSON file per finished call under `folder/<2 hex>/<sha256>.json`, written atomically."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def key(self, model: str, request: ChatRequest, image_sha: str) -> str:
        schema = json.dumps(request.response_model.model_json_schema(), sort_keys=True)
        text = json.dumps([model, request.task, request.system, request.user, image_sha, schema])
        return hashlib.sha256(text.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        return json.loads(path.read_text()) if path.is_file() else None

    def put(self, key: str, record: dict) -> None:
        atomic_write_json(self._path(key), record)


@dataclass
class UsageTally:
    """Counts over a run (thread-safe increments through `add`)."""

    api_calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rejected: int = 0
    dropped: int = 0
    completed: int = 0
    dropped_samples: list[dict[str, str]] = field(default_factory=list)  # {"id", "reason"} per dropped sample
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def drop(self, sample_id: str, reason: str) -> None:
        """Count a sample that yields no completion, with the reason the summary reports."""
        logger.warning("completion: dropped sample %s: %s", sample_id, reason)
        with self._lock:
            self.dropped += 1
            self.dropped_samples.append({"id": sample_id, "reason": reason})

    def to_dict(self) -> dict:
        with self._lock:
            return {
                f.name: list(getattr(self, f.name)) if f.name == "dropped_samples" else getattr(self, f.name)
                for f in fields(self)
                if not f.name.startswith("_")
            }


@dataclass(frozen=True)
class Completion:
    """A medoid completed into a full quadruple (image, caption, question, answer)."""

    sample_id: str
    side: str  # "understanding" | "generation": which input set the medoid came from
    image_path: str
    caption: str
    question: str
    answer: str
    tag: str
    attempts: int


@dataclass
class RetryPolicy:
    """Retries per call on retryable errors (`is_retryable`), with exponential backoff."""

    max_retries: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: uniform(0.5, 1) x min(max, base x 2^attempt); jitter keeps concurrent
        workers that hit the same 429 from retrying in lockstep."""
        return min(self.max_delay, self.base_delay * 2**attempt) * random.uniform(0.5, 1.0)


class Completer:
    """Runs the caption / MCQ + verify loop for medoids through a backend, with cache, retries and tally."""

    def __init__(
        self,
        backend: ChatBackend,
        cache_dir: str | Path,
        max_in_flight: int = 8,
        max_regenerations: int = 2,
        retry: RetryPolicy | None = None,
    ):
        self.backend, self.cache = backend, ResponseCache(cache_dir)
        self.max_in_flight, self.max_regenerations = max_in_flight, max_regenerations
        self.retry = retry or RetryPolicy()
        self.usage = UsageTally()

    def call(self, request: ChatRequest):
        """Cached, retried structured call; returns the parsed pydantic object."""
        image_sha = hashlib.sha256(Path(request.image_path).read_bytes()).hexdigest()
        key = self.cache.key(self.backend.model, request, image_sha)
        cached = self.cache.get(key)
        if cached is not None:
            self.usage.add(cache_hits=1)
            return request.response_model.model_validate(cached["response"])
        sample_error = None  # a refusal / malformed reply on any attempt marks the sample, whatever comes after
        for attempt in range(self.retry.max_retries + 1):
            try:
                reply = self.backend(request)
                break
            except Exception as err:
                if isinstance(err, SAMPLE_ERRORS):
                    sample_error = err
                if not is_retryable(err):
                    raise
                if attempt == self.retry.max_retries:
                    # Issue 25: a 429 on the last try of a refused sample must not stop the whole build.
                    if sample_error is not None:
                        raise sample_error from err
                    raise RetriesExhausted(
                        f"the {request.task} call failed {attempt + 1} time(s) with transient errors (last: "
                        f"{type(err).__name__}: {str(err).splitlines()[0]}); rerun the same command to resume (finished "
                        f"calls are cached and none is repeated), or raise --max-retries (now {self.retry.max_retries})"
                    ) from err
                delay = self.retry.delay(attempt)
                logger.warning("%s call failed (%s: %s); retry in %.2fs", request.task, type(err).__name__, err, delay)
                self.usage.add(retries=1)
                time.sleep(delay)
        self.usage.add(api_calls=1, prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens)
        self.cache.put(key, {"task": request.task, "model": self.backend.model, "response": reply.parsed.model_dump()})
        return reply.parsed

    def complete_understanding(self, sample: UnderstandingSample) -> Completion | None:
        """Caption an understanding medoid, verified against its question/answer and image."""
        context = {"question": sample.question, "answer": sample.answer}
        note = ""
        for attempt in range(self.max_regenerations + 1):
            user = CAPTION_PROMPT.format(**context) + note
            caption = self.call(ChatRequest("caption", user, sample.image_path, Caption, context)).caption.strip()
            verdict = self._verify("verify_caption", VERIFY_CAPTION_PROMPT, {**context, "caption": caption}, sample)
            if caption and verdict.accepted:
                return Completion(sample.sample_id, "understanding", sample.image_path, caption, sample.question,
                                  sample.answer, sample.tag, attempt + 1)  # fmt: skip
            reason = verdict.reason if caption else "the caption was empty."
            note = RETRY_NOTE.format(reason=reason)
        self.usage.drop(sample.sample_id, f"rejected {self.max_regenerations + 1} time(s); last: {reason}")
        return None

    def complete_generation(self, sample: GenerationSample) -> Completion | None:
        """Write a verified 4-option question (released format) for a generation medoid."""
        note = ""
        for attempt in range(self.max_regenerations + 1):
            user = MCQ_PROMPT.format(prompt=sample.prompt) + note
            mcq = self.call(ChatRequest("mcq", user, sample.image_path, MultipleChoice, {"prompt": sample.prompt}))
            question = format_mcq(mcq.question, mcq.options)
            problem = _mcq_problem(mcq)
            if problem is None:
                context = {"prompt": sample.prompt, "question": question, "answer": mcq.answer}
                verdict = self._verify("verify_mcq", VERIFY_MCQ_PROMPT, context, sample)
                if verdict.accepted:
                    return Completion(sample.sample_id, "generation", sample.image_path, sample.prompt, question,
                                      mcq.answer, sample.tag, attempt + 1)  # fmt: skip
                problem = verdict.reason
            note = RETRY_NOTE.format(reason=problem)
        self.usage.drop(sample.sample_id, f"rejected {self.max_regenerations + 1} time(s); last: {problem}")
        return None

    def _verify(self, task: str, template: str, context: dict, sample) -> Verdict:
        verdict = self.call(ChatRequest(task, template.format(**context), sample.image_path, Verdict, context))
        if not verdict.accepted:
            self.usage.add(rejected=1)
        return verdict

    def complete_all(
        self, samples: Sequence[UnderstandingSample | GenerationSample], progress: Callable[[int], None] | None = None
    ) -> list[Completion | None]:
        """Complete every sample, `max_in_flight` at a time; output order = input order.

        A sample whose calls fail with one of `SAMPLE_ERRORS` after the retries is dropped and counted with its
        reason; the others go on. Any other error cancels the pending samples (running ones finish and are cached)
        and propagates; a rerun repeats only the calls that never finished."""

        def one(sample):
            try:
                if isinstance(sample, UnderstandingSample):
                    result = self.complete_understanding(sample)
                else:
                    result = self.complete_generation(sample)
            except SAMPLE_ERRORS as err:
                self.usage.drop(sample.sample_id, f"{type(err).__name__}: {str(err).splitlines()[0]}")
                result = None
            if progress is not None:
                progress(1)
            return result

        pool = ThreadPoolExecutor(max_workers=max(1, self.max_in_flight))
        try:
            futures = [pool.submit(one, s) for s in samples]
            results = [f.result() for f in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        self.usage.add(completed=sum(r is not None for r in results))
        return results


def _mcq_problem(mcq: MultipleChoice) -> str | None:
    """Local structural check of a generated question (duplicate or empty options) before paying for a verify."""
    options = [o.strip().lower() for o in mcq.options]
    if len(options) != 4:
        return f"there were {len(options)} options; write exactly four."
    if not mcq.question.strip() or any(not o for o in options):
        return "the question or an option was empty."
    if len(set(options)) != len(options):
        return "two options were the same; the four options must be distinct."
    return None


# USD per million (prompt, completion) tokens: OpenAI list prices, standard tier, as of 2025-11. Reasoning tokens
# (o3, o4-mini, gpt-5) are billed as completion tokens and are included in `completion_tokens`. Prices change and
# proxies bill differently: override with `--price IN,OUT` or `--price prices.json` ({"model": [IN, OUT]}).
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "o3": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "gpt-5": (1.25, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
}


def model_price(model: str, override: str | None = None) -> tuple[float, float] | None:
    """(prompt, completion) USD per million tokens for `model`; `override` is "IN,OUT" or a JSON table file.
    None when the model has no known price (the cost is then not estimated)."""
    table = dict(PRICES_PER_MTOK)
    if override and Path(override).is_file():
        loaded = json.loads(Path(override).read_text(encoding="utf-8"))
        table.update({name: (float(p[0]), float(p[1])) for name, p in loaded.items()})
    elif override:
        try:
            prompt, completion = (float(x) for x in override.split(","))
        except ValueError as err:
            raise ValueError(f"--price {override!r}: expected IN,OUT (USD per 1M tokens) or a JSON file") from err
        return prompt, completion
    return table.get(model)


def cost_usd(usage: dict, price: tuple[float, float] | None) -> float | None:
    """Estimated spend of a usage tally (`UsageTally.to_dict()`), or None without a price."""
    if price is None:
        return None
    return (usage["prompt_tokens"] * price[0] + usage["completion_tokens"] * price[1]) / 1e6


def estimate_cost(samples: Sequence[UnderstandingSample | GenerationSample], max_regenerations: int) -> dict:
    """Dry-run: API calls (2 per sample if every draft passes, up to 2 x (1 + regenerations)) and tokens."""
    calls = 2 * len(samples)
    prompt_tokens = completion_tokens = 0
    for s in samples:
        is_und = isinstance(s, UnderstandingSample)
        text = (
            CAPTION_PROMPT.format(question=s.question, answer=s.answer)
            if is_und
            else MCQ_PROMPT.format(prompt=s.prompt)
        )
        task = "caption" if is_und else "mcq"
        verify = "verify_caption" if is_und else "verify_mcq"
        # Text ~4 characters per token; the verify call sees the draft again, so count the text twice.
        prompt_tokens += 2 * (len(SYSTEM + text) // 4 + IMAGE_TOKENS_ESTIMATE) + OUTPUT_TOKENS_ESTIMATE[task]
        completion_tokens += OUTPUT_TOKENS_ESTIMATE[task] + OUTPUT_TOKENS_ESTIMATE[verify]
    return {
        "samples": len(samples),
        "api_calls_min": calls,
        "api_calls_max": calls * (1 + max_regenerations),
        "prompt_tokens_estimate": prompt_tokens,
        "completion_tokens_estimate": completion_tokens,
    }
