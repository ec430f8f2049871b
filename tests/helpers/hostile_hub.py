"""A Hub on 127.0.0.1 that misbehaves on purpose: stalls, drips, floods, lies, loops, garbage.

Every loop is bounded (in bytes or seconds) and the server stops with the test.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"
FLOOD_BYTES = 3 * 1024**3  # what a server ignoring Range would send for a large shard
MAX_SECONDS = 60  # no misbehaviour lasts longer than this


class HostileHub:
    """`behaviour` decides how every request is answered; `files` are the repo's files."""

    def __init__(self, files: dict[str, bytes], behaviour: str) -> None:
        self.files = files
        self.behaviour = behaviour
        self.requests: list[str] = []
        self.bytes_sent = 0
        # A dripped reply ended because the client hung up (not because the drip ran out).
        self.client_hung_up = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            # shutdown() waits for the next poll: the default 0.5 s was 0.5 s per test
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
        )
        self.stopping = threading.Event()

    def __enter__(self) -> HostileHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _handler(hub: HostileHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            return None

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            hub.requests.append(f"{self.command} {self.path}")
            try:
                self._answer()
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                return

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _api_body(self) -> dict[str, Any]:
            return {
                "id": "org/model",
                "sha": COMMIT,
                "siblings": [{"rfilename": name} for name in sorted(hub.files)],
            }

        def _answer(self) -> None:
            behaviour = hub.behaviour
            is_api = self.path.startswith("/api/models/")
            if behaviour == "stall":
                hub.stopping.wait(MAX_SECONDS)
                return
            if is_api:
                body = self._api_body()
                if behaviour == "garbage-api":
                    self._send(200, b"\xff\xfe\x00garbage{", {"Content-Type": "application/json"})
                elif behaviour == "redirect-loop":
                    self._send(302, b"", {"Location": self.path})
                elif behaviour == "siblings-not-a-list":
                    self._send(200, json.dumps({**body, "siblings": "all"}).encode())
                elif behaviour == "bad-sibling-entries":
                    self._send(200, json.dumps({**body, "siblings": [1, None]}).encode())
                elif behaviour == "traversal-sha":
                    self._send(200, json.dumps({**body, "sha": "../../../../tmp/x"}).encode())
                else:
                    self._send(200, json.dumps(body).encode())
                return
            name = self.path.split("/resolve/", 1)[-1].split("/", 1)[-1].split("?")[0]
            content = hub.files.get(name)
            if content is None:
                self._send(404, b"{}", {"X-Error-Code": "EntryNotFound"})
                return
            headers = {"X-Repo-Commit": COMMIT, "ETag": '"etag"'}
            if name.endswith(".safetensors") and behaviour == "drip":
                self._drip()
                return
            if name.endswith(".safetensors") and behaviour == "drip-range":
                self._drip_range(content, headers)
                return
            if name.endswith(".safetensors") and behaviour == "flood":
                self._flood(headers)
                return
            if name.endswith(".safetensors") and behaviour == "endless-chunked":
                self._endless(headers)
                return
            self._send(200, content, headers)

        def _drip(self) -> None:
            """A valid-looking 206 whose body arrives one byte a second."""
            self.send_response(206)
            self.send_header("Content-Range", "bytes 0-7/1000")
            self.send_header("Content-Length", "8")
            self.end_headers()
            deadline = time.monotonic() + MAX_SECONDS
            while time.monotonic() < deadline and not hub.stopping.is_set():
                self.wfile.write(b"\x00")
                self.wfile.flush()
                hub.bytes_sent += 1
                time.sleep(1)

        def _drip_range(self, content: bytes, headers: dict[str, str]) -> None:
            """The range asked for, with honest headers; from the header on (past the 8-byte
            length prefix) one byte a second, never stalling long enough to time out."""
            asked = self.headers.get("Range", "")
            first, _, last = asked.removeprefix("bytes=").partition("-")
            begin = int(first or 0)
            end = min(int(last or len(content) - 1), len(content) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {begin}-{end}/{len(content)}")
            self.send_header("Content-Length", str(end - begin + 1))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if begin == 0:  # the length prefix, at once
                self.wfile.write(content[: end + 1])
                return
            deadline = time.monotonic() + MAX_SECONDS
            for position in range(begin, end + 1):
                if time.monotonic() > deadline or hub.stopping.is_set():
                    return
                try:
                    self.wfile.write(content[position : position + 1])
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    hub.client_hung_up.set()
                    return
                hub.bytes_sent += 1
                # Wake at once when the test ends; a client that hung up shows on the next write.
                hub.stopping.wait(1)

        def _flood(self, headers: dict[str, str]) -> None:
            """Range ignored: 200 and the whole (3 GiB) file."""
            self.send_response(200)
            self.send_header("Content-Length", str(FLOOD_BYTES))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            block = bytes(1 << 20)
            for _ in range(FLOOD_BYTES >> 20):
                if hub.stopping.is_set():
                    return
                self.wfile.write(block)
                hub.bytes_sent += len(block)

        def _endless(self, headers: dict[str, str]) -> None:
            """A 206 with a valid Content-Range, then a chunked body that never ends."""
            self.send_response(206)
            self.send_header("Content-Range", "bytes 0-7/1000")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = bytes(1 << 20)
            deadline = time.monotonic() + MAX_SECONDS
            while time.monotonic() < deadline and not hub.stopping.is_set():
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                hub.bytes_sent += len(chunk)

    return Handler
