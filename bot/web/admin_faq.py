"""Admin pages for the FAQ: list, search, create, edit."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.web.admin_base import STAFF, errors_summary, flag, kb_of, not_found, render, see_other
from bot.web.auth import principal_of, require_role
from bot.web.forms import FAQ_LABELS, faq_data, faq_values, field_errors
from knowledge.validation import ValidationError

routes = web.RouteTableDef()


@routes.get("/faq")
@require_role(*STAFF)
async def faq_list(request: web.Request) -> web.Response:
    """``GET /admin/faq``: FAQ entries, searchable (full text and substring)."""
    q = (request.query.get("q") or "")[:200]
    active = flag(request.query.get("active"))
    items = kb_of(request).list_faq(active=active, query=q or None)
    return render(
        request,
        "faq.html",
        {"items": items, "q": q, "active": request.query.get("active", "")},
    )


def _faq_page(
    request: web.Request,
    values: dict[str, Any],
    *,
    is_new: bool,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> web.Response:
    errors = errors or {}
    return render(
        request,
        "faq_edit.html",
        {
            "form": values,
            "is_new": is_new,
            "errors": errors,
            "summary": errors_summary(errors, FAQ_LABELS),
            "labels": FAQ_LABELS,
        },
        status=status,
    )


@routes.get("/faq/new")
@require_role(*STAFF)
async def faq_new(request: web.Request) -> web.Response:
    """``GET /admin/faq/new``: an empty FAQ form."""
    values = {"id": "", "questions": "", "answer": "", "topics": [], "active": True}
    return _faq_page(request, values, is_new=True)


@routes.post("/faq/new")
@require_role(*STAFF)
async def faq_create(request: web.Request) -> web.Response:
    """``POST /admin/faq/new``: create a FAQ entry."""
    return await _faq_post(request, None)


@routes.get("/faq/{id}")
@require_role(*STAFF)
async def faq_edit(request: web.Request) -> web.Response:
    """``GET /admin/faq/{id}``: edit a FAQ entry."""
    f = kb_of(request).get_faq(request.match_info["id"])
    if f is None:
        raise not_found("そのFAQは見つかりません。")
    return _faq_page(request, faq_values(f), is_new=False)


@routes.post("/faq/{id}")
@require_role(*STAFF)
async def faq_update(request: web.Request) -> web.Response:
    """``POST /admin/faq/{id}``: save a FAQ entry."""
    if kb_of(request).get_faq(request.match_info["id"]) is None:
        raise not_found("そのFAQは見つかりません。")
    return await _faq_post(request, request.match_info["id"])


async def _faq_post(request: web.Request, faq_id: str | None) -> web.Response:
    kb = kb_of(request)
    post = await request.post()
    data = faq_data(post, faq_id)
    values = {**data, "questions": "\n".join(data["questions"])}
    try:
        saved = kb.save_faq(data, actor=principal_of(request).user.name, create=faq_id is None)
    except ValidationError as exc:
        return _faq_page(
            request, values, is_new=faq_id is None, errors=field_errors(exc), status=422
        )
    raise see_other(f"/faq/{saved.id}", "created" if faq_id is None else "saved")
