"""Uploads and downloads through signed URLs: straight to the store, never through DraftStore."""

import asyncio
import base64
import hashlib
import json
import mimetypes
import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

import httpx

from ._errors import DraftStoreError

MIB = 1024 * 1024
#: Files above this go in parts.
MULTIPART_THRESHOLD = 16 * MIB
#: Bytes read at a time.
CHUNK = MIB

#: `progress(done, total)`: bytes sent (or received) so far, of all.
Progress = Callable[[int, int], None]


def _state_dir() -> Path:
    """Where interrupted uploads are recorded, as the `draftstore` command line records its own."""
    if os.environ.get("DRAFTSTORE_STATE_DIR"):
        return Path(os.environ["DRAFTSTORE_STATE_DIR"])
    if os.environ.get("XDG_STATE_HOME"):
        return Path(os.environ["XDG_STATE_HOME"]) / "draftstore"
    return Path.home() / ".local" / "state" / "draftstore"


def _sha256_range(path: Path, start: int, length: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(start)
        left = length
        while left:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                raise DraftStoreError(f"{path} is shorter than it was: it changed during the upload")
            digest.update(chunk)
            left -= len(chunk)
    return base64.b64encode(digest.digest()).decode()


def _progress(progress: Union[None, bool, Progress], total: int, name: str) -> Progress:
    """The callback to report to: the one given, a tqdm bar for `True` (when tqdm is installed), or none."""
    if callable(progress):
        return progress
    if progress:
        try:
            from tqdm import tqdm
        except ImportError:
            return lambda done, total: None
        bar = tqdm(total=total, unit="B", unit_scale=True, desc=name)

        def update(done: int, _total: int) -> None:
            bar.update(done - bar.n)
            if done >= total:
                bar.close()
        return update
    return lambda done, total: None


class _Sent:
    """Bytes sent so far, over every part in flight."""

    def __init__(self, total: int, report: Progress):
        self.total, self.report, self.parts = total, report, {}

    def set(self, part: int, done: int) -> None:
        self.parts[part] = done
        self.report(sum(self.parts.values()), self.total)


async def _put(http: httpx.AsyncClient, url: str, headers: Dict[str, str], path: Path, start: int, length: int,
               on_sent: Callable[[int], None]) -> str:
    """PUTs bytes `start`.. of a file to a signed URL, reporting what went; returns the ETag."""
    async def body():
        sent = 0
        with open(path, "rb") as f:
            f.seek(start)
            while sent < length:
                chunk = f.read(min(CHUNK, length - sent))
                if not chunk:
                    raise DraftStoreError(f"{path} is shorter than it was: it changed during the upload")
                sent += len(chunk)
                yield chunk
                on_sent(sent)

    headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    headers["Content-Length"] = str(length)
    try:
        response = await http.put(url, content=body(), headers=headers)
    except httpx.TransportError as e:
        raise DraftStoreError(f"the upload to the store failed: {e}") from e
    if not response.is_success:
        error = DraftStoreError.from_response(response)
        error.message = f"the store refused the upload: {error.message}"
        raise error
    return response.headers.get("etag", "")


async def upload_file(self, source: Union[str, os.PathLike], object_name: Optional[str] = None, *,
                      content_type: Optional[str] = None, progress: Union[None, bool, Progress] = None,
                      multipart_threshold: int = MULTIPART_THRESHOLD, part_size: Optional[int] = None,
                      parallel: int = 4, state_dir: Union[None, str, os.PathLike] = None) -> Dict[str, Any]:
    """Uploads a file as a draft: one PUT up to `multipart_threshold`, parts in parallel above it.

    The size and SHA-256 of the file (of each part) are declared and signed into the URL, so the store refuses bytes
    that differ. A multipart upload records its id under `state_dir` (default `$DRAFTSTORE_STATE_DIR`, else
    `$XDG_STATE_HOME/draftstore`, else `~/.local/state/draftstore`); run again after an interruption (even a killed
    process), it asks which parts the store holds and sends only the others. `progress` is a callback
    `(done, total)`, or `True` for a tqdm bar. Returns `{"object_name", "size", "parts", "parts_resumed"}`.
    """
    path = Path(source)
    size = path.stat().st_size
    object_name = object_name or path.name
    content_type = content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    report = _progress(progress, size, object_name)
    if size <= multipart_threshold:
        sha256 = await asyncio.to_thread(_sha256_range, path, 0, size)
        ticket = await self.upload_url(object_name, content_type=content_type, content_length=size,
                                       checksum_sha256=sha256)
        await _put(self.http, ticket["upload_url"], ticket["headers"], path, 0, size, lambda n: report(n, size))
        report(size, size)
        return {"object_name": object_name, "size": size, "parts": 0, "parts_resumed": 0}

    state = Path(state_dir) if state_dir else _state_dir()
    key = hashlib.sha256(json.dumps([self.base_url, object_name, str(path.resolve()), size,
                                     path.stat().st_mtime_ns]).encode()).hexdigest()[:32]
    record = state / "python-uploads" / f"{key}.json"
    upload = json.loads(record.read_text()) if record.exists() else None
    stored: Dict[int, Dict[str, Any]] = {}
    if upload:
        try:
            listed = await self.list_parts(object_name, upload["upload_id"])
            stored = {p["part_number"]: p for p in listed["parts"]}
        except DraftStoreError as e:
            if e.error_type != "UPLOAD_NOT_FOUND":
                raise
            upload = None
    if not upload:
        started = await self.start_multipart(object_name, content_type=content_type, content_length=size,
                                             part_size=part_size)
        upload = {"upload_id": started["upload_id"], "part_size": started["part_size"],
                  "part_count": started["part_count"]}
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(upload))
    upload_id, size_of_part, count = upload["upload_id"], upload["part_size"], upload["part_count"]

    sent = _Sent(size, report)
    etags: Dict[int, str] = {}
    missing = []
    for number in range(1, count + 1):
        start = (number - 1) * size_of_part
        length = min(size_of_part, size - start)
        found = stored.get(number)
        if found and found["size"] == length:
            sha256 = await asyncio.to_thread(_sha256_range, path, start, length)
            # A part is kept only when the store has exactly these bytes (it verified their checksum).
            if found.get("checksum_sha256") in (sha256, None, ""):
                etags[number] = found["etag"]
                sent.set(number, length)
                continue
        missing.append((number, start, length))
    resumed = len(etags)

    slots = asyncio.Semaphore(parallel)

    async def send(number: int, start: int, length: int) -> None:
        async with slots:
            sha256 = await asyncio.to_thread(_sha256_range, path, start, length)
            signed = await self.sign_parts(object_name, upload_id, [{"part_number": number,
                                                                      "checksum_sha256": sha256}])
            part = signed["parts"][0]
            etags[number] = await _put(self.http, part["upload_url"], part["headers"], path, start, length,
                                       lambda n: sent.set(number, n))

    await asyncio.gather(*(send(*part) for part in missing))
    parts = [{"part_number": n, "etag": etags[n]} for n in sorted(etags)]
    await self.complete_multipart(object_name, upload_id, parts)
    record.unlink(missing_ok=True)
    report(size, size)
    return {"object_name": object_name, "size": size, "parts": count, "parts_resumed": resumed}


async def download_file(self, object_name: str, target: Union[str, os.PathLike], *, stage: Optional[str] = None,
                        variant: Optional[str] = None,
                        progress: Union[None, bool, Progress] = None) -> Dict[str, Any]:
    """Downloads a draft (or, without one, the confirmed object; `stage` says which), or with `variant` one of a
    confirmed image's variants, to a file, written beside it and renamed into place once whole. Returns
    `{"object_name", "stage", "size"}`."""
    ticket = await self.download_url(object_name, stage=stage, variant=variant)
    target = Path(target)
    partial = target.with_name(f".{target.name}.draftstore-partial")
    async with self.http.stream("GET", ticket["download_url"]) as response:
        if not response.is_success:
            await response.aread()
            raise DraftStoreError.from_response(response)
        total = int(response.headers.get("content-length", 0))
        report = _progress(progress, total, object_name)
        done = 0
        with open(partial, "wb") as f:
            async for chunk in response.aiter_bytes(CHUNK):
                f.write(chunk)
                done += len(chunk)
                report(done, total)
            f.flush()
            os.fsync(f.fileno())
    os.replace(partial, target)
    return {"object_name": ticket["object_name"], "stage": ticket["stage"], "size": done}
