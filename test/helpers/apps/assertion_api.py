"""The CRM API of crm_api.py plus one endpoint that checks the gateway's identity assertion with
the lines docs/applications.md "Verifying who is calling (FastAPI)" gives, unchanged between the two markers.
Started by test/integration/identity-assertion.test.ts as `uvicorn assertion_api:app`, with
GATEWAY_JWKS_URL, GATEWAY_ISSUER and GATEWAY_ROUTE in its environment.
"""

from crm_api import app

# --- docs/applications.md: Verifying who is calling (FastAPI) ---
import os

import jwt
from fastapi import Depends, Header, HTTPException

JWKS = jwt.PyJWKClient(os.environ["GATEWAY_JWKS_URL"])


def gateway_identity(x_gateway_assertion: str = Header("")) -> dict:
    try:
        key = JWKS.get_signing_key_from_jwt(x_gateway_assertion).key
        return jwt.decode(
            x_gateway_assertion,
            key,
            algorithms=["ES256"],
            audience=os.environ["GATEWAY_ROUTE"],  # this app's route name in gateway.yaml
            issuer=os.environ["GATEWAY_ISSUER"],
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as e:
        raise HTTPException(status_code=401, detail=f"gateway assertion refused: {type(e).__name__}")


@app.get("/v1/me")
def me(who: dict = Depends(gateway_identity)):
    return {"user": who["sub"], "roles": who["roles"], "amr": who.get("amr"), "sid": who.get("sid")}
# --- end of docs/applications.md lines ---
