"""Completion against a loopback OpenAI-compatible server: parsing, retries, verification, cache, crash-resume."""

import pytest
from PIL import Image

from data_tools.completion import Completer, OpenAIBackend, RetryPolicy
from data_tools.loopback_openai import FakeOpenAI
from data_tools.multiple_choice import MC_INSTRUCTION
from data_tools.schema import GenerationSample, UnderstandingSample

FAST_RETRY = RetryPolicy(max_retries=4, base_delay=0.001, max_delay=0.01)


def _samples(tmp_path, n=3):
    samples = []
    for i in range(n):
        path = tmp_path / f"img{i}.png"
        Image.new("RGB", (8, 8), (10 * i, 0, 0)).save(path)
        if i % 2 == 0:
            samples.append(UnderstandingSample(f"u{i}", str(path), f"Q{i}?\nA. x\nB. y\n{MC_INSTRUCTION}", "A"))
        else:
            samples.append(GenerationSample(f"g{i}", str(path), f"a photo of a red thing {i}"))
    return samples


def _completer(server, cache, **kwargs):
    backend = OpenAIBackend("o3", base_url=server.base_url, api_key="test", timeout=10)
    return Completer(backend, cache, retry=kwargs.pop("retry", FAST_RETRY), **kwargs)


def test_completes_both_sides_in_released_format(tmp_path):
    samples = _samples(tmp_path, 2)
    with FakeOpenAI() as server:
        und, gen = _completer(server, tmp_path / "cache").complete_all(samples)
        assert server.requests == 4  # caption + verify, mcq + verify
    assert und.caption.startswith("a red circle") and und.question == samples[0].question and und.answer == "A"
    assert gen.caption == samples[1].prompt and gen.answer == "A"
    assert gen.question.splitlines()[1:] == ["A. red", "B. blue", "C. green", "D. yellow", MC_INSTRUCTION]


def test_retries_429_500_and_malformed_json(tmp_path):
    samples = _samples(tmp_path, 1)
    with FakeOpenAI(failures=["429", "500", "malformed"]) as server:
        completer = _completer(server, tmp_path / "cache", max_in_flight=1)
        (done,) = completer.complete_all(samples)
        assert server.requests == 5  # 3 failures + caption + verify
    assert done is not None and completer.usage.retries == 3 and completer.usage.api_calls == 2
    assert completer.usage.prompt_tokens == 200 and completer.usage.completion_tokens == 40


def test_gives_up_after_max_retries(tmp_path):
    with FakeOpenAI(failures=["500"] * 10) as server:
        completer = _completer(server, tmp_path / "cache", retry=RetryPolicy(max_retries=2, base_delay=0.001))
        with pytest.raises(Exception, match="500|try later"):
            completer.complete_all(_samples(tmp_path, 1))
        assert server.requests == 3


def test_rejected_draft_is_regenerated_then_dropped(tmp_path):
    samples = _samples(tmp_path, 1)
    with FakeOpenAI(reject_verdicts=1) as server:
        completer = _completer(server, tmp_path / "c1", max_regenerations=2)
        (done,) = completer.complete_all(samples)
        assert done.attempts == 2 and completer.usage.rejected == 1
        assert server.by_schema == {"Caption": 2, "Verdict": 2}
    with FakeOpenAI(reject_verdicts=100) as server:
        completer = _completer(server, tmp_path / "c2", max_regenerations=1)
        assert completer.complete_all(samples) == [None]
        assert completer.usage.dropped == 1 and server.by_schema == {"Caption": 2, "Verdict": 2}


def test_cache_makes_rerun_free(tmp_path):
    samples = _samples(tmp_path, 3)
    with FakeOpenAI() as server:
        first = _completer(server, tmp_path / "cache").complete_all(samples)
        calls = server.requests
        rerun = _completer(server, tmp_path / "cache")
        assert rerun.complete_all(samples) == first
        assert server.requests == calls and rerun.usage.cache_hits == calls and rerun.usage.api_calls == 0


class _CrashAfter:
    """Wraps a backend and raises (like a killed process) once `n` calls have gone through."""

    def __init__(self, backend, n):
        self.backend, self.n, self.model = backend, n, backend.model

    def __call__(self, request):
        if self.n == 0:
            raise RuntimeError("simulated crash")
        self.n -= 1
        return self.backend(request)


@pytest.mark.parametrize("in_flight", [1, 4])
def test_crash_resume_repeats_no_call(tmp_path, in_flight):
    samples = _samples(tmp_path, 8)
    with FakeOpenAI() as clean:
        expected = _completer(clean, tmp_path / "clean").complete_all(samples)
        total = clean.requests
    with FakeOpenAI() as server:
        crashing = _completer(server, tmp_path / "cache", max_in_flight=in_flight)
        crashing.backend = _CrashAfter(crashing.backend, 5)
        with pytest.raises(RuntimeError, match="simulated crash"):
            crashing.complete_all(samples)
        assert 5 <= server.requests < total
        resumed = _completer(server, tmp_path / "cache", max_in_flight=in_flight).complete_all(samples)
        assert resumed == expected
        assert server.requests == total and max(server.bodies.values()) == 1


