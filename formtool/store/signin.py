"""Sign-in beyond a password: TOTP second factors and the council's identity provider
(OpenID Connect)."""

from __future__ import annotations

from formtool.store.units import Units


class SignInStore(Units):
    """The Store's methods for this subject (see units.py)."""
