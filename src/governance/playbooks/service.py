"""Playbook rules: reading, drafts (create, edit a term or rule, validate) and who must sign a
draft. Sign-off, publication, supersession and import are `publication`'s."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.engine.document import (
    PlaybookDocument,
    Rule,
    Term,
    semantic_problems,
)
from governance.errors import Conflict, InvalidPlaybook, NotFound, PreconditionFailed
from governance.playbooks import catalog
from governance.playbooks.models import Playbook, PlaybookVersion, VersionStatus
from governance.playbooks.repository import PlaybookRepository
from governance.playbooks.schemas import (
    PlaybookRead,
    SignoffRead,
    TermSignoffRead,
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
    needed = signoffs_needed(session, playbook, version)
    signoffs = PlaybookRepository(session).signoffs(version.id)
    current = {s.group for s in signoffs if s.document_hash == version.document_hash}
    is_draft = version.status == VersionStatus.draft
    required = catalog.required_groups(needed)
    return VersionRead(
        key=playbook.key,
        etag=etag(version),
        document=load_document(version.document),
        changed_terms=[n.key for n in needed],
        required_signoffs=required,
        missing_signoffs=[g for g in required if g not in current] if is_draft else [],
        term_signoffs=[
            TermSignoffRead(
                term=n.key,
                reason=n.reason,
                groups=list(n.groups),
                missing=[g for g in n.groups if g not in current] if is_draft else [],
            )
            for n in needed
        ],
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


def signoffs_needed(
    session: Session, playbook: Playbook, version: PlaybookVersion
) -> list[catalog.TermSignoff]:
    """The terms that need sign-off and from whom: changes against the live version, owners
    from the org-wide term catalog (see `playbooks.catalog`)."""
    repo = PlaybookRepository(session)
    if version.status == VersionStatus.draft:
        baseline = repo.published_version(playbook.id)
    else:
        # For history, compare with the version this one replaced.
        baseline = repo.version(playbook.id, version.number - 1) if version.number > 1 else None
    base_doc = load_document(baseline.document) if baseline else None
    doc = load_document(version.document)
    return catalog.signoffs_needed(catalog.catalog_for(session, base_doc, doc), base_doc, doc)


def _check_catalog_kinds(session: Session, doc: PlaybookDocument) -> None:
    """A term key keeps its catalog kind in every playbook (422 naming `terms[i].kind`)."""
    problems = catalog.kind_problems(catalog.catalog_for(session, doc), doc)
    if problems:
        raise InvalidPlaybook(errors=problems)


# --- writing -----------------------------------------------------------------------------------


def create_playbook(session: Session, actor: Principal, doc: PlaybookDocument) -> PlaybookVersion:
    """A new playbook with its first draft."""
    validate(doc)
    _check_catalog_kinds(session, doc)
    repo = PlaybookRepository(session)
    if repo.by_key(doc.key) is not None:
        raise Conflict(
            f"playbook {doc.key!r} already exists; add a version with "
            f"POST /v1/playbooks/{doc.key}/versions"
        )
    playbook = repo.add(Playbook(key=doc.key, name=doc.name))
    audit.record(session, actor, "playbook.created", "playbook", doc.key, after={"name": doc.name})
    return add_draft(session, actor, playbook, doc)


def add_draft(
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
    _check_catalog_kinds(session, doc)
    return add_draft(session, actor, playbook, doc)


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
    _check_catalog_kinds(session, doc)
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
    _check_catalog_kinds(session, doc)
    return _save(session, actor, playbook, version, doc, action)


def _revalidate(raw: dict[str, Any]) -> PlaybookDocument:
    try:
        return PlaybookDocument.model_validate(raw)
    except ValidationError as exc:
        raise InvalidPlaybook(
            errors=[Problem(tuple(e["loc"]), e["msg"]) for e in exc.errors()]
        ) from None


_TERM_KINDS = frozenset({"number", "choice", "flag"})


def _document_loc(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """A pydantic location as the document names it: `terms.2.number.band` → `terms[2].band`
    (the union's tag is pydantic's, not a field of the document)."""
    parts = list(loc)
    if len(parts) > 2 and parts[0] == "terms" and parts[2] in _TERM_KINDS:
        del parts[2]
    return tuple(parts)


def check_document(session: Session, raw: dict[str, Any]) -> PlaybookDocument:
    """Every rule a saved draft must pass (shape, cross-field rules, catalog kinds), without
    saving: the editor's before-save check. Raises InvalidPlaybook naming each field."""
    try:
        doc = PlaybookDocument.model_validate(raw)
    except ValidationError as exc:
        raise InvalidPlaybook(
            errors=[
                Problem(_document_loc(tuple(e["loc"])), e["msg"].removeprefix("Value error, "))
                for e in exc.errors()
            ]
        ) from None
    validate(doc)
    _check_catalog_kinds(session, doc)
    return doc


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


def group_names(session: Session) -> set[str]:
    """Every group a published or draft playbook names (term owners, tier approvers, rule
    approvers) or that owns a term of the catalog."""
    names = catalog.owner_groups(session)
    for doc in PlaybookRepository(session).live_documents():
        for term in doc.get("terms", []):
            names.add(term["owner"])
            names.update(tier["approver"] for tier in term.get("tiers", []))
        for rule in doc.get("rules", []):
            names.update(action["approver"] for action in rule["then"] if "approver" in action)
    return names


def playbooks_exist(session: Session) -> bool:
    return PlaybookRepository(session).count() > 0


def document_of(version: PlaybookVersion) -> PlaybookDocument:
    return load_document(version.document)
