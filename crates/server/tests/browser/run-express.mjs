// Drives the Express example (examples/express) in headless Chromium: fill the title, pick two files, publish, and
// print what the page said as JSON. Usage: node run-express.mjs <example URL> <scratch folder>
import fs from 'node:fs'
import path from 'node:path'

import { launch } from './chromium.mjs'

const [example, scratch] = process.argv.slice(2)

const notes = path.join(scratch, 'notes.txt')
fs.writeFileSync(notes, 'notes of the post\n')
const table = path.join(scratch, 'table.csv')
fs.writeFileSync(table, 'a,b\n1,2\n')

const browser = await launch()
try {
  const page = await browser.newPage()
  const errors = []
  page.on('pageerror', (error) => errors.push(String(error)))
  await page.goto(example + '/')
  await page.getByLabel('Title').fill('A post with two attachments')
  await page.setInputFiles('input[name=files]', [notes, table])
  await page.getByRole('button', { name: 'Publish' }).click()
  await page.waitForFunction(() => /^(Published|Not)/.test(document.getElementById('status').textContent), null,
    { timeout: 60000 })
  const status = await page.locator('#status').textContent()
  const post = await page.locator('#status').getAttribute('data-post')
  console.log(JSON.stringify({ status, post, errors }))
} finally {
  await browser.close()
}
