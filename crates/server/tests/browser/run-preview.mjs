// Opens preview URLs in headless Chromium as a person following a link would, each in a page of its own, and says
// for each whether the browser rendered it (and ran its script) or downloaded it. Prints what happened as JSON.
// Usage: node run-preview.mjs <URLs JSON>
import { launch } from './chromium.mjs'

const urls = JSON.parse(process.argv[2])
const settle = (ms) => new Promise((resolve) => setTimeout(() => resolve(null), ms))
const browser = await launch()
try {
  const context = await browser.newContext({ acceptDownloads: true })
  const results = []
  for (const url of urls) {
    const page = await context.newPage()
    const logged = []
    page.on('console', (message) => logged.push(message.text()))
    const downloaded = page.waitForEvent('download', { timeout: 15000 }).then((d) => d.suggestedFilename(), () => null)
    let navigation = null
    try {
      const response = await page.goto(url, { waitUntil: 'load', timeout: 15000 })
      navigation = response ? { status: response.status(), type: response.headers()['content-type'] || null } : null
    } catch (error) {
      // A download aborts the navigation: the page stays blank.
      navigation = { error: String(error).split('\n')[0] }
    }
    // A navigation the browser turned into a download fails; one it rendered loads, and no download follows it.
    const download = navigation?.error ? await downloaded : await Promise.race([downloaded, settle(500)])
    // Whatever the page holds now: a rendered document, or nothing when the browser saved the response instead.
    const rendered = await page.evaluate(() => ({
      url: location.href,
      title: document.title,
      scriptRan: Boolean(window.previewScriptRan),
      text: document.body ? document.body.innerText.slice(0, 200) : '',
    }))
    results.push({ url, navigation, download, rendered, console: logged })
    await page.close()
  }
  process.stdout.write(JSON.stringify(results) + '\n')
} finally {
  await browser.close()
}
