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

// The PNG data URL of a placeholder (a ThumbHash in base64), or null for one that does not decode.
function placeholderURL(placeholder) {
  try {
    const hash = Uint8Array.from(atob(placeholder), (c) => c.charCodeAt(0))
    return hash.length >= 5 ? thumbHashToDataURL(hash) : null
  } catch {
    return null
  }
}

// A confirmed image's `thumb` variant, sized from its description so the row keeps its height while it loads, and
// until then painted with the image's ThumbHash. Decorative (alt=""): the object's name follows it.
function thumbnail(object, variant) {
  const img = document.createElement('img')
  img.className = 'thumb'
  img.alt = ''
  img.width = variant.width
  img.height = variant.height
  img.dataset.state = 'loading'
  const placeholder = placeholderURL(object.image.placeholder)
  if (placeholder) img.style.backgroundImage = `url("${placeholder}")`
  img.addEventListener('load', () => { img.style.backgroundImage = ''; img.dataset.state = 'loaded' }, { once: true })
  img.addEventListener('error', () => { img.dataset.state = 'failed' }, { once: true })
  variantURL(object, variant.name)
    .then((url) => { img.src = url })
    .catch(() => { img.dataset.state = 'failed' })
  return img
}

// Signed variant URLs already asked for, by object version and variant, kept until a minute before they expire: the
// list is drawn again after every action, and would otherwise sign, and download, every thumbnail again.
const variantURLs = new Map()
function variantURL(object, variant) {
  const key = JSON.stringify([object.object_name, object.confirmed_at, object.size, variant])
  const known = variantURLs.get(key)
  if (known && known.until > Date.now()) return known.url
  const url = api('/download-url', { object_name: object.object_name, stage: 'main', variant })
    .then((answer) => {
      variantURLs.set(key, { url: Promise.resolve(answer.download_url), until: Date.parse(answer.expires_at) - 60000 })
      return answer.download_url
    })
    .catch((error) => { variantURLs.delete(key); throw error })
  variantURLs.set(key, { url, until: Infinity })
  return url
}

function objectRow(object) {
  const tr = document.createElement('tr')
  tr.dataset.name = object.object_name
  const confirmed = new Date(object.confirmed_at).toLocaleString()
  const { image } = object
  const thumb = image && image.variants.find((variant) => variant.name === 'thumb')
  const name = document.createElement('td')
  if (thumb) name.append(thumbnail(object, thumb))
  // A string appended is a text node: a name is never parsed as HTML.
  name.append(object.object_name)
  tr.append(name)
  const type = image ? `${object.content_type} (${image.width} × ${image.height})` : object.content_type
  for (const text of [formatSize(object.size), type, confirmed]) cell(tr, text)
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

// ThumbHash's reference decoder (github.com/evanw/thumbhash, js/thumbhash.js, as the npm package thumbhash 0.1.1
// ships it): the parts that turn a hash into a PNG data URL, unchanged but for `export`. Vendored rather than bundled:
// the page has no build step.
//
// Copyright (c) 2023 Evan Wallace
//
// Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
// documentation files (the "Software"), to deal in the Software without restriction, including without limitation the
// rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
// permit persons to whom the Software is furnished to do so, subject to the following conditions:
//
// The above copyright notice and this permission notice shall be included in all copies or substantial portions of the
// Software.
//
// THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE
// WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS
// OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
// OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

/**
 * Decodes a ThumbHash to an RGBA image. RGB is not be premultiplied by A.
 *
 * @param hash The bytes of the ThumbHash.
 * @returns The width, height, and pixels of the rendered placeholder image.
 */
function thumbHashToRGBA(hash) {
  let { PI, min, max, cos, round } = Math

  // Read the constants
  let header24 = hash[0] | (hash[1] << 8) | (hash[2] << 16)
  let header16 = hash[3] | (hash[4] << 8)
  let l_dc = (header24 & 63) / 63
  let p_dc = ((header24 >> 6) & 63) / 31.5 - 1
  let q_dc = ((header24 >> 12) & 63) / 31.5 - 1
  let l_scale = ((header24 >> 18) & 31) / 31
  let hasAlpha = header24 >> 23
  let p_scale = ((header16 >> 3) & 63) / 63
  let q_scale = ((header16 >> 9) & 63) / 63
  let isLandscape = header16 >> 15
  let lx = max(3, isLandscape ? hasAlpha ? 5 : 7 : header16 & 7)
  let ly = max(3, isLandscape ? header16 & 7 : hasAlpha ? 5 : 7)
  let a_dc = hasAlpha ? (hash[5] & 15) / 15 : 1
  let a_scale = (hash[5] >> 4) / 15

  // Read the varying factors (boost saturation by 1.25x to compensate for quantization)
  let ac_start = hasAlpha ? 6 : 5
  let ac_index = 0
  let decodeChannel = (nx, ny, scale) => {
    let ac = []
    for (let cy = 0; cy < ny; cy++)
      for (let cx = cy ? 0 : 1; cx * ny < nx * (ny - cy); cx++)
        ac.push((((hash[ac_start + (ac_index >> 1)] >> ((ac_index++ & 1) << 2)) & 15) / 7.5 - 1) * scale)
    return ac
  }
  let l_ac = decodeChannel(lx, ly, l_scale)
  let p_ac = decodeChannel(3, 3, p_scale * 1.25)
  let q_ac = decodeChannel(3, 3, q_scale * 1.25)
  let a_ac = hasAlpha && decodeChannel(5, 5, a_scale)

  // Decode using the DCT into RGB
  let ratio = thumbHashToApproximateAspectRatio(hash)
  let w = round(ratio > 1 ? 32 : 32 * ratio)
  let h = round(ratio > 1 ? 32 / ratio : 32)
  let rgba = new Uint8Array(w * h * 4), fx = [], fy = []
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i += 4) {
      let l = l_dc, p = p_dc, q = q_dc, a = a_dc

      // Precompute the coefficients
      for (let cx = 0, n = max(lx, hasAlpha ? 5 : 3); cx < n; cx++)
        fx[cx] = cos(PI / w * (x + 0.5) * cx)
      for (let cy = 0, n = max(ly, hasAlpha ? 5 : 3); cy < n; cy++)
        fy[cy] = cos(PI / h * (y + 0.5) * cy)

      // Decode L
      for (let cy = 0, j = 0; cy < ly; cy++)
        for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx * ly < lx * (ly - cy); cx++, j++)
          l += l_ac[j] * fx[cx] * fy2

      // Decode P and Q
      for (let cy = 0, j = 0; cy < 3; cy++) {
        for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx < 3 - cy; cx++, j++) {
          let f = fx[cx] * fy2
          p += p_ac[j] * f
          q += q_ac[j] * f
        }
      }

      // Decode A
      if (hasAlpha)
        for (let cy = 0, j = 0; cy < 5; cy++)
          for (let cx = cy ? 0 : 1, fy2 = fy[cy] * 2; cx < 5 - cy; cx++, j++)
            a += a_ac[j] * fx[cx] * fy2

      // Convert to RGB
      let b = l - 2 / 3 * p
      let r = (3 * l - b + q) / 2
      let g = r - q
      rgba[i] = max(0, 255 * min(1, r))
      rgba[i + 1] = max(0, 255 * min(1, g))
      rgba[i + 2] = max(0, 255 * min(1, b))
      rgba[i + 3] = max(0, 255 * min(1, a))
    }
  }
  return { w, h, rgba }
}

