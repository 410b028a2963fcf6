// The Express example (examples/express) as a person uses it, in headless Chromium: the page uploads two files with
// Uppy through the TypeScript preset, publishing confirms both into the post, and DraftStore holds them; then, with
// DraftStore stopped, the page says that it cannot be reached.
// Usage (by scripts/run-docs, on the block of the example's README): node run-express.mjs <page URL> <scratch folder>
import { publishesAndSaysWhenDown } from './example.mjs'

const [url, scratch] = process.argv.slice(2)
await publishesAndSaysWhenDown(url, scratch, /^Not published: notes\.txt: .*cannot reach DraftStore at /)
