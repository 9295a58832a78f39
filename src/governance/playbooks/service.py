"""Playbook rules: drafts, validation, owner sign-off, publication and supersession."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.auth.schemas import Role
from governance.db import utcnow
from governance.engine.document import (
    PlaybookDocument,
    Rule,
    Term,
    semantic_problems,
)
from governance.errors import Conflict, Forbidden, InvalidPlaybook, NotFound, PreconditionFailed
from governance.playbooks.models import Playbook, PlaybookVersion, Signoff, VersionStatus
from governance.playbooks.repository import PlaybookRepository
from governance.playbooks.schemas import (
    PlaybookRead,
    SignoffRead,
    VersionRead,
    VersionSummary,
)
from governance.problems import Problem


def document_json(doc: PlaybookDocument) -> dict[str, Any]:
    """The stored form: JSON-ready, decimals as strings, defaults left out."""
    return doc.model_dump(mode="json", exclude_none=True)


def document_hash(doc_json: dict[str, Any]) -> str:
    canonical = json.dumps(doc_json, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_document(doc_json: dict[str, Any]) -> PlaybookDocument:
    return PlaybookDocument.model_validate(doc_json)


def validate(doc: PlaybookDocument) -> None:
    """Refuse a document with semantic problems, naming every offending field."""
    problems = semantic_problems(doc)
    if problems:
        raise InvalidPlaybook(errors=problems)


def etag(version: PlaybookVersion) -> str:
    return f'"v{version.id}-{version.lock_version}"'


# --- reading -----------------------------------------------------------------------------------


def list_playbooks(session: Session) -> list[Playbook]:
    return list(PlaybookRepository(session).list())


def get_playbook(session: Session, key: str) -> Playbook:
    playbook = PlaybookRepository(session).by_key(key)
    if playbook is None:
        raise NotFound(f"playbook {key!r} does not exist")
    return playbook


def get_version(session: Session, key: str, number: int) -> tuple[Playbook, PlaybookVersion]:
    playbook = get_playbook(session, key)
    version = PlaybookRepository(session).version(playbook.id, number)
    if version is None:
        raise NotFound(f"playbook {key!r} has no version {number}")
    return playbook, version


def version_to_export(session: Session, key: str, number: int | None) -> PlaybookVersion:
    """The named version, or by default the published one (else the latest draft)."""
    if number is not None:
        return get_version(session, key, number)[1]
    playbook = get_playbook(session, key)
    published = (v for v in playbook.versions if v.status == VersionStatus.published)
    return next(published, playbook.versions[-1])


def read_playbook(playbook: Playbook) -> PlaybookRead:
    versions = list(playbook.versions)
    published = next((v for v in versions if v.status == VersionStatus.published), None)
    draft = next((v for v in reversed(versions) if v.status == VersionStatus.draft), None)
    shown = published or (versions[-1] if versions else None)
    return PlaybookRead(
        key=playbook.key,
        name=playbook.name,
        published_version=published.number if published else None,
        draft_version=draft.number if draft else None,
        scope=dict(shown.scope) if shown else {},
        versions=[_summary(v) for v in versions],
        created_at=playbook.created_at,
        updated_at=playbook.updated_at,
    )


def _summary(version: PlaybookVersion) -> VersionSummary:
    return VersionSummary(
        number=version.number,
        status=VersionStatus(version.status),
        created_at=version.created_at,
        created_by=version.created_by,
        published_at=version.published_at,
        published_by=version.published_by,
    )


def read_version(session: Session, playbook: Playbook, version: PlaybookVersion) -> VersionRead:
    changed, required = _changes(session, playbook, version)
    signoffs = PlaybookRepository(session).signoffs(version.id)
    current = {s.group for s in signoffs if s.document_hash == version.document_hash}
    return VersionRead(
        key=playbook.key,
        etag=etag(version),
        document=load_document(version.document),
        changed_terms=changed,
        required_signoffs=required,
        missing_signoffs=[g for g in required if g not in current]
        if version.status == VersionStatus.draft
        else [],
        signoffs=[
            SignoffRead(
                group=s.group,
                signed_by=s.signed_by,
                admin_override=s.admin_override,
                note=s.note,
                created_at=s.created_at,
                current=s.document_hash == version.document_hash,
            )
            for s in signoffs
        ],
        **_summary(version).model_dump(),
    )


# --- what changed, and who must sign ---------------------------------------------------------


def _changes(
    session: Session, playbook: Playbook, version: PlaybookVersion
) -> tuple[list[str], list[str]]:
    """Changed term keys and the owner groups that must sign off, against the live version."""
    repo = PlaybookRepository(session)
    if version.status == VersionStatus.draft:
        baseline = repo.published_version(playbook.id)
    else:
        # For history, compare with the version this one replaced.
        baseline = repo.version(playbook.id, version.number - 1) if version.number > 1 else None
    base_doc = load_document(baseline.document) if baseline else None
    return changed_terms(base_doc, load_document(version.document))


def changed_terms(
    before: PlaybookDocument | None, after: PlaybookDocument
) -> tuple[list[str], list[str]]:
    """Terms whose definition changed (a rule targeting a term is part of its definition)."""
    old_terms = {t.key: t for t in before.terms} if before else {}
    new_terms = {t.key: t for t in after.terms}
    changed: set[str] = set()
    for key in old_terms.keys() | new_terms.keys():
        old, new = old_terms.get(key), new_terms.get(key)
        if old is None or new is None or old.model_dump() != new.model_dump():
            changed.add(key)
    old_rules = {r.key: r for r in before.rules} if before else {}
    new_rules = {r.key: r for r in after.rules}
    for key in old_rules.keys() | new_rules.keys():
        old_rule, new_rule = old_rules.get(key), new_rules.get(key)
        if (
            old_rule is not None
            and new_rule is not None
            and old_rule.model_dump() == new_rule.model_dump()
        ):
            continue
        for rule in (old_rule, new_rule):
            if rule is not None:
                changed.update(action.term for action in rule.then)
    groups: set[str] = set()
    for key in changed:
        for terms in (old_terms, new_terms):
            if key in terms:
                groups.add(terms[key].owner)
    ordered = [t.key for t in after.terms if t.key in changed]
    ordered += sorted(k for k in changed if k not in new_terms)
    return ordered, sorted(groups)


# --- writing -----------------------------------------------------------------------------------


def create_playbook(session: Session, actor: Principal, doc: PlaybookDocument) -> PlaybookVersion:
    """A new playbook with its first draft."""
    validate(doc)
    repo = PlaybookRepository(session)
    if repo.by_key(doc.key) is not None:
        raise Conflict(
            f"playbook {doc.key!r} already exists; add a version with "
            f"POST /v1/playbooks/{doc.key}/versions"
        )
    playbook = repo.add(Playbook(key=doc.key, name=doc.name))
    audit.record(session, actor, "playbook.created", "playbook", doc.key, after={"name": doc.name})
    return _add_draft(session, actor, playbook, doc)


def _add_draft(
    session: Session, actor: Principal, playbook: Playbook, doc: PlaybookDocument
) -> PlaybookVersion:
    repo = PlaybookRepository(session)
    stored = document_json(doc)
    number = repo.latest_number(playbook.id) + 1
    version = repo.add_version(
        PlaybookVersion(
            playbook_id=playbook.id,
            number=number,
            status=VersionStatus.draft.value,
            document=stored,
            document_hash=document_hash(stored),
            scope=dict(doc.scope),
            lock_version=1,
            created_by=actor.actor,
        )
    )
    audit.record(
        session,
        actor,
        "playbook.version_created",
        "playbook_version",
        f"{playbook.key}/{number}",
        after=stored,
    )
    return version


def create_version(
    session: Session, actor: Principal, key: str, doc: PlaybookDocument | None
) -> PlaybookVersion:
    """A new draft from `doc`, or a copy of the latest version; one open draft at a time."""
    playbook = get_playbook(session, key)
    open_draft = next((v for v in playbook.versions if v.status == VersionStatus.draft), None)
    if open_draft is not None:
        raise Conflict(
            f"playbook {key!r} already has draft version {open_draft.number}; edit or publish it"
        )
    if doc is None:
        latest = playbook.versions[-1]
        doc = load_document(latest.document)
    _check_key(doc, key)
    validate(doc)
    return _add_draft(session, actor, playbook, doc)


def _check_key(doc: PlaybookDocument, key: str) -> None:
    if doc.key != key:
        raise InvalidPlaybook(
            errors=[
                Problem(
                    ("key",), f"the document's key {doc.key!r} must be the playbook's key {key!r}"
                )
            ]
        )


def _editable(
    session: Session, key: str, number: int, if_match: str | None
) -> tuple[Playbook, PlaybookVersion]:
    playbook, version = get_version(session, key, number)
    if version.status != VersionStatus.draft:
        raise Conflict(
            f"version {number} of {key!r} is {version.status}; only drafts are edited. "
            f"Start a new draft with POST /v1/playbooks/{key}/versions"
        )
    if if_match is not None and if_match.strip() not in (etag(version), "*"):
        raise PreconditionFailed(
            f"version {number} changed since you read it (now {etag(version)}); read it again"
        )
    return playbook, version


def update_version(
    session: Session,
    actor: Principal,
    key: str,
    number: int,
    doc: PlaybookDocument,
    if_match: str | None = None,
) -> PlaybookVersion:
    """Replace a draft's whole document."""
    playbook, version = _editable(session, key, number, if_match)
    _check_key(doc, key)
    validate(doc)
    return _save(session, actor, playbook, version, doc, "playbook.version_updated")


