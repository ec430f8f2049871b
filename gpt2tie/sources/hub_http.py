"""Talking to the Hub: options, timeouts and an overall deadline, range reads that never take
more than they asked for, and every failure as one line a user can act on (never the token)."""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpt2tie.base.errors import CheckpointFormatError, InputError

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_TIMEOUT = 120.0  # seconds for all of one run's Hub traffic
COMMIT = re.compile(r"^[0-9a-f]{40}$")


class HubUnreachable(InputError):
    """The Hub could not be reached (network down, DNS, timeout): callers may fall back."""


class _DeadlinePassed(Exception):
    """Raised in the main thread by the deadline timer."""


# huggingface_hub writes refs/<revision> through a temporary `<revision>.<8 hex>.tmp`: a
# file name of 255 bytes at most leaves 242 for the revision's last part.
MAX_NAME_BYTES = 240


@dataclass(frozen=True)
class SourceOptions:
    """Where and how to look for a model: Hub revision, token and timeouts, offline mode, and
    the subfolder (which applies to local folders too)."""

    revision: str | None = None
    token: str | None = None
    offline: bool = False
    subfolder: str = ""
    cache_dir: Path | None = None
    fetch_code: bool = False  # --trust-remote-code: also fetch the repo's *.py files
    timeout: float | None = None  # --timeout: None is GPT2TIE_TIMEOUT, else DEFAULT_TIMEOUT
    gguf_file: str | None = None  # --gguf-file: this GGUF file of the folder or repo
    started: float = field(default_factory=time.monotonic, compare=False)

    def __post_init__(self) -> None:
        checked_subfolder(self.subfolder)
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout >= 1):
            raise InputError(
                f"timeout (--timeout) must be at least 1, and finite, not {self.timeout}"
            )
        # The HF cache keeps a file per revision (refs/<revision>): a longer part can be
        # neither cached nor looked up.
        parts = (self.revision or "").split("/")
        if any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for part in parts):
            raise InputError(
                f"--revision of {len(self.revision or ''):,} characters: each part of a "
                f"revision (between slashes) may be at most {MAX_NAME_BYTES} bytes"
            )

    @property
    def is_offline(self) -> bool:
        flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
        return self.offline or flag.strip().lower() in {"1", "true", "yes", "on"}

    @property
    def endpoint(self) -> str:
        return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")

    @property
    def token_value(self) -> str | bool | None:
        """An explicit --token, else what huggingface_hub finds (HF_TOKEN, the stored login)."""
        return self.token if self.token else None

    @property
    def deadline_seconds(self) -> float:
        if self.timeout is not None:
            return self.timeout
        try:
            configured = float(os.environ.get("GPT2TIE_TIMEOUT") or DEFAULT_TIMEOUT)
        except ValueError:
            return DEFAULT_TIMEOUT
        return configured if math.isfinite(configured) and configured > 0 else DEFAULT_TIMEOUT

    def remaining(self) -> float:
        return self.started + self.deadline_seconds - time.monotonic()


def request_timeout(kind: str = "download") -> float:
    """huggingface_hub's own settings, read at call time: connect and read timeouts."""
    name = "HF_HUB_ETAG_TIMEOUT" if kind == "metadata" else "HF_HUB_DOWNLOAD_TIMEOUT"
    try:
        return float(os.environ.get(name) or 10)
    except ValueError:
        return 10.0


_armed = threading.local()


@contextlib.contextmanager
def _deadline(options: SourceOptions) -> Iterator[None]:
    """Stop Hub traffic at the run's deadline (a server sending one byte a second never times
    out a read). A timer signal works in the main thread only; elsewhere the per-request
    timeouts still hold."""
    remaining = options.remaining()
    if remaining <= 0:
        raise _DeadlinePassed
    outermost = not getattr(_armed, "on", False)
    main = threading.current_thread() is threading.main_thread()
    if not (outermost and main and hasattr(signal, "setitimer")):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _DeadlinePassed

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, remaining)
    _armed.on = True
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        _armed.on = False


