// One upload with tus-js-client 4, as an application in Node runs it, printing what happened as JSON lines on
// stdout for the Rust test that follows it (tests/api/resumable_clients.rs).
// Usage: node upload.mjs '<options JSON>'
//   endpoint                 the creation URL (`<DraftStore>/files/`)
//   file                     the file to upload (streamed with fs.createReadStream, as tus-js-client's docs show)
//   protocol                 'tus-v1' (tus 1.0.0) or 'ietf-draft-05' (the IETF draft, interop version 6)
//   metadata, token          Upload-Metadata ({key: value}); a key sent as `Authorization: Bearer <token>`
//   chunkSize, uploadDataDuringCreation, retryDelays      tus-js-client's options of those names
//   urlStore                 a file: tus-js-client's FileUrlStorage, where the upload's URL is kept under the file's
//                            fingerprint, so that another process can resume it
//   resume                   look the upload up in urlStore and resume it, as tus-js-client's docs show
//   holdAt                   the byte of the file at which the body of a request stops until a line arrives on
//                            stdin: the test kills the client or the server with a request half sent
// Events: {"event":"request","method","offset"} before each request; {"event":"response","method","status",
// "offset","objectName"} after each; {"event":"chunk","accepted"} when a PATCH is acknowledged; {"event":"held",
// "at"} when a body stops at holdAt; last {"event":"success","url","objectName"}, or {"event":"error"} and exit 1.
// The tools come from DRAFTSTORE_TUS_TOOLS (scripts/test installs scripts/tools/tus there).
import { createRequire } from 'node:module'
import fs from 'node:fs'
import path from 'node:path'
import { Readable, Transform } from 'node:stream'

const tools = process.env.DRAFTSTORE_TUS_TOOLS
if (!tools) throw new Error('DRAFTSTORE_TUS_TOOLS is not set: run scripts/test, which installs the tus tools')
const tus = createRequire(path.join(tools, 'package.json'))('tus-js-client')

const options = JSON.parse(process.argv[2])
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n')

// The file's bytes pass through a Hold on their way into a request's body, when holdAt is given.
let released = false
const waiting = []
if (options.holdAt != null) {
  process.stdin.on('data', () => {
    released = true
    for (const go of waiting.splice(0)) go()
  })
}

class Hold extends Transform {
  constructor(start) {
    super()
    this.position = start
  }

  _transform(chunk, _encoding, callback) {
    const before = Math.max(0, Math.min(chunk.length, options.holdAt - this.position))
    this.position += chunk.length
    if (released || before === chunk.length) return callback(null, chunk)
    if (before > 0) this.push(chunk.subarray(0, before))
    emit({ event: 'held', at: options.holdAt })
    waiting.push(() => callback(null, chunk.subarray(before)))
  }
}

// tus-js-client's own file reader, its slices passed through a Hold.
const reader = tus.defaultOptions.fileReader
const holdingReader = {
  async openFile(input, chunkSize) {
    const source = await reader.openFile(input, chunkSize)
    return {
      size: source.size,
      close: () => source.close(),
      async slice(start, end) {
        const { value, done } = await source.slice(start, end)
        if (!(value instanceof Readable)) return { value, done }
        const body = value.pipe(new Hold(start))
        body.size = value.size
        return { value: body, done }
      },
    }
  },
}

let objectName = null
const upload = new tus.Upload(fs.createReadStream(options.file), {
  endpoint: options.endpoint,
  protocol: options.protocol,
  metadata: options.metadata ?? {},
  headers: options.token ? { Authorization: `Bearer ${options.token}` } : {},
  chunkSize: options.chunkSize ?? Infinity,
  uploadDataDuringCreation: options.uploadDataDuringCreation ?? false,
  retryDelays: options.retryDelays ?? null,
  ...(options.urlStore ? { urlStorage: new tus.FileUrlStorage(options.urlStore) } : {}),
  ...(options.holdAt != null ? { fileReader: holdingReader } : {}),
  onBeforeRequest(request) {
    emit({ event: 'request', method: request.getMethod(), offset: request.getHeader('Upload-Offset') ?? null })
  },
  onAfterResponse(request, response) {
    const name = response.getHeader('DraftStore-Object-Name')
    if (name != null) objectName = decodeURIComponent(name)
    emit({
      event: 'response', method: request.getMethod(), status: response.getStatus(),
      offset: response.getHeader('Upload-Offset') ?? null, objectName: name == null ? null : decodeURIComponent(name),
    })
  },
  onChunkComplete(_chunkSize, accepted) {
    emit({ event: 'chunk', accepted })
  },
  onError(error) {
    emit({ event: 'error', message: String(error) })
    process.exit(1)
  },
  onSuccess() {
    emit({ event: 'success', url: upload.url, objectName })
    process.exit(0)
  },
})

if (options.resume) {
  const previous = await upload.findPreviousUploads()
  if (previous.length === 0) {
    emit({ event: 'error', message: `no upload of ${options.file} in ${options.urlStore}` })
    process.exit(1)
  }
  upload.resumeFromPreviousUpload(previous[0])
}
upload.start()
