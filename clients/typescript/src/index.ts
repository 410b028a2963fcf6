// The TypeScript client of DraftStore: one method per REST operation, typed from the OpenAPI document
// (schema.ts, generated), with the retries the server asks for, and uploadFile on top. Node 20+ and browsers:
// plain fetch, WebCrypto, Blobs; nothing else.

import type { components } from './schema.js'

export type Schemas = components['schemas']
export type ErrorType = Schemas['ErrorType']
export type Stage = Schemas['Stage']
/** What confirm made of an image: its size as shown, a ThumbHash placeholder, its variants. */
export type ImageReport = Schemas['ImageReport']
/** One variant of an image (IMAGE_VARIANTS): what `downloadUrl` takes as `variant`. */
export type Variant = Schemas['VariantBody']
export type Metadata = Record<string, string>

/** Attempts of a request the server asks to repeat (429 RATE_LIMITED, 503 SERVER_BUSY) or that could not reach it. */
export const DEFAULT_RETRIES = 5
const MIB = 1024 * 1024
/** Files above this go in parts. */
export const MULTIPART_THRESHOLD = 16 * MIB
const RETRYABLE = new Set(['RATE_LIMITED', 'SERVER_BUSY'])

/** A request DraftStore (or the store behind a signed URL) refused, or could not answer. */
export class DraftStoreError extends Error {
  /** DraftStore's stable code; undefined when the answer was not DraftStore's. */
  readonly errorType?: ErrorType
  /** The HTTP status; undefined when no answer came. */
  readonly status?: number
  /** Seconds the server asked to wait before trying again. */
  readonly retryAfter?: number

  constructor(message: string, options: { errorType?: ErrorType; status?: number; retryAfter?: number; cause?: unknown } = {}) {
    super(options.errorType ? `${message} (${options.errorType})` : message, { cause: options.cause })
    this.name = 'DraftStoreError'
    this.errorType = options.errorType
    this.status = options.status
    this.retryAfter = options.retryAfter
  }

  static async from(response: Response): Promise<DraftStoreError> {
    const text = await response.text().catch(() => '')
    const header = response.headers.get('retry-after')
    const retryAfter = header !== null && !Number.isNaN(Number(header)) ? Number(header) : undefined
    try {
      const body = JSON.parse(text) as Partial<Schemas['ErrorBody']>
      if (body && typeof body.error_type === 'string') {
        return new DraftStoreError(body.error_message ?? response.statusText, { errorType: body.error_type, status: response.status, retryAfter })
      }
    } catch { /* not DraftStore's answer */ }
    return new DraftStoreError(`HTTP ${response.status}: ${text.slice(0, 500) || response.statusText}`, { status: response.status, retryAfter })
  }

  get retryable(): boolean {
    return this.errorType !== undefined && RETRYABLE.has(this.errorType)
  }
}

export interface ClientOptions {
  /** An API key or a JWT, sent as a bearer token. */
  token?: string
  /** Attempts of a request the server asks to repeat, or that could not reach it. */
  retries?: number
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch
}

/** `progress(done, total)`: bytes sent so far, of all. */
export type Progress = (done: number, total: number) => void

/** Where interrupted uploads are recorded, to resume them: localStorage in a browser, files in Node by default. */
export interface ResumeStore {
  get(key: string): Promise<string | null>
  set(key: string, value: string): Promise<void>
  delete(key: string): Promise<void>
}

export interface UploadOptions {
  contentType?: string
  progress?: Progress
  multipartThreshold?: number
  partSize?: number
  /** Parts in flight at once. */
  parallel?: number
  /** Where an interrupted multipart upload is recorded; `null` for nowhere. */
  resume?: ResumeStore | null
}

export interface UploadResult {
  objectName: string
  size: number
  parts: number
  partsResumed: number
}

type Body<S extends keyof Schemas> = Schemas[S]
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const backoff = (attempt: number) => Math.min(5000, 200 * 2 ** attempt) * (0.5 + Math.random() / 2)

/** DraftStore's REST API. */
export class DraftStore {
  readonly baseUrl: string
  readonly retries: number
  private readonly headers: Record<string, string>
  private readonly fetch: typeof fetch

