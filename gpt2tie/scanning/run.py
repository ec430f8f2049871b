"""Many models answered concurrently: each as `gpt2tie inspect` answers one (the same
request journey), a bounded number at a time, the Hub's 429 Retry-After obeyed, an overall
deadline after which nothing new starts. Rows come out as they finish."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from gpt2tie.answering.answer import run
from gpt2tie.base.errors import Gpt2tieError, RateLimited
from gpt2tie.model.skeleton_reuse import skeleton_reuse
from gpt2tie.requests.request import Request
from gpt2tie.results.scan import ScanRow
from gpt2tie.scanning.inputs import ScanItem
from gpt2tie.scanning.rows import error_row, row_of

MAX_RETRY_WAIT = 60.0  # seconds: a longer Retry-After fails the row (a rerun retries it)


@dataclasses.dataclass
class ScanRun:
    """One scan: `rows()` yields each row as it is done; afterwards `not_scanned` counts the
    models the deadline left, and `internal_errors` the rows a bug in gpt2tie produced."""

    items: Iterable[ScanItem]
    request: Request  # the model and revision of each item replace its own
    jobs: int = 8
    deadline: float | None = None  # seconds for the whole scan
    retries: int = 3
    not_scanned: int = 0
    internal_errors: int = 0
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def rows(self) -> Iterator[ScanRow]:
        _imports_before_threads()
        started = time.monotonic()
        end = None if self.deadline is None else started + self.deadline
        items = iter(self.items)
        with skeleton_reuse():
            pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="gpt2tie-scan")
            pending: set[Future[ScanRow]] = set()
            try:
                # At most twice `jobs` submitted: memory stays flat over any number of models.
                for item in items:
                    pending.add(pool.submit(self._row, item, end))
                    if len(pending) >= 2 * self.jobs:
                        break
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
                    while len(pending) < 2 * self.jobs:
                        if end is not None and time.monotonic() >= end:
                            self.not_scanned += sum(1 for _ in items)
                            break
                        following = next(items, None)
                        if following is None:
                            break
                        pending.add(pool.submit(self._row, following, end))
            finally:
                self.stop.set()  # waiting retries give up
                pool.shutdown(wait=True, cancel_futures=True)

    def _row(self, item: ScanItem, end: float | None) -> ScanRow:
        for attempt in range(self.retries + 1):
            where = dataclasses.replace(
                self.request.where,
                revision=item.revision or self.request.where.revision,  # `id@rev` first
                started=time.monotonic(),
            )
            request = dataclasses.replace(self.request, model=item.model, where=where)
            try:
                return row_of(item, run(request).inspection)
            except RateLimited as exc:
                pause = exc.retry_after if exc.retry_after is not None else 2.0**attempt
                late = end is not None and time.monotonic() + pause >= end
                if attempt == self.retries or pause > MAX_RETRY_WAIT or late:
                    return error_row(item, str(exc))
                if self.stop.wait(pause):  # the scan is stopping
                    return error_row(item, str(exc))
            except Gpt2tieError as exc:
                return error_row(item, str(exc))
            except Exception as exc:  # a bug: the row says so, the scan goes on, exit 3 at the end
                with self._lock:
                    self.internal_errors += 1
                return error_row(
                    item, f"internal error in gpt2tie ({type(exc).__name__}): {exc}".strip()
                )
        raise AssertionError("unreachable")  # pragma: no cover


def _imports_before_threads() -> None:
    """huggingface_hub resolves its names lazily: resolved once here, before the threads."""
    import huggingface_hub
    from huggingface_hub import utils  # noqa: F401

    for name in ("HfApi", "hf_hub_download", "get_session", "hf_hub_url", "constants"):
        getattr(huggingface_hub, name)
    import huggingface_hub.errors
    import huggingface_hub.file_download
