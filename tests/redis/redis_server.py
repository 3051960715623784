"""A throwaway ``redis-server`` on 127.0.0.1, for tests and benchmarks of the shared limiter.

```python
async with RedisServer() as server:          # a free port, no persistence
    limiter = RedisLimiter(server.url, key=webhook_url)
    await server.restart()                   # same port, empty again
```
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import time
from types import TracebackType

__all__ = ["RedisServer", "redis_server_path"]


def redis_server_path() -> str | None:
    """Where ``redis-server`` is installed, if it is."""
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """A ``redis-server`` child process without persistence (``--save '' --appendonly no``).

    Args:
        port: where to listen on 127.0.0.1 (default: a free port).
        start_timeout: how long to wait for it to answer PING, seconds.

    Raises:
        FileNotFoundError: on start, if ``redis-server`` is not installed.
        TimeoutError: on start, if it does not answer in time.
    """

    def __init__(self, port: int | None = None, *, start_timeout: float = 10.0) -> None:
        self.port = port or _free_port()
        self.start_timeout = start_timeout
        self._process: asyncio.subprocess.Process | None = None
        #: ``time.monotonic()`` when the server last answered its first PING.
        self.started_at = 0.0

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:{port}/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Start the server and wait until it answers PING."""
        path = redis_server_path()
        if path is None:
            raise FileNotFoundError("redis-server is not installed")
        self._process = await asyncio.create_subprocess_exec(
            path,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.start_timeout
        while not await self.ping():
            if self._process.returncode is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                await self.stop()
                raise TimeoutError(f"redis-server did not answer within {self.start_timeout} s")
            await asyncio.sleep(0.02)
        self.started_at = time.monotonic()

    async def ping(self) -> bool:
        """One PING, answered within a second."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.port), 1.0
            )
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(b"PING\r\n")
            await writer.drain()
            return await asyncio.wait_for(reader.readline(), 1.0) == b"+PONG\r\n"
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def stop(self) -> None:
        """Terminate the server (killed if it takes over 10 s); its data is gone."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10.0)
        except TimeoutError:
            process.kill()
            await asyncio.wait_for(process.wait(), 10.0)

    async def restart(self, down_for: float = 0.0) -> None:
        """Stop the server, stay down ``down_for`` seconds, start it again on the same port."""
        await self.stop()
        await asyncio.sleep(down_for)
        await self.start()

    async def __aenter__(self) -> RedisServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
