"""GET /exam: the one page a candidate uses, from ticket to receipt.

The page is static apart from its strings; everything else comes from the
candidate API (docs/api.md), which the load tests use too."""

from __future__ import annotations

from aiohttp import web

from cbt.numbers import DECIMAL_MARK
from cbt.platform import appkeys
from cbt.platform.templating import language, render

# The strings the page's script shows, sent as JSON data (not script) so the
# Content-Security-Policy needs no inline script.
SCRIPT_STRING_PREFIX = "exam."


async def page(request: web.Request) -> web.Response:
    catalogs = request.app[appkeys.CATALOGS]
    lang = language(request)
    strings = {
        k[len(SCRIPT_STRING_PREFIX) :]: catalogs.translate(lang, k)
        for k in catalogs.catalog("vi")
        if k.startswith(SCRIPT_STRING_PREFIX)
    }
    # Points and scores in the reader's way, as the templates' num() writes them.
    strings["decimal_mark"] = DECIMAL_MARK[lang]
    return render(request, "exam/page.html", {"strings": strings})
