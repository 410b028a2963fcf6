// Runs the Uppy page in headless Chromium against a DraftStore server and prints what happened as JSON.
// Usage: node run-uppy.mjs <DraftStore URL> <API key> <allowed page port> <other page port> <files JSON>
// The tools (playwright-core, esbuild, @uppy/*) come from DRAFTSTORE_BROWSER_TOOLS (scripts/test installs them).
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { launch, requireTool, tools } from './chromium.mjs'

const [draftstore, token, allowedPort, otherPort, filesJson] = process.argv.slice(2)
const esbuild = requireTool('esbuild')

const here = path.dirname(fileURLToPath(import.meta.url))
const bundle = esbuild.buildSync({
  entryPoints: [path.join(here, 'uppy-entry.js')], bundle: true, format: 'iife', write: false,
  nodePaths: [path.join(tools, 'node_modules')], logLevel: 'error',
}).outputFiles[0].text
const page = `<!doctype html><meta charset="utf-8"><title>app</title><script>${bundle}</script>`

function serve(port) {
  const server = http.createServer((req, res) => { res.setHeader('Content-Type', 'text/html'); res.end(page) })
  return new Promise((resolve) => server.listen(Number(port), '127.0.0.1', () => resolve(server)))
}

const servers = [await serve(allowedPort), await serve(otherPort)]
const browser = await launch()
try {
  const context = await browser.newContext()
  const app = await context.newPage()
  const log = []
  app.on('console', (message) => log.push(message.text()))
  await app.goto(`http://127.0.0.1:${allowedPort}/`)
  const uploads = await app.evaluate(([url, key, files]) => window.uploadWithUppy(url, key, files),
    [draftstore, token, JSON.parse(filesJson)])
  const other = await context.newPage()
  await other.goto(`http://127.0.0.1:${otherPort}/`)
  const blocked = await other.evaluate(([url, key]) => window.callFromHere(url, key), [draftstore, token])
  console.log(JSON.stringify({ uploads, blocked, log }))
} finally {
  await browser.close()
  for (const server of servers) server.close()
}
