"""Remote members defined outside any plugin, for tests of ``plugin += Cat`` and ``+= purr``."""

from __future__ import annotations

from gofer.decorators import remote


class Cat:
    @remote
    def meow(self) -> str:
        return "meow"


@remote
def purr(times: int) -> str:
    return "purr " * times
