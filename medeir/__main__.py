"""``python -m medeir``: the same as the ``medeir`` command."""

from .cli import app

app(prog_name="medeir")
