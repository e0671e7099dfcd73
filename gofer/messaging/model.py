"""The existing gofer's ``gofer.messaging.model``: its document, version and model errors.

Its callers catch ``ModelError`` around queue and messaging operations and
``DocumentError`` for a message that is no valid document; here they are
names for :class:`~gofer.errors.MessagingError` and
:class:`~gofer.errors.InvalidDocumentError`, which ours raise.
"""

from __future__ import annotations

from typing import Any

from gofer.errors import InvalidDocumentError, MessagingError
from gofer.messaging.document import VERSION, Document

#: Any messaging failure (the existing gofer's base of its model errors).
ModelError = MessagingError
#: A message that is no valid gofer document.
DocumentError = InvalidDocumentError


class VersionError(InvalidDocumentError):
    """A document of another version than ours (:data:`VERSION`).

    Attributes:
        code: ``model.version``, the code of the ``rejected`` reply an agent sends.
        description: what is wrong, in words.
        document: the document.
        details: the versions expected and found.
    """

    CODE = "model.version"
    DESCRIPTION = "MODEL: document version not matched"

    def __init__(self, document: Any, expected: str, found: Any) -> None:
        self.code = self.CODE
        self.description = self.DESCRIPTION
        self.document = document
        self.details = f"expected:{expected}, found:{found}"
        super().__init__(f"{self.description} : {self.details}")


def validate(document: Document) -> None:
    """Check that ``document`` is of our version.

    Raises:
        VersionError: it is not.
    """
    if document.get("version") != VERSION:
        raise VersionError(document, VERSION, document.get("version"))


__all__ = ["VERSION", "Document", "DocumentError", "ModelError", "VersionError", "validate"]
