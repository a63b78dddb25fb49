"""Admin pages for the places to contact: list, search, edit, preview, deactivate."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot.web.admin_base import (
    STAFF,
    before_after,
    errors_summary,
    flag,
    kb_of,
    not_found,
    render,
    see_other,
)
from bot.web.auth import principal_of, require_role
from bot.web.forms import RESOURCE_LABELS, ResourceForm, field_errors
from bot.web.trial import MAX_TRIAL_CHARS
from knowledge.validation import COVERAGES, HOW_OPTIONS, ValidationError, parse_resource

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.get("/resources")
@require_role(*STAFF)
async def resource_list(request: web.Request) -> web.Response:
    """``GET /admin/resources``: search and filter (kind, coverage, sample, active)."""
    kb = kb_of(request)
    q = request.query
    kind = q.get("kind") or None
    coverage = q.get("coverage") or None
    items = kb.list_resources(
        kind=kind if kind in kb.taxonomy.resource_kinds else None,
        active=flag(q.get("active")),
        sample=flag(q.get("sample")),
        query=(q.get("q") or "")[:200] or None,
    )
    if coverage in COVERAGES:
        items = [r for r in items if r.coverage == coverage]
    return render(
        request,
        "resources.html",
        {
            "items": items,
            "filters": {k: q.get(k, "") for k in ("q", "kind", "coverage", "sample", "active")},
            "coverages": COVERAGES,
        },
    )


def _resource_page(
    request: web.Request,
    form: ResourceForm,
    *,
    is_new: bool,
    errors: dict[str, list[str]] | None = None,
    trial: dict[str, Any] | None = None,
    status: int = 200,
) -> web.Response:
    errors = errors or {}
    return render(
        request,
        "resource_edit.html",
        {
            "form": form.values,
            "is_new": is_new,
            "errors": errors,
            "summary": errors_summary(errors, RESOURCE_LABELS),
            "labels": RESOURCE_LABELS,
            "coverages": COVERAGES,
            "how_options": [(h, h) for h in HOW_OPTIONS],
            "trial": trial,
            "max_trial": MAX_TRIAL_CHARS,
        },
        status=status,
    )


@routes.get("/resources/new")
@require_role(*STAFF)
async def resource_new(request: web.Request) -> web.Response:
    """``GET /admin/resources/new``: an empty form."""
    return _resource_page(request, ResourceForm.empty(), is_new=True)


@routes.post("/resources/new")
@require_role(*STAFF)
async def resource_create(request: web.Request) -> web.Response:
    """``POST /admin/resources/new``: create (or preview) a resource."""
    return await _resource_post(request, None)


@routes.get("/resources/{id}")
@require_role(*STAFF)
async def resource_edit(request: web.Request) -> web.Response:
    """``GET /admin/resources/{id}``: the edit form."""
    r = kb_of(request).get_resource(request.match_info["id"])
    if r is None:
        raise not_found("その窓口は見つかりません。")
    return _resource_page(request, ResourceForm.from_resource(r), is_new=False)


@routes.post("/resources/{id}")
@require_role(*STAFF)
async def resource_update(request: web.Request) -> web.Response:
    """``POST /admin/resources/{id}``: save, or preview the unsaved edit in a trial."""
    resource_id = request.match_info["id"]
    if kb_of(request).get_resource(resource_id) is None:
        raise not_found("その窓口は見つかりません。")
    return await _resource_post(request, resource_id)


async def _resource_post(request: web.Request, resource_id: str | None) -> web.Response:
    kb = kb_of(request)
    p = principal_of(request)
    post = await request.post()
    form = ResourceForm.from_post(post, resource_id)
    is_new = resource_id is None
    if post.get("action") == "preview":
        message = str(post.get("trial_message", "")).strip()
        try:
            edited = parse_resource(form.data(), kb.taxonomy)
        except ValidationError as exc:
            return _resource_page(
                request, form, is_new=is_new, errors=field_errors(exc), status=422
            )
        trial = await before_after(request, message, kb, kb.with_overrides(resources=[edited]))
        return _resource_page(request, form, is_new=is_new, trial=trial)
    try:
        saved = kb.save_resource(form.data(), actor=p.user.name, create=is_new)
    except ValidationError as exc:
        return _resource_page(request, form, is_new=is_new, errors=field_errors(exc), status=422)
    logger.info("resource saved by user id %d", p.user.id)
    raise see_other(f"/resources/{saved.id}", "created" if is_new else "saved")


@routes.post("/resources/{id}/deactivate")
@require_role(*STAFF)
async def resource_deactivate(request: web.Request) -> web.Response:
    """``POST /admin/resources/{id}/deactivate``: stop referring people to it."""
    kb = kb_of(request)
    try:
        kb.deactivate_resource(request.match_info["id"], actor=principal_of(request).user.name)
    except ValidationError as exc:
        raise not_found(exc.errors[0][1]) from exc
    raise see_other(f"/resources/{request.match_info['id']}", "deactivated")
