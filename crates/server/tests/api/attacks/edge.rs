//! At the edge: labels, defaults, authentication and rate limits, before a request reaches its handler.
