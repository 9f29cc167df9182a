"""The manifest on disk: hostile files, locks, strict YAML, the history folder, landings, kept
reads and the one transaction."""
