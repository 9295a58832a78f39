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
from governance.playbooks import catalog
from governance.playbooks.models import Playbook, PlaybookVersion, Signoff, VersionStatus
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
    needed = _signoffs_needed(session, playbook, version)
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


def _signoffs_needed(
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
    _check_catalog_kinds(session, doc)
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
    required = catalog.required_groups(_signoffs_needed(session, playbook, version))
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
    needed = _signoffs_needed(session, playbook, version)
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
            version = _add_draft(session, actor, playbook, doc)
            outcome = "created"
    created = outcome == "created"
    if not publish_now:
        return version, outcome, created
    if actor.role is not Role.admin:
        raise Forbidden("only an admin may publish on import")
    playbook = get_playbook(session, doc.key)
    required = catalog.required_groups(_signoffs_needed(session, playbook, version))
    for group in required:
        sign_off(session, actor, doc.key, version.number, group, "admin sign-off on import")
    return publish(session, actor, doc.key, version.number), "published", created


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
