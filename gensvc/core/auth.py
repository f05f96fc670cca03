"""Credentials as requests auth objects: a client hands one to each request and never
changes the shared session. Their reprs never show the secret."""

from __future__ import annotations

import requests


class BearerToken(requests.auth.AuthBase):
    """``Authorization: Bearer <token>`` (Bravo)."""

    def __init__(self, token: str):
        self.token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request

    def __repr__(self) -> str:
        return "BearerToken(***)"


class HeaderCredential(requests.auth.AuthBase):
    """One header holding a credential as the service spells it, e.g. CGI's
    ``Authorization: <email> <token>`` (or a token header such as ``X-SBG-Auth-Token``)."""

    def __init__(self, header: str, value: str):
        self.header, self.value = header, value

    def __call__(self, request):
        request.headers[self.header] = self.value
        return request

    def __repr__(self) -> str:
        return f"HeaderCredential({self.header!r}, ***)"
