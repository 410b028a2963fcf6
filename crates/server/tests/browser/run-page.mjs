// Drives DraftStore's built-in page in headless Chromium. On a phone-sized screen: sign in, upload a small image, a
// multipart-sized file and a program named as an image, preview the image, confirm it, confirm the program
// (refused), discard the big file. On a desktop-sized screen: upload a PDF and a note, check that names, sizes and
// dates keep to one line, page through the confirmed objects, confirm the note under another name, download it by
// its file name and delete it. Prints what it saw as JSON.
// Usage: node run-page.mjs <DraftStore URL> <API key> <scratch folder>
import fs from 'node:fs'
import path from 'node:path'

import { launch } from './chromium.mjs'

const [draftstore, token, scratch] = process.argv.slice(2)

// A 1×1 PNG, and 20 MiB of the tests' generator bytes (byte i is (i × 31 + 5) mod 251).
const pixel = path.join(scratch, 'pixel.png')
fs.writeFileSync(pixel, Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64'))
const big = path.join(scratch, 'big.bin')
const bytes = Buffer.alloc(20 * 1024 * 1024)
for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 5) % 251
fs.writeFileSync(big, bytes)
// A Windows program's first bytes, named as a PNG: the browser declares it image/png.
const fake = path.join(scratch, 'fake.png')
const program = Buffer.alloc(512)
program.write('MZ', 0)
program[0x3c] = 0x80
program.write('PE\0\0', 0x80, 'latin1')
fs.writeFileSync(fake, program)
// A 19.5 KiB PDF in a folder (its name and size once broke mid-word), and a note to confirm under another name.
const docs = path.join(scratch, 'docs')
fs.mkdirSync(docs, { recursive: true })
const report = path.join(docs, 'report.pdf')
fs.writeFileSync(report, Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(19968 - 9, 0x20)]))
const notes = path.join(scratch, 'notes.txt')
fs.writeFileSync(notes, 'notes to keep\n')

// Signs a page in and waits for the drafts and the confirmed objects.
async function signIn(page) {
  await page.goto(draftstore + '/')
  await page.getByLabel('API key or token').fill(token)
  await page.getByRole('button', { name: 'Use it' }).click()
  await page.locator('#upload').waitFor({ state: 'visible' })
}

// How many lines each cell's text takes, but the actions', in the rows matching `selector`.
function lines(page, selector) {
  return page.$$eval(selector + ' td:not(:last-child)', (cells) => cells.map((td) => {
    const range = document.createRange()
    range.selectNodeContents(td)
    return range.getClientRects().length
  }))
}

const browser = await launch()
try {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } })
  const errors = []
  page.on('pageerror', (error) => errors.push(String(error)))
  await signIn(page)
  await page.setInputFiles('#files', [pixel, big, fake])
  await page.waitForFunction(() => document.querySelectorAll('#progress li[data-state]').length === 3, null,
    { timeout: 120000 })
  const uploads = await page.$$eval('#progress li', (items) => items.map((li) => ({
    text: li.textContent, state: li.dataset.state,
    value: li.querySelector('progress').value, max: li.querySelector('progress').max,
    updates: Number(li.querySelector('progress').dataset.updates),
  })))
  const failed = uploads.filter((upload) => upload.state !== 'done')
  if (failed.length) throw new Error('uploads failed: ' + JSON.stringify(failed) + ' ' + JSON.stringify(errors))
  await page.locator('tr[data-name="big.bin"]').waitFor()
  await page.getByRole('button', { name: 'Preview pixel.png' }).click()
  const width = await page.waitForFunction(() => {
    const img = document.querySelector('#preview img')
    return img && img.complete && img.naturalWidth
  }, null, { timeout: 30000 })
  await page.screenshot({ path: path.join(scratch, 'page.png'), fullPage: true })
  await page.getByRole('button', { name: 'Confirm pixel.png' }).click()
  await page.waitForFunction(() => document.getElementById('drafts-status').textContent.includes('confirmed'))
  await page.locator('tr[data-name="pixel.png"]').waitFor({ state: 'detached' })
  const confirmed = await page.locator('#drafts-status').textContent()
  await page.getByRole('button', { name: 'Confirm fake.png' }).click()
  await page.waitForFunction(() => document.getElementById('drafts-status').textContent.startsWith('fake.png:'))
  await page.locator('tr[data-name="fake.png"]').waitFor({ state: 'detached' })
  const refused = await page.locator('#drafts-status').textContent()
  await page.getByRole('button', { name: 'Discard big.bin' }).click()
  await page.waitForFunction(() => document.getElementById('drafts-status').textContent.includes('discarded'))
  await page.locator('tr[data-name="big.bin"]').waitFor({ state: 'detached' })
  const left = await page.$$eval('#draft-rows tr', (rows) => rows.map((row) => row.dataset.name))

  const desktop = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true })
  desktop.on('pageerror', (error) => errors.push(String(error)))
  desktop.on('dialog', (dialog) => dialog.accept())
  await signIn(desktop)
  await desktop.locator('#object-rows tr').first().waitFor()
  const firstPage = await desktop.locator('#object-rows tr').count()
  await desktop.getByRole('button', { name: 'Show more' }).click()
  await desktop.waitForFunction((shown) => document.querySelectorAll('#object-rows tr').length > shown, firstPage)
  const objects = await desktop.$$eval('#object-rows tr', (rows) => rows.map((row) => row.dataset.name))
  const moreHidden = await desktop.locator('#more-objects').isHidden()
  await desktop.getByLabel('Folder (optional').fill('docs/')
  await desktop.setInputFiles('#files', [report])
  await desktop.locator('tr[data-name="docs/report.pdf"]').waitFor()
  await desktop.getByLabel('Folder (optional').fill('')
  await desktop.setInputFiles('#files', [notes])
  await desktop.locator('tr[data-name="notes.txt"]').waitFor()
  const draftLines = await lines(desktop, '#draft-rows tr')
  const objectLines = await lines(desktop, '#object-rows tr')
  await desktop.getByRole('button', { name: 'Confirm under another name: notes.txt' }).click()
  await desktop.getByLabel('Confirm notes.txt as').fill('archive/00-renamed été.txt')
  await desktop.getByRole('button', { name: 'Confirm under this name' }).click()
  await desktop.waitForFunction(() => document.getElementById('drafts-status').textContent.includes(' as '))
  const confirmedAs = await desktop.locator('#drafts-status').textContent()
  await desktop.locator('tr[data-name="archive/00-renamed été.txt"]').waitFor()
  await desktop.screenshot({ path: path.join(scratch, 'desktop.png'), fullPage: true })
  const [saved] = await Promise.all([
    desktop.waitForEvent('download'),
    desktop.getByRole('button', { name: 'Download archive/00-renamed été.txt' }).click(),
  ])
  const downloadedAs = saved.suggestedFilename()
  await saved.saveAs(path.join(scratch, 'downloaded'))
  const downloaded = fs.readFileSync(path.join(scratch, 'downloaded'), 'utf8')
  await desktop.getByRole('button', { name: 'Delete archive/00-renamed été.txt' }).click()
  await desktop.locator('tr[data-name="archive/00-renamed été.txt"]').waitFor({ state: 'detached' })
  const deleted = await desktop.locator('#objects-status').textContent()
  console.log(JSON.stringify({
    uploads, previewWidth: await width.jsonValue(), confirmed, refused, left, errors,
    firstPage, objects, moreHidden, draftLines, objectLines, confirmedAs, downloadedAs, downloaded, deleted,
  }))
} finally {
  await browser.close()
}
