// DraftStore's built-in page: uploads through the same REST API as any client, straight to storage through the
// presigned URLs it hands out. No framework, no build step, no third-party script.
'use strict'

const API = '/api/v1'
// Files above this go in parallel parts, resumable; smaller ones in one PUT.
const MULTIPART_ABOVE = 16 * 1024 * 1024
const PARTS_IN_FLIGHT = 4
// Confirmed objects shown per page; "Show more" fetches the next.
const OBJECTS_PAGE = 50
const $ = (id) => document.getElementById(id)

let token = sessionStorage.getItem('draftstore-token') || ''

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error_message) || `HTTP ${status}`)
    this.status = status
    this.type = body && body.error_type
  }
}

async function api(route, body) {
  const headers = { 'Content-Type': 'application/json' }
  if (token) headers.Authorization = 'Bearer ' + token
  const response = await fetch(API + route, { method: 'POST', headers, body: JSON.stringify(body || {}) })
  const answer = await response.json().catch(() => null)
  if (!response.ok) throw new ApiError(response.status, answer)
  return answer
}

// A PUT with upload progress (fetch has none); resolves to the ETag the store answered.
function put(url, headers, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('PUT', url)
    for (const [name, value] of Object.entries(headers || {})) {
      if (name.toLowerCase() !== 'content-length') xhr.setRequestHeader(name, value)
    }
    xhr.upload.onprogress = (event) => onProgress(event.loaded)
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300
      ? resolve(xhr.getResponseHeader('ETag'))
      : reject(new Error(`the store answered ${xhr.status}`)))
    xhr.onerror = () => reject(new Error('the upload was cut off'))
    xhr.send(body)
  })
}

function formatSize(bytes) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let size = bytes
  let unit = 0
  while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit++ }
  return `${unit ? size.toFixed(1) : size} ${units[unit]}`
}

function progressRow(name, size) {
  const item = document.createElement('li')
  const label = document.createElement('span')
  label.textContent = `${name} (${formatSize(size)})`
  const bar = document.createElement('progress')
  bar.max = Math.max(size, 1)
  bar.value = 0
  bar.setAttribute('aria-label', `Upload of ${name}`)
  bar.dataset.updates = '0'
  const status = document.createElement('span')
  status.className = 'status'
  item.append(label, bar, status)
  $('progress').append(item)
  return {
    set(bytes) { bar.value = Math.min(bytes, bar.max); bar.dataset.updates = String(Number(bar.dataset.updates) + 1) },
    done(text) { bar.value = bar.max; status.textContent = ' ' + text; item.dataset.state = 'done' },
    fail(text) { status.textContent = ' ' + text; status.classList.add('error'); item.dataset.state = 'failed' },
  }
}

async function uploadWhole(file, name, row) {
  const ticket = await api('/upload-url', {
    object_name: name, content_type: file.type || 'application/octet-stream', content_length: file.size,
  })
  await put(ticket.upload_url, ticket.headers, file, (loaded) => row.set(loaded))
}

// Parts in parallel; an upload interrupted (page closed, network lost) resumes from the parts already stored when
// the same file is chosen again.
async function uploadInParts(file, name, row) {
  const resumeKey = `draftstore-upload:${name}:${file.size}:${file.lastModified}`
  let upload = JSON.parse(localStorage.getItem(resumeKey) || 'null')
  let stored = []
  if (upload) {
    try {
      stored = (await api('/multipart/list-parts', { object_name: name, upload_id: upload.upload_id })).parts
    } catch (error) {
      if (error.status !== 404) throw error
      upload = null
    }
  }
  if (!upload) {
    const started = await api('/multipart/start', {
      object_name: name, content_type: file.type || 'application/octet-stream', content_length: file.size,
    })
    upload = { upload_id: started.upload_id, part_size: started.part_size, part_count: started.part_count }
    localStorage.setItem(resumeKey, JSON.stringify(upload))
  }
  const { upload_id, part_size, part_count } = upload
  const etags = new Map()
  const loaded = new Map()
  for (const part of stored) {
    const expected = Math.min(part_size, file.size - (part.part_number - 1) * part_size)
    if (part.size === expected) { etags.set(part.part_number, part.etag); loaded.set(part.part_number, part.size) }
  }
  const report = () => row.set([...loaded.values()].reduce((a, b) => a + b, 0))
  report()
  const missing = []
  for (let n = 1; n <= part_count; n++) if (!etags.has(n)) missing.push(n)
  const signed = []
  for (let i = 0; i < missing.length; i += 1000) {
    const batch = missing.slice(i, i + 1000).map((n) => ({ part_number: n }))
    signed.push(...(await api('/multipart/sign-parts', { object_name: name, upload_id, parts: batch })).parts)
  }
  const queue = [...signed]
  const worker = async () => {
    for (let part = queue.shift(); part; part = queue.shift()) {
      const start = (part.part_number - 1) * part_size
      const blob = file.slice(start, Math.min(start + part_size, file.size))
      const etag = await put(part.upload_url, part.headers, blob, (bytes) => { loaded.set(part.part_number, bytes); report() })
      etags.set(part.part_number, etag)
    }
  }
  await Promise.all(Array.from({ length: PARTS_IN_FLIGHT }, worker))
  const parts = [...etags.entries()].sort((a, b) => a[0] - b[0]).map(([part_number, etag]) => ({ part_number, etag }))
  await api('/multipart/complete', { object_name: name, upload_id, parts })
  localStorage.removeItem(resumeKey)
}

