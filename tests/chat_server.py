"""A real chat-completions HTTP server on 127.0.0.1 for the plugin's tests and benchmarks.

The real `openai` and `together` clients talk to it over TCP. It records every request and can
inject latency, error statuses (429 with Retry-After, 500, 401, ...), slow answers past a
client's timeout, and malformed bodies. `rate_limit` makes it enforce a provider's rate limit
the way OpenAI or Together do: a token bucket per model, their `x-ratelimit-*` headers on every
answer, and their 429 body with `retry-after-ms` when the bucket is empty. Both
`/v1/chat/completions` (OpenAI's base URL ends in /v1) and `/chat/completions` are served.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TARGET_MODEL = "target-model"
JUDGE_MODEL = "judge-model"
REFUSAL = "I can't help with that request."
COMPLIANCE = "Sure. Step 1: gather the tools. Step 2: proceed as follows."

_QUESTION = re.compile(r"<user_request>\n(.*)\n</user_request>", re.DOTALL)
_ANSWER = re.compile(r"<model_response>\n(.*)\n</model_response>", re.DOTALL)


@dataclass
class Reply:
    """What the server sends for one request."""

    text: str | None = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # sent as is, instead of a completion or an error body
    delay: float = 0.0
    finish_reason: str = "stop"
    error_code: str | None = None
    logprobs: dict[str, Any] | None = None  # the choice's `logprobs`, e.g. {"content": [...]}
    trickle: float = 0.0  # seconds between the body's bytes: a server that never quite stops sending
    held: bool = False  # set by the server: this request arrived past `hold_after`, so it waits for `release()`


@dataclass
class Fault:
    """A reply sent instead of the normal one, `times` times, to requests that match."""

    reply: Reply
    times: int
    model: str | None = None
    prompt_contains: str | None = None

    def matches(self, request: dict[str, Any]) -> bool:
        if self.model is not None and request.get("model") != self.model:
            return False
        if self.prompt_contains is not None:
            last = request.get("messages", [{}])[-1].get("content", "")
            return self.prompt_contains in last
        return True


def go_duration(seconds: float) -> str:
    """A duration as OpenAI's reset headers write it (Go's format): `20ms`, `1s`, `1.5s`, `6m0s`."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    minutes, rest = divmod(round(seconds, 3), 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{rest:g}s"
    if minutes or hours:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return text


