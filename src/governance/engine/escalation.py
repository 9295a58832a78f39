"""Where an overdue approval goes: the next group up the deal's own approver ladder. Pure."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from governance.engine.compiler import CompiledPlaybook


def next_group(
    compiled: CompiledPlaybook,
    term_keys: Iterable[str],
    fired: Mapping[str, Collection[str]],
    chain_group: str,
    holder: str,
) -> str | None:
    """The group after `chain_group` on the first covered term's ladder that has one, skipping
    the request's current `holder`; None when no term has a later tier.

    The ladder is the deal's own (`CompiledPlaybook.ladder`): rules that fired at the check
    (`fired`: term key -> rule keys) may have replaced tiers' approvers, say the CFO owning the
    last discount tier on large deals. Keys the playbook does not know are skipped.
    """
    for key in term_keys:
        if key not in compiled.by_key:
            continue
        ladder = list(dict.fromkeys(compiled.ladder(key, fired.get(key, ()))))
        if chain_group in ladder:
            for group in ladder[ladder.index(chain_group) + 1 :]:
                if group != holder:
                    return group
    return None
