//! Slow clients and the local store: no client holds the store, its threads or its listing.
