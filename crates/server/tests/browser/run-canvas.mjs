// Draws the image tests' scene on a canvas in headless Chromium (a gradient with a white square in its top-left
// corner) and exports it with the browser's own encoders, as a page does before an upload. Prints
// {"image/png": base64, "image/jpeg": …, "image/webp": …} as JSON.
// Usage: node run-canvas.mjs <width> <height> <side of the square>
import { launch } from './chromium.mjs'

const [width, height, mark] = process.argv.slice(2).map(Number)
const browser = await launch()
try {
  const page = await browser.newPage()
  const encoded = await page.evaluate(({ width, height, mark }) => {
    const canvas = document.createElement('canvas')
    canvas.width = width
    canvas.height = height
    const context = canvas.getContext('2d')
    const gradient = context.createLinearGradient(0, 0, 0, height)
    gradient.addColorStop(0, '#d02020')
    gradient.addColorStop(1, '#2020d0')
    context.fillStyle = gradient
    context.fillRect(0, 0, width, height)
    context.fillStyle = '#ffffff'
    context.fillRect(0, 0, mark, mark)
    const out = {}
    for (const [type, quality] of [['image/png'], ['image/jpeg', 0.9], ['image/webp', 0.9]]) {
      out[type] = canvas.toDataURL(type, quality).split(',')[1]
    }
    return out
  }, { width, height, mark })
  process.stdout.write(JSON.stringify(encoded) + '\n')
} finally {
  await browser.close()
}
