"""The `mixlake` command line: a thin layer over the curation, queries, training and evals packages."""
