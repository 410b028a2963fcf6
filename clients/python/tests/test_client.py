"""The Python client against a real DraftStore server (the local backend or SeaweedFS, as the suite runs it)."""

import asyncio
import os
import signal
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from draftstore import AsyncClient, Client, DraftStoreError

MIB = 1024 * 1024
#: The content fixtures of DraftStore's own tests: real files made by real encoders.
FIXTURES = Path(__file__).resolve().parents[3] / "crates" / "server" / "tests" / "fixtures" / "content"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def put(ticket, body: bytes) -> httpx.Response:
    return httpx.put(ticket["upload_url"], content=body, headers=ticket["headers"])


def test_every_operation(url, keys, tmp_path):
    folder = unique("ops")
    with Client(url, keys["alice"]) as client:
        assert client.health() == {"status": "ok"}
        ready = client.ready()
        assert ready["status"] == "ready"
        assert ready["store"]["probe"] == "passed", ready
        assert client.create_buckets() == {"success": True}
        name = f"{folder}/note.txt"
        ticket = client.upload_url(name, content_type="text/plain", content_length=5)
        assert put(ticket, b"hello").status_code == 200
        preview = client.download_url(name, stage="draft")
        assert httpx.get(preview["download_url"]).content == b"hello"
        assert [d["object_name"] for d in client.list_drafts(prefix=f"{folder}/")["drafts"]] == [name]

        confirmed = client.confirm_upload(name, final_name=f"{folder}/final/note.txt", metadata={"owner-id": "7"})
        assert confirmed["object_name"] == f"{folder}/final/note.txt"
        stat = client.stat_object(f"{folder}/final/note.txt")
        assert (stat["size"], stat["content_type"], stat["metadata"]) == (5, "text/plain", {"owner-id": "7"})
        listed = client.list_objects(prefix=f"{folder}/", page_size=10)
        assert listed["objects"] == [stat] and listed["next_page_token"] is None
        named = client.download_url(f"{folder}/final/note.txt", filename="note d'été.txt")
        answer = httpx.get(named["download_url"])
        assert answer.headers["content-disposition"] == "attachment; filename*=UTF-8''note%20d%27%C3%A9t%C3%A9.txt"

        ticket = client.upload_url(f"{folder}/gone.txt")
        assert put(ticket, b"x").status_code == 200
        assert client.discard_draft(f"{folder}/gone.txt") == {"success": True}

        big = f"{folder}/parts.bin"
        started = client.start_multipart(big, content_length=5 * MIB + 3, part_size=5 * MIB)
        upload_id = started["upload_id"]
        signed = client.sign_parts(big, upload_id, [{"part_number": 1}, {"part_number": 2}])
        etags = []
        for part, body in zip(signed["parts"], [b"a" * (5 * MIB), b"end"]):
            response = httpx.put(part["upload_url"], content=body, headers=part["headers"])
            etags.append({"part_number": part["part_number"], "etag": response.headers["etag"]})
        assert [p["part_number"] for p in client.list_parts(big, upload_id)["parts"]] == [1, 2]
        assert client.complete_multipart(big, upload_id, etags)["size"] == 5 * MIB + 3
        aborted = client.start_multipart(f"{folder}/aborted.bin", content_length=1)
        assert client.abort_multipart(f"{folder}/aborted.bin", aborted["upload_id"]) == {"success": True}

        for i in range(3):
            assert put(client.upload_url(f"{folder}/set/{i}.txt"), b"s").status_code == 200
        drafts = [{"object_name": f"{folder}/set/{i}.txt", "final_name": f"{folder}/kept/{i}.txt"} for i in range(3)]
        first = client.confirm_set(unique("key"), drafts)
        assert [o["object_name"] for o in first["objects"]] == [d["final_name"] for d in drafts]

        # progress=True draws a tqdm bar (tqdm is installed with the tests).
        small = tmp_path / "small.txt"
        small.write_bytes(b"small")
        assert client.upload_file(small, f"{folder}/small.txt", progress=True)["size"] == 5

        signed = client.uppy_sign({"method": "PUT", "key": f"{folder}/uppy.bin"})
        assert signed["url"].startswith("http")
        assert client.delete_object(f"{folder}/final/note.txt") == {"success": True}


