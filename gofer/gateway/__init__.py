"""gofer-gateway: calls to agents for callers that speak HTTP rather than AMQP.

::

    gofer-gateway --config /etc/gofer/gateway.conf

The modules, from the bottom up: :mod:`~gofer.gateway.config` (the INI file,
parsed once), :mod:`~gofer.gateway.store` (calls and their events in
sqlite, kept across restarts), :mod:`~gofer.gateway.collector` (the thread
reading the gateway's durable reply queue into the store),
:mod:`~gofer.gateway.broker` (sending requests and cancels, fan-out),
:mod:`~gofer.gateway.security` (bearer tokens, HTTP Basic, allow-lists),
:mod:`~gofer.gateway.checks` (what callers send, checked),
:mod:`~gofer.gateway.events` (waiting for a call's events; Server-Sent
Events), :mod:`~gofer.gateway.fanout` (streaming a fan-out's outcomes),
:mod:`~gofer.gateway.api` (the routes of API v1),
:mod:`~gofer.gateway.figures` (``/stats`` and ``/metrics``),
:mod:`~gofer.gateway.openapi` (the OpenAPI document) and
:mod:`~gofer.gateway.service` (the application put together, and run).
It sits beside :mod:`gofer.cli` on :mod:`gofer.rmi`; it never imports the agent.
"""