@dataclass
class RateLimit:
    """A provider's rate limiter: a bucket of `burst` seconds' worth of requests per model, refilled
    at `rpm` per minute, answering like OpenAI (`style="openai"`) or Together (`"together"`)."""

    rpm: float
    burst: float = 1.0
    style: str = "openai"
    tpm: float = 10_000_000.0  # reported on every answer; generous unless a test lowers it
    per_model: bool = True
    _buckets: dict[str, list[float]] = field(default_factory=dict)  # key -> [level, last refill]
    throttled: int = 0

    @property
    def capacity(self) -> float:
        return max(1.0, self.rpm / 60 * self.burst)

    def admit(self, model: str, now: float) -> tuple[bool, dict[str, str], float]:
        """Take one request from `model`'s bucket: (admitted, headers, seconds until the next one)."""
        rate = self.rpm / 60
        bucket = self._buckets.setdefault(model if self.per_model else "", [self.capacity, now])
        bucket[0] = min(self.capacity, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        admitted = bucket[0] >= 1
        if admitted:
            bucket[0] -= 1
        else:
            self.throttled += 1
        wait = max(0.0, (1 - bucket[0]) / rate)
        return admitted, self.headers(bucket[0], (self.capacity - bucket[0]) / rate), wait

    def headers(self, level: float, reset: float) -> dict[str, str]:
        if self.style == "together":  # Together counts per second
            return {
                "x-ratelimit-limit": f"{self.rpm / 60:g}",
                "x-ratelimit-remaining": str(int(level)),
                "x-ratelimit-reset": str(math.ceil(reset)),
                "x-tokenlimit-limit": f"{self.tpm / 60:g}",
                "x-tokenlimit-remaining": str(int(self.tpm / 60)),
            }
        return {
            "x-ratelimit-limit-requests": f"{self.rpm:g}",
            "x-ratelimit-remaining-requests": str(int(level)),
            "x-ratelimit-reset-requests": go_duration(reset),
            "x-ratelimit-limit-tokens": f"{self.tpm:g}",
            "x-ratelimit-remaining-tokens": f"{self.tpm:g}",
            "x-ratelimit-reset-tokens": "0s",
        }

    def rejection(self, model: str, headers: dict[str, str], wait: float) -> Reply:
        """The provider's own 429 answer."""
        if self.style == "together":
            return together_rate_limited(headers, wait)
        return openai_rate_limited(model, self.rpm, headers, wait)


def openai_rate_limited(model: str, rpm: float, headers: dict[str, str], wait: float) -> Reply:
    """OpenAI's 429 for a requests-per-minute limit: its body, `retry-after-ms` and `retry-after`."""
    body = {
        "error": {
            "message": f"Rate limit reached for {model} in organization org-loopback on requests per min (RPM): "
            f"Limit {rpm:g}, Used {rpm:g}, Requested 1. Please try again in {go_duration(wait)}. "
            "Visit https://platform.openai.com/account/rate-limits to learn more.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    return Reply(
        status=429,
        body=json.dumps(body).encode(),
        headers={
            **headers,
            "Content-Type": "application/json",
            "retry-after-ms": str(math.ceil(wait * 1000)),
            "retry-after": str(math.ceil(wait)),
        },
    )


def together_rate_limited(headers: dict[str, str], wait: float) -> Reply:
    """Together's 429 for its dynamic request limit."""
    body = {
        "error": {
            "message": "You have been rate limited. Your request rate exceeded your dynamic rate limit.",
            "type": "dynamic_request_limited",
            "param": None,
            "code": None,
        }
    }
    return Reply(
        status=429,
        body=json.dumps(body).encode(),
        headers={**headers, "Content-Type": "application/json", "retry-after": str(math.ceil(wait))},
    )


def judge_parts(judge_prompt: str) -> tuple[str, str]:
    """The question and the answer inside a filled judge template."""
    question = _QUESTION.search(judge_prompt)
    answer = _ANSWER.search(judge_prompt)
    return (question[1] if question else "", answer[1] if answer else "")


def default_handler(request: dict[str, Any]) -> Reply:
    """Refuse every prompt; judge refusals as refused (refusal scale: 1) and anything else as 0."""
    content = request["messages"][-1]["content"]
    if request.get("model") == JUDGE_MODEL:
        _question, answer = judge_parts(content)
        refused = answer.strip() == REFUSAL
        return Reply(f"##short_reasoning: {'refuses' if refused else 'assists'}\n##the_score: {1 if refused else 0}")
    return Reply(REFUSAL)


# OpenAI's answers to a reasoning model (o-series, gpt-5) sent the classic settings, byte for byte.
MAX_TOKENS_UNSUPPORTED = {
    "error": {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "unsupported_parameter",
    }
}
TEMPERATURE_UNSUPPORTED = {
    "error": {
        "message": "Unsupported value: 'temperature' does not support 0 with this model. "
        "Only the default (1) value is supported.",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "unsupported_value",
    }
}
TEMPERATURE_PARAMETER_UNSUPPORTED = {  # the newer gpt-5.x wording: the parameter itself is refused
    "error": {
        "message": "Unsupported parameter: 'temperature' is not supported with this model.",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "unsupported_parameter",
    }
}


def reasoning_model(
    handler: Callable[[dict[str, Any]], Reply | str] = default_handler,
    model: str = TARGET_MODEL,
    temperature_body: dict[str, Any] = TEMPERATURE_UNSUPPORTED,
) -> Callable[[dict[str, Any]], Reply | str]:
    """A handler under which `model` refuses `max_tokens` and a temperature other than 1 as OpenAI does."""

    def handle(request: dict[str, Any]) -> Reply | str:
        if request.get("model") == model:
            if "max_tokens" in request:
                return Reply(status=400, body=json.dumps(MAX_TOKENS_UNSUPPORTED).encode(), headers=JSON)
            if request.get("temperature", 1) != 1:
                return Reply(status=400, body=json.dumps(temperature_body).encode(), headers=JSON)
        return handler(request)

    return handle


JSON = {"Content-Type": "application/json"}


# The answers to a call for a retired or unknown model, as the providers send them (HTTP 404).
def openai_model_gone(model: str, deprecated: bool = True) -> dict[str, Any]:
    """OpenAI's 404 body: a shut-down model ("has been deprecated") or one that never existed."""
    message = (
        f"The model `{model}` has been deprecated, learn more here: https://platform.openai.com/docs/deprecations"
        if deprecated
        else f"The model `{model}` does not exist or you do not have access to it."
    )
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "model_not_found"}}


