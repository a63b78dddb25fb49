"""Admin pages for the bot's reply texts (templates): list, edit, preview."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.web.admin_base import (
    STAFF,
    before_after,
    errors_summary,
    kb_of,
    not_found,
    render,
    see_other,
)
from bot.web.auth import principal_of, require_role
from bot.web.forms import TEMPLATE_LABELS, field_errors, template_data, template_values
from bot.web.trial import MAX_TRIAL_CHARS
from knowledge.validation import ValidationError

routes = web.RouteTableDef()


@routes.get("/templates")
@require_role(*STAFF)
async def template_list(request: web.Request) -> web.Response:
    """``GET /admin/templates``: reply texts, searchable."""
    q = (request.query.get("q") or "")[:200]
    return render(
        request,
        "templates.html",
        {"items": kb_of(request).list_templates(q or None), "q": q},
    )


def _template_page(
    request: web.Request,
    values: dict[str, Any],
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
    trial: dict[str, Any] | None = None,
) -> web.Response:
    errors = errors or {}
    return render(
        request,
        "template_edit.html",
        {
            "form": values,
            "errors": errors,
            "summary": errors_summary(errors, TEMPLATE_LABELS),
            "labels": TEMPLATE_LABELS,
            "trial": trial,
            "max_trial": MAX_TRIAL_CHARS,
        },
        status=status,
    )


@routes.get("/templates/{id}")
@require_role(*STAFF)
async def template_edit(request: web.Request) -> web.Response:
    """``GET /admin/templates/{id}``: edit a reply text."""
    t = kb_of(request).get_template(request.match_info["id"])
    if t is None:
        raise not_found("その文面は見つかりません。")
    return _template_page(request, template_values(t))


@routes.post("/templates/{id}")
@require_role(*STAFF)
async def template_update(request: web.Request) -> web.Response:
    """``POST /admin/templates/{id}``: save (compile errors shown) or preview."""
    kb = kb_of(request)
    template_id = request.match_info["id"]
    if kb.get_template(template_id) is None:
        raise not_found("その文面は見つかりません。")
    post = await request.post()
    values = template_data(post, template_id)
    if post.get("action") == "preview":
        from knowledge.validation import parse_template

        try:
            edited = parse_template(values)
        except ValidationError as exc:
            return _template_page(request, values, field_errors(exc), 422)
        message = str(post.get("trial_message", "")).strip()
        trial = await before_after(request, message, kb, kb.with_overrides(templates=[edited]))
        return _template_page(request, values, trial=trial)
    try:
        kb.save_template(values, actor=principal_of(request).user.name)
    except ValidationError as exc:
        return _template_page(request, values, field_errors(exc), 422)
    raise see_other(f"/templates/{template_id}", "saved")
