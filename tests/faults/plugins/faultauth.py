"""The fault suites' message authenticator, loaded by goferd from ``[messaging] authenticator``.

HMAC-SHA256 with the key in ``$GOFER_FAULTS_HMAC_KEY``, and a replay guard:
a signed request seen before (or signed more than five minutes away from
now) is refused.
"""

import os

from gofer.messaging.auth import HmacAuthenticator, ReplayGuard


class FaultAuthenticator(HmacAuthenticator):
    def __init__(self):
        super().__init__(os.environ["GOFER_FAULTS_HMAC_KEY"], replay=ReplayGuard(window=300))
