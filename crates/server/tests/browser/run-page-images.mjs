// Drives DraftStore's built-in page in headless Chromium with images: two PNGs that Chromium's own encoder makes (one
// named with HTML that would run a script if the page parsed it) and a note, uploaded and confirmed through the
// page. The store's answers for the thumbnails are held back until the page has been looked at, so that what it
// paints before they load is seen; then they are let through. Prints what it saw as JSON.
// Usage: node run-page-images.mjs <DraftStore URL> <API key> <scratch folder>
import fs from 'node:fs'
import path from 'node:path'

import { launch } from './chromium.mjs'

const [draftstore, token, scratch] = process.argv.slice(2)
const hostile = '<img src=x onerror=window.injected=1>.png'
const images = { 'photo.png': [320, 200], [hostile]: [150, 240] }

const browser = await launch()
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  const errors = []
  page.on('pageerror', (error) => errors.push(String(error)))
  page.on('dialog', (dialog) => { errors.push('a dialog opened: ' + dialog.message()); dialog.dismiss() })
  // What the page's Content-Security-Policy refused, images included (they raise no page error).
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      document.documentElement.dataset.violations =
        (document.documentElement.dataset.violations || '') + `${event.violatedDirective} ${event.blockedURI};`
    })
  })
  // A thumbnail's bytes wait here until the page has been looked at.
  const held = []
  let holding = true
  await page.route((url) => url.pathname.endsWith('/v/thumb'), (route) => (holding ? held.push(route) : route.continue()))

  await page.goto(draftstore + '/')
  // Real PNGs, as Chromium encodes a canvas: a gradient with a disc, so that no two corners are alike.
  const files = []
  for (const [name, [width, height]] of Object.entries(images)) {
    const encoded = await page.evaluate(([width, height]) => {
      const canvas = document.createElement('canvas')
      canvas.width = width
      canvas.height = height
      const context = canvas.getContext('2d')
      const gradient = context.createLinearGradient(0, 0, width, height)
      gradient.addColorStop(0, '#d93025')
      gradient.addColorStop(1, '#1a73e8')
      context.fillStyle = gradient
      context.fillRect(0, 0, width, height)
      context.fillStyle = '#fbbc04'
      context.beginPath()
      context.arc(width / 3, height / 3, Math.min(width, height) / 4, 0, 2 * Math.PI)
      context.fill()
      return canvas.toDataURL('image/png').split(',')[1]
    }, [width, height])
    const file = path.join(scratch, name)
    fs.writeFileSync(file, Buffer.from(encoded, 'base64'))
    files.push(file)
  }
  const notes = path.join(scratch, 'notes.txt')
  fs.writeFileSync(notes, 'not an image\n')
  files.push(notes)

  await page.getByLabel('API key or token').fill(token)
  await page.getByRole('button', { name: 'Use it' }).click()
  await page.locator('#upload').waitFor({ state: 'visible' })
  await page.setInputFiles('#files', files)
  await page.waitForFunction((count) => document.querySelectorAll('#progress li[data-state="done"]').length === count,
    files.length, { timeout: 60000 })
  const confirmed = []
  for (const name of [...Object.keys(images), 'notes.txt']) {
    await page.getByRole('button', { name: `Confirm ${name}`, exact: true }).click()
    await page.waitForFunction((name) => document.getElementById('drafts-status').textContent.startsWith(name + ' '),
      name)
    confirmed.push(await page.locator('#drafts-status').textContent())
    await page.locator(`#draft-rows tr[data-name=${JSON.stringify(name)}]`).waitFor({ state: 'detached' })
  }
  await page.locator('#object-rows tr[data-name="notes.txt"]').waitFor()
  await page.waitForFunction(() => document.querySelectorAll('#object-rows img.thumb[src]').length === 2)
    .catch(async (error) => {
      const rows = await page.$$eval('#object-rows tr', (rows) => rows.map((tr) => tr.innerHTML))
      throw new Error(`the two thumbnails did not come (${error.message}); the confirmed rows: ${rows.join('\n')}`)
    })
  // The names hold no quote nor backslash: as JSON strings they are CSS strings too.
  const row = (name) => page.locator(`#object-rows tr[data-name=${JSON.stringify(name)}]`)
  // Each thumbnail as it is before its bytes came: its URL is set, its placeholder painted behind it.
  const described = (img) => ({
    src: img.getAttribute('src'), state: img.dataset.state, complete: img.complete, alt: img.alt,
    naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight, width: img.width, height: img.height,
    background: getComputedStyle(img).backgroundImage,
  })
  const before = {}
  for (const name of Object.keys(images)) before[name] = await row(name).locator('img.thumb').evaluate(described)
  // The placeholder's data URL decodes into an image under the page's own policy.
  const placeholders = {}
  for (const name of Object.keys(images)) {
    placeholders[name] = await row(name).locator('img.thumb').evaluate(async (img) => {
      const url = getComputedStyle(img).backgroundImage.match(/^url\("(data:image\/png;base64,[^"]+)"\)$/)
      if (!url) return null
      const probe = new Image()
      probe.src = url[1]
      await probe.decode()
      return { width: probe.naturalWidth, height: probe.naturalHeight }
    })
  }
  const heldCount = held.length
  holding = false
  // Those of rows drawn again since were cancelled with their image: nothing to let through.
  for (const route of held) await route.continue().catch(() => {})
  await page.waitForFunction(() => [...document.querySelectorAll('#object-rows img.thumb')]
    .every((img) => img.dataset.state === 'loaded'), null, { timeout: 30000 })
  await page.screenshot({ path: path.join(scratch, 'images.png'), fullPage: true })
  const after = {}
  for (const name of Object.keys(images)) after[name] = await row(name).locator('img.thumb').evaluate(described)
  const cells = {}
  for (const name of [...Object.keys(images), 'notes.txt']) {
    cells[name] = await row(name).evaluate((tr) => ({
      texts: [...tr.cells].slice(0, 4).map((td) => td.textContent),
      images: tr.querySelectorAll('img').length,
    }))
  }
  const injected = await page.evaluate(() => ({
    ran: 'injected' in window,
    strayImages: document.querySelectorAll('img:not(.thumb)').length,
  }))
  const violations = await page.evaluate(() => document.documentElement.dataset.violations || '')
  console.log(JSON.stringify({ errors, confirmed, heldCount, before, placeholders, after, cells, injected, violations }))
} finally {
  await browser.close()
}
