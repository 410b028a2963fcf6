// An Express app that publishes posts with attachments, using DraftStore through its TypeScript client.
//
// The page uploads each file with Uppy straight to the store: Uppy's signing requests come here and go on to
// DraftStore with the app's own credentials (the browser never holds them), and only for keys under incoming/.
// When the form is submitted, the app confirms every attachment at once (a set: all or nothing) into the post's own
// folder; a form abandoned leaves drafts that expire.
//
// Run: DRAFTSTORE_URL=http://localhost:8080 DRAFTSTORE_TOKEN=… PORT=3000 node server.mjs

import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'

import { DraftStore, DraftStoreError } from '@draftstore/client'
import * as esbuild from 'esbuild'
import express from 'express'

const draftstore = new DraftStore(process.env.DRAFTSTORE_URL ?? 'http://localhost:8080', { token: process.env.DRAFTSTORE_TOKEN })

// The page's script, bundled once at start-up: Uppy and DraftStore's preset.
const bundle = await esbuild.build({
  entryPoints: [fileURLToPath(new URL('./page.js', import.meta.url))], bundle: true, write: false, format: 'esm', logLevel: 'error',
})
const script = bundle.outputFiles[0].text

const app = express()
app.use(express.json())

app.get('/', (request, response) => response.type('html').send(PAGE))
app.get('/page.js', (request, response) => response.type('js').send(script))

// DraftStore's refusal passed on as it came; a DraftStore that could not be reached is this app's 502.
function failed(response, error) {
  if (!(error instanceof DraftStoreError)) throw error
  response.status(error.status ?? 502)
    .json({ error_type: error.errorType ?? 'DRAFTSTORE_UNREACHABLE', error_message: error.message })
}

// Uppy's signing requests (the preset posts them here), passed on with the app's credentials: uploads under incoming/ only.
app.post('/draftstore/api/v1/uppy/sign', async (request, response) => {
  if (!String(request.body?.key ?? '').startsWith('incoming/')) {
    return response.status(403).json({ error_type: 'ACCESS_DENIED', error_message: 'uploads go under incoming/' })
  }
  try {
    response.json(await draftstore.uppySign(request.body))
  } catch (error) {
    failed(response, error)
  }
})

const safe = (name) => String(name).replace(/[^A-Za-z0-9._ -]/g, '_').replace(/^[ .]+|[ .]+$/g, '') || 'file'

// A post: its attachments confirmed together into posts/<form id>/, with the title as metadata.
app.post('/posts', async (request, response) => {
  const { form_id: formId, title, attachments } = request.body ?? {}
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(formId ?? '') || !title || !Array.isArray(attachments) || !attachments.length
    || attachments.some((a) => !String(a?.key).startsWith('incoming/'))) {
    return response.status(400).json({ error_type: 'INVALID_REQUEST', error_message: 'a title and attachments uploaded by this form' })
  }
  const folder = `posts/${formId}`
  const drafts = attachments.map((a) => ({ object_name: a.key, final_name: `${folder}/${safe(a.filename)}`, metadata: { 'post-title': String(title).slice(0, 100) } }))
  try {
    const set = await draftstore.confirmSet({ idempotency_key: formId, drafts })
    response.json({ post: folder, attachments: set.objects.map((o) => o.object_name) })
  } catch (error) {
    failed(response, error)
  }
})

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>New post</title><script type="module" src="/page.js"></script></head>
<body>
<h1>New post</h1>
<form id="post">
  <label>Title <input name="title" required></label>
  <label>Attachments <input name="files" type="file" multiple required></label>
  <button>Publish</button>
</form>
<p id="status" role="status"></p>
</body></html>`

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`)
})
