"""The old ``gofer.messaging.async`` under a name Python 3 can import (ReplyConsumer, replies)."""

from gofer.rmi.replies import (
    Accepted,
    AsyncReply,
    Failed,
    FinalReply,
    Progress,
    Rejected,
    Reply,
    ReplyConsumer,
    Started,
    Succeeded,
)
from gofer.rmi.replies import (
    ListenerBase as Listener,
)

__all__ = [
    "Accepted",
    "AsyncReply",
    "Failed",
    "FinalReply",
    "Listener",
    "Progress",
    "Rejected",
    "Reply",
    "ReplyConsumer",
    "Started",
    "Succeeded",
]
