"""The JSON document every gofer message carries (the envelope of WIRE.md)."""

from __future__ import annotations

import json
from typing import Any

from gofer.errors import InvalidDocumentError

#: The document version every gofer message carries (WIRE.md).
VERSION = "2.0"


class Document(dict[str, Any]):
    """A JSON object whose keys read as attributes too.

    Missing keys read as None through attributes (``doc.replyto``), as the
    existing gofer's documents did; nested objects read as documents.

    Example::

        >>> doc = Document(sn="1", request={"classname": "Dog"})
        >>> doc.request.classname, doc.replyto
        ('Dog', None)
        >>> Document.load(doc.dump()) == doc
        True
    """

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = self.get(name)
        if isinstance(value, dict) and not isinstance(value, Document):
            value = Document(value)
            self[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        self.pop(name, None)

    def dump(self) -> bytes:
        """UTF-8 JSON with sorted keys, as the existing gofer sends.

        Raises:
            InvalidDocumentError: a value is not JSON-serializable.
        """
        try:
            return json.dumps(self, sort_keys=True, separators=(",", ":")).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidDocumentError(f"document is not JSON-serializable: {exc}") from exc

    @classmethod
    def load(cls, body: bytes | str) -> Document:
        """Parse a message body.

        Raises:
            InvalidDocumentError: not UTF-8, not JSON, nested too deeply, or
                not an object at the top.
        """
        try:
            text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
            value = json.loads(text)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise InvalidDocumentError(f"message body is not UTF-8 JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise InvalidDocumentError(
                f"message body is JSON {type(value).__name__}, not an object"
            )
        return cls(value)