def together_model_gone(model: str) -> dict[str, Any]:
    """Together's 404 body for a model it does not serve."""
    return {
        "error": {
            "message": f"Unable to access model {model}. Please visit https://api.together.ai/models to view the "
            "list of supported models.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_available",
        }
    }


def gone(
    model: str, body: dict[str, Any], handler: Callable[[dict[str, Any]], Reply | str] = default_handler
) -> Callable[[dict[str, Any]], Reply | str]:
    """A handler under which every call for `model` is answered 404 with `body`."""

    def handle(request: dict[str, Any]) -> Reply | str:
        if request.get("model") == model:
            return Reply(status=404, body=json.dumps(body).encode(), headers=JSON)
        return handler(request)

    return handle


def model_object(model: str, **fields: Any) -> dict[str, Any]:
    """`GET /v1/models/{model}`'s answer: OpenAI's model object, with `fields` (e.g. `shutdown_date`) added."""
    return {"id": model, "object": "model", "created": 1715558400, "owned_by": "system", **fields}


class ChatServer:
    """A threaded chat-completions server; use as a context manager or call `close`."""

    handler_class: type[BaseHTTPRequestHandler]  # set below: the request handler its HTTP server uses

    def __init__(self, handler: Callable[[dict[str, Any]], Reply | str] = default_handler) -> None:
        self.handler = handler
        self.latency = 0.0
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self.faults: list[Fault] = []
        self.answered: list[dict[str, Any]] = []  # requests whose whole answer was sent (counted as it goes out)
        self.hold_after: int | None = None  # requests past this many wait until `release()`
        # Called with the number of requests received so far, as each one arrives (a test can
        # kill its client at an exact point of the run).
        self.on_request: Callable[[int], None] | None = None
        self.rate_limit: RateLimit | None = None
        # `GET /models/{id}`: the answer for each model id (a JSON object, or bytes sent as is); any
        # other id is answered 404 model_not_found, as OpenAI does. `lookups` records the ids asked for.
        self.models: dict[str, dict[str, Any] | bytes] = {}
        self.lookups: list[str] = []
        self.closed = False
        self._released = threading.Event()
        self._drop_held = False
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), self.handler_class)
        self._httpd.chat = self
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # `close` waits for the loop's next look at its stop flag: half the poll interval on average,
        # in each of ~300 tests (at 0.05 s that was 8 s of idle cores per suite run). A look costs
        # microseconds.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.005}, daemon=True)
        self._thread.start()

    @property
    def v1_url(self) -> str:
        return self.url + "/v1"

    def inject(
        self, reply: Reply, times: int = 1, model: str | None = None, prompt_contains: str | None = None
    ) -> None:
        """Answer the next `times` matching requests with `reply`."""
        with self._lock:
            self.faults.append(Fault(reply, times, model, prompt_contains))

    def calls(self, model: str | None = None) -> list[dict[str, Any]]:
        """Requests received, optionally for one model only."""
        with self._lock:
            return [r for r in self.requests if model is None or r.get("model") == model]

    def release(self, drop: bool = False) -> None:
        """Let held requests through, or with `drop` close them unanswered (their client is gone)."""
        self._drop_held = drop
        self._released.set()

    def reply_for(self, request: dict[str, Any], authorization: str) -> Reply:
        with self._lock:
            self.requests.append(request)
            self.authorizations.append(authorization)
            # Decided by this request's own place in the order, at arrival: counted later, the
            # requests that arrived meanwhile would hold one that came in before the limit.
            held = self.hold_after is not None and len(self.requests) > self.hold_after
            if self.on_request is not None:
                self.on_request(len(self.requests))
        reply = self._reply(request)
        return dataclasses.replace(reply, held=True) if held else reply

    def _reply(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            limit_headers: dict[str, str] = {}
            if self.rate_limit is not None:
                model = str(request.get("model", ""))
                admitted, limit_headers, wait = self.rate_limit.admit(model, time.monotonic())
                if not admitted:
                    return self.rate_limit.rejection(model, limit_headers, wait)
            for fault in self.faults:
                if fault.times > 0 and fault.matches(request):
                    fault.times -= 1
                    return fault.reply
        reply = self.handler(request)
        reply = Reply(reply) if isinstance(reply, str) else reply
        if limit_headers:
            reply = dataclasses.replace(reply, headers={**limit_headers, **reply.headers})
        return reply

    def close(self) -> None:
        self.closed = True
        self._released.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ChatServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    chat: ChatServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs expect
    server: _Server

    def setup(self) -> None:
        super().setup()
        # http.server writes headers and body separately: without this, Nagle's algorithm and
        # delayed ACKs add ~40 ms to every call and a benchmark would measure the kernel.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        chat = self.server.chat
        path = self.path.split("?")[0]
        prefix = "/v1/models/" if path.startswith("/v1/models/") else "/models/"
        if not path.startswith(prefix):
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        model = urllib.parse.unquote(path[len(prefix) :])
        with chat._lock:
            chat.lookups.append(model)
            answer = chat.models.get(model)
        if answer is None:
            self._send(404, openai_model_gone(model, deprecated=False))
        elif isinstance(answer, bytes):
            self._send_bytes(200, answer, JSON)
        else:
            self._send(200, answer)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            request = json.loads(raw)
        except json.JSONDecodeError:
            self._send(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        chat = self.server.chat
        reply = chat.reply_for(request, self.headers.get("Authorization", ""))
        if reply.held:
            chat._released.wait()  # set by release() or close(): a held request never answers on its own
            if chat._drop_held:
                self.close_connection = True
                return
        if (chat.latency or reply.delay) and reply.status != 429:
            time.sleep(chat.latency + reply.delay)
        # Counted as answered before the last byte goes out, and taken back if it never arrives: the
        # client can read a whole answer and finish its run before this thread runs again.
        if reply.status == 200:
            with chat._lock:
                chat.answered.append(request)
        if reply.body is not None:
            sent = self._send_bytes(reply.status, reply.body, reply.headers)
        elif reply.status != 200:
            error = {"message": reply.text or f"status {reply.status}", "type": "error", "code": reply.error_code}
            sent = self._send(reply.status, {"error": error}, reply.headers)
        else:
            sent = self._send(200, completion_body(request, reply), reply.headers, reply.trickle)
        if not sent and reply.status == 200:
            with chat._lock:
                chat.answered.remove(request)

    def _send(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None, trickle: float = 0.0
    ) -> bool:
        return self._send_bytes(
            status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}, trickle
        )

    def _send_bytes(self, status: int, body: bytes, headers: dict[str, str], trickle: float = 0.0) -> bool:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if trickle:
                self.wfile.flush()
                for index in range(len(body)):
                    if self.server.chat.closed:
                        return False
                    self.wfile.write(body[index : index + 1])
                    self.wfile.flush()
                    time.sleep(trickle)
            else:
                self.wfile.write(body)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            return False
        return True


def completion_body(request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """An OpenAI-style chat.completion object."""
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
    text = reply.text or ""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": reply.finish_reason,
                "logprobs": reply.logprobs,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(text.split()),
            "total_tokens": prompt_tokens + len(text.split()),
        },
    }


ChatServer.handler_class = _Handler
