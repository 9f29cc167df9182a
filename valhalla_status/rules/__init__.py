"""The values of a manifest and their rules: formats, a change typed, the history replayed."""
