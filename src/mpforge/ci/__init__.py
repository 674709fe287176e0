"""CI: the pipeline that builds, tests and reports, and the provider files that run it."""