def _save(
    session: Session,
    actor: Principal,
    playbook: Playbook,
    version: PlaybookVersion,
    doc: PlaybookDocument,
    action: str,
) -> PlaybookVersion:
    before = version.document
    stored = document_json(doc)
    if not PlaybookRepository(session).bump_lock(version, version.lock_version):
        raise PreconditionFailed(f"version {version.number} of {playbook.key!r} changed meanwhile")
    version.document = stored
    version.document_hash = document_hash(stored)
    version.scope = dict(doc.scope)
    if version.number == PlaybookRepository(session).latest_number(playbook.id):
        playbook.name = doc.name
    session.flush()
    audit.record(
        session,
        actor,
        action,
        "playbook_version",
        f"{playbook.key}/{version.number}",
        before=before,
        after=stored,
    )
    return version


def _edit(
    session: Session,
    actor: Principal,
    key: str,
    number: int,
    if_match: str | None,
    change: Callable[[dict[str, Any]], None],
    action: str,
) -> PlaybookVersion:
    """Apply `change` to a copy of the draft's document, re-validate the whole, and save."""
    playbook, version = _editable(session, key, number, if_match)
    raw = json.loads(json.dumps(version.document))
    change(raw)
    doc = _revalidate(raw)
    validate(doc)
    return _save(session, actor, playbook, version, doc, action)


