"""Leader election (docs/design.md: Leader): see ``elector``."""

from tock.leader.elector import Elector, ElectorConfig

__all__ = ["Elector", "ElectorConfig"]