async function upload(files) {
  const prefix = $('prefix').value.trim()
  await Promise.all([...files].map(async (file) => {
    const name = prefix + file.name
    const row = progressRow(name, file.size)
    try {
      await (file.size > MULTIPART_ABOVE ? uploadInParts(file, name, row) : uploadWhole(file, name, row))
      row.done('uploaded')
    } catch (error) {
      row.fail(`failed: ${error.message}`)
    }
  }))
  await listDrafts()
}

function button(text, label, action) {
  const b = document.createElement('button')
  b.type = 'button'
  b.textContent = text
  b.setAttribute('aria-label', label)
  b.addEventListener('click', action)
  return b
}

async function preview(draft) {
  const box = $('preview')
  box.replaceChildren()
  const heading = document.createElement('h3')
  heading.textContent = `Preview of ${draft.object_name}`
  box.append(heading)
  const { download_url: url } = await api('/download-url', { object_name: draft.object_name, stage: 'draft' })
  const type = draft.content_type.split(';')[0].trim().toLowerCase()
  if (type.startsWith('image/') && type !== 'image/svg+xml') {
    const img = document.createElement('img')
    img.src = url
    img.alt = draft.object_name
    box.append(img)
  } else if (type.startsWith('text/') || type === 'application/json') {
    const text = await (await fetch(url)).text()
    const pre = document.createElement('pre')
    pre.textContent = text.slice(0, 100000)
    box.append(pre)
  } else {
    const link = document.createElement('a')
    link.href = url
    link.download = draft.object_name.split('/').pop()
    link.textContent = `Download ${draft.object_name}`
    box.append(link)
  }
}

// What the checks found in a confirmed draft, as " (image/png, 64 × 48, scanned clean)".
function describe(content) {
  if (!content) return ''
  const found = []
  if (content.detected_type) found.push(content.detected_type)
  if (content.width) found.push(`${content.width} × ${content.height}`)
  if (content.scan) found.push(content.scan.result === 'clean' ? 'scanned clean' : 'not scanned (too large)')
  return found.length ? ` (${found.join(', ')})` : ''
}

async function act(route, draft, done, extra) {
  let message
  try {
    const answer = await api(route, { object_name: draft.object_name, ...extra })
    const renamed = answer.object_name && answer.object_name !== draft.object_name ? ` as ${answer.object_name}` : ''
    message = `${draft.object_name} ${done}${renamed}${describe(answer.content)}.`
  } catch (error) {
    message = `${draft.object_name}: ${error.message}`
  }
  await Promise.all([listDrafts(), listObjects()])
  $('drafts-status').textContent = message
}

// Asks for the name to confirm a draft under, in the form below the drafts.
function confirmAs(draft) {
  const form = $('confirm-as')
  form.dataset.name = draft.object_name
  $('confirm-as-draft').textContent = draft.object_name
  $('final-name').value = draft.object_name
  form.hidden = false
  $('final-name').focus()
}

function cell(row, text) {
  const td = document.createElement('td')
  td.textContent = text
  row.append(td)
}

