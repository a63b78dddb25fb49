"""Admin import and export: the knowledge as a zip of YAML files, with a diff first."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from aiohttp import web

from bot.web.admin_base import JST, STAFF, kb_of, render, see_other
from bot.web.auth import principal_of, require_role
from bot.web.bundles import export_zip, read_upload
from knowledge.validation import ValidationError

routes = web.RouteTableDef()


@routes.get("/export")
@require_role(*STAFF)
async def export(request: web.Request) -> web.Response:
    """``GET /admin/export``: download everything as a zip of YAML files."""
    body = export_zip(kb_of(request).export_bundle())
    stamp = datetime.now(JST).strftime("%Y%m%d-%H%M")
    return web.Response(
        body=body,
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="tsunagu-knowledge-{stamp}.zip"'},
    )


@routes.get("/import")
@require_role(*STAFF)
async def import_form(request: web.Request) -> web.Response:
    """``GET /admin/import``: upload a zip or YAML file."""
    return render(request, "import.html", {"changes": None})


@routes.post("/import")
@require_role(*STAFF)
async def import_upload(request: web.Request) -> web.Response:
    """``POST /admin/import``: validate the upload and show what would change."""
    post = await request.post()
    upload = post.get("file")
    if isinstance(upload, web.FileField):
        filename, data = upload.filename or "", upload.file.read()
    else:
        filename, data = "", b""
    return _import_preview(request, filename, data)


def _import_preview(request: web.Request, filename: str, data: bytes) -> web.Response:
    try:
        bundle = read_upload(filename, data)
    except ValidationError as exc:
        return render(
            request,
            "import.html",
            {"changes": None, "summary": [f"{f}: {m}" for f, m in exc.errors]},
            status=422,
        )
    changes = kb_of(request).diff(bundle)
    return render(
        request,
        "import.html",
        {
            "changes": changes,
            "filename": filename,
            "payload": base64.b64encode(data).decode("ascii"),
            "counts": (len(bundle.resources), len(bundle.faq), len(bundle.templates)),
        },
    )


@routes.post("/import/confirm")
@require_role(*STAFF)
async def import_confirm(request: web.Request) -> web.Response:
    """``POST /admin/import/confirm``: import the previewed file (validated again)."""
    post = await request.post()
    try:
        data = base64.b64decode(str(post.get("payload", "")), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    filename = str(post.get("filename", ""))[:200]
    try:
        bundle = read_upload(filename, data)
    except ValidationError:
        return _import_preview(request, filename, data)
    changes = kb_of(request).import_bundle(bundle, actor=principal_of(request).user.name)
    raise see_other("/import", "imported" if changes else "nothing")
