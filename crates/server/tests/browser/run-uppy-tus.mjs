// Runs the @uppy/tus page in headless Chromium against a DraftStore server and prints what happened as JSON.
// Usage: node run-uppy-tus.mjs <DraftStore URL> <API key> <page port> <files JSON>
// The tools (playwright-core, esbuild, @uppy/*) come from DRAFTSTORE_BROWSER_TOOLS (scripts/test installs them).
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { launch, requireTool, tools } from './chromium.mjs'

const [draftstore, token, port, filesJson] = process.argv.slice(2)
const esbuild = requireTool('esbuild')

const here = path.dirname(fileURLToPath(import.meta.url))
const bundle = esbuild.buildSync({
  entryPoints: [path.join(here, 'uppy-tus-entry.js')], bundle: true, format: 'iife', write: false,
  nodePaths: [path.join(tools, 'node_modules')], logLevel: 'error',
}).outputFiles[0].text
const page = `<!doctype html><meta charset="utf-8"><title>app</title><script>${bundle}</script>`

const server = http.createServer((req, res) => { res.setHeader('Content-Type', 'text/html'); res.end(page) })
await new Promise((resolve) => server.listen(Number(port), '127.0.0.1', resolve))
const browser = await launch()
try {
  const app = await (await browser.newContext()).newPage()
  const log = []
  app.on('console', (message) => log.push(message.text()))
  await app.goto(`http://127.0.0.1:${port}/`)
  const uploads = await app.evaluate(([url, key, files]) => window.uploadWithTus(url, key, files),
    [draftstore, token, JSON.parse(filesJson)])
  console.log(JSON.stringify({ uploads, log }))
} finally {
  await browser.close()
  server.close()
}
