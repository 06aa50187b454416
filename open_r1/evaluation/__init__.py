"""Benchmark drivers for base and trained Janus-Pro checkpoints, and checkpoint export.

One module per benchmark (`geneval`, `wise` write images for the official scorers; `mmmu`, `mmstar`, `mme`,
`pope` answer and score questions), `common` for what they share (model loading, resumable outputs, batched
runners, answer parsing), `export` for training outputs -> loadable folders, `compare` for the results table.
Every driver uses the same `janus` templates, CFG weight and seeds, so base and trained runs differ only in weights.
"""
