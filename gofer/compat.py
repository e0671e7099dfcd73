"""``from gofer.compat import json``: the JSON module the old gofer exported to plugins."""

import json

__all__ = ["json"]
