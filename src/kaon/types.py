"""Identifier types shared by every stage, so ids of different kinds cannot be mixed up."""

from typing import NewType

WorkspaceId = NewType("WorkspaceId", str)
InputId = NewType("InputId", str)
Mpid = NewType("Mpid", int)
EventId = NewType("EventId", int)
