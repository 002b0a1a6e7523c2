"""``enrich validate SPEC [--input FILE]``: check a spec, and that an input fits it; no request."""

from __future__ import annotations

import argparse
import os

from flows.secret_blocks import load_spec_with_blocks
from service import Redactor, UnsetAsPlaceholders, check_schema, read_schema


def validate_command(args: argparse.Namespace) -> int:
    """Print a one-line summary of a valid spec (and input); errors are raised as EnrichError."""
    # Without --check-env, an unset ${NAME} is not a problem: the spec is checked where its
    # secrets are not (in CI, on a laptop); with it, every variable must be set here.
    environ = os.environ if args.check_env else UnsetAsPlaceholders(os.environ)
    spec = load_spec_with_blocks(args.spec, environ, placeholders=not args.check_env)
    if args.input:
        check_schema(read_schema(args.input), spec)
    what = f"{args.spec} and {args.input}" if args.input else args.spec
    columns = ", ".join(f"{c.name} ({c.type})" for c in spec.columns)
    mode = f"bulk, {spec.bulk.size} keys per request" if spec.bulk else "one key per request"
    origin = Redactor(spec.secrets)(spec.request.origin)  # credentials in the URL are secrets
    print(f"ok: {what}: {spec.request.method} {origin}, {mode}; adds {columns}")
    return 0
