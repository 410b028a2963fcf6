// A page of an application on another origin, uploading to DraftStore's resumable endpoint with the unmodified
// @uppy/tus, as docs/resumable.md shows. Bundled by the test runner with esbuild.
import Uppy from '@uppy/core'
import Tus from '@uppy/tus'

// The same bytes as the Rust tests' generator: byte i of a file is (i * 31 + seed) % 251.
function bytes(size, seed) {
  const data = new Uint8Array(size)
  for (let i = 0; i < size; i++) data[i] = (i * 31 + seed) % 251
  return data
}

window.uploadWithTus = async (DRAFTSTORE, token, files) => {
  const uppy = new Uppy()
  // Several PATCHes for the larger files.
  uppy.use(Tus, { endpoint: DRAFTSTORE + '/files/', headers: { Authorization: 'Bearer ' + token }, chunkSize: 5 << 20 })
  // The draft's name, which DraftStore sends on every response of an upload, is what the application confirms.
  const names = {}
  uppy.on('upload-success', (file, response) => {
    const name = response.body.xhr.getResponseHeader('DraftStore-Object-Name')
    names[file.id] = name == null ? null : decodeURIComponent(name)
  })
  for (const file of files) {
    const data = new Blob([bytes(file.size, file.seed)], { type: file.type })
    const meta = file.objectName ? { object_name: file.objectName } : {}
    uppy.addFile({ name: file.name, type: file.type, data, meta })
  }
  const result = await uppy.upload()
  return {
    successful: result.successful.map((f) => ({ name: f.name, objectName: names[f.id], url: f.response.uploadURL })),
    failed: result.failed.map((f) => ({ name: f.name, error: String(f.error) })),
  }
}
