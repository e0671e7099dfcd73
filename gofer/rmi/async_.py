"""The old ``gofer.messaging.async`` under a name Python 3 can import (ReplyConsumer, replies)."""

from gofer.rmi.replies import (
    Accepted,
    Failed,
    Progress,
    Rejected,
    Reply,
    ReplyConsumer,
    Started,
    Succeeded,
)

__all__ = [
    "Accepted",
    "Failed",
    "Progress",
    "Rejected",
    "Reply",
    "ReplyConsumer",
    "Started",
    "Succeeded",
]
