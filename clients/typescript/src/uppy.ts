// The Uppy preset: `signRequest` for `@uppy/aws-s3`, so that Uppy uploads straight to the store with DraftStore
// signing every request (single PUTs and multipart uploads alike).
//
//   import AwsS3 from '@uppy/aws-s3'
//   import { signRequest } from '@draftstore/client/uppy'
//   uppy.use(AwsS3, { signRequest: signRequest(new DraftStore(url, { token })) })

import type { DraftStore, Schemas } from './index.js'

/** Uppy's `signRequest` option, signing through DraftStore's `/api/v1/uppy/sign`. */
export function signRequest(client: DraftStore): (request: Schemas['UppySignRequest']) => Promise<Schemas['UppySignResponse']> {
  return (request) => client.uppySign(request)
}