  constructor(baseUrl = 'http://localhost:8080', options: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '')
    this.retries = options.retries ?? DEFAULT_RETRIES
    this.headers = { 'Content-Type': 'application/json', ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}) }
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis)
  }

  /** POSTs a body to `/api/v1/<route>`, repeating what the server asks to repeat; the answer's JSON. */
  async call<T>(route: string, body: object): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let response: Response
      try {
        response = await this.fetch(`${this.baseUrl}/api/v1/${route}`, { method: 'POST', headers: this.headers, body: JSON.stringify(body) })
      } catch (cause) {
        if (attempt < this.retries) { await sleep(backoff(attempt)); continue }
        throw new DraftStoreError(`cannot reach DraftStore at ${this.baseUrl}: ${String(cause)}`, { cause })
      }
      if (response.ok) return (await response.json()) as T
      const error = await DraftStoreError.from(response)
      if (error.retryable && attempt < this.retries) {
        await sleep(error.retryAfter !== undefined ? error.retryAfter * 1000 : backoff(attempt))
        continue
      }
      throw error
    }
  }

  private async get<T>(path: string): Promise<T> {
    const response = await this.fetch(`${this.baseUrl}${path}`)
    if (!response.ok) throw await DraftStoreError.from(response)
    return (await response.json()) as T
  }

  /** Liveness. */ health() { return this.get<Body<'StatusResponse'>>('/health') }
  /** Readiness: the store answers and the buckets exist. */ ready() { return this.get<Body<'StatusResponse'>>('/ready') }
  /** A URL to upload a draft to; what is declared is signed into it. */
  uploadUrl(request: Body<'UploadUrlRequest'>) { return this.call<Body<'UploadUrlResponse'>>('upload-url', request) }
  /**
   * A URL to read a draft (preview) or a confirmed object, saved as `filename` if given; with `variant`, one of a
   * confirmed image's variants (`VARIANT_NOT_FOUND` when it has none of that name).
   */
  downloadUrl(request: Body<'DownloadUrlRequest'>) { return this.call<Body<'DownloadUrlResponse'>>('download-url', request) }
  /**
   * Moves a draft into the main bucket, under `final_name` if given, with `metadata`. Idempotent. For an image,
   * `image` gives its size as shown, its placeholder and its variants; `size` and `sha256` are given when stripping
   * its metadata changed the bytes promoted.
   */
  confirmUpload(request: Body<'ConfirmUploadRequest'>) { return this.call<Body<'ConfirmUploadResponse'>>('confirm-upload', request) }
  /** Confirms drafts all together or not at all; the same key again answers the recorded outcome. */
  confirmSet(request: Body<'ConfirmSetRequest'>) { return this.call<Body<'ConfirmSetResponse'>>('confirm-set', request) }
  /** Creates the buckets if missing. */
  createBuckets() { return this.call<Body<'SuccessResponse'>>('draft-bucket', {}) }
  /** One page of the caller's drafts. */
  listDrafts(request: Body<'ListDraftsRequest'> = {}) { return this.call<Body<'ListDraftsResponse'>>('list-drafts', request) }
  /** Deletes one of the caller's drafts. */
  discardDraft(request: Body<'DiscardDraftRequest'>) { return this.call<Body<'SuccessResponse'>>('discard-draft', request) }
  /** One page of the caller's confirmed objects. */
  listObjects(request: Body<'ListObjectsRequest'> = {}) { return this.call<Body<'ListObjectsResponse'>>('list-objects', request) }
  /** One confirmed object's size, type, checksum and metadata, and for an image what confirm made of it. */
  statObject(request: Body<'ObjectRequest'>) { return this.call<Body<'ObjectBody'>>('stat-object', request) }
  /** Deletes one of the caller's confirmed objects. */
  deleteObject(request: Body<'ObjectRequest'>) { return this.call<Body<'SuccessResponse'>>('delete-object', request) }
  /** Starts a multipart upload of a draft. */
  startMultipart(request: Body<'StartMultipartRequest'>) { return this.call<Body<'StartMultipartResponse'>>('multipart/start', request) }
  /** URLs to upload parts to (1 to 1000 a call). */
  signParts(request: Body<'SignPartsRequest'>) { return this.call<Body<'SignPartsResponse'>>('multipart/sign-parts', request) }
  /** The parts the store holds. */
  listParts(request: Body<'UploadRequest'>) { return this.call<Body<'ListPartsResponse'>>('multipart/list-parts', request) }
  /** Assembles the parts into the draft. */
  completeMultipart(request: Body<'CompleteMultipartRequest'>) { return this.call<Body<'CompleteMultipartResponse'>>('multipart/complete', request) }
  /** Ends an upload and removes its parts. */
  abortMultipart(request: Body<'UploadRequest'>) { return this.call<Body<'SuccessResponse'>>('multipart/abort', request) }
  /** Signs one request Uppy's `@uppy/aws-s3` describes. */
  uppySign(request: Body<'UppySignRequest'>) { return this.call<Body<'UppySignResponse'>>('uppy/sign', request) }

  /**
   * Uploads a file as a draft: a `Blob` (a browser's `File`), in Node a path, or a stream (a `ReadableStream`, a
   * Node `Readable`, any async iterable of bytes: gathered in memory first, since its size and SHA-256 are signed
   * in; give a path for large files). One PUT up to
   * `multipartThreshold` (16 MiB), parts in parallel above it; the size and SHA-256 of the file (of each part) are
   * signed into the URL, so the store refuses bytes that differ. A multipart upload is recorded in `resume` and,
   * run again after an interruption, sends only the parts the store does not hold.
   */
  async uploadFile(source: UploadSource, objectName: string, options: UploadOptions = {}): Promise<UploadResult> {
    const file = await asBlob(source)
    const contentType = options.contentType || file.type || 'application/octet-stream'
    const progress = options.progress ?? (() => {})
    const size = file.size
    if (size <= (options.multipartThreshold ?? MULTIPART_THRESHOLD)) {
      const ticket = await this.uploadUrl({ object_name: objectName, content_type: contentType, content_length: size, checksum_sha256: await sha256(file) })
      await this.put(ticket.upload_url, ticket.headers, file)
      progress(size, size)
      return { objectName, size, parts: 0, partsResumed: 0 }
    }
    const store = options.resume === undefined ? await defaultResumeStore() : options.resume
    const key = `draftstore-upload:${this.baseUrl}:${objectName}:${size}:${typeof source === 'string' ? source : (file as File).name ?? ''}:${(file as File).lastModified ?? ''}`
    let upload = store ? JSON.parse((await store.get(key)) ?? 'null') as { upload_id: string; part_size: number; part_count: number } | null : null
    let stored: Schemas['UploadedPartBody'][] = []
    if (upload) {
      try {
        stored = (await this.listParts({ object_name: objectName, upload_id: upload.upload_id })).parts
      } catch (error) {
        if (!(error instanceof DraftStoreError) || error.errorType !== 'UPLOAD_NOT_FOUND') throw error
        upload = null
      }
    }
    if (!upload) {
      const started = await this.startMultipart({ object_name: objectName, content_type: contentType, content_length: size, part_size: options.partSize })
      upload = { upload_id: started.upload_id, part_size: started.part_size, part_count: started.part_count ?? Math.ceil(size / started.part_size) }
      await store?.set(key, JSON.stringify(upload))
    }
    const { upload_id, part_size, part_count } = upload
    const etags = new Map<number, string>()
    const done = new Map<number, number>()
    const report = () => progress([...done.values()].reduce((a, b) => a + b, 0), size)
    const missing: number[] = []
    for (let n = 1; n <= part_count; n++) {
      const part = file.slice((n - 1) * part_size, Math.min(n * part_size, size))
      const found = stored.find((p) => p.part_number === n)
      // A part is kept only when the store has exactly these bytes (it verified their checksum).
      if (found && found.size === part.size && (!found.checksum_sha256 || found.checksum_sha256 === await sha256(part))) {
        etags.set(n, found.etag)
        done.set(n, part.size)
      } else {
        missing.push(n)
      }
    }
    const partsResumed = etags.size
    report()
    const queue = [...missing]
    const worker = async () => {
      for (let n = queue.shift(); n !== undefined; n = queue.shift()) {
        const part = file.slice((n - 1) * part_size, Math.min(n * part_size, size))
        const signed = await this.signParts({ object_name: objectName, upload_id, parts: [{ part_number: n, checksum_sha256: await sha256(part) }] })
        const url = signed.parts[0]
        if (!url) throw new DraftStoreError(`no URL was signed for part ${n}`)
        etags.set(n, await this.put(url.upload_url, url.headers, part))
        done.set(n, part.size)
        report()
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, options.parallel ?? 4) }, worker))
    const parts = [...etags.entries()].sort((a, b) => a[0] - b[0]).map(([part_number, etag]) => ({ part_number, etag }))
    await this.completeMultipart({ object_name: objectName, upload_id, parts })
    await store?.delete(key)
    return { objectName, size, parts: part_count, partsResumed }
  }

  /** PUTs a body to a signed URL with the headers it was signed with; the store's ETag. */
  private async put(url: string, headers: Record<string, string>, body: Blob): Promise<string> {
    const sent: Record<string, string> = {}
    for (const [name, value] of Object.entries(headers)) if (name.toLowerCase() !== 'content-length') sent[name] = value
    let response: Response
    try {
      response = await this.fetch(url, { method: 'PUT', headers: sent, body })
    } catch (cause) {
      throw new DraftStoreError(`the upload to the store failed: ${String(cause)}`, { cause })
    }
    if (!response.ok) {
      const error = await DraftStoreError.from(response)
      throw new DraftStoreError(`the store refused the upload: ${error.message}`, { status: error.status })
    }
    return response.headers.get('etag') ?? ''
  }
}