def _revalidate(raw: dict[str, Any]) -> PlaybookDocument:
    try:
        return PlaybookDocument.model_validate(raw)
    except ValidationError as exc:
        raise InvalidPlaybook(
            errors=[Problem(tuple(e["loc"]), e["msg"]) for e in exc.errors()]
        ) from None


def put_term(
    session: Session, actor: Principal, key: str, number: int, term: Term, if_match: str | None
) -> PlaybookVersion:
    """Add or replace one term of a draft."""

    def change(raw: dict[str, Any]) -> None:
        stored = term.model_dump(mode="json", exclude_none=True)
        for i, existing in enumerate(raw["terms"]):
            if existing["key"] == term.key:
                raw["terms"][i] = stored
                return
        raw["terms"].append(stored)

    return _edit(session, actor, key, number, if_match, change, "playbook.term_saved")


def delete_term(
    session: Session, actor: Principal, key: str, number: int, term_key: str, if_match: str | None
) -> PlaybookVersion:
    def change(raw: dict[str, Any]) -> None:
        kept = [t for t in raw["terms"] if t["key"] != term_key]
        if len(kept) == len(raw["terms"]):
            raise NotFound(f"version {number} of {key!r} has no term {term_key!r}")
        raw["terms"] = kept

    return _edit(session, actor, key, number, if_match, change, "playbook.term_deleted")


def put_rule(
    session: Session, actor: Principal, key: str, number: int, rule: Rule, if_match: str | None
) -> PlaybookVersion:
    """Add or replace one rule of a draft (a new rule goes last: rules apply in order)."""

    def change(raw: dict[str, Any]) -> None:
        stored = rule.model_dump(mode="json", exclude_none=True)
        rules = raw.setdefault("rules", [])
        for i, existing in enumerate(rules):
            if existing["key"] == rule.key:
                rules[i] = stored
                return
        rules.append(stored)

    return _edit(session, actor, key, number, if_match, change, "playbook.rule_saved")


def delete_rule(
    session: Session, actor: Principal, key: str, number: int, rule_key: str, if_match: str | None
) -> PlaybookVersion:
    def change(raw: dict[str, Any]) -> None:
        rules = raw.get("rules", [])
        kept = [r for r in rules if r["key"] != rule_key]
        if len(kept) == len(rules):
            raise NotFound(f"version {number} of {key!r} has no rule {rule_key!r}")
        raw["rules"] = kept

    return _edit(session, actor, key, number, if_match, change, "playbook.rule_deleted")


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
    _changed, required = _changes(session, playbook, version)
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
    changed, required = _changes(session, playbook, version)
    signed = {
        s.group for s in repo.signoffs(version.id) if s.document_hash == version.document_hash
    }
    missing = [g for g in required if g not in signed]
    if missing:
        raise Conflict(
            f"cannot publish: sign-off missing from {', '.join(missing)} "
            f"(changed terms: {', '.join(changed)})"
        )
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
            return live, "unchanged"
        if draft is not None:
            if draft.document_hash == document_hash(stored):
                version, outcome = draft, "unchanged"
            else:
                version = update_version(session, actor, doc.key, draft.number, doc)
                outcome = "updated"
        else:
            version = _add_draft(session, actor, playbook, doc)
            outcome = "created"
    if not publish_now:
        return version, outcome
    if actor.role is not Role.admin:
        raise Forbidden("only an admin may publish on import")
    playbook = get_playbook(session, doc.key)
    _changed, required = _changes(session, playbook, version)
    for group in required:
        sign_off(session, actor, doc.key, version.number, group, "admin sign-off on import")
    return publish(session, actor, doc.key, version.number), "published"


def playbooks_exist(session: Session) -> bool:
    return PlaybookRepository(session).count() > 0


def document_of(version: PlaybookVersion) -> PlaybookDocument:
    return load_document(version.document)
