"""A small but real CRM API for the gateway's tests: FastAPI (Debian's python3-fastapi 0.92) under
uvicorn (python3-uvicorn 0.17), started by test/helpers/real-crm-api.ts as uvicorn's docs say:

    python3 -m uvicorn crm_api:app --app-dir test/helpers/apps --host 127.0.0.1 --port N

Nothing here is written for the gateway: redirects, cookies, 422 bodies, websockets and streaming
are FastAPI's and Starlette's own, so the tests see what a real application sends. The one test
aid is the request log (`/_test/requests`), read by the tests straight from the app (never
through the gateway) to assert what the upstream received, or that it received nothing.

Environment: CRM_STREAM_CHUNKS / CRM_STREAM_INTERVAL_MS shape /v1/reports/stream;
WHATSAPP_APP_SECRET lets the webhook receiver check Meta's signature itself.
"""

import asyncio
import hashlib
import hmac
import json
import os
import time
from typing import Dict, List, Literal, Optional

from fastapi import FastAPI, File, Form, Header, Path, Query, Request, Response, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel, Field

app = FastAPI(title="CRM API (test bed)")

# Every request the app received except the log's own, oldest first.
REQUESTS: List[Dict[str, object]] = []
COMPANIES: List[Dict[str, object]] = [{"id": 1, "name": "Acme SL", "vat": "ESB12345678"}]
WEBHOOKS: List[Dict[str, object]] = []
# Time at which each chunk of each stream run was produced (to prove the gateway does not buffer).
STREAM_RUNS: Dict[str, List[float]] = {}

LOG_PATH = "/_test/requests"


@app.middleware("http")
async def record(request: Request, call_next):
    if not request.url.path.startswith("/_test/"):
        REQUESTS.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                # Raw header list: duplicates and order as received.
                "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]],
                "client": request.client.host if request.client else None,
                "scheme": request.url.scheme,
            }
        )
    return await call_next(request)


@app.get(LOG_PATH)
async def request_log() -> List[Dict[str, object]]:
    return REQUESTS


@app.delete(LOG_PATH, status_code=204)
async def clear_request_log() -> Response:
    REQUESTS.clear()
    return Response(status_code=204)


@app.get("/_test/streams/{run}")
async def stream_run(run: str) -> List[float]:
    return STREAM_RUNS.get(run, [])


@app.get("/_test/webhooks")
async def webhook_log() -> List[Dict[str, object]]:
    return WEBHOOKS


# ---------------------------------------------------------------- public


@app.get("/public/hello")
async def hello() -> Dict[str, str]:
    return {"hello": "world"}


@app.get("/public/headers")
@app.get("/v1/echo/headers")
async def echo_headers(request: Request) -> Dict[str, object]:
    """What the app saw: the Host, the forwarding headers, the gateway's identity headers, and
    the URL Starlette built from them (what url_for and redirects use)."""
    h = request.headers
    return {
        "host": h.get("host"),
        "url": str(request.url),
        "base_url": str(request.base_url),
        "scheme": request.url.scheme,
        "client": request.client.host if request.client else None,
        "x_forwarded": {k: v for k, v in h.items() if k.startswith("x-forwarded-")},
        "forwarded": h.getlist("forwarded"),
        "x_gateway": {k: v for k, v in h.items() if k.startswith("x-gateway-")},
        "cookie": h.get("cookie"),
        "authorization": h.get("authorization"),
    }


# ---------------------------------------------------------------- companies


class CompanyIn(BaseModel):
    name: str = Field(..., min_length=2, max_length=120)
    vat: str = Field(..., regex=r"^ES[A-Z0-9]{9}$")
    employees: int = Field(0, ge=0)
    email: Optional[str] = None


# Declared with the trailing slash, as FastAPI's tutorials do: GET /v1/companies is then
# Starlette's redirect_slashes 307 to the URL built from the request (scheme, Host).
@app.get("/v1/companies/")
async def list_companies() -> List[Dict[str, object]]:
    return COMPANIES


@app.post("/v1/companies/", status_code=201)
async def create_company(company: CompanyIn) -> Dict[str, object]:
    entry = {"id": len(COMPANIES) + 1, **company.dict()}
    COMPANIES.append(entry)
    return entry


@app.get("/v1/companies/{company_id}", name="company_detail")
async def company_detail(company_id: int) -> Dict[str, object]:
    for c in COMPANIES:
        if c["id"] == company_id:
            return c
    return JSONResponse({"detail": "Not Found"}, status_code=404)


@app.get("/v1/companies/by-vat/{vat}")
async def company_by_vat(vat: str, request: Request) -> Response:
    """A url_for() redirect: the absolute URL Starlette builds from the request."""
    for c in COMPANIES:
        if c["vat"] == vat:
            return RedirectResponse(request.url_for("company_detail", company_id=c["id"]), status_code=303)
    return JSONResponse({"detail": "Not Found"}, status_code=404)


# ---------------------------------------------------------------- redirects an app might send


@app.get("/v1/redirect")
async def redirect_to(to: str, status: int = 302, header: str = "location") -> Response:
    """Sends back the URL it is given as Location, Content-Location or Refresh: the hostile
    variants (look-alike hosts, other ports) come from a real application's response path."""
    if header == "refresh":
        return PlainTextResponse("moved", headers={"refresh": f"0; url={to}"})
    if header == "content-location":
        return JSONResponse({"ok": True}, headers={"content-location": to})
    return RedirectResponse(to, status_code=status)