/** What `uploadFile` takes. */
export type UploadSource = Blob | string | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>

/** A source as a Blob: a path read as it is used, a stream gathered. */
async function asBlob(source: UploadSource): Promise<Blob> {
  if (typeof source === 'string') return openAsBlob(source)
  if (source instanceof Blob) return source
  const chunks: Uint8Array[] = []
  for await (const chunk of source as AsyncIterable<Uint8Array>) chunks.push(chunk)
  return new Blob(chunks as BlobPart[])
}

/** Base64 SHA-256 of a Blob, with WebCrypto. */
export async function sha256(blob: Blob): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()))
  let binary = ''
  for (const byte of digest) binary += String.fromCharCode(byte)
  return btoa(binary)
}

/** A Node built-in, loaded where it is used only, by a name no browser bundler tries to resolve. */
async function builtin<T>(name: string): Promise<T> {
  return (await import(name)) as T
}

/** What this module uses of Node's process. */
declare const process: { env: Record<string, string | undefined>; versions?: { node?: string } } | undefined

/** A file as a Blob that reads from disk as it is used (Node). */
async function openAsBlob(path: string): Promise<Blob> {
  const fs = await builtin<{ openAsBlob(path: string): Promise<Blob> }>('node:fs')
  return fs.openAsBlob(path)
}

