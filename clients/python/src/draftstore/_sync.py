"""The synchronous client: the asynchronous one, run on an event loop of its own in a background thread, so that
every operation and helper is written once and works from any code, inside a running event loop or not."""

import asyncio
import functools
import inspect
import threading
from typing import Any, Optional

from ._client import AsyncClient


class Client:
    """DraftStore's REST API, synchronously: the methods of `AsyncClient`, each returning its result.

    Use it as a context manager, or call `close()`, to stop its thread.
    """

    def __init__(self, base_url: str = "http://localhost:8080", token: Optional[str] = None, **options: Any):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="draftstore-client", daemon=True)
        self._thread.start()
        self._async = self._run(self._make(base_url, token, options))

    @staticmethod
    async def _make(base_url: str, token: Optional[str], options: Any) -> AsyncClient:
        return AsyncClient(base_url, token, **options)

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._async, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._run(attribute(*args, **kwargs))
        return call

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._async.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
