"""Admin pages for the change history: a field diff per revision, and restore."""

from __future__ import annotations

from aiohttp import web

from bot.web.admin_base import STAFF, kb_of, not_found, render, see_other
from bot.web.auth import principal_of, require_role
from bot.web.forms import FAQ_LABELS, RESOURCE_LABELS, TEMPLATE_LABELS, revision_rows
from knowledge.base import ENTITIES
from knowledge.validation import ValidationError

_LABELS_BY_ENTITY = {"resource": RESOURCE_LABELS, "template": TEMPLATE_LABELS, "faq": FAQ_LABELS}

routes = web.RouteTableDef()


@routes.get("/history/{entity}/{id}")
@require_role(*STAFF)
async def history(request: web.Request) -> web.Response:
    """``GET /admin/history/{entity}/{id}``: every revision with a field diff and restore."""
    entity = request.match_info["entity"]
    if entity not in ENTITIES:
        raise not_found()
    entity_id = request.match_info["id"]
    revisions = kb_of(request).history(entity, entity_id)
    if not revisions:
        raise not_found("履歴がありません。")
    labels = _LABELS_BY_ENTITY[entity]
    items = [(rev, revision_rows(rev, labels)) for rev in revisions]
    return render(
        request,
        "history.html",
        {"entity": entity, "entity_id": entity_id, "items": items},
    )


@routes.post("/revisions/{rev}/restore")
@require_role(*STAFF)
async def restore(request: web.Request) -> web.Response:
    """``POST /admin/revisions/{rev}/restore``: bring back the state after that revision."""
    kb = kb_of(request)
    try:
        rev_id = int(request.match_info["rev"])
    except ValueError as exc:
        raise not_found() from exc
    rev = kb.get_revision(rev_id)
    if rev is None or rev.entity not in ENTITIES:
        raise not_found("その版は見つかりません。")
    try:
        kb.restore(rev_id, actor=principal_of(request).user.name)
    except ValidationError as exc:
        labels = _LABELS_BY_ENTITY[rev.entity]
        revisions = kb.history(rev.entity, rev.entity_id)
        return render(
            request,
            "history.html",
            {
                "entity": rev.entity,
                "entity_id": rev.entity_id,
                "items": [(r, revision_rows(r, labels)) for r in revisions],
                "summary": [m for _, m in exc.errors],
            },
            status=422,
        )
    raise see_other(f"/history/{rev.entity}/{rev.entity_id}", "restored")
