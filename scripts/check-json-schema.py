#!/usr/bin/python3
"""Validates JSON documents against a JSON Schema (draft 2020-12) with python3-jsonschema.

Usage: check-json-schema.py SCHEMA DOCUMENT...
Exit status: 0 every document is valid; 1 one is not (one line per error: the document,
the JSON path, the validator's message); 2 the validator is missing or the schema itself is
not a valid draft 2020-12 schema. The Swift suite validates every `--json` output with it
(JSONSchemaCLITests); the schemas live in docs/schemas/.
"""
import json
import sys

try:
    import jsonschema
except ImportError:
    print("check-json-schema: the JSON Schema validator is not installed: install the Debian package python3-jsonschema",
          file=sys.stderr)
    sys.exit(2)

if len(sys.argv) < 3:
    print(__doc__.splitlines()[2], file=sys.stderr)
    sys.exit(64)
with open(sys.argv[1], encoding="utf-8") as f:
    schema = json.load(f)
try:
    jsonschema.Draft202012Validator.check_schema(schema)
except jsonschema.exceptions.SchemaError as error:
    print(f"{sys.argv[1]}: not a valid draft 2020-12 schema: {error.message}", file=sys.stderr)
    sys.exit(2)
validator = jsonschema.Draft202012Validator(schema)
failed = False
for path in sys.argv[2:]:
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        where = "/" + "/".join(map(str, error.absolute_path))
        print(f"{path}: {where}: {error.message}")
        failed = True
sys.exit(1 if failed else 0)
