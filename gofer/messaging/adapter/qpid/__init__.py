"""The ``qpid`` adapter: AMQP 0-10 (Qpid Broker-J, qpidd) on gofer's own protocol engine."""

from __future__ import annotations

from gofer.errors import BrokerUnavailableError
from gofer.messaging.adapter.model import Broker
from gofer.messaging.adapter.qpid.connection import QpidConnection


class QpidAdapter:
    """Adapter object found by the registry under ``qpid`` and the names it provides."""

    name = "qpid"
    provides = ("amqp-0-10", "qpid.messaging")
    recoverable: tuple[type[BaseException], ...] = (BrokerUnavailableError,)

    def connect(self, broker: Broker) -> QpidConnection:
        """Open a 0-10 connection and its control session; see ``contract.Adapter.connect``."""
        return QpidConnection(broker)


adapter = QpidAdapter()

__all__ = ["QpidAdapter", "QpidConnection", "adapter"]
