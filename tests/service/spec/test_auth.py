"""[auth]: each type compiles to what every request carries (a header) or to OAuth2 client
credentials; values from ${NAME} are secrets, the encoded ones too; mistakes are named."""

from __future__ import annotations

import base64
import re

import pytest

from service import SpecError, parse_spec
from service.spec import ClientCredentials

BASE = (
    '[api]\nurl = "https://api.test/v1/{k}"\n[input]\nkey = "k"\n[output.columns]\nname = { path = "name" }\n'
)
ENV = {"TOKEN": "t0ken-value", "USER": "ann", "PASS": "pa:ss", "KEY": "k3y", "SECRET": "cl1ent-secret"}


def compiled(auth: str, base: str = BASE):
    return parse_spec(base + "[auth]\n" + auth, environ=ENV)


@pytest.mark.parametrize(
    ("auth", "header", "secret"),
    [
        ('type = "bearer"\ntoken = "${TOKEN}"\n', ("Authorization", "Bearer t0ken-value"), "t0ken-value"),
        (
            'type = "basic"\nusername = "${USER}"\npassword = "${PASS}"\n',
            ("Authorization", "Basic " + base64.b64encode(b"ann:pa:ss").decode()),
            base64.b64encode(b"ann:pa:ss").decode(),
        ),
        ('type = "header"\nname = "X-Api-Key"\nvalue = "${KEY}"\n', ("X-Api-Key", "k3y"), "k3y"),
    ],
)
def test_a_header_type_adds_its_header_and_its_secret(
    auth: str, header: tuple[str, str], secret: str
) -> None:
    spec = compiled(auth)
    assert header in spec.request.headers
    assert header[1] in spec.secrets
    assert secret in spec.secrets
    assert spec.oauth is None


def test_oauth2_client_credentials_compile_resolved() -> None:
    spec = compiled(
        'type = "oauth2_client_credentials"\ntoken_url = "https://auth.test/token"\nclient_id = "c1"\n'
        'client_secret = "${SECRET}"\nscope = "read write"\naudience = "api"\nextra = { resource = "r" }\n'
    )
    assert spec.oauth == ClientCredentials(
        "https://auth.test/token", "c1", "cl1ent-secret", "read write", "api", {"resource": "r"}
    )
    assert "cl1ent-secret" in spec.secrets
    assert not any(name == "Authorization" for name, _ in spec.request.headers)


@pytest.mark.parametrize(
    ("auth", "problem"),
    [
        (
            'type = "magic"\n',
            "auth: Input tag 'magic' found using 'type' does not match any of the expected tags",
        ),
        ('type = "bearer"\n', "auth.bearer.token: required field is missing"),
        (
            'type = "bearer"\ntoken = "x"\nscope = "s"\n',
            "auth.bearer.scope: unknown field (check its spelling)",
        ),
        ('type = "bearer"\ntoken = "{k}"\n', "auth.token: cannot reference columns"),
        ('type = "bearer"\ntoken = "${MISSING}"\n', "auth.token: environment variable 'MISSING' is not set"),
        (
            'type = "header"\nname = "Bad Header"\nvalue = "v"\n',
            "auth.header.name: String should match pattern",
        ),
        (
            'type = "oauth2_client_credentials"\ntoken_url = "ftp://auth.test"\n'
            'client_id = "c"\nclient_secret = "s"\n',
            "auth.token_url: must be an absolute http(s) URL, got 'ftp://auth.test'",
        ),
    ],
)
def test_each_mistake_is_named(auth: str, problem: str) -> None:
    with pytest.raises(SpecError, match="^" + re.escape(problem)):
        compiled(auth)


def test_a_header_set_twice_is_refused() -> None:
    base = BASE.replace(
        '[api]\nurl = "https://api.test/v1/{k}"\n',
        '[api]\nurl = "https://api.test/v1/{k}"\nheaders = { authorization = "x" }\n',
    )
    with pytest.raises(SpecError, match=r"^auth: \[api\]\.headers sets authorization too: keep one of them$"):
        compiled('type = "bearer"\ntoken = "t"\n', base)


def test_auth_is_part_of_what_decides_an_answer_only_when_set() -> None:
    """Another account may get other answers: the cache keys on [auth] as written (not on the
    secret's value); a spec without it keeps its identity."""
    plain = parse_spec(BASE, environ={})
    bearer = compiled('type = "bearer"\ntoken = "${TOKEN}"\n')
    other_value = parse_spec(
        BASE + '[auth]\ntype = "bearer"\ntoken = "${TOKEN}"\n', environ={**ENV, "TOKEN": "new"}
    )
    assert "auth" not in plain.answer_identity()
    assert bearer.answer_identity() != plain.answer_identity()
    assert other_value.answer_identity() == bearer.answer_identity()
