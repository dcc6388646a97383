"""The custom scalars: `UUID`, `DateTime` and `JSON`.

`UUID` and `DateTime` are strawberry's built-in scalars for `uuid.UUID` and `datetime.datetime`
(ISO 8601 text, with the UTC offset); `JSON` holds free-form JSONB values.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from strawberry.scalars import JSON

UUID = uuid.UUID
DateTime = datetime

__all__ = ["JSON", "UUID", "DateTime"]
