"""All SQL of the knowledge package: resources, templates, FAQ, revisions, users, FTS5 search.

Callers get value types, never cursors. Writes are grouped with :meth:`Store.transaction`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from knowledge.db import migrate
from knowledge.migrations import MIGRATIONS, PACKAGE
from knowledge.models import FaqEntry, Revision, Template, User
from knowledge.textindex import index_text, match_query
from knowledge.types import HoursRule, Resource

logger = logging.getLogger(__name__)

_JSON_LISTS = ("topics", "audiences", "age_groups", "how")


def utcnow() -> str:
    """The current time as ISO 8601 UTC with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _row_to_resource(row: dict[str, Any]) -> Resource:
    return Resource(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        description=row["description"],
        topics=tuple(json.loads(row["topics"])),
        audiences=tuple(json.loads(row["audiences"])),
        age_groups=tuple(json.loads(row["age_groups"])),
        coverage=row["coverage"],
        prefecture_code=row["prefecture_code"],
        municipality_code=row["municipality_code"],
        phone=row["phone"],
        url=row["url"],
        hours=tuple(
            HoursRule(tuple(h["days"]), h["opens"], h["closes"]) for h in json.loads(row["hours"])
        ),
        always_open=bool(row["always_open"]),
        hours_note=row["hours_note"],
        how=tuple(json.loads(row["how"])),
        notes=row["notes"],
        source_url=row["source_url"],
        verified_on=row["verified_on"],
        verification_note=row["verification_note"],
        sample=bool(row["sample"]),
        active=bool(row["active"]),
    )


def _resource_to_row(r: Resource) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": r.id,
        "name": r.name,
        "kind": r.kind,
        "description": r.description,
        "coverage": r.coverage,
        "prefecture_code": r.prefecture_code,
        "municipality_code": r.municipality_code,
        "phone": r.phone,
        "url": r.url,
        "hours": json.dumps(
            [{"days": list(h.days), "opens": h.opens, "closes": h.closes} for h in r.hours]
        ),
        "always_open": int(r.always_open),
        "hours_note": r.hours_note,
        "notes": r.notes,
        "source_url": r.source_url,
        "verified_on": r.verified_on,
        "verification_note": r.verification_note,
        "sample": int(r.sample),
        "active": int(r.active),
        "updated_at": utcnow(),
    }
    for name in _JSON_LISTS:
        row[name] = json.dumps(list(getattr(r, name)), ensure_ascii=False)
    return row


def _row_to_faq(row: dict[str, Any]) -> FaqEntry:
    return FaqEntry(
        id=row["id"],
        questions=tuple(json.loads(row["questions"])),
        answer=row["answer"],
        topics=tuple(json.loads(row["topics"])),
        active=bool(row["active"]),
    )


