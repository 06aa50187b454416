"""Optional LLM judge for free-form gold answers ("same / not same"), as UniRL judged its evaluation answers.

OpenAI-compatible `chat.completions.parse` with a structured verdict, text only. Calls are cached on disk and
retried exactly like the PairUG builder's (data_tools.completion: `ResponseCache`, `RetryPolicy`,
`is_retryable`), so re-running a training or an evaluation never pays twice for the same (question, gold, answer).
Multiple-choice rows never reach the judge: letters are graded deterministically (rewards/reward_understand.py).
"""

from __future__ import annotations

import logging
import time

import openai
from pydantic import BaseModel

from data_tools.completion import (
    SAMPLE_ERRORS,
    ChatRequest,
    MalformedResponse,
    ResponseCache,
    RetryPolicy,
    is_retryable,
)

logger = logging.getLogger(__name__)

JUDGE_SYSTEM = "You grade answers to questions about images. You compare meanings, not wording."
JUDGE_PROMPT = (
    "Question: {question}\nReference answer: {gold}\nCandidate answer: {answer}\n"
    "Do the candidate and the reference answer say the same thing in answer to the question? "
    "Reply with same=true (same) or same=false (not same) and a short reason."
)
NO_IMAGE = "no-image"  # cache-key stand-in for the image hash: judge calls are text only


class AnswerMatch(BaseModel):
    same: bool
    reason: str = ""


class LLMAnswerJudge:
    """`judge(question, gold, answer) -> bool` through an OpenAI-compatible server, cached under `cache_dir`."""

    def __init__(
        self,
        model: str,
        cache_dir: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
    ):
        self.model = model
        self.cache = ResponseCache(cache_dir)
        self.retry = retry or RetryPolicy()
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)
        self.api_calls = 0
        self.unjudged = 0  # calls whose replies stayed unusable after the retries (no verdict)

    def check_model(self) -> None:
        """Fail now, not at the first free-form row, when the server does not serve `model` (`GET /models`).

        A server without a model list is not an error (the first call decides); a rejected key or an unreachable
        server is.
        """
        where = self.client.base_url
        try:
            served = [m.id for m in self.client.models.list()]
        except (openai.AuthenticationError, openai.PermissionDeniedError) as err:
            raise ValueError(
                f"answer judge: API key rejected by {where} (HTTP {err.status_code}); fix: set OPENAI_API_KEY"
            ) from err
        except openai.APIConnectionError as err:
            raise ValueError(f"answer judge: cannot reach {where} ({err}); fix: check answer_judge_base_url") from err
        except openai.APIStatusError as err:
            logger.warning("answer judge model not checked: GET /models answered HTTP %d", err.status_code)
            return
        if served and self.model not in served:
            raise ValueError(
                f"answer_judge_model={self.model!r} is not served by {where} (it serves {served[:10]}); "
                "fix: set answer_judge_model to one of them"
            )

    def _request(self, question: str, gold: str, answer: str) -> ChatRequest:
        user = JUDGE_PROMPT.format(question=question, gold=gold, answer=answer)
        return ChatRequest(
            task="judge_answer", user=user, image_path="", response_model=AnswerMatch, system=JUDGE_SYSTEM
        )

    def _ask(self, request: ChatRequest) -> AnswerMatch:
        for attempt in range(self.retry.max_retries + 1):
            try:
                completion = self.client.chat.completions.parse(
                    model=self.model,
                    messages=[
                        {"role": "system", "content": request.system},
                        {"role": "user", "content": request.user},
                    ],
                    response_format=AnswerMatch,
                )
                parsed = completion.choices[0].message.parsed
                if parsed is None:
                    raise MalformedResponse(completion.choices[0].message.refusal or "no structured content")
                self.api_calls += 1
                return parsed
            except Exception as err:
                if not is_retryable(err) or attempt == self.retry.max_retries:
                    raise
                delay = self.retry.delay(attempt)
                logger.warning("answer judge failed (%s); retry in %.2fs", type(err).__name__, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def __call__(self, question: str, gold: str, answer: str) -> bool | None:
        """Same meaning? None when the judge's replies stayed unusable (not cached: a rerun asks again)."""
        request = self._request(question, gold, answer)
        key = self.cache.key(self.model, request, NO_IMAGE)
        cached = self.cache.get(key)
        if cached is None:
            try:
                verdict = self._ask(request)
            except SAMPLE_ERRORS as err:
                self.unjudged += 1
                logger.warning(
                    "answer judge: no usable verdict after %d attempt(s) (%s: %s); the row gets no reward "
                    "(%d unjudged so far)", self.retry.max_retries + 1, type(err).__name__, err, self.unjudged,
                )  # fmt: skip
                return None
            self.cache.put(key, {"task": request.task, "model": self.model, "response": verdict.model_dump()})
        else:
            verdict = AnswerMatch.model_validate(cached["response"])
        return verdict.same


__all__ = ["AnswerMatch", "LLMAnswerJudge"]