# ---------------------------------------------------------------- cookies


@app.post("/v1/session")
@app.get("/v1/session")
async def set_cookies(request: Request, domain: Optional[str] = None) -> Response:
    """Two cookies the way FastAPI apps set them: one scoped to a Domain (127.0.0.1 unless another
    is asked for), one plain."""
    response = JSONResponse({"ok": True})
    response.set_cookie("crm_pref", "lang-es", domain=domain or "127.0.0.1", path="/", httponly=True, samesite="lax")
    response.set_cookie("crm_plain", "1")
    return response


# ---------------------------------------------------------------- validation


@app.post("/v1/contacts/")
async def create_contact(company: CompanyIn) -> Dict[str, object]:
    """FastAPI's own 422 for a body that fails the model, passed by the gateway byte for byte."""
    return {"ok": True, "company": company.dict()}


# ---------------------------------------------------------------- contact records (OpenAPI validation)


class ContactRecord(BaseModel):
    """A CRM contact of 15 fields: what the gateway's OpenAPI validation checks, from this app's
    own /openapi.json, before the app sees it."""

    first_name: str = Field(..., min_length=1, max_length=80)
    last_name: str = Field(..., min_length=1, max_length=80)
    email: str = Field(..., regex=r"^[^@\s]+@[^@\s]+$", max_length=254)
    phone: Optional[str] = Field(None, max_length=32)
    company: Optional[str] = Field(None, max_length=120)
    job_title: Optional[str] = None
    status: Literal["lead", "prospect", "customer", "lost"] = "lead"
    source: Optional[str] = None
    owner_id: int = Field(..., ge=1)
    score: float = Field(0, ge=0, le=100)
    tags: List[str] = Field(default_factory=list, max_items=20)
    newsletter: bool = False
    city: Optional[str] = None
    country: str = Field("ES", min_length=2, max_length=2)
    notes: Optional[str] = Field(None, max_length=2000)


@app.post("/v1/contact-records/", status_code=201)
async def create_contact_record(
    contact: ContactRecord, request: Request, x_tenant: str = Header(..., regex=r"^[a-z]{2,16}$")
) -> Dict[str, object]:
    """Answers with a digest of the raw body it received, to compare with what the client sent."""
    body = await request.body()
    return {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body), "tenant": x_tenant, "owner_id": contact.owner_id}


@app.get("/v1/contact-records/{record_id}")
async def contact_record(
    record_id: int = Path(..., ge=1),
    view: Literal["short", "full"] = "short",
    limit: int = Query(10, ge=1, le=100),
) -> Dict[str, object]:
    return {"id": record_id, "view": view, "limit": limit}


# ---------------------------------------------------------------- upload


@app.post("/v1/attachments/")
async def upload(file: UploadFile = File(...), note: str = Form("")) -> Dict[str, object]:
    digest = hashlib.sha256()
    size = 0
    while True:
        chunk = await file.read(64 * 1024)
        if not chunk:
            break
        size += len(chunk)
        digest.update(chunk)
    return {"filename": file.filename, "content_type": file.content_type, "size": size, "sha256": digest.hexdigest(), "note": note}


# ---------------------------------------------------------------- streaming


@app.get("/v1/reports/stream")
async def stream_report(run: str = "default", chunks: Optional[int] = None, interval_ms: Optional[int] = None) -> StreamingResponse:
    n = chunks if chunks is not None else int(os.environ.get("CRM_STREAM_CHUNKS", "5"))
    pause = (interval_ms if interval_ms is not None else int(os.environ.get("CRM_STREAM_INTERVAL_MS", "500"))) / 1000
    produced = STREAM_RUNS.setdefault(run, [])

    async def rows():
        for i in range(n):
            if i > 0:
                await asyncio.sleep(pause)
            produced.append(time.time() * 1000)
            yield (json.dumps({"row": i, "of": n}) + "\n").encode()

    return StreamingResponse(rows(), media_type="application/x-ndjson")


# ---------------------------------------------------------------- websocket


@app.websocket("/v1/ws/echo")
async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(json.dumps({"hello": websocket.headers.get("host"), "path": websocket.url.path}))
    try:
        while True:
            message = await websocket.receive_text()
            await websocket.send_text(message)
    except WebSocketDisconnect:
        pass


# ---------------------------------------------------------------- WhatsApp webhook


@app.post("/webhook/whatsapp")
async def whatsapp(request: Request) -> Dict[str, object]:
    """The CRM API's receiver for the payloads the gateway verified and delivers: it checks Meta's
    signature itself too when it knows the app secret (defence in depth), then records the message ids."""
    body = await request.body()
    secret = os.environ.get("WHATSAPP_APP_SECRET")
    signature = request.headers.get("x-hub-signature-256", "")
    signature_ok = None
    if secret:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        signature_ok = hmac.compare_digest(expected, signature)
        if not signature_ok:
            return JSONResponse({"detail": "bad signature"}, status_code=401)
    payload = json.loads(body)
    ids = [
        m.get("id")
        for e in payload.get("entry", [])
        for c in e.get("changes", [])
        for m in c.get("value", {}).get("messages", [])
    ]
    WEBHOOKS.append(
        {
            "ids": ids,
            "sha256": hashlib.sha256(body).hexdigest(),
            "verified_header": request.headers.get("x-gateway-webhook-verified"),
            "signature_ok": signature_ok,
        }
    )
    return {"received": len(ids)}