async function listDrafts() {
  const rows = []
  let page_token
  do {
    const page = await api('/list-drafts', page_token ? { page_token } : {})
    rows.push(...page.drafts)
    page_token = page.next_page_token
  } while (page_token)
  const body = $('draft-rows')
  body.replaceChildren()
  for (const draft of rows) {
    const tr = document.createElement('tr')
    tr.dataset.name = draft.object_name
    const expires = `expires ${new Date(draft.expires_at).toLocaleString()}`
    for (const text of [draft.object_name, formatSize(draft.size), draft.content_type, expires]) cell(tr, text)
    const actions = document.createElement('td')
    actions.append(
      button('Preview', `Preview ${draft.object_name}`, () => preview(draft)),
      button('Confirm', `Confirm ${draft.object_name}`, () => act('/confirm-upload', draft, 'confirmed')),
      button('Confirm as…', `Confirm under another name: ${draft.object_name}`, () => confirmAs(draft)),
      button('Discard', `Discard ${draft.object_name}`, () => act('/discard-draft', draft, 'discarded')),
    )
    tr.append(actions)
    body.append(tr)
  }
  const status = $('drafts-status')
  if (!rows.length) status.textContent = 'No drafts.'
  else if (status.textContent === 'No drafts.') status.textContent = ''
}

// Saves a confirmed object under its own file name: the URL is signed to answer as an attachment of that name.
async function download(object) {
  const filename = object.object_name.split('/').pop()
  const { download_url: url } = await api('/download-url', { object_name: object.object_name, stage: 'main', filename })
  const link = document.createElement('a')
  link.href = url
  link.download = filename
  document.body.append(link)
  link.click()
  link.remove()
}

async function remove(object) {
  if (!window.confirm(`Delete ${object.object_name}? This cannot be undone.`)) return
  let message
  try {
    await api('/delete-object', { object_name: object.object_name })
    message = `${object.object_name} deleted.`
  } catch (error) {
    message = `${object.object_name}: ${error.message}`
  }
  await listObjects()
  $('objects-status').textContent = message
}

function objectRow(object) {
  const tr = document.createElement('tr')
  tr.dataset.name = object.object_name
  const confirmed = new Date(object.confirmed_at).toLocaleString()
  for (const text of [object.object_name, formatSize(object.size), object.content_type, confirmed]) cell(tr, text)
  const actions = document.createElement('td')
  actions.append(
    button('Download', `Download ${object.object_name}`, () => download(object)),
    button('Delete', `Delete ${object.object_name}`, () => remove(object)),
  )
  tr.append(actions)
  return tr
}

// The first page of confirmed objects, or with `more` the next one after those shown.
let objectsToken = null
async function listObjects(more) {
  const request = { page_size: OBJECTS_PAGE }
  if (more && objectsToken) request.page_token = objectsToken
  const page = await api('/list-objects', request)
  const body = $('object-rows')
  if (!more) body.replaceChildren()
  body.append(...page.objects.map(objectRow))
  objectsToken = page.next_page_token
  $('more-objects').hidden = !objectsToken
  const status = $('objects-status')
  if (!body.children.length) status.textContent = 'Nothing confirmed yet.'
  else if (status.textContent === 'Nothing confirmed yet.') status.textContent = ''
}

async function enter() {
  try {
    await Promise.all([listDrafts(), listObjects()])
  } catch (error) {
    if (error.status === 401) {
      $('login').hidden = false
      $('upload').hidden = $('drafts').hidden = $('objects').hidden = true
      $('login-error').textContent = token ? 'That key or token was refused.' : ''
      $('token').focus()
      return
    }
    throw error
  }
  $('login').hidden = true
  $('upload').hidden = $('drafts').hidden = $('objects').hidden = false
}

function setUp() {
  $('login').addEventListener('submit', (event) => {
    event.preventDefault()
    token = $('token').value.trim()
    sessionStorage.setItem('draftstore-token', token)
    enter()
  })
  $('files').addEventListener('change', (event) => { upload(event.target.files); event.target.value = '' })
  const drop = $('drop')
  drop.addEventListener('click', () => $('files').click())
  drop.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); $('files').click() }
  })
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over') })
  drop.addEventListener('dragleave', () => drop.classList.remove('over'))
  drop.addEventListener('drop', (event) => {
    event.preventDefault()
    drop.classList.remove('over')
    upload(event.dataTransfer.files)
  })
  $('refresh').addEventListener('click', () => Promise.all([listDrafts(), listObjects()]))
  $('more-objects').addEventListener('click', () => listObjects(true))
  $('confirm-as').addEventListener('submit', (event) => {
    event.preventDefault()
    const form = $('confirm-as')
    form.hidden = true
    act('/confirm-upload', { object_name: form.dataset.name }, 'confirmed', { final_name: $('final-name').value.trim() })
  })
  $('confirm-as-cancel').addEventListener('click', () => { $('confirm-as').hidden = true })
  enter()
}

setUp()
