"""The org-wide term catalog: who must sign off a draft's terms, and what a publication changes.

A term key means one thing across the organization, with one owner everywhere. The owner belongs
to the catalog, not to any one playbook, so:

- a playbook of any scope that defines a catalog term, or changes its definition (a rule acting
  on it included), needs the catalog owner's sign-off;
- a playbook that names another owner for a catalog term proposes an owner change: it needs the
  current (catalog) owner's sign-off and the new owner's, and publishing it moves the term;
- a term key the catalog does not know enters it at publication, with its owner, who signs off;
- a term's kind is part of what its key means: a playbook cannot give a catalog term another kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.orm import Session

from governance.audit import service as audit
from governance.auth.principal import Principal
from governance.engine.document import PlaybookDocument
from governance.errors import NotFound
from governance.playbooks.models import CatalogTerm
from governance.playbooks.repository import PlaybookRepository
from governance.problems import Problem


class SignoffReason(StrEnum):
    """Why a term of a draft needs sign-off, and from whom."""

    new_term = "new_term"  # a key the catalog does not know: its owner signs and it enters
    defined = "defined"  # a catalog term this playbook did not define before: the catalog owner
    changed = "changed"  # its definition (or a rule acting on it) changed: the catalog owner
    owner_change = "owner_change"  # another owner than the catalog's: the current and new owner
    removed = "removed"  # no longer in this playbook: the catalog owner


@dataclass(frozen=True, slots=True)
class TermSignoff:
    key: str
    reason: SignoffReason
    groups: tuple[str, ...]


def changed_keys(before: PlaybookDocument | None, after: PlaybookDocument) -> set[str]:
    """Terms whose definition differs between the documents (a rule acting on a term is part of
    the term's definition)."""
    old_terms = {t.key: t for t in before.terms} if before else {}
    new_terms = {t.key: t for t in after.terms}
    changed = {
        key
        for key in old_terms.keys() | new_terms.keys()
        if key not in old_terms
        or key not in new_terms
        or old_terms[key].model_dump() != new_terms[key].model_dump()
    }
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
    return changed


def signoffs_needed(
    catalog: Mapping[str, CatalogTerm], before: PlaybookDocument | None, after: PlaybookDocument
) -> list[TermSignoff]:
    """Every term of `after` (against the playbook's live version `before`) that needs sign-off,
    with the groups that must give it: in the draft's order, removed terms last."""
    changed = changed_keys(before, after)
    old_terms = {t.key: t for t in before.terms} if before else {}
    out: list[TermSignoff] = []
    for term in after.terms:
        entry = catalog.get(term.key)
        if entry is None:
            if term.key in changed:
                out.append(TermSignoff(term.key, SignoffReason.new_term, (term.owner,)))
        elif term.owner != entry.owner:
            # Even when this playbook's own definition did not change: the document disagrees
            # with the catalog, and only the catalog's owner may hand the term over.
            groups = tuple(sorted({entry.owner, term.owner}))
            out.append(TermSignoff(term.key, SignoffReason.owner_change, groups))
        elif term.key in changed:
            reason = SignoffReason.changed if term.key in old_terms else SignoffReason.defined
            out.append(TermSignoff(term.key, reason, (entry.owner,)))
    for key in sorted(changed - {t.key for t in after.terms}):
        entry = catalog.get(key)
        owner = entry.owner if entry is not None else old_terms[key].owner
        out.append(TermSignoff(key, SignoffReason.removed, (owner,)))
    return out


def required_groups(signoffs: Iterable[TermSignoff]) -> list[str]:
    return sorted({group for signoff in signoffs for group in signoff.groups})


def kind_problems(catalog: Mapping[str, CatalogTerm], doc: PlaybookDocument) -> list[Problem]:
    """Terms that give a catalog key another kind than the catalog's."""
    return [
        Problem(
            ("terms", i, "kind"),
            f"{term.key} is a {catalog[term.key].kind} term in the term catalog; "
            f"a playbook cannot make it a {term.kind} term",
        )
        for i, term in enumerate(doc.terms)
        if term.key in catalog and catalog[term.key].kind != term.kind
    ]


def catalog_for(session: Session, *docs: PlaybookDocument | None) -> dict[str, CatalogTerm]:
    """The catalog entries of every term key the documents name."""
    keys = {t.key for doc in docs if doc is not None for t in doc.terms}
    return PlaybookRepository(session).catalog(keys)


def publish_terms(
    session: Session,
    actor: Principal,
    doc: PlaybookDocument,
    signoffs: Iterable[TermSignoff],
    source: str,
) -> None:
    """Bring the catalog up to a publication its owners signed off: new keys enter it, owner
    changes move their terms, and a changed label follows the new definition."""
    repo = PlaybookRepository(session)
    catalog = repo.catalog({t.key for t in doc.terms})
    reasons = {s.key: s.reason for s in signoffs}
    for term in doc.terms:
        entry = catalog.get(term.key)
        if entry is None:
            repo.add_catalog_term(
                CatalogTerm(
                    key=term.key, label=term.label, kind=term.kind, owner=term.owner, source=source
                )
            )
            audit.record(
                session, actor, "term.added", "term", term.key,
                after={"label": term.label, "kind": term.kind, "owner": term.owner,
                       "source": source},
            )  # fmt: skip
            continue
        if reasons.get(term.key) not in (SignoffReason.owner_change, SignoffReason.changed):
            continue
        before = {"label": entry.label, "owner": entry.owner, "source": entry.source}
        if term.owner != entry.owner:
            entry.owner = term.owner
        if term.label is not None and term.label != entry.label:
            entry.label = term.label
        if (entry.label, entry.owner) == (before["label"], before["owner"]):
            continue
        entry.source = source
        action = "term.owner_changed" if before["owner"] != entry.owner else "term.updated"
        audit.record(
            session, actor, action, "term", term.key,
            before=before,
            after={"label": entry.label, "owner": entry.owner, "source": source},
        )  # fmt: skip
    session.flush()


def list_terms(session: Session, owner: str | None = None) -> list[CatalogTerm]:
    return list(PlaybookRepository(session).catalog_terms(owner=owner))


def get_term(session: Session, key: str) -> CatalogTerm:
    term = PlaybookRepository(session).catalog_term(key)
    if term is None:
        raise NotFound(f"the term catalog has no term {key!r}")
    return term


def owner_groups(session: Session) -> set[str]:
    """Every group that owns a catalog term."""
    return {term.owner for term in PlaybookRepository(session).catalog_terms()}