@contextlib.contextmanager
def hub_errors(spec: str, options: SourceOptions) -> Iterator[None]:
    """Hub failures as one line a user can act on; never the token."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = options.endpoint
    try:
        with _quiet_hub(), _deadline(options):
            yield
    except _DeadlinePassed:
        raise HubUnreachable(
            f"the Hub at {endpoint} did not finish answering within {options.deadline_seconds:g} "
            "s (--timeout); work offline from the cache with --offline or HF_HUB_OFFLINE=1"
        ) from None
    except GatedRepoError:
        raise InputError(
            f"{spec} is gated: accept its terms on the Hub, then pass a token "
            "(--token, HF_TOKEN, or `hf auth login`)"
        ) from None
    except RevisionNotFoundError:
        raise InputError(f"{spec}: revision {options.revision!r} not found") from None
    except RepositoryNotFoundError:
        raise InputError(
            f"{spec}: no such repo on {endpoint}, or it is private: pass a token "
            "(--token, HF_TOKEN, or `hf auth login`)"
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        raise InputError(_status_message(spec, status)) from None
    except HFValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid argument"
        raise InputError(f"{spec}: {first}") from None
    except Exception as exc:
        if type(exc).__name__ == "TooManyRedirects":
            raise InputError(f"{spec}: the Hub at {endpoint} redirects in a loop") from None
        if not isinstance(exc, OfflineModeIsEnabled) and not _is_network_error(exc):
            raise
        raise HubUnreachable(
            f"cannot reach {endpoint} ({type(exc).__name__}); work offline from the cache with "
            "--offline or HF_HUB_OFFLINE=1"
        ) from None


def _status_message(spec: str, status: int | None) -> str:
    if status == 429:
        return f"{spec}: rate-limited by the Hub (HTTP 429); wait and retry, or pass a token"
    if status in (401, 403):
        return f"{spec}: access refused by the Hub (HTTP {status}); check the token's permissions"
    return f"{spec}: the Hub answered HTTP {status}"


def model_info(spec: str, revision: str, options: SourceOptions) -> tuple[str, list[str]]:
    """The commit and the file names of a repo at `revision`, checked: a malformed reply (not
    JSON, siblings not a list, a commit that is not 40 hex digits) is one error line."""
    from huggingface_hub import HfApi

    with hub_errors(spec, options):
        try:
            info = HfApi(endpoint=options.endpoint, token=options.token_value).model_info(
                spec, revision=revision, timeout=request_timeout("metadata")
            )
        except (UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
            if type(exc).__name__.endswith("ValidationError"):
                raise
            raise InputError(
                f"{spec}: the Hub sent a malformed reply ({type(exc).__name__})"
            ) from None
    siblings = info.siblings
    if not isinstance(siblings, list) or not all(
        isinstance(getattr(s, "rfilename", None), str) for s in siblings
    ):
        raise InputError(f"{spec}: the Hub sent a malformed file list")
    commit = info.sha
    if not isinstance(commit, str) or not COMMIT.match(commit):
        raise InputError(f"{spec}: the Hub sent a commit id that is not 40 hex digits")
    return commit, [s.rfilename for s in siblings]


def get_range(
    url: str, headers: dict[str, str], first: int, last: int, name: str, options: SourceOptions
) -> tuple[bytearray, int]:
    """Bytes `first..last` of a file and the file's total size, from a 206 reply with a valid
    Content-Range; never more than asked for, whatever the server sends, and never past the
    run's deadline: reads run in worker threads, where the deadline's timer signal does not
    reach, so each chunk is checked against the clock (a byte a second never times out)."""
    wanted = last - first + 1
    request_headers = {**headers, "Range": f"bytes={first}-{last}"}
    remaining = options.remaining()
    if remaining <= 0:
        raise _DeadlinePassed
    timeout = min(request_timeout(), remaining)
    with _streamed_get(url, request_headers, timeout) as response:
        status = response.status_code
        if status == 416:
            return bytearray(), 0
        if status >= 400:
            raise _HttpStatus(status)
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", response.headers.get("Content-Range", ""))
        if status != 206 or match is None or int(match.group(1)) != first:
            raise CheckpointFormatError(
                name, "the Hub ignored the byte range asked for (no valid Content-Range)"
            )
        data = bytearray()
        for chunk in response.chunks:
            data.extend(chunk[: wanted - len(data)])
            if len(data) >= wanted:
                break
            if options.remaining() <= 0:
                raise _DeadlinePassed
    return data, int(match.group(3))


@dataclass(frozen=True)
class _Streamed:
    status_code: int
    headers: Mapping[str, str]
    chunks: Iterator[bytes]


@contextlib.contextmanager
def _streamed_get(url: str, headers: dict[str, str], timeout: float) -> Iterator[_Streamed]:
    """A streamed GET through huggingface_hub's own session, whichever client it is: httpx
    (huggingface_hub 1.x) or requests (0.x, which transformers 4 needs)."""
    from huggingface_hub import get_session

    session: Any = get_session()
    if callable(getattr(session, "stream", None)):  # requests' Session.stream is a flag
        with session.stream(
            "GET", url, headers=headers, follow_redirects=True, timeout=timeout
        ) as response:
            yield _Streamed(response.status_code, response.headers, response.iter_bytes())
        return
    response = session.get(url, headers=headers, stream=True, timeout=timeout)
    try:
        yield _Streamed(response.status_code, response.headers, _as_received(response))
    finally:
        response.close()


def _as_received(response: Any) -> Iterator[bytes]:
    """requests' body in the pieces the network delivers (iter_content waits for a whole
    chunk, so a drip would never reach the deadline check between chunks)."""
    read1 = getattr(response.raw, "read1", None)  # urllib3 >= 2
    if read1 is None:
        yield from response.iter_content(4096)
        return
    while chunk := read1(65536, decode_content=True):
        yield chunk


class _HttpStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@contextlib.contextmanager
def range_errors(spec: str) -> Iterator[None]:
    try:
        yield
    except _HttpStatus as exc:
        raise InputError(_status_message(spec, exc.status)) from None


@contextlib.contextmanager
def _quiet_hub() -> Iterator[None]:
    """No download bars or retry warnings from huggingface_hub: gpt2tie reports failures itself."""
    import logging

    from huggingface_hub import utils as hub_utils  # the bar switches are not re-exported

    logger = logging.getLogger("huggingface_hub")
    previous_level = logger.level
    bars_were_off = hub_utils.are_progress_bars_disabled()  # type: ignore[attr-defined]
    logger.setLevel(logging.ERROR)
    hub_utils.disable_progress_bars()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        logger.setLevel(previous_level)
        if not bars_were_off:
            hub_utils.enable_progress_bars()  # type: ignore[attr-defined]


_NETWORK_ERRORS = {
    "TransportError",
    "ConnectError",
    "TimeoutException",
    "NetworkError",
    "ConnectionError",
    "TimeoutError",
    "Timeout",
    "ProtocolError",
}


def _is_network_error(exc: BaseException) -> bool:
    """Connection failures of whichever HTTP client huggingface_hub uses (httpx, requests)."""
    return any(cls.__name__ in _NETWORK_ERRORS for cls in type(exc).__mro__)


def checked_subfolder(subfolder: str) -> str:
    """`--subfolder` as a relative path inside the repo (no `..`, not absolute)."""
    parts = Path(subfolder).parts
    if subfolder.startswith(("/", "\\")) or ".." in parts:
        raise InputError(f"--subfolder {subfolder!r} must be a folder inside the repo")
    return subfolder


def within(root: Path, path: Path) -> Path:
    """`path`, after checking that it stays inside `root` (cache paths built from replies)."""
    resolved_root = root.resolve()
    resolved = path.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise InputError(f"refusing a cache path outside {root}")
    return path
