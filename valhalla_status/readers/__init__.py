"""What reads a published site or two manifests: `check`, verified reads, `serve`, `diff`."""
