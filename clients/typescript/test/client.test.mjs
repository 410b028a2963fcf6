// The TypeScript client against a real DraftStore server (the local backend or SeaweedFS, as DraftStore's test
// suite runs it: crates/server/tests/api/clients.rs sets DRAFTSTORE_URL, DRAFTSTORE_LIMITED_URL and DRAFTSTORE_KEYS).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'

import { DraftStore, DraftStoreError, fileResumeStore } from '../dist/index.js'
import { signRequest } from '../dist/uppy.js'

function env(name) {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set: these tests run from DraftStore's test suite (scripts/test)`)
  return value
}
const url = env('DRAFTSTORE_URL')
const limitedUrl = env('DRAFTSTORE_LIMITED_URL')
const [alice, mallory] = env('DRAFTSTORE_KEYS').split(',')
const MIB = 1024 * 1024
const unique = (prefix) => `${prefix}-${randomUUID().slice(0, 8)}`
// A scratch folder (20 MiB or so), removed when the test that made it ends.
function scratch(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'draftstore-ts-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function put(ticket, body) {
  const headers = Object.fromEntries(Object.entries(ticket.headers).filter(([name]) => name.toLowerCase() !== 'content-length'))
  return fetch(ticket.upload_url, { method: 'PUT', headers, body })
}

test('every operation', async () => {
  const client = new DraftStore(url, { token: alice })
  const folder = unique('ops')
  assert.deepEqual(await client.health(), { status: 'ok' })
  const ready = await client.ready()
  assert.equal(ready.status, 'ready')
  assert.equal(ready.store.probe, 'passed', JSON.stringify(ready))
  assert.deepEqual(await client.createBuckets(), { success: true })
  const name = `${folder}/note.txt`
  assert.equal((await put(await client.uploadUrl({ object_name: name, content_type: 'text/plain', content_length: 5 }), 'hello')).status, 200)
  const preview = await client.downloadUrl({ object_name: name, stage: 'draft' })
  assert.equal(await (await fetch(preview.download_url)).text(), 'hello')
  assert.deepEqual((await client.listDrafts({ prefix: `${folder}/` })).drafts.map((d) => d.object_name), [name])

  const confirmed = await client.confirmUpload({ object_name: name, final_name: `${folder}/final/note.txt`, metadata: { 'owner-id': '7' } })
  assert.equal(confirmed.object_name, `${folder}/final/note.txt`)
  const stat = await client.statObject({ object_name: `${folder}/final/note.txt` })
  assert.deepEqual([stat.size, stat.content_type, stat.metadata], [5, 'text/plain', { 'owner-id': '7' }])
  const listed = await client.listObjects({ prefix: `${folder}/`, page_size: 10 })
  assert.deepEqual(listed.objects, [stat])
  assert.equal(listed.next_page_token, null)
  const named = await client.downloadUrl({ object_name: `${folder}/final/note.txt`, filename: "note d'été.txt" })
  assert.equal((await fetch(named.download_url)).headers.get('content-disposition'), "attachment; filename*=UTF-8''note%20d%27%C3%A9t%C3%A9.txt")

  await put(await client.uploadUrl({ object_name: `${folder}/gone.txt` }), 'x')
  assert.deepEqual(await client.discardDraft({ object_name: `${folder}/gone.txt` }), { success: true })

  const big = `${folder}/parts.bin`
  const started = await client.startMultipart({ object_name: big, content_length: 5 * MIB + 3, part_size: 5 * MIB })
  const signed = await client.signParts({ object_name: big, upload_id: started.upload_id, parts: [{ part_number: 1 }, { part_number: 2 }] })
  const parts = []
  for (const [part, body] of signed.parts.map((p, i) => [p, i === 0 ? new Uint8Array(5 * MIB).fill(97) : 'end'])) {
    const response = await put({ upload_url: part.upload_url, headers: part.headers }, body)
    parts.push({ part_number: part.part_number, etag: response.headers.get('etag') })
  }
  assert.deepEqual((await client.listParts({ object_name: big, upload_id: started.upload_id })).parts.map((p) => p.part_number), [1, 2])
  assert.equal((await client.completeMultipart({ object_name: big, upload_id: started.upload_id, parts })).size, 5 * MIB + 3)
  const aborted = await client.startMultipart({ object_name: `${folder}/aborted.bin`, content_length: 1 })
  assert.deepEqual(await client.abortMultipart({ object_name: `${folder}/aborted.bin`, upload_id: aborted.upload_id }), { success: true })

  for (let i = 0; i < 3; i++) await put(await client.uploadUrl({ object_name: `${folder}/set/${i}.txt` }), 's')
  const drafts = [0, 1, 2].map((i) => ({ object_name: `${folder}/set/${i}.txt`, final_name: `${folder}/kept/${i}.txt` }))
  const set = await client.confirmSet({ idempotency_key: unique('key'), drafts })
  assert.deepEqual(set.objects.map((o) => o.object_name), drafts.map((d) => d.final_name))

  const uppy = await signRequest(client)({ method: 'PUT', key: `${folder}/uppy.bin` })
  assert.match(uppy.url, /^http/)
  assert.deepEqual(await client.deleteObject({ object_name: `${folder}/final/note.txt` }), { success: true })
})

