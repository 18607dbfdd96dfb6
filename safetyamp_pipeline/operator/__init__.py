"""Logic of the operator command line ``safetyamp-pipeline`` (explain, failures, ledger)."""
