"""The ``proton`` adapter: AMQP 1.0 over python-qpid-proton (Qpid Broker-J, RabbitMQ's plugin, ...).

URL prefix ``proton+`` (or ``amqp-1-0+``). The contract suite passes on
Qpid Broker-J and on RabbitMQ 3.10's ``rabbitmq_amqp1_0`` plugin, with the
differences the brokers force:

- **Management.** AMQP 1.0 has no declare/bind commands. Broker-J's
  ``$management`` node does everything (queues, exchanges, bindings,
  purge). RabbitMQ's plugin can only declare a queue (by attaching to
  ``/queue/NAME``; never exclusive, auto-delete or expiring) and tell
  whether one exists; deleting and purging queues, creating and deleting
  exchanges, binding and unbinding raise :class:`UnsupportedError`.
- **Missing and unroutable.** Broker-J refuses a link to a missing queue
  (``amqp:not-found``) and detaches links of a deleted one. RabbitMQ drops a
  message sent to a missing queue silently, so a send to a queue first checks
  that it exists (a receiver attach without credit, overlapped with the send;
  a queue seen within the last second is not checked again). Unroutable
  messages: exchanges declared here on Broker-J refuse them (``NotFoundError``);
  Broker-J's ``amq.*`` exchanges and every RabbitMQ exchange drop them.
- **Deleted queues.** A Broker-J reader learns of it (``NotFoundError``); a
  RabbitMQ reader does not.
- **Outcomes.** ack = ``accepted``, reject = ``rejected``, requeue =
  ``released`` (never ``modified``: it ends the session on RabbitMQ, and
  Broker-J counts it towards ``maximumDeliveryAttempts``). A requeued message
  comes back ``redelivered`` on RabbitMQ only: Broker-J marks redeliveries by
  ``delivery-count`` alone, which a release does not raise.
- **Reply queues** (the optional ``contract.ReplyQueues``): a subscription to
  ``amq.direct`` with the queue's name as key, on both brokers; the queue goes
  with its link, and the address ``amq.direct/NAME`` stays across reconnects.
  Neither broker can expire an ordinary queue over AMQP 1.0.
- **Heartbeats.** The idle time-out is twice ``heartbeat`` (proton advertises
  half of it), so the broker speaks at least every ``heartbeat`` seconds.
- **Logins.** PLAIN when the URL has a user (ANONYMOUS otherwise). RabbitMQ
  answers a wrong password after 3 s (SASL outcome ``auth``, seen as
  ``amqp:unauthorized-access``); the connect waits up to 5 s beyond its
  time-out for a login the broker is still judging.
- **Virtual hosts.** RabbitMQ's plugin reads ``vhost:NAME`` from the open
  frame's host name; the adapter reconnects with that form when it finds
  RabbitMQ (another name would silently land on the default virtual host).
  A refused virtual host fails the connect (each connect is confirmed by a
  session round trip: RabbitMQ refuses only after its ``open``).

See ``docs/proton.md`` for the whole story, and :mod:`.connection` for the
threading rule (any thread may use a connection and its readers).
"""

from __future__ import annotations

from gofer.errors import BrokerUnavailableError, UnsupportedError
from gofer.messaging.adapter.model import Broker
from gofer.messaging.adapter.proton.connection import ProtonConnection
from gofer.messaging.adapter.proton.reader import ProtonReader


class ProtonAdapter:
    """Adapter object found by the registry under ``proton`` and the names it provides."""

    name = "proton"
    provides = ("amqp-1-0", "proton")
    recoverable: tuple[type[BaseException], ...] = (BrokerUnavailableError,)

    def connect(self, broker: Broker) -> ProtonConnection:
        """Open an AMQP 1.0 connection; see ``contract.Adapter.connect``."""
        return ProtonConnection(broker)


adapter = ProtonAdapter()

__all__ = ["ProtonAdapter", "ProtonConnection", "ProtonReader", "UnsupportedError", "adapter"]
