"""A real Files + Batches server on 127.0.0.1, next to the chat-completions routes of `ChatServer`.

The real `openai` and `together` clients upload input files, create, poll, cancel and download
through it. A batch moves one status further each time a client reads it (validating,
in_progress, finalizing, completed: OpenAI's words; Together's in upper case and without
finalizing), so tests wait for transitions without any clock. Each line is answered by the same
handler and faults as an ordinary call; answers go to the output file, failed lines (their
status and error body) to the error file, as the providers write them. `plan` makes the next
batches fail validation, expire part-way, or hold in progress until `release_batches()`; a
cancelled batch keeps the lines it had finished.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.chat_server import ChatServer, Reply, _Handler, completion_body

Flavour = Literal["openai", "together"]
OPENAI_STEPS = ("validating", "in_progress", "finalizing", "completed")
TOGETHER_STEPS = ("VALIDATING", "IN_PROGRESS", "COMPLETED")
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."


@dataclass
class BatchPlan:
    """How the next batch created behaves."""

    fail_validation: str | None = None  # the validation error: the batch fails, no line runs
    expire_after: int | None = None  # lines answered before the batch expires
    hold: bool = False  # stays in progress until `release_batches()`


@dataclass
class Batch:
    id: str
    input_file_id: str
    lines: list[dict[str, Any]]
    plan: BatchPlan
    step: int = 0
    status: str = ""
    output_file_id: str | None = None
    error_file_id: str | None = None
    completed: int = 0
    failed: int = 0
    error: str | None = None
    cancel_requested: bool = False
    created_at: int = field(default_factory=lambda: int(time.time()))


class BatchServer(ChatServer):
    """`ChatServer` plus OpenAI's or Together's Files and Batches API."""

    def __init__(self, flavour: Flavour = "openai", **kwargs: Any) -> None:
        self.flavour = flavour
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, Batch] = {}
        self.plans: list[BatchPlan] = []
        self.batch_requests: list[dict[str, Any]] = []  # line bodies answered inside batches
        self.cancelled: list[str] = []
        self.uploads: list[str] = []  # file ids, in upload order
        self.retrievals = 0
        self._ids = itertools.count(1)
        self._batches_released = threading.Event()
        super().__init__(**kwargs)

    @property
    def base_url(self) -> str:
        """What the plugin is given as the endpoint's base URL for this server's flavour."""
        return self.v1_url if self.flavour == "openai" else self.url

    def plan(self, *plans: BatchPlan) -> None:
        with self._lock:
            self.plans.extend(plans)

    def release_batches(self) -> None:
        self._batches_released.set()

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    # --- the API ---------------------------------------------------------------------------------

    def store_file(self, content: bytes) -> str:
        with self._lock:
            file_id = self.new_id("file")
            self.files[file_id] = content
            self.uploads.append(file_id)
        return file_id

    def create_batch(self, input_file_id: str) -> Batch | None:
        with self._lock:
            content = self.files.get(input_file_id)
            if content is None:
                return None
            lines = [json.loads(line) for line in content.splitlines() if line.strip()]
            plan = self.plans.pop(0) if self.plans else BatchPlan()
            batch = Batch(self.new_id("batch"), input_file_id, lines, plan)
            batch.status = self.steps[0]
            self.batches[batch.id] = batch
        return batch

    @property
    def steps(self) -> tuple[str, ...]:
        return OPENAI_STEPS if self.flavour == "openai" else TOGETHER_STEPS

    def advance(self, batch: Batch) -> None:
        """One status further: what a client sees each time it looks."""
        with self._lock:
            self.retrievals += 1
            if batch.status.lower() in ("completed", "failed", "expired", "cancelled"):
                return
            if batch.cancel_requested:
                self._finish(batch, "cancelled", answered=0)
                return
            if batch.plan.fail_validation is not None:
                batch.status = "failed" if self.flavour == "openai" else "FAILED"
                batch.error = batch.plan.fail_validation
                return
            if batch.plan.hold and batch.step >= 1 and not self._batches_released.is_set():
                return
            batch.step += 1
            if batch.plan.expire_after is not None and batch.step == len(self.steps) - 1:
                self._finish(batch, "expired", answered=batch.plan.expire_after)
                return
            batch.status = self.steps[min(batch.step, len(self.steps) - 1)]
            if batch.status.lower() == "completed":
                self._finish(batch, "completed", answered=len(batch.lines))

    def _finish(self, batch: Batch, status: str, answered: int) -> None:
        outputs: list[bytes] = []
        errors: list[bytes] = []
        for index, line in enumerate(batch.lines):
            if index >= answered:
                if status == "expired" and self.flavour == "openai":
                    error = {"code": "batch_expired", "message": EXPIRED_MESSAGE}
                    errors.append(self._line(line, None, error))
                continue  # Together leaves the lines it did not run out of both files
            reply, body = self._answer(line["body"])
            if reply.status == 200:
                batch.completed += 1
                outputs.append(self._line(line, {"status_code": 200, "body": body}, None))
            else:
                batch.failed += 1
                errors.append(self._line(line, {"status_code": reply.status, "body": body}, None))
        batch.status = status if self.flavour == "openai" else status.upper()
        if outputs:
            batch.output_file_id = self.new_id("file")
            self.files[batch.output_file_id] = b"".join(outputs)
        if errors:
            batch.error_file_id = self.new_id("file")
            self.files[batch.error_file_id] = b"".join(errors)

    def _answer(self, body: dict[str, Any]) -> tuple[Reply, Any]:
        """The reply an ordinary call with `body` would get (faults first), without counting it as one."""
        self.batch_requests.append(body)
        reply: Reply | None = None
        for fault in self.faults:
            if fault.times > 0 and fault.matches(body):
                fault.times -= 1
                reply = fault.reply
                break
        if reply is None:
            handled = self.handler(body)
            reply = Reply(handled) if isinstance(handled, str) else handled
        if reply.body is not None:
            try:
                return reply, json.loads(reply.body)
            except ValueError:
                return reply, reply.body.decode(errors="replace")
        if reply.status != 200:
            error = {"message": reply.text or f"status {reply.status}", "type": "error", "code": reply.error_code}
            return reply, {"error": error}
        return reply, completion_body(body, reply)

    def _line(self, line: dict[str, Any], response: dict[str, Any] | None, error: dict[str, Any] | None) -> bytes:
        out = {"id": self.new_id("batch_req"), "custom_id": line.get("custom_id"), "response": response, "error": error}
        return json.dumps(out).encode() + b"\n"

    def batch_json(self, batch: Batch) -> dict[str, Any]:
        if self.flavour == "together":
            done = batch.completed + batch.failed
            return {
                "id": batch.id,
                "status": batch.status,
                "input_file_id": batch.input_file_id,
                "output_file_id": batch.output_file_id,
                "error_file_id": batch.error_file_id,
                "endpoint": "/v1/chat/completions",
                "progress": 100.0 * done / max(1, len(batch.lines)),
                "error": batch.error,
                "created_at": "2026-01-01T00:00:00Z",
            }
        errors = None
        if batch.error is not None:
            errors = {"object": "list", "data": [{"code": "invalid_request", "message": batch.error, "line": 1}]}
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": errors,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": batch.created_at,
            "request_counts": {"total": len(batch.lines), "completed": batch.completed, "failed": batch.failed},
        }

    def close(self) -> None:
        self._batches_released.set()
        super().close()

    def __enter__(self) -> BatchServer:
        return self


class _BatchHandler(_Handler):
    server: Any

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _json_body(self) -> Any:
        try:
            return json.loads(self._body() or b"{}")
        except ValueError:
            return {}

    def do_POST(self) -> None:
        chat: BatchServer = self.server.chat
        path = self.path.split("?")[0].rstrip("/")
        if path.endswith("/chat/completions"):
            super().do_POST()
            return
        if path == "/v1/files":
            raw = self._body()
            if chat.flavour == "openai":
                message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                    f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + raw
                )
                content = b""
                for part in message.iter_parts():
                    if part.get_param("name", header="content-disposition") == "file":
                        payload = part.get_payload(decode=True)
                        content = payload if isinstance(payload, bytes) else b""
                file_id = chat.store_file(content)
                self._send(
                    200,
                    {
                        "id": file_id,
                        "object": "file",
                        "bytes": len(content),
                        "created_at": 0,
                        "filename": "input.jsonl",
                        "purpose": "batch",
                        "status": "processed",
                    },
                )
            else:
                file_id = chat.store_file(b"")
                location = f"{chat.url}/upload/{file_id}"
                self._send(302, {}, {"Location": location, "X-Together-File-Id": file_id})
            return
        if path.startswith("/v1/files/") and path.endswith("/preprocess"):
            file_id = path.split("/")[3]
            size = len(chat.files.get(file_id, b""))
            self._send(
                200,
                {
                    "id": file_id,
                    "bytes": size,
                    "created_at": 0,
                    "filename": "input.jsonl",
                    "FileType": "jsonl",
                    "object": "file",
                    "purpose": "batch-api",
                },
            )
            return
        if path == "/v1/batches":
            request = self._json_body()
            batch = chat.create_batch(str(request.get("input_file_id")))
            if batch is None:
                self._send(404, {"error": {"message": "no such file", "type": "invalid_request_error"}})
            elif chat.flavour == "together":
                self._send(200, {"job": chat.batch_json(batch), "warning": None})
            else:
                self._send(200, chat.batch_json(batch))
            return
        if path.startswith("/v1/batches/") and path.endswith("/cancel"):
            self._body()
            batch = chat.batches.get(path.split("/")[3])
            if batch is None:
                self._send(404, {"error": {"message": "no such batch", "type": "invalid_request_error"}})
                return
            with chat._lock:
                chat.cancelled.append(batch.id)
                if batch.status.lower() not in ("completed", "failed", "expired", "cancelled"):
                    batch.cancel_requested = True
                    batch.status = "cancelling" if chat.flavour == "openai" else "CANCELLING"
            self._send(200, chat.batch_json(batch))
            return
        self._body()
        self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_PUT(self) -> None:
        chat: BatchServer = self.server.chat
        file_id = self.path.rstrip("/").split("/")[-1]
        content = self._body()
        with chat._lock:
            chat.files[file_id] = content
        self._send(200, {})

    def do_GET(self) -> None:
        chat: BatchServer = self.server.chat
        path = self.path.split("?")[0].rstrip("/")
        parts = path.split("/")
        if path == "/v1/batches":
            data = [chat.batch_json(b) for b in chat.batches.values()]
            self._send_list(data if chat.flavour == "together" else {"object": "list", "data": data, "has_more": False})
            return
        if len(parts) == 4 and parts[2] == "batches":
            batch = chat.batches.get(parts[3])
            if batch is None:
                self._send(404, {"error": {"message": "no such batch", "type": "invalid_request_error"}})
                return
            chat.advance(batch)
            self._send(200, chat.batch_json(batch))
            return
        if len(parts) == 5 and parts[2] == "files" and parts[4] == "content":
            content = chat.files.get(parts[3])
            if content is None:
                self._send(404, {"error": {"message": "no such file", "type": "invalid_request_error"}})
                return
            self._send_bytes(200, content, {"Content-Type": "application/octet-stream"})
            return
        self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def _send_list(self, payload: Any) -> None:
        self._send_bytes(200, json.dumps(payload).encode(), {"Content-Type": "application/json"})


BatchServer.handler_class = _BatchHandler
