// The page's script: files go with Uppy straight to the store, each signed through this app (DraftStore's Uppy
// preset, pointed at the app's signing route); on submit, the app confirms them all together.
import AwsS3 from '@uppy/aws-s3'
import Uppy from '@uppy/core'
import { DraftStore } from '@draftstore/client'
import { signRequest } from '@draftstore/client/uppy'

const formId = crypto.randomUUID()
const uppy = new Uppy().use(AwsS3, {
  signRequest: signRequest(new DraftStore(`${location.origin}/draftstore`)),
  generateObjectKey: (file) => `incoming/${crypto.randomUUID()}-${file.name}`,
})

document.getElementById('post').addEventListener('submit', async (event) => {
  event.preventDefault()
  const status = document.getElementById('status')
  try {
    status.textContent = await publish(new FormData(event.target))
  } catch (error) {
    status.textContent = `Not published: ${error.message}`
  }
})

// Uploads the form's files and publishes the post; what to tell the user.
async function publish(data) {
  uppy.cancelAll() // the files of an earlier attempt
  for (const file of data.getAll('files')) uppy.addFile({ name: file.name, type: file.type, data: file })
  document.getElementById('status').textContent = 'Uploading…'
  const result = await uppy.upload()
  if (result.failed.length) {
    return `Not published: ${result.failed.map((f) => `${f.name}: ${f.error}`).join('; ')}`
  }
  const attachments = result.successful.map((f) => ({ key: f.response.body.key, filename: f.name }))
  const answer = await fetch('/posts', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ form_id: formId, title: data.get('title'), attachments }) })
  const body = await answer.json()
  if (!answer.ok) return `Not published: ${body.error_message}`
  document.getElementById('status').dataset.post = body.post
  return `Published ${body.attachments.join(', ')}`
}
