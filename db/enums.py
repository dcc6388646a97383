"""The fixed sets of values the database constrains columns to, each declared once.

The models' CHECK constraints (db/models.py), the GraphQL enums (graph/enums.py, which add the
descriptions), the services' checks and the demo data all read them from here. A member's value
is the stored text; its name is what GraphQL calls it.
"""

from __future__ import annotations

from enum import StrEnum


class ConversationType(StrEnum):
    LIVE_AUDIO = "live_audio"
    TRANSCRIPT = "transcript"
    CHAT = "chat"
    HYBRID = "hybrid"


class Visibility(StrEnum):
    PRIVATE = "private"
    SHARED = "shared"
    PUBLIC = "public"


class DialogueType(StrEnum):
    MONOLOGUE = "monologue"
    DIALOGUE = "dialogue"
    MULTI_PARTY = "multi-party"
    CONSENSUS = "consensus"


class EditType(StrEnum):
    CORRECTION = "correction"
    ADDITION = "addition"
    DELETION = "deletion"
    MERGE = "merge"
    SPLIT = "split"


class TargetType(StrEnum):
    NODE = "node"
    RELATIONSHIP = "relationship"
    CLUSTER = "cluster"
    SPEAKER_ATTRIBUTION = "speaker_attribution"
    CLAIM = "claim"
    UTTERANCE = "utterance"


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """The stored values, in declaration order."""
    return tuple(member.value for member in enum)
