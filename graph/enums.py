"""The GraphQL enums of the columns the database constrains to a fixed set of values.

The values are declared once, in db/enums.py; here they get their descriptions. Members are `str`
enums whose values are the stored text, so a row's value is served as it is.
"""

from __future__ import annotations

from enum import Enum

import strawberry

from db.enums import ConversationType, DialogueType, EditType, TargetType, Visibility

strawberry.enum(ConversationType, description="Where the conversation came from.")
strawberry.enum(
    Visibility,
    description="Who may read a conversation: its owner only, the users in `sharedWith`, or"
    " anyone.",
)
strawberry.enum(DialogueType, description="How many people speak in a node.")
strawberry.enum(EditType, description="What an edit did.")
strawberry.enum(TargetType, description="What kind of object an edit changed.")


@strawberry.enum(description="Which relationships of a node: from it, to it, or both.")
class RelationshipDirection(Enum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"
    BOTH = "both"


__all__ = [
    "ConversationType",
    "DialogueType",
    "EditType",
    "RelationshipDirection",
    "TargetType",
    "Visibility",
]
