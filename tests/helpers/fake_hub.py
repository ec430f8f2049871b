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
    # Answer 429 with this Retry-After (seconds) to this many requests, then serve.
    retry_after: int = 0
    refusals_left: int = 0
    hangs: bool = False  # never answers (until the hub stops)


@dataclass
class FakeHub:
    url: str = ""
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    bytes_sent: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    requests: list[str] = field(default_factory=list)
    delay: float = 0.0  # seconds added to every response (a distant Hub, for benchmarks)
    stopped: threading.Event = field(default_factory=threading.Event)
    collections: dict[str, list[str]] = field(default_factory=dict)  # slug -> model ids

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


def _safetensors_total(files: dict[str, bytes]) -> dict[str, Any]:
    """What the Hub shows as a repo's parameters: every tensor of every safetensors file
    summed, by dtype, with no tie logic (huggingface_hub's `get_safetensors_metadata`)."""
    by_dtype: dict[str, int] = defaultdict(int)
    for name, data in files.items():
        if not name.endswith(".safetensors") or len(data) < 8:
            continue
        length = int.from_bytes(data[:8], "little")
        try:
            header = json.loads(data[8 : 8 + length])
        except ValueError:
            continue
        for key, entry in header.items():
            if key != "__metadata__" and isinstance(entry, dict):
                count = 1
                for size in entry.get("shape", []):
                    count *= size
                by_dtype[entry.get("dtype", "?")] += count
    if not by_dtype:
        return {}
    return {"safetensors": {"parameters": dict(by_dtype), "total": sum(by_dtype.values())}}


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

        def _json(self, payload: Any, send_body: bool = True, link: str | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if link:
                self.send_header("Link", link)
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def _listing(self) -> None:
            """`/api/models?author=&search=&limit=` with the Hub's Link-header pagination."""
            from urllib.parse import parse_qs, urlencode, urlparse

            query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
            ids = sorted(hub.repos)
            if query.get("author"):
                ids = [i for i in ids if i.split("/")[0] == query["author"]]
            if query.get("search"):
                ids = [i for i in ids if query["search"].lower() in i.lower()]
            start, limit = int(query.get("cursor", 0)), int(query.get("limit", 1000))
            page = ids[start : start + limit]
            link = None
            if start + limit < len(ids):
                following = urlencode({**query, "cursor": start + limit})
                link = f'<{hub.url}/api/models?{following}>; rel="next"'
            self._json([{"id": i, "modelId": i, "private": False} for i in page], link=link)

        def _collection(self, slug: str) -> None:
            if slug not in hub.collections:
                self._error(404, "CollectionNotFound")
                return
            items = [
                {"_id": f"{n:024x}", "id": repo_id, "type": "model", "position": n}
                for n, repo_id in enumerate(hub.collections[slug])
            ]
            self._json(
                {
                    "slug": slug,
                    "title": slug,
                    "owner": {"name": slug.split("/")[0], "type": "org"},
                    "items": items,
                    "lastUpdated": "2026-12-01T00:00:00.000Z",
                    "position": 0,
                    "private": False,
                    "theme": "default",
                    "upvotes": 0,
                }
            )

        def _serve(self, send_body: bool) -> None:
            hub.requests.append(f"{self.command} {self.path}")
            if hub.delay:
                hub.stopped.wait(hub.delay)
            if re.match(r"^/api/models(\?.*)?$", self.path):
                self._listing()
                return
            collection = re.match(r"^/api/collections/(.+?)(?:\?.*)?$", self.path)
            if collection:
                self._collection(collection.group(1))
                return
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
            if repo.hangs:
                hub.stopped.wait(60)
                return
            if repo.rate_limited:
                self._error(429)
                return
            if repo.refusals_left > 0:
                repo.refusals_left -= 1
                body = b'{"error": "rate limited"}'
                self.send_response(429)
                self.send_header("Retry-After", str(repo.retry_after))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
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
                        **_safetensors_total(files),
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
        self.hub.stopped.set()  # a hanging or delayed answer ends now
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
