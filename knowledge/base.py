"""KnowledgeBase: the one facade the dialogue engine, the admin and the CLI use.

It validates every write, records a revision for each change, renders reply templates,
searches the FAQ and routes an Understanding to concrete resources.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, TypeVar

import sqlite_utils
from jinja2 import Template as JinjaTemplate
from jinja2 import TemplateError, nodes

from intents.types import Area, Understanding
from knowledge import accounts
from knowledge.hours import default_holidays, open_now
from knowledge.loader import Bundle, default_bundle
from knowledge.models import FaqEntry, FaqHit, Revision, Template, User
from knowledge.records import faq_to_dict, resource_to_dict, template_to_dict
from knowledge.routing import KindChoice, route_kinds
from knowledge.store import Store
from knowledge.taxonomy import Taxonomy, load_taxonomy
from knowledge.types import Referral, Resource
from knowledge.validation import (
    ValidationError,
    parse_faq,
    parse_resource,
    parse_template,
    template_environment,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

ENTITIES = ("resource", "template", "faq")
SYSTEM_ACTOR = "system"
_CLOSENESS_NATIONAL = 2
_GROUP_KINDS = frozenset({"self_help_group", "family_group"})
# Rendered texts kept per template for repeated contexts (e.g. topic_label per topic id).
_MEMO_SIZE = 256
# Context values short and simple enough to key the memo: derived labels and numbers,
# never a person's message.
_MEMO_MAX_CHARS = 64
# jinja2 parts whose output differs between two renders with the same context.
_NONDETERMINISTIC = frozenset({"random", "lipsum", "cycler", "joiner", "namespace"})


class RenderError(RuntimeError):
    """A template could not be rendered (unknown id, missing variable, runtime error)."""


class UnknownTemplateError(RenderError, LookupError):
    """No template with this id exists."""


class ReadOnlyError(RuntimeError):
    """Writes are not allowed on a preview view made by :meth:`KnowledgeBase.with_overrides`."""


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between the store and a bundle (what an import would do)."""

    entity: str  # resource | template | faq
    entity_id: str
    action: str  # create | update
    fields: tuple[str, ...]  # changed field names (empty for create)


def _route_kinds(u: Understanding, limit: int = 5) -> tuple[KindChoice, ...]:
    return route_kinds(u, limit=limit)


def _closeness(r: Resource, area: Area | None) -> int | None:
    """0 municipal match, 1 prefectural match, 2 national; None when it does not cover area."""
    if r.coverage == "national":
        return _CLOSENESS_NATIONAL
    if area is None:
        return None
    if r.coverage == "municipality":
        code = area.municipality_code
        if code and r.municipality_code and code[:5] == r.municipality_code[:5]:
            return 0
        return None
    pref = area.prefecture_code or (area.municipality_code or "")[:2] or None
    if r.coverage == "prefecture" and pref and r.prefecture_code == pref:
        return 1
    return None


def _serves(r: Resource, u: Understanding, topics: tuple[str, ...]) -> bool:
    if r.topics and not set(r.topics) & set(topics):
        return False
    if r.audiences and u.audience != "unknown" and u.audience not in r.audiences:
        return False
    return not (r.age_groups and u.age_group != "unknown" and u.age_group not in r.age_groups)


def _is_finder(r: Resource) -> bool:
    """A national entry with no phone explains how to find the local office."""
    return r.coverage == "national" and not r.phone


class _Compiled:
    """A template ready to render: constant text, or jinja2 plus a memo of past renders."""

    __slots__ = ("constant", "jinja", "memo")

    def __init__(self, text: str) -> None:
        env = template_environment()
        ast = env.parse(text)
        self.constant: str | None = None
        self.jinja: JinjaTemplate | None = None
        # None: renders may differ for the same context (random, lipsum), never memoised.
        self.memo: dict[tuple[tuple[str, Any], ...], str] | None = None
        if all(
            isinstance(n, nodes.Output) and all(isinstance(c, nodes.TemplateData) for c in n.nodes)
            for n in ast.body
        ):
            # Plain text (most reply templates): jinja2 would only copy it, at the cost of
            # a new context per render.
            self.constant = env.from_string(text).render().strip()
            return
        self.jinja = env.from_string(text)
        used = ast.find_all((nodes.Filter, nodes.Name))
        names = {getattr(n, "name", "") for n in used}
        if not names & _NONDETERMINISTIC:
            self.memo = {}

    def render(self, context: dict[str, Any]) -> str:
        """The stripped text for ``context`` (TemplateError from jinja2 when it fails)."""
        if self.constant is not None:
            return self.constant
        assert self.jinja is not None
        key = _memo_key(context) if self.memo is not None else None
        if key is not None and self.memo is not None:
            hit = self.memo.get(key)
            if hit is not None:
                return hit
        text = self.jinja.render(**context).strip()
        if key is not None and self.memo is not None:
            if len(self.memo) >= _MEMO_SIZE:
                self.memo.clear()
            self.memo[key] = text
        return text


