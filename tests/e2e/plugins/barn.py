"""A plugin without a queue: its API is reached through farm's queue by forwarding."""

from gofer.decorators import remote


class Barn:
    @remote
    def doors(self):
        return "open"
