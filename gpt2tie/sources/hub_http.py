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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt2tie.base.errors import CheckpointFormatError, InputError, RateLimited
from gpt2tie.requests.request import DEFAULT_TIMEOUT, SourceOptions

COMMIT = re.compile(r"^[0-9a-f]{40}$")


DEFAULT_ENDPOINT = "https://huggingface.co"


# How to talk to the Hub for a request's source options; the environment is read at call time.
def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def token_value(options: SourceOptions) -> str | bool | None:
    """An explicit --token, else what huggingface_hub finds (HF_TOKEN, the stored login)."""
    return options.token if options.token else None


def deadline_seconds(options: SourceOptions) -> float:
    if options.timeout is not None:
        return options.timeout
    try:
        configured = float(os.environ.get("GPT2TIE_TIMEOUT") or DEFAULT_TIMEOUT)
    except ValueError:
        return DEFAULT_TIMEOUT
    return configured if math.isfinite(configured) and configured > 0 else DEFAULT_TIMEOUT


def remaining(options: SourceOptions) -> float:
    return options.started + deadline_seconds(options) - time.monotonic()


class HubUnreachable(InputError):
    """The Hub could not be reached (network down, DNS, timeout): callers may fall back."""


class _DeadlinePassed(Exception):
    """Raised in the main thread by the deadline timer."""


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
    left = remaining(options)
    if left <= 0:
        raise _DeadlinePassed
    outermost = not getattr(_armed, "on", False)
    main = threading.current_thread() is threading.main_thread()
    if not (outermost and main and hasattr(signal, "setitimer")):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _DeadlinePassed

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, left)
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

    at = endpoint()
    try:
        with _quiet_hub(), _deadline(options):
            yield
    except _DeadlinePassed:
        raise HubUnreachable(
            f"the Hub at {at} did not finish answering within {deadline_seconds(options):g} "
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
            f"{spec}: no such repo on {at}, or it is private: pass a token "
            "(--token, HF_TOKEN, or `hf auth login`)"
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 429:
            headers = exc.response.headers if exc.response is not None else {}
            raise RateLimited(_status_message(spec, status), _seconds(headers)) from None
        raise InputError(_status_message(spec, status)) from None
    except HFValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid argument"
        raise InputError(f"{spec}: {first}") from None
    except Exception as exc:
        if type(exc).__name__ == "TooManyRedirects":
            raise InputError(f"{spec}: the Hub at {at} redirects in a loop") from None
        if not isinstance(exc, OfflineModeIsEnabled) and not _is_network_error(exc):
            raise
        raise HubUnreachable(
            f"cannot reach {at} ({type(exc).__name__}); work offline from the cache with "
            "--offline or HF_HUB_OFFLINE=1"
        ) from None


def _seconds(headers: Any) -> float | None:
    """Retry-After in seconds (the Hub sends seconds; an HTTP date is not followed)."""
    try:
        value = float(str(headers.get("Retry-After", "")).strip())
    except ValueError:
        return None
    return value if 0 <= value < 86400 else None


def _status_message(spec: str, status: int | None) -> str:
    if status == 429:
        return f"{spec}: rate-limited by the Hub (HTTP 429); wait and retry, or pass a token"
    if status in (401, 403):
        return f"{spec}: access refused by the Hub (HTTP {status}); check the token's permissions"
    return f"{spec}: the Hub answered HTTP {status}"


def model_info(
    spec: str, revision: str, options: SourceOptions
) -> tuple[str, list[str], int | None]:
    """The commit and the file names of a repo at `revision`, and the parameter count the Hub
    shows for it (None when it shows none), checked: a malformed reply (not JSON, siblings not
    a list, a commit that is not 40 hex digits) is one error line."""
    from huggingface_hub import HfApi

    with hub_errors(spec, options):
        try:
            info = HfApi(endpoint=endpoint(), token=token_value(options)).model_info(
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
    shown = getattr(getattr(info, "safetensors", None), "total", None)
    if not isinstance(shown, int) or isinstance(shown, bool) or shown < 0:
        shown = None
    return commit, [s.rfilename for s in siblings], shown


def download(spec: str, name: str, revision: str, options: SourceOptions) -> Path:
    """One small file of the repo, through huggingface_hub's cache (config, adapter config,
    code): never weights."""
    from huggingface_hub import hf_hub_download

    with hub_errors(spec, options):
        return Path(
            hf_hub_download(
                spec,
                name,
                subfolder=options.subfolder or None,
                revision=revision,
                cache_dir=options.cache_dir,
                token=token_value(options),
                endpoint=endpoint(),
                etag_timeout=request_timeout("metadata"),
            )
        )


def get_range(
    url: str, headers: dict[str, str], first: int, last: int, name: str, options: SourceOptions
) -> tuple[bytearray, int]:
    """Bytes `first..last` of a file and the file's total size, from a 206 reply with a valid
    Content-Range; never more than asked for, whatever the server sends, and never past the
    run's deadline: reads run in worker threads, where the deadline's timer signal does not
    reach, so each chunk is checked against the clock (a byte a second never times out)."""
    wanted = last - first + 1
    request_headers = {**headers, "Range": f"bytes={first}-{last}"}
    left = remaining(options)
    if left <= 0:
        raise _DeadlinePassed
    timeout = min(request_timeout(), left)
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
            if remaining(options) <= 0:
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


def within(root: Path, path: Path) -> Path:
    """`path`, after checking that it stays inside `root` (cache paths built from replies)."""
    resolved_root = root.resolve()
    resolved = path.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise InputError(f"refusing a cache path outside {root}")
    return path
