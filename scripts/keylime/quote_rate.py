#!/usr/bin/env python3
"""Times N integrity quotes from a Keylime agent over one keep-alive connection, as the
verifier's tornado client would ask for them (mask PCRs 12 and 13, partial=1).

Usage: quote_rate.py AGENT_URL N MTLS AGENT_CERT CV_CA_DIR
"""
import http.client
import os
import ssl
import sys
import time
import urllib.parse

url, count, mtls, agent_cert, cv = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5]
parsed = urllib.parse.urlparse(url)
if mtls:
    context = ssl.create_default_context(cafile=agent_cert)
    context.check_hostname = False
    context.load_cert_chain(os.path.join(cv, "client-cert.crt"), os.path.join(cv, "client-private.pem"))
    connection = http.client.HTTPSConnection(parsed.hostname, parsed.port, context=context)
else:
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port)
start = time.monotonic()
for i in range(count):
    connection.request("GET", f"/v2.5/quotes/integrity?nonce=bench{i:015d}&mask=0x3000&partial=1&ima_ml_entry=0")
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        sys.exit(f"quote {i}: HTTP {response.status}: {body[:200]!r}")
elapsed = time.monotonic() - start
print(f"domb agent: {count} quotes in {elapsed:.2f} s = {count / elapsed:.1f} quotes/s ({1000 * elapsed / count:.1f} ms per quote, {'https mTLS' if mtls else 'http'})")
