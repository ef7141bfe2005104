#!/usr/bin/env python3
"""Runs Keylime's own quote checker (keylime.tpm.tpm_main.Tpm.check_quote, the function
the verifier and tenant call) on an answer from `domb agent`, to show what Keylime refuses.

Usage (inside Keylime's virtualenv, KEYLIME_* set as for the servers):
  keylime_check_quote.py ANSWER.json NONCE --registrar-agent UUID

The AK comes from the registrar (GET /v2.6/agents/UUID on its TLS port, with the
verifier's client certificate), never from the agent. Prints one line per case:
  genuine:     the quote with the nonce it was made for        -> must be accepted
  other nonce: the same quote presented for another nonce      -> must be refused
  replayed:    the accepted quote presented again, same nonce  -> must be refused
               (Keylime's TPM clock check: the clock did not advance)
"""
import json
import os
import sys

import requests
from keylime.agentstates import AgentAttestState
from keylime.common.algorithms import Hash
from keylime.mba import mba
from keylime.tpm.tpm_main import Tpm


def main() -> int:
    answer_path, nonce, flag, uuid = sys.argv[1:5]
    assert flag == "--registrar-agent"
    with open(answer_path, encoding="utf-8") as f:
        results = json.load(f)["results"]
    cv = os.path.join(os.environ["KEYLIME_DIR"], "cv_ca")
    reply = requests.get(
        f"https://127.0.0.1:8891/v2.6/agents/{uuid}",
        cert=(os.path.join(cv, "client-cert.crt"), os.path.join(cv, "client-private.pem")),
        verify=os.path.join(cv, "cacert.crt"),
        timeout=30,
    )
    reply.raise_for_status()
    aik = reply.json()["results"]["aik_tpm"]
    mba.load_imports(skip_custom_policies=True)  # as the tenant does before checking quotes
    tpm = Tpm()

    def check(state: AgentAttestState, n: str) -> str:
        failure = tpm.check_quote(state, n, results["pubkey"], results["quote"], aik, {}, hash_alg=Hash.SHA256)
        if not failure:
            return "accepted"
        events = [f"{e.event_id}: {e.context}" for e in failure.events]
        return "refused (" + "; ".join(events)[:300] + ")"

    state = AgentAttestState(uuid)
    print("genuine:", check(state, nonce))
    print("other nonce:", check(AgentAttestState(uuid), nonce[::-1] + "X"))
    print("replayed:", check(state, nonce))
    return 0


if __name__ == "__main__":
    sys.exit(main())
