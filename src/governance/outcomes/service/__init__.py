"""How deals closed: outcomes with per-term figures (`closing`), the rep's preparation
(`preparation`) and the after-action review (`review`)."""

from governance.outcomes.service.closing import (
    close_deal,
    get_outcome,
    outcome_trades,
    read_outcome,
    record_outcome,
    record_synced_outcomes,
)
from governance.outcomes.service.common import governing_version
from governance.outcomes.service.preparation import get_preparation, put_preparation
from governance.outcomes.service.review import get_review, put_review

__all__ = [
    "close_deal",
    "get_outcome",
    "get_preparation",
    "get_review",
    "governing_version",
    "outcome_trades",
    "put_preparation",
    "put_review",
    "read_outcome",
    "record_outcome",
    "record_synced_outcomes",
]
