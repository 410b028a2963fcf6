//! Limits, previews and the hook: multipart parts within the size limit, previews that cannot run script, a hook
//! that fails safe, no panic from a request.
