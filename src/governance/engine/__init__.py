"""The check engine: compile a playbook version once, then evaluate deals with no I/O."""

from governance.engine.compiler import CompiledPlaybook, DealInputError, compile_playbook
from governance.engine.document import PlaybookDocument, semantic_problems
from governance.engine.evaluator import evaluate
from governance.engine.results import CheckResult, Status, TermResult, Verdict
from governance.problems import Problem

__all__ = [
    "CheckResult",
    "CompiledPlaybook",
    "DealInputError",
    "PlaybookDocument",
    "Problem",
    "Status",
    "TermResult",
    "Verdict",
    "compile_playbook",
    "evaluate",
    "semantic_problems",
]
