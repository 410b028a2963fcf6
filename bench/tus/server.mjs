// The tus protocol's official Node server with its S3 store, pointed at the benchmark's SeaweedFS: the baseline of
// bench/bench.py's end-to-end section. Prints "listening <port>" once it accepts uploads.
// Usage: node server.mjs <S3 endpoint> <bucket>   (credentials in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
import { createRequire } from 'node:module'
import path from 'node:path'

const [endpoint, bucket] = process.argv.slice(2)
const tools = process.env.DRAFTSTORE_TUS_TOOLS
if (!tools) throw new Error('DRAFTSTORE_TUS_TOOLS is not set: run bench/run, which installs the tus tools')
const require = createRequire(path.join(tools, 'package.json'))
const { Server } = require('@tus/server')
const { S3Store } = require('@tus/s3-store')

const datastore = new S3Store({
  partSize: 8 * 1024 * 1024,
  s3ClientConfig: {
    bucket,
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID,
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
    },
  },
})
const server = new Server({ path: '/files', datastore })
const listener = server.listen({ host: '127.0.0.1', port: 0 }, () => {
  console.log(`listening ${listener.address().port}`)
})
