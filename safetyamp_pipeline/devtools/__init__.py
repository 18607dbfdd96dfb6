"""Developer entry points behind the make targets (``make sync``, ``make dev``)."""
