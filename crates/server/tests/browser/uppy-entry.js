// A page of an application on another origin, using the unmodified @uppy/aws-s3 with DraftStore's signRequest
// snippet from the README. Bundled by the test runner with esbuild.
import Uppy from '@uppy/core'
import AwsS3 from '@uppy/aws-s3'

// The same bytes as the Rust tests' generator: byte i of a file is (i * 31 + seed) % 251.
function bytes(size, seed) {
  const data = new Uint8Array(size)
  for (let i = 0; i < size; i++) data[i] = (i * 31 + seed) % 251
  return data
}

window.uploadWithUppy = async (DRAFTSTORE, token, files) => {
  const uppy = new Uppy()
  uppy.use(AwsS3, {
    // Multipart for the larger files, so that the test sees both kinds (Uppy's default is above 100 MiB).
    shouldUseMultipart: (file) => file.size > 10 * 1024 * 1024,
    signRequest: (request) => fetch(DRAFTSTORE + '/api/v1/uppy/sign', {
      method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + token },
      body: JSON.stringify(request) }).then((r) => r.json()),
  })
  for (const file of files) {
    uppy.addFile({ name: file.name, type: file.type, data: new Blob([bytes(file.size, file.seed)], { type: file.type }) })
  }
  const result = await uppy.upload()
  return {
    successful: result.successful.map((f) => ({ name: f.name, key: f.response.body.key, size: f.size })),
    failed: result.failed.map((f) => ({ name: f.name, error: String(f.error) })),
  }
}

// A call from an origin DraftStore does not allow: the browser must block it.
window.callFromHere = async (DRAFTSTORE, token) => {
  try {
    await fetch(DRAFTSTORE + '/api/v1/uppy/sign', {
      method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + token },
      body: JSON.stringify({ method: 'PUT', key: 'blocked.txt' }) })
    return 'allowed'
  } catch (error) {
    return 'blocked: ' + String(error)
  }
}
