// The client of bench/bench.py's end-to-end and resumable sections, the same for every side: uploads files with a
// fixed number in flight and prints one JSON line {"files", "seconds", "failed"}.
// Usage:
//   node client.mjs draftstore <DraftStore URL> <count> <bytes> <in flight>   upload-url, PUT to the store, confirm
//   node client.mjs tus <tus endpoint> <count> <bytes> <in flight>            tus-js-client: create, PATCH
//   node client.mjs s3 <S3 endpoint> <count> <bytes> <in flight> <bucket>     the AWS SDK: PutObject into
//                                     <bucket>-draft, CopyObject into <bucket>, DeleteObject of the draft
//   node client.mjs presigned <DraftStore URL> <count> <bytes> <in flight>    upload-url and the PUT, no confirm
//   node client.mjs tus-file <tus endpoint> <path>                            one file, streamed, 64 MiB PATCHes;
//                                     also prints the upload's URL
//   node client.mjs presigned-file <DraftStore URL> <path> <object name>     one file, upload-url and one streamed PUT
import { createRequire } from 'node:module'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'

const [mode, target, ...rest] = process.argv.slice(2)
const tools = process.env.DRAFTSTORE_TUS_TOOLS
if (!tools) throw new Error('DRAFTSTORE_TUS_TOOLS is not set: run bench/run, which installs the tus tools')
const require = createRequire(path.join(tools, 'package.json'))

// Runs `one(i)` for i in 0..count with `parallel` in flight; returns the failures.
async function pool(count, parallel, one) {
  let next = 0
  let failed = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      try {
        await one(i)
      } catch (error) {
        failed++
        if (failed <= 3) console.error(`file ${i}: ${error.message}`)
      }
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
  return failed
}

async function post(base, route, body) {
  const response = await fetch(`${base}/api/v1/${route}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  })
  const answer = await response.json()
  if (!response.ok) throw new Error(`${route} answered ${response.status}: ${answer.error_message}`)
  return answer
}

const run = {
  async draftstore(base, bytes, i) {
    const name = `bench/e2e/${process.pid}-${i}.bin`
    const ticket = await post(base, 'upload-url', { object_name: name, content_type: 'application/octet-stream' })
    const put = await fetch(ticket.upload_url, { method: 'PUT', headers: ticket.headers, body: bytes })
    if (!put.ok) throw new Error(`the PUT answered ${put.status}`)
    await put.arrayBuffer()
    await post(base, 'confirm-upload', { object_name: name })
  },
  // The presigned path alone, as a tus upload is: the draft is written and left unconfirmed.
  async presigned(base, bytes, i) {
    const name = `bench/presigned/${process.pid}-${i}.bin`
    const ticket = await post(base, 'upload-url', { object_name: name, content_type: 'application/octet-stream' })
    const put = await fetch(ticket.upload_url, { method: 'PUT', headers: ticket.headers, body: bytes })
    if (!put.ok) throw new Error(`the PUT answered ${put.status}`)
    await put.arrayBuffer()
  },
  async tus(endpoint, bytes, i) {
    const tus = require('tus-js-client')
    await new Promise((resolve, reject) => {
      const upload = new tus.Upload(bytes, {
        endpoint, uploadSize: bytes.length, metadata: { filename: `${process.pid}-${i}.bin` },
        retryDelays: null, onError: reject, onSuccess: resolve,
      })
      upload.start()
    })
  },
  s3(endpoint, bucket) {
    const { S3Client, PutObjectCommand, CopyObjectCommand, DeleteObjectCommand } = require('@aws-sdk/client-s3')
    const s3 = new S3Client({
      endpoint, region: 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
    })
    return async (bytes, i) => {
      const key = `bench/e2e/${process.pid}-${i}.bin`
      await s3.send(new PutObjectCommand({ Bucket: `${bucket}-draft`, Key: key, Body: bytes }))
      await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: key, CopySource: `${bucket}-draft/${key}` }))
      await s3.send(new DeleteObjectCommand({ Bucket: `${bucket}-draft`, Key: key }))
    }
  },
}

// One streamed PUT of the file at `file` to a signed URL, with node:http as tus-js-client's Node stack uses.
function putFile(url, headers, file, size) {
  return new Promise((resolve, reject) => {
    // The signed headers may name Content-Length already, in any case: one header of each name.
    const all = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]))
    const request = http.request(url, { method: 'PUT', headers: { ...all, 'content-length': size } }, (answer) => {
      answer.resume()
      answer.on('end', () => {
        if (answer.statusCode === 200) resolve()
        else reject(new Error(`the PUT answered ${answer.statusCode}`))
      })
    })
    request.on('error', reject)
    fs.createReadStream(file).on('error', reject).pipe(request)
  })
}

if (mode === 'tus-file') {
  const tus = require('tus-js-client')
  const size = fs.statSync(rest[0]).size
  const started = performance.now()
  const url = await new Promise((resolve, reject) => {
    const upload = new tus.Upload(fs.createReadStream(rest[0]), {
      endpoint: target, uploadSize: size, chunkSize: 64 * 1024 * 1024, metadata: { filename: path.basename(rest[0]) },
      retryDelays: null, onError: reject, onSuccess: () => resolve(upload.url),
    })
    upload.start()
  })
  console.log(JSON.stringify({ files: 1, bytes: size, seconds: (performance.now() - started) / 1000, failed: 0, url }))
} else if (mode === 'presigned-file') {
  const [file, name] = rest
  const size = fs.statSync(file).size
  const started = performance.now()
  const ticket = await post(target, 'upload-url', {
    object_name: name, content_type: 'application/octet-stream', content_length: size,
  })
  await putFile(ticket.upload_url, ticket.headers, file, size)
  console.log(JSON.stringify({ files: 1, bytes: size, seconds: (performance.now() - started) / 1000, failed: 0 }))
} else {
  const [count, size, parallel, bucket] = [Number(rest[0]), Number(rest[1]), Number(rest[2]), rest[3]]
  const bytes = Buffer.alloc(size)
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) % 251
  if (!['draftstore', 'presigned', 'tus', 's3'].includes(mode)) throw new Error(`unknown mode ${mode}`)
  const one = mode === 's3' ? run.s3(target, bucket) : (data, i) => run[mode](target, data, i)
  const started = performance.now()
  const failed = await pool(count, parallel, (i) => one(bytes, i))
  console.log(JSON.stringify({ files: count, seconds: (performance.now() - started) / 1000, failed }))
}
