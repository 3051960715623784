"""``OfflineEvents``: the document events taken from the portal's offline queue.

docs/portal.md#offline-events: an event bound with ``event_type=offline`` is kept in a queue on
the portal (one row per object and event: the latest state only) until the application takes it
with ``event.offline.get``. With ``clear=0`` the rows are reserved under a ``process_id`` and stay
on the portal until ``event.offline.clear`` confirms them; a restarted consumer passing the same
``process_id`` gets its unconfirmed rows again. So the delivery is **at least once**: an event
whose handling was interrupted by a crash comes again, and a handler must tolerate repeats
(look the document up, compare, then act).

The consumer confirms an event only after the caller's iteration step for it returned: when the
next event is asked for, or when the iterator is closed normally (:meth:`OfflineEvents.aclose`,
or the end of ``async with`` without an exception). The confirmations are sent together, one
``event.offline.clear`` per batch. Every call goes through ``client.call``, so the queue is
read at the pace of every other call. The ``process_id`` is kept in ``state_file`` (when given)
as soon as the portal hands it out, so that a process killed at any point resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import attrs

from bitrix_docgen_async.errors import (
    MethodNotFoundError,
    OfflineEventsUnavailableError,
    ResponseError,
)
from bitrix_docgen_async.models.events import DocumentEvent
from bitrix_docgen_async.receiver.parsing import InvalidEventError, parse_offline_row

if TYPE_CHECKING:
    from bitrix_docgen_async.client import DocgenClient

__all__ = ["OfflineEvents", "OfflineStats"]

logger = logging.getLogger("bitrix_docgen_async.offline")

_CONFIRM_FEATURE: Final = "rest_offline_extended"
_CONNECTOR_FEATURE: Final = "rest_auth_connector"


@attrs.define
class OfflineStats:
    """What the consumer did.

    Attributes:
        fetched: rows ``event.offline.get`` returned.
        yielded: document events handed to the caller.
        confirmed: events confirmed with ``event.offline.clear``.
        unusable: rows that were not document events, or malformed; reported with
            ``event.offline.error`` (kept on the portal, ``error=1``) in the confirm mode.
        requests: ``event.offline.*`` calls made.
    """

    fetched: int = 0
    yielded: int = 0
    confirmed: int = 0
    unusable: int = 0
    requests: int = 0


class OfflineEvents:
    """Takes the document events of the offline queue, confirming each after its step.

    Made by ``client.events.offline(...)``; use it as ``async for event in ...`` (optionally
    inside ``async with``). The parameters are described there.
    """

    def __init__(
        self,
        client: DocgenClient,
        *,
        auth_connector: str | None = None,
        batch: int = 50,
        process_id: str | None = None,
        state_file: str | os.PathLike[str] | None = None,
        allow_lossy: bool = False,
        until_empty: bool = False,
        poll_interval: float = 30.0,
        member_id: str = "",
    ) -> None:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError("batch must be a positive integer")
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if auth_connector is not None and (
            not isinstance(auth_connector, str) or not auth_connector.strip()
        ):
            raise ValueError("auth_connector must be a non-empty string or None")
        self._client = client
        # The client's own key by default: the queue it reads is the one its changes skip.
        if auth_connector is None:
            auth_connector = client.auth_connector
        self.auth_connector = auth_connector
        self.batch = batch
        self.allow_lossy = allow_lossy
        self.until_empty = until_empty
        self.poll_interval = poll_interval
        self.member_id = member_id
        self.stats = OfflineStats()
        self._state_file = Path(state_file) if state_file is not None else None
        self._process_id = process_id
        self._confirm = True
        self._started = False
        self._closed = False
        self._rows: deque[DocumentEvent] = deque()
        self._current: DocumentEvent | None = None
        self._done: list[str] = []
        self._unusable: list[str] = []
        self._wakeup = asyncio.Event()

    def __repr__(self) -> str:
        return (
            f"OfflineEvents(auth_connector={self.auth_connector!r}, batch={self.batch}, "
            f"confirm={self._confirm}, yielded={self.stats.yielded})"
        )

    @property
    def process_id(self) -> str | None:
        """The reservation this consumer reads under (``None`` before the first batch)."""
        return self._process_id

    @property
    def confirm_mode(self) -> bool:
        """``clear=0`` + ``process_id`` (True) or ``clear=1`` (False, after ``allow_lossy``)."""
        return self._confirm

    def wake(self, *_args: Any) -> None:
        """Look at the queue now instead of after ``poll_interval`` (``ONOFFLINEEVENT``)."""
        self._wakeup.set()

    # -- iteration ---------------------------------------------------------------------------

    def __aiter__(self) -> OfflineEvents:
        return self

    async def __anext__(self) -> DocumentEvent:
        if self._closed:
            raise StopAsyncIteration
        if self._current is not None:
            # The caller asks for the next one: the step for the previous one returned.
            if self._current.message_id is not None:
                self._done.append(self._current.message_id)
            self._current = None
        if not self._started:
            await self._start()
        while not self._rows:
            await self._acknowledge()
            if await self._fetch():
                break
            if self.until_empty:
                await self.aclose()
                raise StopAsyncIteration
            await self._wait()
        self._current = self._rows.popleft()
        self.stats.yielded += 1
        return self._current

    async def aclose(self) -> None:
        """Confirm what was handled (the last event included) and stop; idempotent."""
        if self._closed:
            return
        if self._current is not None and self._current.message_id is not None:
            self._done.append(self._current.message_id)
        self._current = None
        self._closed = True
        await self._acknowledge()

    async def __aenter__(self) -> OfflineEvents:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.aclose()
            return
        # The step in progress failed: it is not confirmed (the portal gives it again to the
        # next consumer of this process_id). What was handled before it is.
        self._current = None
        self._closed = True
        with contextlib.suppress(Exception):
            await self._acknowledge()

    # -- the portal ----------------------------------------------------------------------------

    async def _start(self) -> None:
        self._client.events._require_application("event.offline.get")
        if self._process_id is None and self._state_file is not None:
            with contextlib.suppress(FileNotFoundError):
                saved = self._state_file.read_text(encoding="utf-8").strip()
                self._process_id = saved or None
        if self.auth_connector is not None and await self._feature(_CONNECTOR_FEATURE) is False:
            raise OfflineEventsUnavailableError(
                _CONNECTOR_FEATURE,
                "the portal has no auth_connector for offline events (feature "
                "rest_auth_connector: the Professional plan or above)",
            )
        if await self._feature(_CONFIRM_FEATURE) is False:
            self._refuse_lossy()
        if self._confirm and self._process_id is None and self._state_file is not None:
            await self._claim()
        self._started = True

    async def _claim(self) -> None:
        """Get a ``process_id`` and keep it before any row is reserved under it.

        A process killed between the portal reserving rows and writing the new ``process_id``
        down would leave those rows hidden under an id nobody knows (for the 30 days the
        reservation lasts). So the first ``event.offline.get`` selects nothing (``=ID`` 0; ids
        start at 1) and only hands out the ``process_id``, which is saved before the real one.
        """
        params = {**self._params(), "limit": 1, "clear": 0, "filter": {"=ID": 0}}
        self.stats.requests += 1
        result = await self._client.call("event.offline.get", params, idempotent=True)
        process_id = result.get("process_id") if isinstance(result, Mapping) else None
        # Rows returned anyway (a portal ignoring the filter) stay reserved under this
        # process_id: the next get, which passes it, selects them again.
        if not isinstance(process_id, str) or not process_id:
            self._refuse_lossy()
            return
        self._process_id = process_id
        self._save_process_id(process_id)

    def _refuse_lossy(self) -> None:
        if not self.allow_lossy:
            raise OfflineEventsUnavailableError(
                _CONFIRM_FEATURE,
                "the portal refuses the confirm mode of event.offline.get (clear=0 with a "
                "process_id; feature rest_offline_extended): events taken with clear=1 are lost "
                "if the consumer stops before handling them. Pass allow_lossy=True to accept that",
            )
        if self._confirm:
            logger.warning("offline events: no confirm mode on this portal; using clear=1")
        self._confirm = False

    async def _feature(self, code: str) -> bool | None:
        """``feature.get``: True/False, or None when the portal does not know the method."""
        try:
            result = await self._client.call("feature.get", {"CODE": code}, idempotent=True)
        except MethodNotFoundError:
            return None
        value = result.get("value") if isinstance(result, Mapping) else None
        return None if value is None else str(value).upper() == "Y"

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.auth_connector is not None:
            params["auth_connector"] = self.auth_connector
        return params

    async def _fetch(self) -> bool:
        """One ``event.offline.get``; False when the queue had nothing for this consumer."""
        params = {**self._params(), "limit": self.batch, "clear": 0 if self._confirm else 1}
        if self._confirm and self._process_id is not None:
            params["process_id"] = self._process_id
        self.stats.requests += 1
        result = await self._client.call("event.offline.get", params, idempotent=self._confirm)
        if not isinstance(result, Mapping) or not isinstance(result.get("events"), list):
            raise ResponseError("event.offline.get: no events list in the result", status=200)
        rows = result["events"]
        if self._confirm:
            process_id = result.get("process_id")
            if not isinstance(process_id, str) or not process_id:
                if rows:
                    logger.error(
                        "offline events: the portal ignored clear=0 and deleted %d event(s)",
                        len(rows),
                    )
                self._refuse_lossy()
            elif process_id != self._process_id:
                self._process_id = process_id
                self._save_process_id(process_id)
        self.stats.fetched += len(rows)
        domain, member_id = self._portal_identity()
        for row in rows:
            try:
                self._rows.append(parse_offline_row(row, domain=domain, member_id=member_id))
            except InvalidEventError as exc:
                self.stats.unusable += 1
                logger.warning("offline events: skipped a row (%s)", exc)
                message = row.get("MESSAGE_ID") if isinstance(row, Mapping) else None
                if message not in (None, ""):
                    self._unusable.append(str(message))
        return bool(self._rows)

    async def _acknowledge(self) -> None:
        """``event.offline.clear`` for the handled events, ``.error`` for unusable rows."""
        if not self._confirm or self._process_id is None:
            self._done.clear()
            self._unusable.clear()
            return
        if self._done:
            done = list(dict.fromkeys(self._done))
            params = {**self._params(), "process_id": self._process_id, "message_id": done}
            self.stats.requests += 1
            await self._client.call("event.offline.clear", params, idempotent=True)
            self.stats.confirmed += len(self._done)
            self._done.clear()
        if self._unusable:
            bad = list(dict.fromkeys(self._unusable))
            params = {**self._params(), "process_id": self._process_id, "message_id": bad}
            self.stats.requests += 1
            await self._client.call("event.offline.error", params, idempotent=True)
            self._unusable.clear()

    async def _wait(self) -> None:
        try:
            async with asyncio.timeout(self.poll_interval):
                await self._wakeup.wait()
        except TimeoutError:
            pass
        self._wakeup.clear()

    def _save_process_id(self, process_id: str) -> None:
        """Write ``state_file`` atomically (a crash leaves the old or the new one)."""
        if self._state_file is None:
            return
        folder = self._state_file.parent
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".offline-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(process_id)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self._state_file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def _portal_identity(self) -> tuple[str, str]:
        """The portal's host (from the client's endpoint) and ``member_id`` (``""``: unknown)."""
        origin = str(getattr(self._client.auth, "origin", ""))
        return origin.split("://", 1)[-1].split("/", 1)[0], self.member_id