def test_malformed_question_is_redrawn_without_a_verify_call(tmp_path):
    (_, gen) = _samples(tmp_path, 2)
    with FakeOpenAI(bad_questions=1) as server:
        (done,) = _completer(server, tmp_path / "cache").complete_all([gen])
        assert server.by_schema == {"MultipleChoice": 2, "Verdict": 1}
    assert done.attempts == 2 and len(done.question.splitlines()) == 6


def test_permanent_failures_drop_that_sample_only_and_rerun_pays_no_finished_call(tmp_path):
    samples = _samples(tmp_path, 4)  # u0, g1, u2, g3
    permanent = {"Q0?": "refusal", "red thing 1": "malformed", "Q2?": "nonjson"}
    retry = RetryPolicy(max_retries=1, base_delay=0.001, max_delay=0.01)
    with FakeOpenAI(fail_when=permanent) as server:
        completer = _completer(server, tmp_path / "cache", retry=retry)
        results = completer.complete_all(samples)
        assert server.requests == 3 * 2 + 2  # three samples x (first try + one retry), g3's draft + verify
    assert results[:3] == [None, None, None] and results[3].sample_id == "g3"
    usage = completer.usage.to_dict()
    assert usage["dropped"] == 3 and usage["completed"] == 1 and usage["retries"] == 3
    reasons = {d["id"]: d["reason"] for d in usage["dropped_samples"]}
    assert reasons["u0"].startswith("MalformedResponse: I can't help")
    assert reasons["g1"].startswith("ValidationError") and reasons["u2"].startswith("JSONDecodeError")
    with FakeOpenAI() as server:  # the server recovers: only the dropped samples are called again
        rerun = _completer(server, tmp_path / "cache").complete_all(samples)
        assert server.requests == 3 * 2 and all(r is not None for r in rerun)


def test_refused_samples_are_dropped_even_when_their_last_try_is_a_429(tmp_path):
    """Issue 25: a refused call whose last attempt got a 429/500 re-raised the transient error and killed the build.
    Server: three prompts refused on every try, and every 5th / 7th request answered 429 / 500 (default retries)."""
    samples = _samples(tmp_path, 12)
    refused = {"Q0?": "refusal", "red thing 5": "refusal", "Q8?": "refusal"}
    retry = RetryPolicy(max_retries=6, base_delay=0.001, max_delay=0.01)
    with FakeOpenAI(fail_when=refused, every={5: "429", 7: "500"}) as server:
        completer = _completer(server, tmp_path / "cache", retry=retry, max_in_flight=1)
        results = completer.complete_all(samples)
    usage = completer.usage.to_dict()
    assert [r is None for r in results] == [s.sample_id in ("u0", "g5", "u8") for s in samples]
    assert usage["dropped"] == 3 and usage["completed"] == 9
    assert all(d["reason"].startswith("MalformedResponse: I can't help") for d in usage["dropped_samples"])


def test_transient_errors_alone_outlasting_the_retries_give_one_clear_error(tmp_path):
    from data_tools.completion import RetriesExhausted

    retry = RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.01)
    with FakeOpenAI(failures=["429", "500", "429"]) as server:
        with pytest.raises(RetriesExhausted) as caught:
            _completer(server, tmp_path / "cache", retry=retry).complete_all(_samples(tmp_path, 1))
    message = str(caught.value)
    assert message.startswith("the caption call failed 3 time(s) with transient errors (last: RateLimitError")
    assert "rerun the same command to resume" in message and "none is repeated" in message
    assert "raise --max-retries (now 2)" in message


def test_rejected_key_stops_the_run(tmp_path, monkeypatch):
    import openai

    with FakeOpenAI(api_key="right") as server:
        backend = OpenAIBackend("o3", base_url=server.base_url, api_key="wrong", timeout=10)
        with pytest.raises(ValueError, match=r"API key rejected .*HTTP 401.*fix: pass a valid --api-key"):
            backend.check_credentials()
        with pytest.raises(openai.AuthenticationError):
            Completer(backend, tmp_path / "cache", retry=FAST_RETRY).complete_all(_samples(tmp_path, 2))
        OpenAIBackend("o3", base_url=server.base_url, api_key="right").check_credentials()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="no API key; fix: set OPENAI_API_KEY"):
        OpenAIBackend("o3", base_url="http://127.0.0.1:9/v1", api_key=None)
