"""Playbook publication: an owner group's sign-off on a draft, publication (and supersession of
the live version), and import from a document, which can publish at once. Drafts and who must
sign them are `service`'s."""

from __future__ import annotations

from sqlalchemy.orm import Session

from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.auth.schemas import Role
from governance.db import utcnow
from governance.engine.document import PlaybookDocument
from governance.errors import Conflict, Forbidden
from governance.playbooks import catalog
from governance.playbooks.models import PlaybookVersion, Signoff, VersionStatus
from governance.playbooks.repository import PlaybookRepository
from governance.playbooks.service import (
    add_draft,
    create_playbook,
    document_hash,
    document_json,
    document_of,
    get_playbook,
    get_version,
    signoffs_needed,
    update_version,
    validate,
)
from governance.problems import Problem


def sign_off(
    session: Session, actor: Principal, key: str, number: int, group: str, note: str | None
) -> Signoff:
    """An owner group approves the draft's definition of the terms it owns."""
    playbook, version = get_version(session, key, number)
    if version.status != VersionStatus.draft:
        raise Conflict(
            f"version {number} of {key!r} is {version.status}; only drafts are signed off"
        )
    override = actor.role is Role.admin and not actor.in_group(group)
    if not actor.in_group(group) and actor.role is not Role.admin:
        raise Forbidden(f"only members of {group!r} (or an admin) may sign off for {group!r}")
    required = catalog.required_groups(signoffs_needed(session, playbook, version))
    if group not in required:
        needed = ", ".join(required) or "none"
        raise Conflict(
            f"{group!r} owns no changed term in version {number}; sign-offs needed: {needed}"
        )
    signoff = PlaybookRepository(session).add_signoff(
        Signoff(
            version_id=version.id,
            group=group,
            signed_by=actor.actor,
            admin_override=override,
            document_hash=version.document_hash,
            note=note,
        )
    )
    audit.record(
        session,
        actor,
        "playbook.signed_off",
        "playbook_version",
        f"{key}/{number}",
        after={
            "group": group,
            "admin_override": override,
            "note": note,
            "document_hash": version.document_hash,
        },
    )
    return signoff


_REASONS = {
    catalog.SignoffReason.new_term: "a new term: its owner enters it in the term catalog",
    catalog.SignoffReason.defined: "this playbook defines it: the term catalog's owner signs",
    catalog.SignoffReason.changed: "its definition changed: the term catalog's owner signs",
    catalog.SignoffReason.owner_change: "another owner than the term catalog's: the current "
    "owner hands it over and the new owner takes it",
    catalog.SignoffReason.removed: "removed: the term catalog's owner signs",
}


def _missing_message(needed: catalog.TermSignoff, missing: list[str]) -> str:
    return f"sign-off missing from {', '.join(missing)} ({_REASONS[needed.reason]})"


def scopes_collide(a: dict[str, str], b: dict[str, str]) -> bool:
    """Could one deal match both scopes with equal specificity?"""
    if len(a) != len(b):
        return False
    return all(b[k] == v for k, v in a.items() if k in b)


def publish(session: Session, actor: Principal, key: str, number: int) -> PlaybookVersion:
    """Make a signed-off draft the live version and supersede the previous one."""
    repo = PlaybookRepository(session)
    repo.lock_publication()
    playbook, version = get_version(session, key, number)
    if version.status != VersionStatus.draft:
        raise Conflict(f"version {number} of {key!r} is already {version.status}")
    doc = document_of(version)
    # Read the catalog only now, under the publication lock: a term that changed owner since
    # the draft was signed needs its new owner.
    needed = signoffs_needed(session, playbook, version)
    changed = [n.key for n in needed]
    signed = {
        s.group for s in repo.signoffs(version.id) if s.document_hash == version.document_hash
    }
    unsigned = [
        (n, missing) for n in needed if (missing := [g for g in n.groups if g not in signed])
    ]
    if unsigned:
        missing = sorted({g for _n, groups in unsigned for g in groups})
        raise Conflict(
            f"cannot publish: sign-off missing from {', '.join(missing)} "
            f"(for terms: {', '.join(n.key for n, _groups in unsigned)})",
            errors=[
                Problem(("terms", n.key), _missing_message(n, groups)) for n, groups in unsigned
            ],
        )
    kinds = catalog.kind_problems(catalog.catalog_for(session, doc), doc)
    if kinds:
        raise Conflict("cannot publish: terms change their kind in the term catalog", errors=kinds)
    for other, other_playbook in repo.all_published():
        if other_playbook.id != playbook.id and scopes_collide(version.scope, other.scope):
            raise Conflict(
                f"scope {version.scope} is as specific as published playbook "
                f"{other_playbook.key!r} (scope {other.scope}) and could match the same deals; "
                "make one scope more specific"
            )
    now = utcnow()
    previous = repo.published_version(playbook.id)
    if previous is not None:
        previous.status = VersionStatus.superseded.value
        previous.superseded_at = now
        session.flush()  # the old version leaves "published" before the new one enters it
        audit.record(
            session,
            actor,
            "playbook.superseded",
            "playbook_version",
            f"{key}/{previous.number}",
            after={"superseded_by": number},
        )
    version.status = VersionStatus.published.value
    version.published_at = now
    version.published_by = actor.actor
    playbook.name = str(version.document.get("name", playbook.name))
    session.flush()
    catalog.publish_terms(session, actor, doc, needed, f"{key}/{number}")
    audit.record(
        session,
        actor,
        "playbook.published",
        "playbook_version",
        f"{key}/{number}",
        after={"changed_terms": changed, "signoffs": sorted(signed)},
    )
    return version


def import_document(
    session: Session, actor: Principal, doc: PlaybookDocument, *, publish_now: bool
) -> tuple[PlaybookVersion, str]:
    """Create or update the playbook from a document (as kept in git); optionally publish.

    Publishing on import is an admin act: it records an admin sign-off for every group that
    must sign, so leadership's own CI can publish what their review already approved.
    """
    version, outcome, _created = import_document_created(
        session, actor, doc, publish_now=publish_now
    )
    return version, outcome


def import_document_created(
    session: Session, actor: Principal, doc: PlaybookDocument, *, publish_now: bool
) -> tuple[PlaybookVersion, str, bool]:
    """`import_document`, also saying whether the import created a version (published at
    once or not), for the HTTP answer's 201."""
    validate(doc)
    repo = PlaybookRepository(session)
    playbook = repo.by_key(doc.key)
    stored = document_json(doc)
    if playbook is None:
        version = create_playbook(session, actor, doc)
        outcome = "created"
    else:
        live = repo.published_version(playbook.id)
        draft = next((v for v in playbook.versions if v.status == VersionStatus.draft), None)
        if draft is None and live is not None and live.document_hash == document_hash(stored):
            return live, "unchanged", False
        if draft is not None:
            if draft.document_hash == document_hash(stored):
                version, outcome = draft, "unchanged"
            else:
                version = update_version(session, actor, doc.key, draft.number, doc)
                outcome = "updated"
        else:
            version = add_draft(session, actor, playbook, doc)
            outcome = "created"
    created = outcome == "created"
    if not publish_now:
        return version, outcome, created
    if actor.role is not Role.admin:
        raise Forbidden("only an admin may publish on import")
    playbook = get_playbook(session, doc.key)
    required = catalog.required_groups(signoffs_needed(session, playbook, version))
    for group in required:
        sign_off(session, actor, doc.key, version.number, group, "admin sign-off on import")
    return publish(session, actor, doc.key, version.number), "published", created