/** localStorage in a browser; in Node, files under $DRAFTSTORE_STATE_DIR (else $XDG_STATE_HOME/draftstore, else ~/.local/state/draftstore). */
async function defaultResumeStore(): Promise<ResumeStore | null> {
  const local = (globalThis as { localStorage?: Storage }).localStorage
  if (local) {
    return {
      get: async (key) => local.getItem(key),
      set: async (key, value) => local.setItem(key, value),
      delete: async (key) => local.removeItem(key),
    }
  }
  if (typeof process === 'undefined' || !process.versions?.node) return null
  return fileResumeStore(stateDir(process.env))
}

function stateDir(env: Record<string, string | undefined>): string {
  if (env.DRAFTSTORE_STATE_DIR) return env.DRAFTSTORE_STATE_DIR
  if (env.XDG_STATE_HOME) return `${env.XDG_STATE_HOME}/draftstore`
  return `${env.HOME ?? '.'}/.local/state/draftstore`
}

/** Records interrupted uploads as small files in a folder (Node). */
export async function fileResumeStore(dir: string): Promise<ResumeStore> {
  const fs = await builtin<{
    readFile(path: string, encoding: 'utf8'): Promise<string>
    writeFile(path: string, data: string): Promise<void>
    mkdir(path: string, options: { recursive: true }): Promise<unknown>
    rm(path: string, options: { force: true }): Promise<void>
  }>('node:fs/promises')
  const { createHash } = await builtin<{ createHash(algorithm: string): { update(data: string): { digest(encoding: 'hex'): string } } }>('node:crypto')
  const folder = `${dir}/ts-uploads`
  const path = (key: string) => `${folder}/${createHash('sha256').update(key).digest('hex').slice(0, 32)}.json`
  return {
    get: async (key) => fs.readFile(path(key), 'utf8').catch(() => null),
    set: async (key, value) => { await fs.mkdir(folder, { recursive: true }); await fs.writeFile(path(key), value) },
    delete: async (key) => { await fs.rm(path(key), { force: true }) },
  }
}
