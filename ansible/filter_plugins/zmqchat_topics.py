"""zmqchat_topic_key: the key balancers check delivery topics with, from the cluster secret.

The same derivation as `zmqchat topic-key` (core/protocol/topics.ts): HKDF-SHA256 (RFC 5869)
with no salt and info "zmqchat-topic-tag", 32 bytes, as 64 hex characters. Computed on the
controller, so the balancers get the derived key and never the cluster secret.
"""

import hashlib
import hmac


def zmqchat_topic_key(secret):
    ikm = str(secret).strip().encode("utf-8")
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    return hmac.new(prk, b"zmqchat-topic-tag\x01", hashlib.sha256).hexdigest()


class FilterModule(object):
    def filters(self):
        return {"zmqchat_topic_key": zmqchat_topic_key}