def test_a_multipart_upload_reports_progress_and_round_trips(url, keys, tmp_path):
    source = tmp_path / "twenty.bin"
    data = os.urandom(20 * MIB + 17)
    source.write_bytes(data)
    seen = []

    async def run():
        async with AsyncClient(url, keys["alice"]) as client:
            name = unique("async") + "/twenty.bin"
            result = await client.upload_file(source, name, part_size=5 * MIB, multipart_threshold=5 * MIB,
                                              progress=lambda done, total: seen.append((done, total)),
                                              state_dir=tmp_path / "state")
            assert result == {"object_name": name, "size": len(data), "parts": 5, "parts_resumed": 0}
            await client.confirm_upload(name)
            await client.download_file(name, tmp_path / "back.bin", stage="main")
            return name

    asyncio.run(run())
    assert (tmp_path / "back.bin").read_bytes() == data
    assert len(seen) > 10 and seen[-1] == (len(data), len(data)), seen[-3:]
    assert all(total == len(data) and done <= total for done, total in seen)


KILLED_UPLOAD = """
import os, signal, sys
from draftstore import Client
url, key, source, name, state = sys.argv[1:]
def progress(done, total):
    if done >= 10 * 1024 * 1024:
        os.kill(os.getpid(), signal.SIGKILL)
with Client(url, key) as client:
    client.upload_file(source, name, part_size=5 * 1024 * 1024, multipart_threshold=5 * 1024 * 1024, parallel=1,
                       progress=progress, state_dir=state)
"""


def test_an_upload_killed_between_parts_resumes(url, keys, tmp_path):
    source = tmp_path / "resumed.bin"
    data = os.urandom(20 * MIB + 1)
    source.write_bytes(data)
    name = unique("resume") + "/resumed.bin"
    state = tmp_path / "state"
    child = subprocess.run([sys.executable, "-c", KILLED_UPLOAD, url, keys["alice"], str(source), name, str(state)],
                           env=os.environ)
    assert child.returncode == -signal.SIGKILL, "the upload was killed"
    with Client(url, keys["alice"]) as client:
        result = client.upload_file(source, name, part_size=5 * MIB, multipart_threshold=5 * MIB, state_dir=state)
        assert result["parts_resumed"] >= 1, result
        client.confirm_upload(name)
        back = httpx.get(client.download_url(name, stage="main")["download_url"]).content
    assert back == data
    assert not list((state / "python-uploads").iterdir()), "a completed upload leaves no record"


def test_errors_carry_the_error_type_and_rate_limits_are_waited_out(url, limited_url, keys):
    with Client(url, keys["alice"]) as client:
        with pytest.raises(DraftStoreError) as missing:
            client.stat_object(unique("absent") + ".txt")
        assert (missing.value.error_type, missing.value.status) == ("OBJECT_NOT_FOUND", 404)
        with pytest.raises(DraftStoreError) as invalid:
            client.upload_url("../escape.txt")
        assert invalid.value.error_type == "INVALID_OBJECT_NAME"
    # One request a second: the second and third wait out the Retry-After the server gives.
    with Client(limited_url, keys["alice"]) as client:
        started = time.monotonic()
        for _ in range(3):
            assert client.health() == {"status": "ok"} and client.list_drafts(page_size=1) is not None
        assert time.monotonic() - started >= 1.5
    with Client(limited_url, keys["mallory"], retries=0) as client:
        client.list_drafts(page_size=1)
        with pytest.raises(DraftStoreError) as limited:
            client.list_drafts(page_size=1)
        assert (limited.value.error_type, limited.value.status) == ("RATE_LIMITED", 429)
        assert limited.value.retry_after and limited.value.retry_after >= 1


