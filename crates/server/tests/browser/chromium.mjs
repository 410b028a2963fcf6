// What the browser runners share: the browser tools scripts/test installs (DRAFTSTORE_BROWSER_TOOLS:
// playwright-core, esbuild, @uppy/*), and headless Chromium.
import { createRequire } from 'node:module'
import path from 'node:path'

export const tools = process.env.DRAFTSTORE_BROWSER_TOOLS
if (!tools) throw new Error('DRAFTSTORE_BROWSER_TOOLS is not set: run scripts/test, which installs the browser tools')

/** `require` of the browser tools. */
export const requireTool = createRequire(path.join(tools, 'package.json'))

/** Debian's headless Chromium (or CHROMIUM), driven by playwright-core. */
export function launch() {
  return requireTool('playwright-core').chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
}
