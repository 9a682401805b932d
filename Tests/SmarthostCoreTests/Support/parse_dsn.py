#!/usr/bin/python3
"""Parses a delivery status notification with Python's email package and prints its
structure as JSON: the report's type, its parts, the per-message and per-recipient fields
of the message/delivery-status part, and the returned header (and body, when the whole
message came back as message/rfc822). Exit status 1 when the
message is not an RFC 3464 / RFC 6522 report."""
import email
import json
import sys

raw = open(sys.argv[1], "rb").read()
msg = email.message_from_bytes(raw)
if msg.get_content_type() != "multipart/report" or not msg.is_multipart():
    print(json.dumps({"error": "not multipart/report: %s" % msg.get_content_type()}))
    sys.exit(1)
parts = msg.get_payload()
status = next(p for p in parts if p.get_content_type() == "message/delivery-status")
blocks = status.get_payload()
headers = next((p for p in parts if p.get_content_type() == "text/rfc822-headers"), None)
returned = next((p for p in parts if p.get_content_type() == "message/rfc822"), None)
returned_message = returned.get_payload()[0] if returned is not None else None
print(json.dumps({
    "report_type": msg.get_param("report-type"),
    "from": msg["From"], "to": msg["To"], "subject": msg["Subject"],
    "auto_submitted": msg["Auto-Submitted"], "message_id": msg["Message-ID"],
    "parts": [p.get_content_type() for p in parts],
    "human": parts[0].get_payload(decode=True).decode("utf-8"),
    "per_message": {k: v for k, v in blocks[0].items()},
    "recipients": [{k: v for k, v in b.items()} for b in blocks[1:]],
    "original_headers": (headers.get_payload() if headers is not None else
                         "".join("%s: %s\n" % kv for kv in returned_message.items()) if returned_message is not None
                         else None),
    "returned_body": (returned_message.get_payload(decode=True).decode("utf-8", "replace")
                      if returned_message is not None else None),
    "size": len(raw),
    "defects": [str(d) for d in msg.defects] + [str(d) for p in parts for d in p.defects],
}))
