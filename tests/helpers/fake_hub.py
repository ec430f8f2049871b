"""A small Hugging Face Hub on 127.0.0.1 for tests: repo info, file resolve with Range, errors.

It serves real checkpoint folders written by the tests and counts every byte it sends, per file.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class FakeRepo:
    revisions: dict[str, dict[str, bytes]]  # commit sha -> {file name: content}
    refs: dict[str, str]  # branch or tag -> commit sha
    token: str | None = None  # private: this token is required
    gated: bool = False
    rate_limited: bool = False


@dataclass
class FakeHub:
    url: str = ""
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    bytes_sent: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    requests: list[str] = field(default_factory=list)

    def add_repo(self, repo_id: str, folder: Path, *, branch: str = "main", **flags: Any) -> str:
        """Publish every file under `folder` as a new commit on `branch`; returns its sha."""
        files = {
            str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
        digest = hashlib.sha1(json.dumps(sorted(files)).encode() + b"".join(files.values()))
        sha = digest.hexdigest()
        repo = self.repos.get(repo_id) or FakeRepo(revisions={}, refs={})
        repo.revisions[sha] = files
        repo.refs[branch] = sha
        for key, value in flags.items():
            setattr(repo, key, value)
        self.repos[repo_id] = repo
        return sha

    def sent(self, repo_id: str, file_name: str) -> int:
        return self.bytes_sent[(repo_id, file_name)]


def _card_metadata(files: dict[str, bytes]) -> dict[str, Any]:
    """What the Hub derives from config.json: `config` (model_type, architectures, auto_map)
    and `library_name` — accelerate's estimate-memory asks for them."""
    try:
        config = json.loads(files["config.json"])
    except (KeyError, ValueError):
        return {}
    if not isinstance(config, dict):
        return {}
    keys = ("model_type", "architectures", "auto_map")
    return {
        "config": {key: config[key] for key in keys if key in config},
        "library_name": "transformers",
    }


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            self._serve(send_body=True)

        def do_HEAD(self) -> None:
            self._serve(send_body=False)

        def _error(self, status: int, code: str | None = None) -> None:
            body = json.dumps({"error": code or "error"}).encode()
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _serve(self, send_body: bool) -> None:
            hub.requests.append(f"{self.command} {self.path}")
            tree = re.match(r"^/api/models/(.+?)/tree/([^/?]+)(?:\?.*)?$", self.path)
            if tree:
                self._tree(tree.group(1), tree.group(2))
                return
            api = re.match(r"^/api/models/(.+?)(?:/revision/([^/?]+))?(?:\?.*)?$", self.path)
            resolve = re.match(r"^/(.+?)/resolve/([^/]+)/(.+?)(?:\?.*)?$", self.path)
            match = api or resolve
            if match is None:
                self._error(404)
                return
            repo = hub.repos.get(match.group(1))
            if repo is None:
                self._error(404, "RepoNotFound")
                return
            if repo.rate_limited:
                self._error(429)
                return
            if (
                repo.token is not None
                and self.headers.get("Authorization") != f"Bearer {repo.token}"
            ):
                self._error(401, "RepoNotFound")
                return
            if repo.gated and self.headers.get("Authorization") is None:
                self._error(403, "GatedRepo")
                return
            revision = match.group(2) or "main"
            sha = repo.refs.get(revision, revision if revision in repo.revisions else None)
            if sha is None:
                self._error(404, "RevisionNotFound")
                return
            files = repo.revisions[sha]
            if api:
                body = json.dumps(
                    {
                        "id": match.group(1),
                        "modelId": match.group(1),
                        "sha": sha,
                        "private": False,
                        "siblings": [{"rfilename": name} for name in sorted(files)],
                        **_card_metadata(files),
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if send_body:
                    self.wfile.write(body)
                return
            name = match.group(3)
            if name not in files:
                self._error(404, "EntryNotFound")
                return
            self._send_file(match.group(1), name, files[name], sha, send_body)

        def _tree(self, repo_id: str, revision: str) -> None:
            """The Hub's file listing (`/api/models/{id}/tree/{rev}`), as hf-mem asks for it."""
            repo = hub.repos.get(repo_id)
            sha = None if repo is None else repo.refs.get(revision, revision)
            if repo is None or sha not in repo.revisions:
                self._error(404, "RepoNotFound")
                return
            files = repo.revisions[sha]
            body = json.dumps(
                [{"type": "file", "path": name, "size": len(data)} for name, data in files.items()]
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send_file(self, repo_id: str, name: str, content: bytes, sha: str, body: bool) -> None:
            ranged = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
            first, last = 0, len(content) - 1
            if ranged:
                first = int(ranged.group(1))
                last = min(int(ranged.group(2)) if ranged.group(2) else last, len(content) - 1)
            part = content[first : last + 1]
            self.send_response(206 if ranged else 200)
            self.send_header("Content-Length", str(len(part)))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
            self.send_header("X-Repo-Commit", sha)
            if ranged:
                self.send_header("Content-Range", f"bytes {first}-{last}/{len(content)}")
            self.end_headers()
            if body:
                self.wfile.write(part)
                hub.bytes_sent[(repo_id, name)] += len(part)

    return Handler


class RunningHub:
    """Context manager: a FakeHub served on an ephemeral 127.0.0.1 port."""

    def __init__(self) -> None:
        self.hub = FakeHub()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.hub))
        self._server.daemon_threads = True
        self.hub.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            # shutdown() waits for the next poll: the default 0.5 s was 0.5 s per test
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
        )

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self.hub

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
