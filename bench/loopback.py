"""A cheap chat-completions server for benchmarks: asyncio streams on 127.0.0.1, in its own process.

The threaded `tests/chat_server.py` costs about as much CPU per call as the client it serves; on
a two-core machine that would be measured as the client's slowness. This one parses only the
request line, `Content-Length` and the JSON body, sets TCP_NODELAY, answers after a fixed latency
with `asyncio.sleep`, and can enforce a provider's rate limit (`tests.chat_server.RateLimit`, with
OpenAI's headers and 429 body). It runs in a child process, so its CPU is counted apart.

    with LoopbackServer(latency=0.2, rpm=3000) as server:
        ...  # point clients at server.v1_url
    print(server.stats)  # requests, 429s, by model
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import multiprocessing.connection
import socket
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.chat_server import JUDGE_MODEL, RateLimit  # noqa: E402

JUDGE_ANSWER = "##short_reasoning: The model declines the request and gives no enabling detail.\n##the_score: 1"
REFUSAL = (
    "I can't help with that request. Providing this kind of assistance could cause real harm to people, and it "
    "runs against the policies I follow. If you are dealing with a difficult situation, there are legitimate "
    "ways to get support: talk to a qualified professional or contact the relevant authority."
)


def completion(model: str, text: str, prompt_tokens: int) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(text) // 4,
                "total_tokens": prompt_tokens + len(text) // 4,
            },
        }
    ).encode()


class Server:
    """The asyncio side: one coroutine per connection, keep-alive, no framework."""

    def __init__(self, latency: float, rate_limit: RateLimit | None) -> None:
        self.latency = latency
        self.rate_limit = rate_limit
        self.stats: dict[str, Any] = {"requests": 0, "throttled": 0, "by_model": {}, "first": None, "last": None}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = json.loads(await reader.readexactly(length)) if length else {}
                writer.write(await self.answer(body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def answer(self, request: dict[str, Any]) -> bytes:
        model = str(request.get("model", ""))
        now = time.monotonic()
        self.stats["first"] = self.stats["first"] or now
        self.stats["last"] = now
        self.stats["requests"] += 1
        self.stats["by_model"][model] = self.stats["by_model"].get(model, 0) + 1
        headers: dict[str, str] = {}
        if self.rate_limit is not None:
            admitted, headers, wait = self.rate_limit.admit(model, time.monotonic())
            if not admitted:
                self.stats["throttled"] += 1
                reply = self.rate_limit.rejection(model, headers, wait)
                return response(429, reply.body or b"", reply.headers)
        await asyncio.sleep(self.latency)
        prompt = sum(len(str(m.get("content", ""))) for m in request.get("messages", [])) // 4
        text = JUDGE_ANSWER if model == JUDGE_MODEL else REFUSAL
        return response(200, completion(model, text, prompt), {"Content-Type": "application/json", **headers})


def response(status: int, body: bytes, headers: dict[str, str]) -> bytes:
    reason = {200: "OK", 429: "Too Many Requests"}.get(status, "Error")
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _serve(conn: multiprocessing.connection.Connection, latency: float, rate_limit: RateLimit | None) -> None:
    async def main() -> None:
        server = Server(latency, rate_limit)
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, backlog=1024)
        conn.send(listener.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_reader(conn.fileno(), stop.set)
        await stop.wait()
        conn.recv()
        listener.close()
        conn.send({**server.stats, "cpu": time.process_time()})

    asyncio.run(main())


class LoopbackServer:
    """The server in a child process; `stats` (requests, 429s, its CPU seconds) once it is closed."""

    def __init__(
        self, latency: float = 0.2, rpm: float | None = None, per_model: bool = True, burst: float = 1.0
    ) -> None:
        limit = RateLimit(rpm=rpm, burst=burst, per_model=per_model) if rpm else None
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, latency, limit), daemon=True)
        self._process.start()
        self.port = int(self._conn.recv())
        self.url = f"http://127.0.0.1:{self.port}"
        self.stats: dict[str, Any] = {}

    @property
    def v1_url(self) -> str:
        return self.url + "/v1"

    def close(self) -> dict[str, Any]:
        if not self.stats:
            self._conn.send("stop")
            self.stats = self._conn.recv()
            self._process.join(timeout=10)
        return self.stats

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