/**
 * Extracts the approximate aspect ratio of the original image.
 *
 * @param hash The bytes of the ThumbHash.
 * @returns The approximate aspect ratio (i.e. width / height).
 */
function thumbHashToApproximateAspectRatio(hash) {
  let header = hash[3]
  let hasAlpha = hash[2] & 0x80
  let isLandscape = hash[4] & 0x80
  let lx = isLandscape ? hasAlpha ? 5 : 7 : header & 7
  let ly = isLandscape ? header & 7 : hasAlpha ? 5 : 7
  return lx / ly
}

/**
 * Encodes an RGBA image to a PNG data URL. RGB should not be premultiplied by
 * A. This is optimized for speed and simplicity and does not optimize for size
 * at all. This doesn't do any compression (all values are stored uncompressed).
 *
 * @param w The width of the input image. Must be ≤100px.
 * @param h The height of the input image. Must be ≤100px.
 * @param rgba The pixels in the input image, row-by-row. Must have w*h*4 elements.
 * @returns A data URL containing a PNG for the input image.
 */
function rgbaToDataURL(w, h, rgba) {
  let row = w * 4 + 1
  let idat = 6 + h * (5 + row)
  let bytes = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0,
    w >> 8, w & 255, 0, 0, h >> 8, h & 255, 8, 6, 0, 0, 0, 0, 0, 0, 0,
    idat >>> 24, (idat >> 16) & 255, (idat >> 8) & 255, idat & 255,
    73, 68, 65, 84, 120, 1
  ]
  let table = [
    0, 498536548, 997073096, 651767980, 1994146192, 1802195444, 1303535960,
    1342533948, -306674912, -267414716, -690576408, -882789492, -1687895376,
    -2032938284, -1609899400, -1111625188
  ]
  let a = 1, b = 0
  for (let y = 0, i = 0, end = row - 1; y < h; y++, end += row - 1) {
    bytes.push(y + 1 < h ? 0 : 1, row & 255, row >> 8, ~row & 255, (row >> 8) ^ 255, 0)
    for (b = (b + a) % 65521; i < end; i++) {
      let u = rgba[i] & 255
      bytes.push(u)
      a = (a + u) % 65521
      b = (b + a) % 65521
    }
  }
  bytes.push(
    b >> 8, b & 255, a >> 8, a & 255, 0, 0, 0, 0,
    0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130
  )
  for (let [start, end] of [[12, 29], [37, 41 + idat]]) {
    let c = ~0
    for (let i = start; i < end; i++) {
      c ^= bytes[i]
      c = (c >>> 4) ^ table[c & 15]
      c = (c >>> 4) ^ table[c & 15]
    }
    c = ~c
    bytes[end++] = c >>> 24
    bytes[end++] = (c >> 16) & 255
    bytes[end++] = (c >> 8) & 255
    bytes[end++] = c & 255
  }
  return 'data:image/png;base64,' + btoa(String.fromCharCode(...bytes))
}

/**
 * Decodes a ThumbHash to a PNG data URL. This is a convenience function that
 * just calls "thumbHashToRGBA" followed by "rgbaToDataURL".
 *
 * @param hash The bytes of the ThumbHash.
 * @returns A data URL containing a PNG for the rendered ThumbHash.
 */
function thumbHashToDataURL(hash) {
  let image = thumbHashToRGBA(hash)
  return rgbaToDataURL(image.w, image.h, image.rgba)
}

// End of ThumbHash's code.
