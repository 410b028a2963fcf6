"""The FastAPI example end to end, against a real DraftStore (DRAFTSTORE_URL, started by DraftStore's test suite):
the app's page, an upload URL per file, the bytes PUT straight to the store as the page does, the post published
(its attachments confirmed together), a repeated submit answered the same, and a form whose attachment fails the
content checks publishing nothing."""

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from draftstore import Client


@pytest.fixture(scope="module")
def web():
    """The app served by uvicorn on a free port, as it would run."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "app:app", "--port", str(port), "--log-level", "warning"],
                              cwd=Path(__file__).parent, env=os.environ)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the app did not start"
                time.sleep(0.1)
        with httpx.Client(base_url=base) as client:
            yield client
    finally:
        server.terminate()
        server.wait()


def upload(web, filename, content_type, body):
    ticket = web.post("/uploads", json={"filename": filename, "content_type": content_type, "size": len(body)}).json()
    headers = {k: v for k, v in ticket["headers"].items() if k.lower() != "content-length"}
    assert httpx.put(ticket["url"], content=body, headers=headers).status_code == 200
    return {"key": ticket["key"], "filename": filename}


def test_a_post_publishes_its_attachments_together(web):
    assert "New post" in web.get("/").text
    form_id = uuid.uuid4().hex
    attachments = [upload(web, "notes.txt", "text/plain", b"notes"), upload(web, "data.csv", "text/csv", b"a,b\n1,2\n")]
    published = web.post("/posts", json={"form_id": form_id, "title": "Hello", "attachments": attachments})
    assert published.status_code == 200, published.text
    assert published.json()["attachments"] == [f"posts/{form_id}/notes.txt", f"posts/{form_id}/data.csv"]
    again = web.post("/posts", json={"form_id": form_id, "title": "Hello", "attachments": attachments})
    assert again.json() == published.json(), "a repeated submit answers the same"
    with Client(os.environ["DRAFTSTORE_URL"], os.environ.get("DRAFTSTORE_TOKEN")) as draftstore:
        stat = draftstore.stat_object(f"posts/{form_id}/notes.txt")
        assert stat["metadata"] == {"post-title": "Hello"} and stat["size"] == 5
        assert draftstore.list_drafts(prefix="incoming/")["drafts"] == [] or all(
            d["object_name"] not in [a["key"] for a in attachments] for d in draftstore.list_drafts(prefix="incoming/")["drafts"])


def test_a_post_with_a_bad_attachment_publishes_nothing(web):
    form_id = uuid.uuid4().hex
    good = upload(web, "fine.txt", "text/plain", b"fine")
    bad = upload(web, "photo.png", "image/png", b"MZ" + bytes(510))
    refused = web.post("/posts", json={"form_id": form_id, "title": "Oops", "attachments": [good, bad]})
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"]["error_type"] == "CONTENT_TYPE_MISMATCH"
    with Client(os.environ["DRAFTSTORE_URL"], os.environ.get("DRAFTSTORE_TOKEN")) as draftstore:
        assert draftstore.list_objects(prefix=f"posts/{form_id}/")["objects"] == []
        kept = [d["object_name"] for d in draftstore.list_drafts(prefix="incoming/")["drafts"]]
        assert good["key"] in kept and bad["key"] in kept, "every draft is kept"
