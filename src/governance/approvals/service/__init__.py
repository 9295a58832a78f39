"""Approval rules, split by responsibility.

A deal's review is a *round* of requests, one per (approver group, chain step). Each request
keeps the term values it covers. A later check keeps every approval whose term value is no
worse than the value approved, and asks again only for what got worse. The round stays pinned
to the playbook version it started with until the rep withdraws the deal.

- `review`: the one workflow for "a deal changed" (upsert, check, store, reconcile, enqueue)
- `lifecycle`: submit, re-check, withdraw, accept a counter
- `routing`: which requests a check needs (smart re-approval)
- `decisions`: approve, reject, counter, reassign
- `delegation`: who may act for a group; delegations
- `groups`: approver groups and SLA precedence
- `escalation`: the worker's reminders and escalations
- `reading`: summaries, the queue, one request
- `transitions`, `messages`: a request's state changes and the notifications they send

Changes to one deal's review serialise on the deal's row lock (`DealRepository.lock`); a
decision also claims its request with a compare-and-set, so two deciders produce one decision.
"""

from governance.approvals.service.decisions import decide, reassign
from governance.approvals.service.delegation import (
    Authority,
    authority,
    clear_delegation,
    delegated_groups,
    my_delegations,
    set_delegation,
    visible_groups,
)
from governance.approvals.service.escalation import WORKER, SweepReport, sweep
from governance.approvals.service.groups import (
    known_groups,
    list_groups,
    put_group,
    read_group,
    sla_hours,
)
from governance.approvals.service.lifecycle import (
    Submission,
    accept_counter,
    recheck,
    submit,
    withdraw,
)
from governance.approvals.service.reading import (
    get_request,
    open_refs,
    queue,
    read_requests,
    requests_json,
    requests_of,
    summary,
)
from governance.approvals.service.routing import Reconciled, reconcile

__all__ = [
    "WORKER",
    "Authority",
    "Reconciled",
    "Submission",
    "SweepReport",
    "accept_counter",
    "authority",
    "clear_delegation",
    "decide",
    "delegated_groups",
    "get_request",
    "known_groups",
    "list_groups",
    "my_delegations",
    "open_refs",
    "put_group",
    "queue",
    "read_group",
    "read_requests",
    "reassign",
    "recheck",
    "reconcile",
    "requests_json",
    "requests_of",
    "set_delegation",
    "sla_hours",
    "submit",
    "summary",
    "sweep",
    "visible_groups",
    "withdraw",
]
