"""Approver groups: their SLA (and its precedence), webhook and escalation settings."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from governance.approvals.models import ApprovalGroup
from governance.approvals.repository import ApprovalRepository
from governance.approvals.schemas import GroupRead, GroupWrite
from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.errors import InvalidInput
from governance.notifications import service as notifications
from governance.notifications import targets
from governance.playbooks import service as playbook_service
from governance.playbooks.registry import Published
from governance.problems import Problem
from governance.settings import Settings


def sla_hours(
    groups: Mapping[str, ApprovalGroup],
    settings: Settings,
    group: str,
    published: Published | None = None,
) -> int:
    """The playbook's SLA for the group, else the group's own, else the service default."""
    if published is not None:
        hours = published.compiled.document.approval_sla_hours.get(group)
        if hours is not None:
            return hours
    config = groups.get(group)
    if config is not None and config.sla_hours is not None:
        return config.sla_hours
    return settings.approval_sla_hours


def read_group(config: ApprovalGroup | None, name: str, settings: Settings) -> GroupRead:
    return GroupRead(
        name=name,
        sla_hours=(
            config.sla_hours if config and config.sla_hours else settings.approval_sla_hours
        ),
        sla_hours_set=bool(config and config.sla_hours),
        webhook_configured=bool(config and config.webhook_url),
        webhook_host=notifications.webhook_host(config.webhook_url if config else None),
        escalation_group=config.escalation_group if config else None,
    )


def put_group(
    session: Session, actor: Principal, name: str, data: GroupWrite, settings: Settings
) -> tuple[GroupRead, bool]:
    if data.webhook_url is not None:
        _check_webhook(str(data.webhook_url), settings)
    repo = ApprovalRepository(session)
    config = repo.group(name)
    created = config is None
    before = None if config is None else read_group(config, name, settings).model_dump(mode="json")
    if config is None:
        config = repo.add_group(ApprovalGroup(name=name))
    config.sla_hours = data.sla_hours
    # The webhook URL is never shown again, so leaving it out keeps it; null removes it.
    if "webhook_url" in data.model_fields_set:
        config.webhook_url = str(data.webhook_url) if data.webhook_url else None
    config.escalation_group = data.escalation_group
    session.flush()
    after = read_group(config, name, settings)
    audit.record(
        session, actor, "approval_group.saved", "approval_group", name,
        before=before, after=after.model_dump(mode="json"),
    )  # fmt: skip
    return after, created


def _check_webhook(url: str, settings: Settings) -> None:
    """422 for a webhook the worker must never post to (see notifications/targets.py)."""
    try:
        targets.check_saved(url, targets.WebhookPolicy.of(settings))
    except targets.UnsafeWebhook as exc:
        message = f"{exc.reason}; webhooks must point at a public address"
        raise InvalidInput(errors=[Problem(("webhook_url",), message)]) from None


def known_groups(session: Session) -> set[str]:
    """The groups that exist: named by a published or draft playbook or the term catalog, or
    created with `PUT /v1/approval-groups/{group}`. Approver keys may only belong to these."""
    return playbook_service.group_names(session) | {
        g.name for g in ApprovalRepository(session).groups()
    }


def list_groups(session: Session, settings: Settings) -> list[GroupRead]:
    """Every configured group and every group a key belongs to."""
    repo = ApprovalRepository(session)
    configs = {g.name: g for g in repo.groups()}
    names = sorted(set(configs) | repo.active_member_groups())
    return [read_group(configs.get(n), n, settings) for n in names]
