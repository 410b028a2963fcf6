// The Express example (examples/express) as a person uses it, in headless Chromium: the page uploads two files with
// Uppy through the TypeScript preset, publishing confirms both into the post, and DraftStore holds them; then, with
// DraftStore stopped, the page says that it cannot be reached.
// Usage (by scripts/run-docs, on the block of the example's README): node run-express.mjs <page URL> <scratch folder>
import assert from 'node:assert/strict'

import { attachments, checkPublished, publish, stopDraftStore } from './example.mjs'

const [url, scratch] = process.argv.slice(2)
const files = attachments(scratch)
const names = Object.keys(files)

const title = 'A post with two attachments'
const published = await publish(url, scratch, title, names)
console.log(JSON.stringify(published))
assert.deepEqual(published.errors, [], 'the page threw')
assert.match(published.status, /^Published /, 'the post was not published')
assert.equal(published.status, `Published ${names.map((name) => `${published.post}/${name}`).join(', ')}`)
await checkPublished(published.post, files, title)

await stopDraftStore()
const refused = await publish(url, scratch, 'Another post', names)
console.log(JSON.stringify(refused))
assert.deepEqual(refused.errors, [], 'the page threw')
assert.match(refused.status, /^Not published: notes\.txt: .*cannot reach DraftStore at /)
