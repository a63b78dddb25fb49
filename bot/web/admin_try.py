"""The admin's 「メッセージを試す」: what the bot understands and answers (nothing stored)."""

from __future__ import annotations

from aiohttp import web

from bot import keys
from bot.web.admin_base import STAFF, kb_of, render
from bot.web.auth import require_role
from bot.web.trial import MAX_TRIAL_CHARS, run_trial

routes = web.RouteTableDef()


@routes.get("/try")
@require_role(*STAFF)
async def try_form(request: web.Request) -> web.Response:
    """``GET /admin/try``: 「メッセージを試す」."""
    return render(request, "try.html", {"message": "", "result": None, "max": MAX_TRIAL_CHARS})


@routes.post("/try")
@require_role(*STAFF)
async def try_submit(request: web.Request) -> web.Response:
    """``POST /admin/try``: the Understanding and the exact replies (nothing is stored)."""
    post = await request.post()
    message = str(post.get("message", "")).strip()
    if not message:
        return render(
            request,
            "try.html",
            {"message": "", "result": None, "max": MAX_TRIAL_CHARS, "error": "入力してください。"},
            status=422,
        )
    result = await run_trial(kb_of(request), request.config_dict[keys.CONFIG], message)
    return render(
        request,
        "try.html",
        {"message": message[:MAX_TRIAL_CHARS], "result": result, "max": MAX_TRIAL_CHARS},
    )
