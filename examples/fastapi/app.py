"""A FastAPI application that takes a post with attachments, using DraftStore through its Python client.

The browser asks this app for an upload URL per file and sends the bytes straight to the store; nothing of the file
passes through the app. When the form is submitted, the app confirms every attachment at once (a set: all or
nothing) under the post's own folder, with the post's title as metadata; a form abandoned leaves drafts that expire.

Run: DRAFTSTORE_URL=http://localhost:8080 DRAFTSTORE_TOKEN=… uvicorn app:app --port 8000
"""

import os
import re
import uuid

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from draftstore import AsyncClient, DraftStoreError

draftstore = AsyncClient(os.environ.get("DRAFTSTORE_URL", "http://localhost:8080"), os.environ.get("DRAFTSTORE_TOKEN"))
app = FastAPI(title="Posts with attachments")


class FileToUpload(BaseModel):
    filename: str = Field(min_length=1, max_length=200)
    content_type: str = "application/octet-stream"
    size: int = Field(ge=0)


class Attachment(BaseModel):
    key: str
    filename: str = Field(min_length=1, max_length=200)


class Post(BaseModel):
    #: Sent with the form, so that submitting it twice confirms it once.
    form_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    title: str = Field(min_length=1, max_length=200)
    attachments: list[Attachment] = Field(min_length=1, max_length=100)


def safe(filename: str) -> str:
    """A file name as one segment of an object name."""
    return re.sub(r"[^A-Za-z0-9._ -]", "_", filename).strip(" .") or "file"


@app.post("/uploads")
async def new_upload(file: FileToUpload) -> dict:
    """A URL the browser uploads one file to: a draft under incoming/, with its type and size signed in."""
    key = f"incoming/{uuid.uuid4()}-{safe(file.filename)}"
    try:
        ticket = await draftstore.upload_url(key, content_type=file.content_type, content_length=file.size)
    except DraftStoreError as e:
        raise HTTPException(e.status or 502, e.message) from e
    return {"key": key, "url": ticket["upload_url"], "headers": ticket["headers"]}


@app.post("/posts")
async def create_post(post: Post) -> dict:
    """Confirms every attachment of the post, all or none, into posts/<id>/."""
    if any(not a.key.startswith("incoming/") for a in post.attachments):
        raise HTTPException(400, "an attachment is not an upload of this form")
    folder = f"posts/{post.form_id}"
    drafts = [{"object_name": a.key, "final_name": f"{folder}/{safe(a.filename)}", "metadata": {"post-title": post.title[:100]}}
              for a in post.attachments]
    try:
        confirmed = await draftstore.confirm_set(post.form_id, drafts)
    except DraftStoreError as e:
        raise HTTPException(e.status or 502, {"error_type": e.error_type, "message": e.message}) from e
    return {"post": folder, "attachments": [o["object_name"] for o in confirmed["objects"]]}


@app.get("/", response_class=HTMLResponse)
async def form() -> str:
    return PAGE


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>New post</title></head>
<body>
<h1>New post</h1>
<form id="post">
  <label>Title <input name="title" required></label>
  <label>Attachments <input name="files" type="file" multiple required></label>
  <button>Publish</button>
</form>
<p id="status" role="status"></p>
<script>
const formId = crypto.randomUUID()
const status = document.getElementById('status')

// Why an answer of this app failed: FastAPI's {"detail": text, or {"message": text}}.
async function reason(answer) {
  const detail = (await answer.json().catch(() => null))?.detail
  return typeof detail === 'string' ? detail : detail?.message ?? `the app answered ${answer.status}`
}

async function publish(data) {
  const attachments = []
  for (const file of data.getAll('files')) {
    status.textContent = `Uploading ${file.name}…`
    const asked = await fetch('/uploads', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ filename: file.name, content_type: file.type || 'application/octet-stream', size: file.size }) })
    if (!asked.ok) throw new Error(`${file.name}: ${await reason(asked)}`)
    const ticket = await asked.json()
    const headers = Object.fromEntries(Object.entries(ticket.headers).filter(([name]) => name.toLowerCase() !== 'content-length'))
    // A store that refuses this page's origin (CORS) or cannot be reached makes fetch throw.
    const put = await fetch(ticket.url, { method: 'PUT', headers, body: file }).catch((error) => {
      throw new Error(`${file.name}: the store could not be reached (${error.message})`)
    })
    if (!put.ok) throw new Error(`${file.name}: the store answered ${put.status}`)
    attachments.push({ key: ticket.key, filename: file.name })
  }
  const answer = await fetch('/posts', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ form_id: formId, title: data.get('title'), attachments }) })
  if (!answer.ok) throw new Error(await reason(answer))
  return answer.json()
}

document.getElementById('post').addEventListener('submit', async (event) => {
  event.preventDefault()
  try {
    const post = await publish(new FormData(event.target))
    status.textContent = `Published ${post.attachments.join(', ')}`
    status.dataset.post = post.post
  } catch (error) {
    status.textContent = `Not published: ${error.message}`
  }
})
</script>
</body></html>
"""
