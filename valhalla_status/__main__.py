"""``python -m valhalla_status``."""

from .cli import main

main(prog_name="valhalla-status")