test('a 20 MiB multipart upload reports progress and round-trips', async (t) => {
  const dir = scratch(t)
  const file = path.join(dir, 'twenty.bin')
  const data = randomBytes(20 * MIB + 17)
  fs.writeFileSync(file, data)
  const client = new DraftStore(url, { token: alice })
  const name = `${unique('multi')}/twenty.bin`
  const seen = []
  const result = await client.uploadFile(file, name, {
    partSize: 5 * MIB, multipartThreshold: 5 * MIB, progress: (done, total) => seen.push([done, total]),
    resume: await fileResumeStore(path.join(dir, 'state')),
  })
  assert.deepEqual(result, { objectName: name, size: data.length, parts: 5, partsResumed: 0 })
  assert.ok(seen.length >= 5, JSON.stringify(seen))
  assert.deepEqual(seen.at(-1), [data.length, data.length])
  assert.ok(seen.every(([done, total], i) => total === data.length && done <= total && (i === 0 || done >= seen[i - 1][0])))
  await client.confirmUpload({ object_name: name })
  const back = Buffer.from(await (await fetch((await client.downloadUrl({ object_name: name, stage: 'main' })).download_url)).arrayBuffer())
  assert.ok(back.equals(data), 'the object differs from the file')
  // A Blob (a browser's File) goes the same way, in one PUT when small; and a Node stream.
  const small = await client.uploadFile(new Blob(['small'], { type: 'text/plain' }), `${name}.txt`)
  assert.deepEqual(small, { objectName: `${name}.txt`, size: 5, parts: 0, partsResumed: 0 })
  const streamed = await client.uploadFile(fs.createReadStream(file, { start: 0, end: 999 }), `${name}.stream`)
  assert.deepEqual(streamed, { objectName: `${name}.stream`, size: 1000, parts: 0, partsResumed: 0 })
  const got = Buffer.from(await (await fetch((await client.downloadUrl({ object_name: `${name}.stream` })).download_url)).arrayBuffer())
  assert.ok(got.equals(data.subarray(0, 1000)), 'the streamed draft differs')
})

const KILLED_UPLOAD = `
import { DraftStore, fileResumeStore } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)}
const [url, key, source, name, state] = process.argv.slice(1)
const client = new DraftStore(url, { token: key })
await client.uploadFile(source, name, {
  partSize: 5 * 1024 * 1024, multipartThreshold: 5 * 1024 * 1024, parallel: 1, resume: await fileResumeStore(state),
  progress: (done) => { if (done >= 10 * 1024 * 1024) process.kill(process.pid, 'SIGKILL') },
})
`

test('an upload killed between parts resumes', async (t) => {
  const dir = scratch(t)
  const file = path.join(dir, 'resumed.bin')
  const data = randomBytes(20 * MIB + 1)
  fs.writeFileSync(file, data)
  const name = `${unique('resume')}/resumed.bin`
  const state = path.join(dir, 'state')
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', KILLED_UPLOAD, url, alice, file, name, state], { stdio: 'inherit' })
  assert.equal(child.signal, 'SIGKILL', 'the upload was killed')
  const client = new DraftStore(url, { token: alice })
  const result = await client.uploadFile(file, name, { partSize: 5 * MIB, multipartThreshold: 5 * MIB, resume: await fileResumeStore(state) })
  assert.ok(result.partsResumed >= 2, JSON.stringify(result))
  await client.confirmUpload({ object_name: name })
  const back = Buffer.from(await (await fetch((await client.downloadUrl({ object_name: name, stage: 'main' })).download_url)).arrayBuffer())
  assert.ok(back.equals(data), 'the resumed object differs from the file')
  assert.deepEqual(fs.readdirSync(path.join(state, 'ts-uploads')), [], 'a completed upload leaves no record')
})

test('errors carry the error type, and rate limits are waited out', async () => {
  const client = new DraftStore(url, { token: alice })
  await assert.rejects(client.statObject({ object_name: `${unique('absent')}.txt` }),
    (e) => e instanceof DraftStoreError && e.errorType === 'OBJECT_NOT_FOUND' && e.status === 404)
  await assert.rejects(client.uploadUrl({ object_name: '../escape.txt' }), (e) => e.errorType === 'INVALID_OBJECT_NAME')
  // One request a second: the second and third wait out the Retry-After the server gives.
  const limited = new DraftStore(limitedUrl, { token: alice })
  const started = Date.now()
  for (let i = 0; i < 3; i++) await limited.listDrafts({ page_size: 1 })
  assert.ok(Date.now() - started >= 1500, `${Date.now() - started} ms`)
  const impatient = new DraftStore(limitedUrl, { token: mallory, retries: 0 })
  await impatient.listDrafts({ page_size: 1 })
  await assert.rejects(impatient.listDrafts({ page_size: 1 }),
    (e) => e.errorType === 'RATE_LIMITED' && e.status === 429 && e.retryAfter >= 1)
})