def test_tenants_see_their_own_objects_only(url, keys):
    name = unique("tenant") + "/secret.txt"
    with Client(url, keys["alice"]) as alice, Client(url, keys["mallory"]) as mallory:
        assert put(alice.upload_url(name), b"secret").status_code == 200
        alice.confirm_upload(name)
        assert name not in [o["object_name"] for o in mallory.list_objects()["objects"]]
        for call in (mallory.stat_object, mallory.delete_object, mallory.download_url):
            with pytest.raises(DraftStoreError) as refused:
                call(name)
            assert refused.value.error_type == "OBJECT_NOT_FOUND"
        assert alice.stat_object(name)["size"] == 6
    with Client(url, "not-a-key") as stranger, pytest.raises(DraftStoreError) as denied:
        stranger.list_objects()
    assert (denied.value.error_type, denied.value.status) == ("ACCESS_DENIED", 401)


def webp_size(data: bytes):
    """The width and height a WebP file's header declares (lossy, lossless or extended)."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP", data[:16]
    assert struct.unpack("<I", data[4:8])[0] + 8 == len(data), "the RIFF size is the file's"
    chunk = data[12:16]
    if chunk == b"VP8 ":
        assert data[23:26] == b"\x9d\x01\x2a", "a VP8 key frame"
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    assert chunk == b"VP8X", chunk
    return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1


def test_an_image_is_confirmed_with_variants_and_its_thumb_downloaded(url, keys, tmp_path):
    # The suite's servers declare IMAGE_VARIANTS thumb=32x32,cover,webp;preview=40x40,contain,png.
    folder = unique("image")
    name = f"{folder}/photo.png"
    with Client(url, keys["alice"]) as client, Client(url, keys["mallory"]) as mallory:
        client.upload_file(FIXTURES / "photo.png", name, content_type="image/png")
        confirmed = client.confirm_upload(name)
        image = confirmed["image"]
        assert (image["width"], image["height"]) == (64, 48)
        assert image["placeholder"], "a ThumbHash to paint before the image loads"
        assert [(v["name"], v["content_type"], v["width"], v["height"]) for v in image["variants"]] == [
            ("thumb", "image/webp", 32, 32), ("preview", "image/png", 40, 30)]
        assert "size" not in confirmed and "sha256" not in confirmed, "a PNG without metadata is promoted as is"
        assert client.stat_object(name)["image"] == image
        assert [o["image"] for o in client.list_objects(prefix=f"{folder}/")["objects"]] == [image]

        result = client.download_file(name, tmp_path / "thumb.webp", variant="thumb")
        thumb = (tmp_path / "thumb.webp").read_bytes()
        assert result == {"object_name": name, "stage": "main", "size": len(thumb)}
        assert len(thumb) == image["variants"][0]["size"]
        assert webp_size(thumb) == (32, 32)
        preview = httpx.get(client.download_url(name, variant="preview", stage="main")["download_url"])
        assert preview.headers["content-type"] == "image/png" and preview.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", preview.content[16:24]) == (40, 30)

        for variant, stage, expected in [("huge", None, ("VARIANT_NOT_FOUND", 404)),
                                         ("../thumb", None, ("INVALID_REQUEST", 400)),
                                         ("x" * 33, None, ("INVALID_REQUEST", 400)),
                                         ("thumb", "draft", ("VARIANT_NOT_FOUND", 404))]:
            with pytest.raises(DraftStoreError) as refused:
                client.download_url(name, variant=variant, stage=stage)
            assert (refused.value.error_type, refused.value.status) == expected, variant
        with pytest.raises(DraftStoreError) as refused:
            client.download_file(name, tmp_path / "huge.webp", variant="huge")
        assert refused.value.error_type == "VARIANT_NOT_FOUND" and not list(tmp_path.glob("*huge*")), "no file left"
        # Another tenant learns nothing of the image, not even that it has variants.
        with pytest.raises(DraftStoreError) as hidden:
            mallory.download_url(name, variant="thumb")
        assert hidden.value.error_type == "OBJECT_NOT_FOUND"
