"""Where an overdue request goes: the next group up the deal's own ladder (pure)."""

from __future__ import annotations

from governance.engine import CompiledPlaybook
from governance.engine.escalation import next_group

CFO_RULE = "large_deal_cfo_signs_discount"


def test_the_next_tier_of_the_ladder(demo: CompiledPlaybook) -> None:
    assert demo.ladder("discount_pct", ()) == ("sales_director", "finance")
    assert next_group(demo, ["discount_pct"], {}, "sales_director", "sales_director") == "finance"
    # Only the group's own tier counts: finance is the top of the discount's ladder.
    assert next_group(demo, ["discount_pct"], {}, "finance", "finance") is None


def test_rules_that_fired_change_the_ladder(demo: CompiledPlaybook) -> None:
    fired = {"discount_pct": (CFO_RULE,)}
    assert next_group(demo, ["discount_pct"], fired, "sales_director", "sales_director") == "cfo"
    # Another term's rules do not move this one's ladder.
    other = {"payment_terms_days": (CFO_RULE,)}
    assert next_group(demo, ["discount_pct"], other, "sales_director", "sales_director") == (
        "finance"
    )


def test_the_first_term_with_a_later_tier_decides(demo: CompiledPlaybook) -> None:
    # The support level's ladder has no tier after product; the SLA uptime's has the CTO.
    keys = ["support_level", "sla_uptime_pct"]
    assert next_group(demo, keys, {}, "product", "product") == "cto"
    # Unknown keys and ladders without the chain group are skipped.
    assert next_group(demo, ["no_such_term", "sla_uptime_pct"], {}, "product", "product") == "cto"
    assert next_group(demo, ["data_residency"], {}, "product", "product") is None


def test_the_current_holder_is_skipped(demo: CompiledPlaybook) -> None:
    # A finance request already escalated to the CFO: no one is left after the CFO.
    assert next_group(demo, ["payment_terms_days"], {}, "finance", "cfo") is None
    # Reassigned to finance, the sales director's contract request still escalates to the CFO.
    assert next_group(demo, ["contract_months"], {}, "sales_director", "finance") == "cfo"