test('tenants see their own objects only', async () => {
  const name = `${unique('tenant')}/secret.txt`
  const owner = new DraftStore(url, { token: alice })
  const other = new DraftStore(url, { token: mallory })
  await put(await owner.uploadUrl({ object_name: name }), 'secret')
  await owner.confirmUpload({ object_name: name })
  assert.ok(!(await other.listObjects()).objects.some((o) => o.object_name === name))
  for (const call of [other.statObject, other.deleteObject, other.downloadUrl]) {
    await assert.rejects(call.call(other, { object_name: name }), (e) => e.errorType === 'OBJECT_NOT_FOUND')
  }
  assert.equal((await owner.statObject({ object_name: name })).size, 6)
  await assert.rejects(new DraftStore(url, { token: 'not-a-key' }).listObjects(), (e) => e.errorType === 'ACCESS_DENIED' && e.status === 401)
})

// The content fixtures of DraftStore's own tests: real files made by real encoders.
const fixture = (name) => fs.readFileSync(new URL(`../../../crates/server/tests/fixtures/content/${name}`, import.meta.url))

/** The width and height a WebP file's header declares (lossy, lossless or extended). */
function webpSize(data) {
  assert.equal(data.toString('latin1', 0, 4), 'RIFF')
  assert.equal(data.toString('latin1', 8, 12), 'WEBP')
  assert.equal(data.readUInt32LE(4) + 8, data.length, 'the RIFF size is the file\'s')
  const chunk = data.toString('latin1', 12, 16)
  if (chunk === 'VP8 ') {
    assert.deepEqual([...data.subarray(23, 26)], [0x9d, 0x01, 0x2a], 'a VP8 key frame')
    return [data.readUInt16LE(26) & 0x3fff, data.readUInt16LE(28) & 0x3fff]
  }
  if (chunk === 'VP8L') {
    const bits = data.readUInt32LE(21)
    return [(bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1]
  }
  assert.equal(chunk, 'VP8X')
  return [data.readUIntLE(24, 3) + 1, data.readUIntLE(27, 3) + 1]
}

test('an image is confirmed with variants and its thumb downloaded', async () => {
  // The suite's servers declare IMAGE_VARIANTS thumb=32x32,cover,webp;preview=40x40,contain,png.
  const client = new DraftStore(url, { token: alice })
  const folder = unique('image')
  const name = `${folder}/photo.png`
  await client.uploadFile(new Blob([fixture('photo.png')], { type: 'image/png' }), name)
  const confirmed = await client.confirmUpload({ object_name: name })
  const image = confirmed.image
  assert.deepEqual([image.width, image.height], [64, 48])
  assert.ok(image.placeholder, 'a ThumbHash to paint before the image loads')
  assert.deepEqual(image.variants.map((v) => [v.name, v.content_type, v.width, v.height]), [['thumb', 'image/webp', 32, 32], ['preview', 'image/png', 40, 30]])
  assert.ok(!('size' in confirmed) && !('sha256' in confirmed), 'a PNG without metadata is promoted as is')
  assert.deepEqual((await client.statObject({ object_name: name })).image, image)
  assert.deepEqual((await client.listObjects({ prefix: `${folder}/` })).objects.map((o) => o.image), [image])

  const ticket = await client.downloadUrl({ object_name: name, variant: 'thumb' })
  assert.equal(ticket.stage, 'main')
  const response = await fetch(ticket.download_url)
  assert.equal(response.headers.get('content-type'), 'image/webp')
  const thumb = Buffer.from(await response.arrayBuffer())
  assert.equal(thumb.length, image.variants[0].size)
  assert.deepEqual(webpSize(thumb), [32, 32])

  const refusals = [
    [{ variant: 'huge' }, ['VARIANT_NOT_FOUND', 404]],
    [{ variant: '../thumb' }, ['INVALID_REQUEST', 400]],
    [{ variant: 'x'.repeat(33) }, ['INVALID_REQUEST', 400]],
    [{ variant: 'thumb', stage: 'draft' }, ['VARIANT_NOT_FOUND', 404]],
  ]
  for (const [request, expected] of refusals) {
    await assert.rejects(client.downloadUrl({ object_name: name, ...request }), (error) => {
      assert.ok(error instanceof DraftStoreError)
      assert.deepEqual([error.errorType, error.status], expected, JSON.stringify(request))
      return true
    })
  }
  // Another tenant learns nothing of the image, not even that it has variants.
  await assert.rejects(new DraftStore(url, { token: mallory }).downloadUrl({ object_name: name, variant: 'thumb' }), (error) => error.errorType === 'OBJECT_NOT_FOUND')
})
