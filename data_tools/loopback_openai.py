"""A loopback OpenAI-compatible chat-completions server for tests and benchmarks: canned replies, scripted failures."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CANNED = {
    "Caption": {"caption": "a red circle on the left of a grey background"},
    "MultipleChoice": {
        "question": "What colour is the circle?",
        "options": ["red", "blue", "green", "yellow"],
        "answer": "A",
    },
    "Verdict": {"contradiction": False, "hallucination": False, "reason": "consistent"},
}


class FakeOpenAI:
    """Serves /v1/chat/completions (and GET /v1/models) on 127.0.0.1:<ephemeral>.

    `failures` is a queue of failure kinds served before normal replies: "429" | "500" (HTTP errors), "malformed"
    (content that is not JSON), "refusal" (a structured-output refusal), "nonjson" (an HTTP body that is not JSON).
    `fail_when` maps a substring of a request's messages to a failure kind served for EVERY such request (a
    permanent failure of one sample). `every` maps k to a failure kind served to every k-th request (counted from 1,
    all schemas), ahead of `fail_when`: transient errors that also hit refused samples. `api_key`, when set, is the only key accepted (others get 401).
    `reject_verdicts` verdicts answer "contradiction" first; `bad_questions` questions come back with three
    options first; `latency` seconds are slept per request. Every request body is counted in `bodies`."""

    def __init__(
        self,
        failures=(),
        reject_verdicts: int = 0,
        latency: float = 0.0,
        bad_questions: int = 0,
        fail_when: dict[str, str] | None = None,
        api_key: str | None = None,
        every: dict[int, str] | None = None,
    ):
        self.every = dict(every or {})
        self.failures = list(failures)
        self.fail_when = dict(fail_when or {})
        self.api_key = api_key
        self.bad_questions = bad_questions
        self.reject_verdicts = reject_verdicts
        self.latency = latency
        self.bodies: Counter = Counter()
        self.by_schema: Counter = Counter()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def requests(self) -> int:
        return sum(self.bodies.values())

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _reply(self, body: dict) -> tuple[int, bytes]:
        schema = body["response_format"]["json_schema"]["name"]
        with self.lock:
            self.bodies[json.dumps(body, sort_keys=True)] += 1
            self.by_schema[schema] += 1
            failure = self.failures.pop(0) if self.failures else None
            messages = json.dumps(body["messages"])
            failure = next((kind for text, kind in self.fail_when.items() if text in messages), failure)
            count = sum(self.by_schema.values())
            failure = next((kind for k, kind in self.every.items() if count % k == 0), failure)
            reject = schema == "Verdict" and self.reject_verdicts > 0
            if reject:
                self.reject_verdicts -= 1
            bad_question = schema == "MultipleChoice" and self.bad_questions > 0
            if bad_question:
                self.bad_questions -= 1
        if failure in ("429", "500"):
            return int(failure), json.dumps({"error": {"message": "try later", "type": "server_error"}}).encode()
        if failure == "nonjson":
            return 200, b"<html>502 Bad Gateway</html>"
        content = dict(CANNED[schema])
        if schema == "Caption" and "rejected" in json.dumps(body["messages"]):
            content["caption"] += " (revised)"  # a redraft differs from the rejected draft, as a real model's would
        if reject:
            content = {"contradiction": True, "hallucination": False, "reason": "wrong colour"}
        if bad_question:
            content["options"] = content["options"][:3]
        text = "{not json" if failure == "malformed" else json.dumps(content)
        message = {"role": "assistant", "content": text, "refusal": None}
        if failure == "refusal":
            message = {"role": "assistant", "content": None, "refusal": "I can't help with that image."}
        reply = {
            "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        }  # fmt: skip
        return 200, json.dumps(reply).encode()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _unauthorized(self) -> bool:
                if fake.api_key is None or self.headers.get("Authorization") == f"Bearer {fake.api_key}":
                    return False
                error = {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
                self._send(401, json.dumps(error).encode())
                return True

            def do_GET(self):
                if not self._unauthorized():
                    self._send(200, json.dumps({"object": "list", "data": [{"id": "o3", "object": "model"}]}).encode())

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self._unauthorized():
                    return
                if fake.latency:
                    time.sleep(fake.latency)
                self._send(*fake._reply(body))

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler
