"""Signing a browser in when MODELHUB_API_TOKEN guards the server: the token typed once into a form
becomes an HttpOnly, SameSite=Strict cookie (derived from the token, never the token itself)."""

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from modelhub import security

bp = Blueprint("sign_in", __name__)

TOKEN_MAX_CHARS = 1024


@bp.get("/sign-in")
def sign_in_form():
    """The form asking for the server's token."""
    return render_template("sign_in/sign_in.html", next=_next_page())


@bp.post("/sign-in")
def sign_in():
    """Check the token; a right one sets the cookie and goes back to the page the user came from."""
    token = current_app.config["MODELHUB_API_TOKEN"]
    if not token:
        return redirect(_next_page(), 303)
    given = request.form.get("token", "")
    if len(given) > TOKEN_MAX_CHARS or not security.equal_secrets(given, token):
        return render_template("sign_in/sign_in.html", next=_next_page(), error="That is not the server's token."), 401
    response = redirect(_next_page(), 303)
    response.set_cookie(security.COOKIE_NAME, security.session_value(token), max_age=security.COOKIE_MAX_AGE,
                        httponly=True, samesite="Strict", secure=request.is_secure, path="/")
    return response


@bp.post("/sign-out")
def sign_out():
    """Forget the cookie; back to the Models page, read-only."""
    response = redirect(url_for("views.models.models_page"), 303)
    response.delete_cookie(security.COOKIE_NAME, path="/", httponly=True, samesite="Strict")
    return response


def _next_page() -> str:
    """Where to go after signing in: a path on this server only (never ``//elsewhere``)."""
    target = request.values.get("next", "")
    if target.startswith("/") and not target.startswith(("//", "/\\")) and len(target) < 2000:
        return target
    return url_for("views.models.models_page")
