"""The ``amqp`` adapter: AMQP 0-9-1 over py-amqp (RabbitMQ, Qpid Broker-J, ...)."""

from __future__ import annotations

from gofer.errors import BrokerUnavailableError
from gofer.messaging.adapter.amqp.connection import AmqpConnection
from gofer.messaging.adapter.model import Broker


class AmqpAdapter:
    """Adapter object found by the registry under ``amqp`` and the names it provides."""

    name = "amqp"
    provides = ("amqp-0-9-1", "rabbitmq", "rabbit")
    recoverable: tuple[type[BaseException], ...] = (BrokerUnavailableError,)

    def connect(self, broker: Broker) -> AmqpConnection:
        """Open an AMQP 0-9-1 connection; see ``contract.Adapter.connect``."""
        return AmqpConnection(broker)


adapter = AmqpAdapter()

__all__ = ["AmqpAdapter", "AmqpConnection", "adapter"]
