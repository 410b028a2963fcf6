// What the example drivers share (run-fastapi.mjs, run-express.mjs): a person's use of an example's form in
// headless Chromium, a check through DraftStore's own API of what it published, and DraftStore stopped. They are run
// by scripts/run-docs on the block of the example's README, once the page it opens answers: DRAFTSTORE_URL is the
// DraftStore that block started, DOCS_STATE/servers lists the servers the runner started for it.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'

import { launch } from './chromium.mjs'

/** The two attachments a post is published with, written under `scratch`. */
export function attachments(scratch) {
  const files = { 'notes.txt': 'notes of the post\n', 'table.csv': 'a,b\n1,2\n' }
  for (const [name, body] of Object.entries(files)) fs.writeFileSync(path.join(scratch, name), body)
  return files
}

/** Opens the page, fills the title, picks the files and clicks Publish, as a person does; returns what the page said
 * once it said whether the post was published, and the errors the page threw. */
export async function publish(url, scratch, title, names) {
  const browser = await launch()
  try {
    const page = await browser.newPage()
    const errors = []
    page.on('pageerror', (error) => errors.push(String(error)))
    await page.goto(url)
    await page.getByLabel('Title').fill(title)
    await page.setInputFiles('input[name=files]', names.map((name) => path.join(scratch, name)))
    await page.getByRole('button', { name: 'Publish' }).click()
    // A bound against hanging, not a measure: the page must say something, whatever happened.
    await page.waitForFunction(() => /^(Published|Not )/.test(document.getElementById('status').textContent), null,
      { timeout: 120_000 })
      .catch(async () => {
        throw new Error(`the page never said whether it published; it says: ${await page.locator('#status').textContent()}`)
      })
    return {
      status: await page.locator('#status').textContent(),
      post: await page.locator('#status').getAttribute('data-post'),
      errors,
    }
  } finally {
    await browser.close()
  }
}

async function api(route, body) {
  const answer = await fetch(`${process.env.DRAFTSTORE_URL}/api/v1/${route}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  })
  const json = await answer.json()
  assert.ok(answer.ok, `${route}: ${JSON.stringify(json)}`)
  return json
}

/** What DraftStore holds after a post was published: each file confirmed with its bytes and the post's title as
 * metadata, and no draft left under incoming/. */
export async function checkPublished(post, files, title) {
  assert.match(post ?? '', /^posts\/[A-Za-z0-9_-]+$/, 'the page names the post')
  for (const [name, body] of Object.entries(files)) {
    const object = `${post}/${name}`
    const { download_url: url } = await api('download-url', { object_name: object, stage: 'main' })
    assert.equal(await (await fetch(url)).text(), body, `${object}'s bytes`)
    const stat = await api('stat-object', { object_name: object })
    assert.deepEqual(stat.metadata, { 'post-title': title }, `${object}'s metadata`)
  }
  const { drafts } = await api('list-drafts', { prefix: 'incoming/' })
  assert.deepEqual(drafts, [], 'the drafts were confirmed')
}

/** Stops the DraftStore servers the doc runner started for this block, and waits until DraftStore answers no more. */
export async function stopDraftStore() {
  const servers = fs.readFileSync(path.join(process.env.DOCS_STATE, 'servers'), 'utf8').trim().split('\n')
  for (const line of servers) {
    try {
      process.kill(Number(line.split(' ')[0]), 'SIGTERM')
    } catch { /* already stopped */ }
  }
  for (;;) {
    const down = await fetch(`${process.env.DRAFTSTORE_URL}/health`).then(() => false, () => true)
    if (down) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * The whole check of an example, run by each example's script: a post with two attachments is published through the
 * page and DraftStore holds them; then, with DraftStore stopped, publishing again shows `refused` on the page.
 */
export async function publishesAndSaysWhenDown(url, scratch, refused) {
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
  const after = await publish(url, scratch, 'Another post', names)
  console.log(JSON.stringify(after))
  assert.deepEqual(after.errors, [], 'the page threw')
  assert.match(after.status, refused)
}
