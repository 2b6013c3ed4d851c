"""Batches of files: planning the jobs (:mod:`.jobs`), running them in a threaded pipeline
(:mod:`.pipeline`) or on a Dask cluster (:mod:`.cluster`). No command line here."""