def _memo_key(context: dict[str, Any]) -> tuple[tuple[str, Any], ...] | None:
    """A hashable key for a context of short scalar values, else None (not memoised)."""
    for value in context.values():
        if isinstance(value, str):
            if len(value) > _MEMO_MAX_CHARS:
                return None
        elif value is not None and type(value) not in (int, bool, float):
            return None
    # The type is part of the key: 1, 1.0 and True are equal but render differently.
    return tuple(sorted((k, (type(v), v)) for k, v in context.items()))


def _group_by_kind(resources: Iterable[Resource]) -> dict[str, list[Resource]]:
    """Resources by kind, each list keeping the given order."""
    out: dict[str, list[Resource]] = {}
    for r in resources:
        out.setdefault(r.kind, []).append(r)
    return out


def _area_name(area: Area | None) -> str | None:
    if area is None:
        return None
    return area.municipality or area.prefecture


class KnowledgeBase:
    """Resources, templates, FAQ, revisions and accounts in one SQLite store."""

    def __init__(
        self,
        store: Store,
        *,
        holidays: Collection[date] | None = None,
        taxonomy: Taxonomy | None = None,
    ) -> None:
        """Wrap a migrated store; prefer :meth:`open`."""
        self.store = store
        self.holidays: Collection[date] = default_holidays() if holidays is None else holidays
        self.taxonomy = taxonomy or load_taxonomy()
        self._marker: tuple[int, int] | None = None
        self._resources: list[Resource] = []
        self._by_kind: dict[str, list[Resource]] = {}  # active resources by kind, in id order
        self._templates: dict[str, Template] = {}
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._overlay_resources: dict[str, Resource] = {}
        self._overlay_templates: dict[str, Template] = {}
        self._read_only = False
        self._steady = 0  # > 0 inside steady(): no change check per render

    # -- opening --------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        db: sqlite_utils.Database,
        *,
        load_defaults: bool = True,
        holidays: Collection[date] | None = None,
    ) -> KnowledgeBase:
        """Migrate the knowledge tables and return the knowledge base.

        On an empty store the shipped data (``knowledge/data``) is imported; on every open,
        shipped templates whose id is missing (new reply texts of a newer version) are
        added without touching edited ones.

        Args:
            db: a database from :func:`knowledge.db.connect`.
            load_defaults: import the shipped data (tests may turn this off).
            holidays: closure dates for "open now"; defaults to the shipped list.

        Returns:
            The knowledge base.

        Raises:
            knowledge.db.DatabaseError: migration failed.
            ValidationError: the shipped data is invalid (a packaging bug).
        """
        store = Store(db)
        store.migrate()
        kb = cls(store, holidays=holidays)
        if load_defaults:
            bundle = default_bundle()
            if store.is_empty():
                kb.import_bundle(bundle, actor=SYSTEM_ACTOR)
                logger.info(
                    "imported default knowledge: %d resources, %d faq, %d templates",
                    len(bundle.resources),
                    len(bundle.faq),
                    len(bundle.templates),
                )
            else:
                missing = [t for t in bundle.templates if store.get_template(t.id) is None]
                if missing:
                    kb.import_bundle(Bundle(templates=tuple(missing)), actor=SYSTEM_ACTOR)
                    logger.info("added %d new default templates", len(missing))
        return kb

    def with_overrides(
        self,
        *,
        resources: Iterable[Resource] = (),
        templates: Iterable[Template] = (),
    ) -> KnowledgeBase:
        """A read-only view in which unsaved edits replace stored values (for previews).

        Args:
            resources: checked resources (see :func:`knowledge.validation.parse_resource`).
            templates: checked templates.

        Returns:
            A KnowledgeBase sharing the store whose write methods raise ReadOnlyError.
        """
        view = KnowledgeBase(self.store, holidays=self.holidays, taxonomy=self.taxonomy)
        view._overlay_resources = {r.id: r for r in resources}
        view._overlay_templates = {t.id: t for t in templates}
        view._compiled = self._compiled
        view._read_only = True
        return view

    @contextmanager
    def steady(self) -> Iterator[None]:
        """Check for changes once for a whole block (a dialogue turn), not at every render.

        Changes committed by other connections meanwhile are seen by the next block (a
        turn renders 3–8 templates; each check is one query). Writes through this
        knowledge base's own store are seen at once.
        """
        self._refresh()
        self._steady += 1
        try:
            yield
        finally:
            self._steady -= 1

    def _refresh(self) -> None:
        if self._steady and self._marker is not None and self._marker[1] == self.store.generation:
            return
        marker = self.store.change_marker()
        if marker == self._marker:
            return
        self._resources = self.store.list_resources(active=True)
        self._by_kind = _group_by_kind(self._resources)
        self._templates = {t.id: t for t in self.store.list_templates()}
        self._marker = marker

    def _active_resources(self) -> list[Resource]:
        self._refresh()
        if not self._overlay_resources:
            return self._resources
        merged = {r.id: r for r in self._resources}
        merged.update(self._overlay_resources)
        return [r for r in merged.values() if r.active]

    def _resources_by_kind(self) -> dict[str, list[Resource]]:
        if not self._overlay_resources:
            self._refresh()
            return self._by_kind
        return _group_by_kind(self._active_resources())

    def _writable(self) -> None:
        if self._read_only:
            raise ReadOnlyError("this is a preview view; save through the real knowledge base")

    # -- templates ------------------------------------------------------------------

    def render(self, template_id: str, **context: Any) -> str:
        """Render a reply template (jinja2 sandbox, StrictUndefined), stripped of outer blanks.

        Args:
            template_id: e.g. ``"greeting"`` or ``"topic_intro.theft"``.
            **context: template variables.

        Returns:
            The text.

        Raises:
            UnknownTemplateError: no such template.
            RenderError: a variable is missing or the template fails at run time.
        """
        template = self._overlay_templates.get(template_id)
        if template is None:
            self._refresh()
            template = self._templates.get(template_id)
        if template is None:
            raise UnknownTemplateError(f"unknown template {template_id!r}")
        key = (template.id, template.text)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = _Compiled(template.text)
            if len(self._compiled) > 2000:  # edits leave stale entries; keep memory bounded
                self._compiled.clear()
            self._compiled[key] = compiled
        try:
            return compiled.render(context)
        except TemplateError as exc:
            raise RenderError(f"template {template_id!r} failed: {exc}") from exc

    def has_template(self, template_id: str) -> bool:
        """True when a template with this id exists."""
        self._refresh()
        return template_id in self._overlay_templates or template_id in self._templates

    def get_template(self, template_id: str) -> Template | None:
        """The stored template with this id."""
        return self.store.get_template(template_id)

    def list_templates(self, query: str | None = None) -> list[Template]:
        """Templates ordered by id; ``query`` filters on id, description and text (substring)."""
        items = self.store.list_templates()
        if query:
            q = query.strip().lower()
            items = [
                t for t in items if q in t.id.lower() or q in t.description.lower() or q in t.text
            ]
        return items

    def save_template(
        self, data: Template | dict[str, Any], actor: str, *, create: bool = False
    ) -> Template:
        """Validate and store a template, recording a revision.

        Args:
            data: the template or its fields ``id``, ``description``, ``text``.
            actor: who made the change (user name, ``cli``, ``system``).
            create: refuse when the id already exists.

        Returns:
            The stored template.

        Raises:
            ValidationError: invalid fields or a template that does not compile.
        """
        self._writable()
        template = parse_template(data)
        before = self.store.get_template(template.id)
        if create and before is not None:
            raise ValidationError([("id", "このIDはすでに使われています。")])
        if before == template:
            return template
        with self.store.transaction():
            self.store.put_template(template)
            self.store.add_revision(
                "template",
                template.id,
                "create" if before is None else "update",
                actor,
                None if before is None else template_to_dict(before),
                template_to_dict(template),
            )
        return template

    def delete_template(self, template_id: str, actor: str) -> None:
        """Delete a template that the bot does not ship (shipped ones can only be edited).

        Raises:
            ValidationError: unknown id, or a template the bot needs.
        """
        shipped = any(t.id == template_id for t in default_bundle().templates)
        self._delete(
            "template",
            template_id,
            actor,
            self.store.get_template,
            self.store.delete_template,
            template_to_dict,
            "その文面は見つかりません。",
            refused="この文面はボットが使うため削除できません。内容を編集してください。"
            if shipped
            else None,
        )

    # -- resources ------------------------------------------------------------------

    def get_resource(self, resource_id: str) -> Resource | None:
        """The resource with this id (active or not)."""
        return self.store.get_resource(resource_id)

    def list_resources(
        self,
        *,
        kind: str | None = None,
        active: bool | None = None,
        sample: bool | None = None,
        query: str | None = None,
    ) -> list[Resource]:
        """Resources filtered by kind/active/sample and, with ``query``, full-text matches.

        With a query, results are ordered by relevance (plus substring matches on id,
        name and phone after them); otherwise by id.
        """
        items = self.store.list_resources(kind=kind, active=active, sample=sample)
        if not query or not query.strip():
            return items
        by_id = {r.id: r for r in items}
        order = [rid for rid, _ in self.store.search_resources(query, limit=200) if rid in by_id]
        q = query.strip().lower()
        for r in items:
            if r.id not in order and (
                q in r.id.lower() or q in r.name.lower() or (r.phone and q in r.phone)
            ):
                order.append(r.id)
        return [by_id[rid] for rid in order]

    def search_resources(self, text: str, limit: int = 10) -> list[Resource]:
        """Active resources whose name/description match the text (FTS5), best first."""
        out = []
        for rid, _score in self.store.search_resources(text, limit=limit * 2):
            r = self.store.get_resource(rid)
            if r is not None and r.active:
                out.append(r)
        return out[:limit]

    def save_resource(
        self, data: Resource | dict[str, Any], actor: str, *, create: bool = False
    ) -> Resource:
        """Validate and store a resource, recording a revision.

        Args:
            data: a Resource or a mapping of its fields (YAML or admin form values).
            actor: who made the change.
            create: refuse when the id already exists.

        Returns:
            The stored (normalised) resource.

        Raises:
            ValidationError: one (field, message) per problem.
        """
        self._writable()
        resource = parse_resource(data, self.taxonomy)
        before = self.store.get_resource(resource.id)
        if create and before is not None:
            raise ValidationError([("id", "このIDはすでに使われています。")])
        if before == resource:
            return resource
        action = "create" if before is None else "update"
        if before is not None and before.active and not resource.active:
            action = "deactivate"
        self._write_resource(resource, before, action, actor)
        return resource

    def _write_resource(
        self, resource: Resource, before: Resource | None, action: str, actor: str
    ) -> None:
        with self.store.transaction():
            self.store.put_resource(resource)
            self.store.add_revision(
                "resource",
                resource.id,
                action,
                actor,
                None if before is None else resource_to_dict(before, full=True),
                resource_to_dict(resource, full=True),
            )

    def deactivate_resource(self, resource_id: str, actor: str) -> Resource:
        """Stop referring people to a resource (kept, with history; can be re-activated).

        Raises:
            ValidationError: unknown id.
        """
        self._writable()
        before = self.store.get_resource(resource_id)
        if before is None:
            raise ValidationError([("id", "その窓口は見つかりません。")])
        if not before.active:
            return before
        after = replace(before, active=False)
        self._write_resource(after, before, "deactivate", actor)
        return after

    def delete_resource(self, resource_id: str, actor: str) -> None:
        """Delete a resource for good (its revisions stay, so it can be restored).

        Raises:
            ValidationError: unknown id.
        """
        self._delete(
            "resource",
            resource_id,
            actor,
            self.store.get_resource,
            self.store.delete_resource,
            lambda r: resource_to_dict(r, full=True),
            "その窓口は見つかりません。",
        )

    def open_now(self, resource: Resource, now: datetime | None = None) -> bool | None:
        """Whether the resource is open now (Japan time); None when hours are unknown."""
        return open_now(resource, now or datetime.now().astimezone(), self.holidays)

    # -- FAQ ------------------------------------------------------------------------

    def get_faq(self, faq_id: str) -> FaqEntry | None:
        """The FAQ entry with this id."""
        return self.store.get_faq(faq_id)

    def list_faq(self, *, active: bool | None = None, query: str | None = None) -> list[FaqEntry]:
        """FAQ entries; with ``query``, full-text matches first then substring matches."""
        items = self.store.list_faq(active=active)
        if not query or not query.strip():
            return items
        by_id = {f.id: f for f in items}
        order = [fid for fid, _ in self.store.search_faq(query, limit=200) if fid in by_id]
        q = query.strip()
        for f in items:
            if f.id not in order and (
                q in f.id or q in f.answer or any(q in x for x in f.questions)
            ):
                order.append(f.id)
        return [by_id[fid] for fid in order]

    def search_faq(self, text: str, limit: int = 3) -> list[FaqHit]:
        """Active FAQ entries matching a message (FTS5 over Sudachi tokens), best first.

        Args:
            text: the person's message.
            limit: at most this many hits.

        Returns:
            Hits with a score (higher is better; bm25-based, not normalised).
        """
        out = []
        for fid, score in self.store.search_faq(text, limit=limit):
            entry = self.store.get_faq(fid)
            if entry is not None:
                out.append(FaqHit(entry=entry, score=score))
        return out

    def save_faq(
        self, data: FaqEntry | dict[str, Any], actor: str, *, create: bool = False
    ) -> FaqEntry:
        """Validate and store a FAQ entry, recording a revision.

        Raises:
            ValidationError: missing questions/answer, unknown topics, id taken on create.
        """
        self._writable()
        entry = parse_faq(data, self.taxonomy)
        before = self.store.get_faq(entry.id)
        if create and before is not None:
            raise ValidationError([("id", "このIDはすでに使われています。")])
        if before == entry:
            return entry
        action = "create" if before is None else "update"
        if before is not None and before.active and not entry.active:
            action = "deactivate"
        with self.store.transaction():
            self.store.put_faq(entry)
            self.store.add_revision(
                "faq",
                entry.id,
                action,
                actor,
                None if before is None else faq_to_dict(before),
                faq_to_dict(entry),
            )
        return entry

    def delete_faq(self, faq_id: str, actor: str) -> None:
        """Delete a FAQ entry (restorable from its revisions).

        Raises:
            ValidationError: unknown id.
        """
        self._delete(
            "faq",
            faq_id,
            actor,
            self.store.get_faq,
            self.store.delete_faq,
            faq_to_dict,
            "そのFAQは見つかりません。",
        )

    def _delete(
        self,
        entity: str,
        entity_id: str,
        actor: str,
        get: Callable[[str], T | None],
        delete: Callable[[str], None],
        to_dict: Callable[[T], dict[str, Any]],
        missing: str,
        refused: str | None = None,
    ) -> None:
        """Delete one entity and record its last content as a revision (restorable).

        Raises:
            ValidationError: ``missing`` for an unknown id, ``refused`` when it is given.
        """
        self._writable()
        before = get(entity_id)
        if before is None:
            raise ValidationError([("id", missing)])
        if refused:
            raise ValidationError([("id", refused)])
        with self.store.transaction():
            delete(entity_id)
            self.store.add_revision(entity, entity_id, "delete", actor, to_dict(before), None)

    # -- revisions ------------------------------------------------------------------

    def history(self, entity: str, entity_id: str) -> list[Revision]:
        """Revisions of one entity (resource, template, faq, user), newest first."""
        return self.store.list_revisions(entity, entity_id)

    def recent_changes(self, limit: int = 50) -> list[Revision]:
        """The latest revisions of everything, newest first."""
        return self.store.list_revisions(limit=limit)

    def get_revision(self, revision_id: int) -> Revision | None:
        """One revision by id."""
        return self.store.get_revision(revision_id)

    def restore(self, revision_id: int, actor: str) -> Revision:
        """Put an entity back to the state it had right after the given revision.

        The restore is itself recorded as a new revision (action ``restore``), so it can
        be undone the same way. The old state is validated against today's rules.

        Args:
            revision_id: the revision whose "after" state to bring back.
            actor: who restores.

        Returns:
            The new revision.

        Raises:
            ValidationError: unknown revision, a deletion record, an account revision,
                or an old state that is no longer valid.
        """
        self._writable()
        rev = self.store.get_revision(revision_id)
        if rev is None:
            raise ValidationError([("revision", "その版は見つかりません。")])
        if rev.entity not in ENTITIES:
            raise ValidationError([("revision", "アカウントの変更は復元できません。")])
        if rev.after is None:
            raise ValidationError(
                [("revision", "この版は削除の記録です。削除前の版を選んで復元してください。")]
            )
        with self.store.transaction():
            if rev.entity == "resource":
                r = parse_resource(rev.after, self.taxonomy)
                before_r = self.store.get_resource(r.id)
                self.store.put_resource(r)
                before = None if before_r is None else resource_to_dict(before_r, full=True)
                after = resource_to_dict(r, full=True)
            elif rev.entity == "template":
                t = parse_template(rev.after)
                before_t = self.store.get_template(t.id)
                self.store.put_template(t)
                before = None if before_t is None else template_to_dict(before_t)
                after = template_to_dict(t)
            else:
                f = parse_faq(rev.after, self.taxonomy)
                before_f = self.store.get_faq(f.id)
                self.store.put_faq(f)
                before = None if before_f is None else faq_to_dict(before_f)
                after = faq_to_dict(f)
            new_id = self.store.add_revision(
                rev.entity, rev.entity_id, "restore", actor, before, after
            )
        restored = self.store.get_revision(new_id)
        assert restored is not None
        logger.info("restored revision %d as %d", revision_id, new_id)
        return restored

    # -- import / export ------------------------------------------------------------

    def export_bundle(self) -> Bundle:
        """Everything in the store (active and inactive), sorted by id."""
        return Bundle(
            resources=tuple(self.store.list_resources()),
            faq=tuple(self.store.list_faq()),
            templates=tuple(self.store.list_templates()),
        )

    def diff(self, bundle: Bundle) -> list[Change]:
        """What importing the bundle would create or update (nothing is deleted by imports)."""
        out: list[Change] = []
        pairs: list[tuple[str, list[tuple[str, dict[str, Any], dict[str, Any] | None]]]] = [
            (
                "resource",
                [
                    (
                        r.id,
                        resource_to_dict(r, full=True),
                        None
                        if (b := self.store.get_resource(r.id)) is None
                        else resource_to_dict(b, full=True),
                    )
                    for r in bundle.resources
                ],
            ),
            (
                "faq",
                [
                    (
                        f.id,
                        faq_to_dict(f),
                        None if (g := self.store.get_faq(f.id)) is None else faq_to_dict(g),
                    )
                    for f in bundle.faq
                ],
            ),
            (
                "template",
                [
                    (
                        t.id,
                        template_to_dict(t),
                        None
                        if (u := self.store.get_template(t.id)) is None
                        else template_to_dict(u),
                    )
                    for t in bundle.templates
                ],
            ),
        ]
        for entity, items in pairs:
            for entity_id, new, old in items:
                if old is None:
                    out.append(Change(entity, entity_id, "create", ()))
                elif old != new:
                    names = tuple(
                        k for k in dict.fromkeys([*new, *old]) if new.get(k) != old.get(k)
                    )
                    out.append(Change(entity, entity_id, "update", names))
        return out

    def import_bundle(self, bundle: Bundle, actor: str) -> list[Change]:
        """Create or update everything in the bundle in one transaction, with revisions.

        Args:
            bundle: validated content (see :mod:`knowledge.loader`).
            actor: who imports.

        Returns:
            The changes made.
        """
        self._writable()
        changes = self.diff(bundle)
        with self.store.transaction():
            for r in bundle.resources:
                before = self.store.get_resource(r.id)
                if before != r:
                    self._write_resource(r, before, "import", actor)
            for f in bundle.faq:
                before_f = self.store.get_faq(f.id)
                if before_f != f:
                    self.store.put_faq(f)
                    self.store.add_revision(
                        "faq",
                        f.id,
                        "import",
                        actor,
                        None if before_f is None else faq_to_dict(before_f),
                        faq_to_dict(f),
                    )
            for t in bundle.templates:
                before_t = self.store.get_template(t.id)
                if before_t != t:
                    self.store.put_template(t)
                    self.store.add_revision(
                        "template",
                        t.id,
                        "import",
                        actor,
                        None if before_t is None else template_to_dict(before_t),
                        template_to_dict(t),
                    )
        return changes

    def validate_all(self) -> list[tuple[str, str]]:
        """Re-check everything stored against today's rules; returns (where, message) pairs."""
        problems: list[tuple[str, str]] = []
        for r in self.store.list_resources():
            try:
                parse_resource(r, self.taxonomy)
            except ValidationError as exc:
                problems += [(f"resource {r.id}.{f}", m) for f, m in exc.errors]
        for f in self.store.list_faq():
            try:
                parse_faq(f, self.taxonomy)
            except ValidationError as exc:
                problems += [(f"faq {f.id}.{fld}", m) for fld, m in exc.errors]
        for t in self.store.list_templates():
            try:
                parse_template(t)
            except ValidationError as exc:
                problems += [(f"template {t.id}.{fld}", m) for fld, m in exc.errors]
        shipped = {t.id for t in default_bundle().templates}
        stored = {t.id for t in self.store.list_templates()}
        for missing in sorted(shipped - stored):
            problems.append((f"template {missing}", "ボットが使う文面がありません。"))
        return problems

    # -- routing --------------------------------------------------------------------

    def route(
        self,
        u: Understanding,
        area: Area | None = None,
        limit: int = 3,
        now: datetime | None = None,
    ) -> list[Referral]:
        """Choose up to ``limit`` concrete, active resources for an Understanding.

        Resource kinds come ranked from ``knowledge.routing.route_kinds``. For each kind
        the best resource serving the topics, audience and age group is taken, preferring
        the closest coverage of the area (municipal, then prefectural, then national).
        Without an area only national resources qualify, including the entries that
        explain how to find the local office. Remaining slots are filled with further
        resources of the same kinds; a resource never appears twice.

        Args:
            u: the Understanding of the message.
            area: the person's area; defaults to ``u.area``.
            limit: at most this many referrals.
            now: the moment; among equally close and fitting resources, those open now
                come first (defaults to the current time).

        Returns:
            Referrals ranked 1..n, each with the reason shown to the person.
        """
        moment = now or datetime.now().astimezone()
        open_rank = {True: 0, None: 1, False: 2}
        area = area if area is not None else u.area
        if not (area and (area.municipality_code or area.prefecture_code)):
            area = None
        topics = tuple(t for t in u.topic_ids if t not in u.negated_topics) or ("other",)
        pools: list[tuple[KindChoice, list[tuple[int, Resource]]]] = []
        by_kind = self._resources_by_kind()
        for choice in _route_kinds(u, limit=5):
            pool: list[tuple[tuple[int, int, int, int, str], int, Resource]] = []
            for r in by_kind.get(choice.kind, ()):
                if not _serves(r, u, topics):
                    continue
                closeness = _closeness(r, area)
                if closeness is None:
                    continue
                specific = 0 if topics[0] in r.topics else (1 if r.topics else 2)
                fit = 0 if (u.age_group in r.age_groups or u.audience in r.audiences) else 1
                opened = open_rank[open_now(r, moment, self.holidays)]
                pool.append(((closeness, specific, fit, opened, r.id), closeness, r))
            pool.sort(key=lambda x: x[0])
            pools.append((choice, [(c, r) for _, c, r in pool]))
        chosen: list[tuple[KindChoice, int, Resource]] = []
        seen: set[str] = set()
        for choice, pool in pools:  # first pass: the best resource of each kind
            if len(chosen) < limit and pool:
                closeness, r = pool[0]
                chosen.append((choice, closeness, r))
                seen.add(r.id)
        for choice, pool in pools:  # second pass: more of the same kinds
            local_found = any(c < _CLOSENESS_NATIONAL for c, _ in pool)
            for closeness, r in pool[1:]:
                if len(chosen) >= limit:
                    break
                if r.id in seen or (local_found and _is_finder(r)):
                    continue
                chosen.append((choice, closeness, r))
                seen.add(r.id)
        return [
            Referral(resource=r, reason=self._reason(choice, closeness, r, area), rank=i)
            for i, (choice, closeness, r) in enumerate(chosen, start=1)
        ]

    def _reason(self, choice: KindChoice, closeness: int, r: Resource, area: Area | None) -> str:
        base = (choice.reason or "").strip()
        if base and not base.endswith(("。", "！", "？")):
            base += "。"
        if not base:
            label = self.taxonomy.resource_kinds.get(r.kind, r.kind)
            base = f"{label}の窓口です。"
        name = _area_name(area)
        if closeness == 0:
            extra = f"{name}の窓口です。" if name else "お住まいの市区町村の窓口です。"
        elif closeness == 1:
            pref_name = (area.prefecture if area else None) or name or "お住まいの都道府県"
            extra = f"{pref_name}を受け持つ窓口です。"
        elif _is_finder(r) and r.kind in _GROUP_KINDS:
            extra = "お近くの集まりの探し方をご案内します。"
        elif _is_finder(r):
            extra = (
                f"{name}の窓口はまだ登録されていないため、探し方をご案内します。"
                if name
                else "お近くの窓口の探し方をご案内します。"
            )
        else:
            extra = ""
        if r.sample:
            extra += "（サンプルです。実際の連絡先ではありません）"
        return f"{base}{extra}"

    # -- accounts -------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        role: str,
        password: str,
        *,
        office_id: str | None = None,
        actor: str = SYSTEM_ACTOR,
    ) -> User:
        """Create an account with an argon2id password hash.

        Raises:
            ValidationError: bad name/role/office, weak password, or the name is taken.
        """
        self._writable()
        accounts.check_account(name, role, office_id)
        password_hash = accounts.hash_password(password)
        if self.store.get_user(name) is not None:
            raise ValidationError([("name", "このユーザー名はすでに使われています。")])
        with self.store.transaction():
            user_id = self.store.insert_user(name, role, office_id, password_hash)
            after = {"name": name, "role": role, "office_id": office_id, "disabled": False}
            self.store.add_revision("user", name, "create", actor, None, after)
        user = self.store.get_user_by_id(user_id)
        assert user is not None
        return user

    def get_user(self, name: str) -> User | None:
        """The account with this name."""
        found = self.store.get_user(name)
        return found[0] if found else None

    def get_user_by_id(self, user_id: int) -> User | None:
        """The account with this id."""
        return self.store.get_user_by_id(user_id)

    def list_users(self) -> list[User]:
        """All accounts ordered by name."""
        return self.store.list_users()

    def verify_password(self, name: str, password: str) -> User | None:
        """Return the account when the name and password match and it is not disabled.

        Unknown names cost the same time as wrong passwords. Hashes made with weaker
        parameters are upgraded on a successful login.
        """
        found = self.store.get_user(name)
        if found is None:
            accounts.verify(None, password)
            return None
        user, password_hash = found
        if not accounts.verify(password_hash, password) or user.disabled:
            return None
        if accounts.needs_rehash(password_hash) and not self._read_only:
            self.store.update_user(name, password_hash=accounts.hasher().hash(password))
        return user

    def _change_user(self, name: str, actor: str, action: str, **fields: Any) -> User:
        found = self.store.get_user(name)
        if found is None:
            raise ValidationError([("name", "そのユーザーは見つかりません。")])
        user = found[0]
        with self.store.transaction():
            self.store.update_user(name, **fields)
            shown = {k: v for k, v in fields.items() if k != "password_hash"}
            before = {k: getattr(user, k) for k in shown}
            self.store.add_revision("user", name, action, actor, before, shown or None)
        changed = self.store.get_user_by_id(user.id)
        assert changed is not None
        return changed

    def disable_user(self, name: str, actor: str = SYSTEM_ACTOR) -> User:
        """Disable an account (it can no longer log in).

        Raises:
            ValidationError: unknown name, or the last enabled admin.
        """
        self._writable()
        user = self.get_user(name)
        if (
            user is not None
            and user.role == "admin"
            and not user.disabled
            and self.store.count_admins() <= 1
        ):
            raise ValidationError(
                [("name", "最後の管理者は無効にできません。先に別の管理者を作ってください。")]
            )
        return self._change_user(name, actor, "disable", disabled=1)

    def enable_user(self, name: str, actor: str = SYSTEM_ACTOR) -> User:
        """Enable a disabled account again.

        Raises:
            ValidationError: unknown name.
        """
        self._writable()
        return self._change_user(name, actor, "enable", disabled=0)

    def set_password(self, name: str, password: str, actor: str = SYSTEM_ACTOR) -> User:
        """Set a new password.

        Raises:
            ValidationError: unknown name or a weak password.
        """
        self._writable()
        password_hash = accounts.hash_password(password)
        return self._change_user(name, actor, "password", password_hash=password_hash)

    def has_admin(self) -> bool:
        """True when at least one enabled admin account exists."""
        return self.store.count_admins() > 0