def _row_to_user(row: dict[str, Any]) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        office_id=row["office_id"],
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class Store:
    """The knowledge tables in one SQLite database (opened with :func:`knowledge.db.connect`)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        """Wrap an open database; call :meth:`migrate` before use."""
        self.db = db
        self._depth = 0
        # Bumped when a transaction of this store ends (commit or rollback): a cache loaded
        # inside a transaction that was rolled back must not match the counter again.
        self.generation = 0

    def migrate(self) -> int:
        """Bring the knowledge tables to the current schema version."""
        return migrate(self.db, PACKAGE, MIGRATIONS)

    # -- plumbing -------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.db.execute(sql, list(params))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction (nested calls join the outer one)."""
        if self._depth == 0:
            self.db.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self.db.execute("ROLLBACK")
                self.generation += 1
            raise
        self._depth -= 1
        if self._depth == 0:
            self.db.execute("COMMIT")
            self.generation += 1

    def change_marker(self) -> tuple[int, int]:
        """A value that changes whenever resources, templates or FAQ change (any connection).

        Triggers count every change to those tables (migration v003); writes to other
        tables, e.g. conversations on another connection, leave the marker alone.
        """
        row = self.db.execute("SELECT n FROM knowledge_version WHERE id = 1").fetchone()
        return (int(row[0]) if row else -1, self.generation)

    def is_empty(self) -> bool:
        """True when there are no resources, templates or FAQ entries yet."""
        for table in ("resources", "templates", "faq"):
            if self.db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
                return False
        return True

    # -- resources ------------------------------------------------------------------

    def get_resource(self, resource_id: str) -> Resource | None:
        """The resource with this id, active or not."""
        rows = self._rows("SELECT * FROM resources WHERE id = ?", [resource_id])
        return _row_to_resource(rows[0]) if rows else None

    def list_resources(
        self,
        *,
        kind: str | None = None,
        active: bool | None = None,
        sample: bool | None = None,
    ) -> list[Resource]:
        """Resources ordered by id, optionally filtered."""
        where, params = [], []
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if active is not None:
            where.append("active = ?")
            params.append(int(active))
        if sample is not None:
            where.append("sample = ?")
            params.append(int(sample))
        sql = "SELECT * FROM resources"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_row_to_resource(r) for r in self._rows(sql + " ORDER BY id", params)]

    def put_resource(self, resource: Resource) -> None:
        """Insert or replace a resource and its search index row."""
        with self.transaction():
            row = _resource_to_row(resource)
            cols = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            self.db.execute(
                f"INSERT OR REPLACE INTO resources ({cols}) VALUES ({marks})",
                list(row.values()),
            )
            self.db.execute("DELETE FROM resource_fts WHERE resource_id = ?", [resource.id])
            self.db.execute(
                "INSERT INTO resource_fts (resource_id, name, body) VALUES (?, ?, ?)",
                [
                    resource.id,
                    index_text(resource.name),
                    index_text(resource.description, resource.notes or ""),
                ],
            )

    def delete_resource(self, resource_id: str) -> None:
        """Remove a resource and its index row."""
        with self.transaction():
            self.db.execute("DELETE FROM resources WHERE id = ?", [resource_id])
            self.db.execute("DELETE FROM resource_fts WHERE resource_id = ?", [resource_id])

    def search_resources(self, text: str, limit: int = 10) -> list[tuple[str, float]]:
        """Resource ids matching the text (FTS5, bm25; name weighs double), best first."""
        query = match_query(text)
        if query is None:
            return []
        rows = self.db.execute(
            "SELECT resource_id, bm25(resource_fts, 0.0, 2.0, 1.0) AS rank FROM resource_fts "
            "WHERE resource_fts MATCH ? ORDER BY rank LIMIT ?",
            [query, limit],
        ).fetchall()
        return [(r[0], -float(r[1])) for r in rows]

    # -- templates ------------------------------------------------------------------

    def get_template(self, template_id: str) -> Template | None:
        """The template with this id."""
        rows = self._rows("SELECT * FROM templates WHERE id = ?", [template_id])
        if not rows:
            return None
        r = rows[0]
        return Template(id=r["id"], text=r["text"], description=r["description"])

    def list_templates(self) -> list[Template]:
        """All templates ordered by id."""
        return [
            Template(id=r["id"], text=r["text"], description=r["description"])
            for r in self._rows("SELECT * FROM templates ORDER BY id")
        ]

    def put_template(self, template: Template) -> None:
        """Insert or replace a template."""
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO templates (id, description, text, updated_at) "
                "VALUES (?, ?, ?, ?)",
                [template.id, template.description, template.text, utcnow()],
            )

    def delete_template(self, template_id: str) -> None:
        """Remove a template."""
        with self.transaction():
            self.db.execute("DELETE FROM templates WHERE id = ?", [template_id])

    # -- FAQ ------------------------------------------------------------------------

    def get_faq(self, faq_id: str) -> FaqEntry | None:
        """The FAQ entry with this id."""
        rows = self._rows("SELECT * FROM faq WHERE id = ?", [faq_id])
        return _row_to_faq(rows[0]) if rows else None

    def list_faq(self, *, active: bool | None = None) -> list[FaqEntry]:
        """FAQ entries ordered by id."""
        if active is None:
            rows = self._rows("SELECT * FROM faq ORDER BY id")
        else:
            rows = self._rows("SELECT * FROM faq WHERE active = ? ORDER BY id", [int(active)])
        return [_row_to_faq(r) for r in rows]

    def put_faq(self, entry: FaqEntry) -> None:
        """Insert or replace a FAQ entry and its search index row."""
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO faq (id, questions, answer, topics, active, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    entry.id,
                    json.dumps(list(entry.questions), ensure_ascii=False),
                    entry.answer,
                    json.dumps(list(entry.topics)),
                    int(entry.active),
                    utcnow(),
                ],
            )
            self.db.execute("DELETE FROM faq_fts WHERE faq_id = ?", [entry.id])
            self.db.execute(
                "INSERT INTO faq_fts (faq_id, questions, answer) VALUES (?, ?, ?)",
                [entry.id, index_text(*entry.questions), index_text(entry.answer)],
            )

    def delete_faq(self, faq_id: str) -> None:
        """Remove a FAQ entry and its index row."""
        with self.transaction():
            self.db.execute("DELETE FROM faq WHERE id = ?", [faq_id])
            self.db.execute("DELETE FROM faq_fts WHERE faq_id = ?", [faq_id])

    def search_faq(self, text: str, limit: int = 3) -> list[tuple[str, float]]:
        """Active FAQ ids matching the text (FTS5, bm25; questions weigh triple), best first."""
        query = match_query(text)
        if query is None:
            return []
        rows = self.db.execute(
            "SELECT f.faq_id, bm25(faq_fts, 0.0, 3.0, 1.0) AS rank FROM faq_fts f "
            "JOIN faq ON faq.id = f.faq_id "
            "WHERE faq_fts MATCH ? AND faq.active = 1 ORDER BY rank LIMIT ?",
            [query, limit],
        ).fetchall()
        return [(r[0], -float(r[1])) for r in rows]

    # -- revisions ------------------------------------------------------------------

    def add_revision(
        self,
        entity: str,
        entity_id: str,
        action: str,
        actor: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> int:
        """Record one change and return its revision id."""
        with self.transaction():
            cur = self.db.execute(
                "INSERT INTO revisions (entity, entity_id, action, actor, at, before, after) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    entity,
                    entity_id,
                    action,
                    actor,
                    utcnow(),
                    None if before is None else json.dumps(before, ensure_ascii=False),
                    None if after is None else json.dumps(after, ensure_ascii=False),
                ],
            )
            return int(cur.lastrowid or 0)

    @staticmethod
    def _revision(row: dict[str, Any]) -> Revision:
        return Revision(
            id=row["id"],
            entity=row["entity"],
            entity_id=row["entity_id"],
            action=row["action"],
            actor=row["actor"],
            at=row["at"],
            before=None if row["before"] is None else json.loads(row["before"]),
            after=None if row["after"] is None else json.loads(row["after"]),
        )

    def get_revision(self, revision_id: int) -> Revision | None:
        """One revision by id."""
        rows = self._rows("SELECT * FROM revisions WHERE id = ?", [revision_id])
        return self._revision(rows[0]) if rows else None

    def list_revisions(
        self, entity: str | None = None, entity_id: str | None = None, limit: int = 200
    ) -> list[Revision]:
        """Revisions newest first, optionally of one entity."""
        where, params = [], []
        if entity is not None:
            where.append("entity = ?")
            params.append(entity)
        if entity_id is not None:
            where.append("entity_id = ?")
            params.append(entity_id)
        sql = "SELECT * FROM revisions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        return [self._revision(r) for r in self._rows(sql, [*params, limit])]

    # -- users ----------------------------------------------------------------------

    def get_user(self, name: str) -> tuple[User, str] | None:
        """The account with this name and its password hash."""
        rows = self._rows("SELECT * FROM users WHERE name = ?", [name])
        return (_row_to_user(rows[0]), rows[0]["password_hash"]) if rows else None

    def get_user_by_id(self, user_id: int) -> User | None:
        """The account with this id."""
        rows = self._rows("SELECT * FROM users WHERE id = ?", [user_id])
        return _row_to_user(rows[0]) if rows else None

    def list_users(self) -> list[User]:
        """All accounts ordered by name."""
        return [_row_to_user(r) for r in self._rows("SELECT * FROM users ORDER BY name")]

    def insert_user(self, name: str, role: str, office_id: str | None, password_hash: str) -> int:
        """Create an account and return its id."""
        now = utcnow()
        with self.transaction():
            cur = self.db.execute(
                "INSERT INTO users (name, role, office_id, password_hash, disabled, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, 0, ?, ?)",
                [name, role, office_id, password_hash, now, now],
            )
            return int(cur.lastrowid or 0)

    def update_user(self, name: str, **fields: Any) -> None:
        """Change fields (role, office_id, password_hash, disabled) of an account."""
        allowed = {"role", "office_id", "password_hash", "disabled"}
        if not fields or set(fields) - allowed:
            raise ValueError(f"cannot update user fields {sorted(set(fields) - allowed)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction():
            self.db.execute(
                f"UPDATE users SET {sets}, updated_at = ? WHERE name = ?",
                [*fields.values(), utcnow(), name],
            )

    def count_admins(self) -> int:
        """Number of enabled admin accounts."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0"
        ).fetchone()
        return int(row[0])
