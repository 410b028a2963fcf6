"""The benchmark sections, one module each: `measure(opts, weed)` returns its results, `markdown(results)` its text."""
