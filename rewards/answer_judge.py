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

from data_tools.completion import ChatRequest, ResponseCache, RetryPolicy, is_retryable

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
                    raise ValueError("judge reply has no structured content")
                self.api_calls += 1
                return parsed
            except Exception as err:
                if not is_retryable(err) or attempt == self.retry.max_retries:
                    raise
                delay = self.retry.delay(attempt)
                logger.warning("answer judge failed (%s); retry in %.2fs", type(err).__name__, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def __call__(self, question: str, gold: str, answer: str) -> bool:
        request = self._request(question, gold, answer)
        key = self.cache.key(self.model, request, NO_IMAGE)
        cached = self.cache.get(key)
        if cached is None:
            verdict = self._ask(request)
            self.cache.put(key, {"task": request.task, "model": self.model, "response": verdict.model_dump()})
        else:
            verdict = AnswerMatch.model_validate(cached["response"])
        return verdict.same


__all__ = ["AnswerMatch", "LLMAnswerJudge"]
