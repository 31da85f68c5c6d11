#!/usr/bin/env python3
"""grammar_walk.py — validate `tokenmill bench grammar --sample` output.

Every line: {"name","kind","schema","output"}. kind json / json_object: the
output must parse as JSON and validate against the schema (jsonschema, draft
2020-12, with format checking: date, date-time, uuid, email); json_object: a
JSON object; regex: re.fullmatch; choice: one of the strings. Prints a summary;
exit 0 only when every line passes (and there is at least one), 77 when the
jsonschema module is missing.
"""
import json
import re
import sys

try:
    import jsonschema
except ImportError:
    print("SKIP: python3-jsonschema is not installed")
    sys.exit(77)


def check(rec):
    kind, out = rec["kind"], rec["output"]
    if kind == "regex":
        return re.fullmatch(rec["schema"], out) is not None, "no full match"
    if kind == "choice":
        return out in rec["schema"], "not one of the choices"
    try:
        val = json.loads(out)
    except ValueError as e:
        return False, "not JSON: %s" % e
    if kind == "json_object":
        return isinstance(val, dict), "not an object"
    v = jsonschema.Draft202012Validator(rec["schema"], format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errs = list(v.iter_errors(val))
    return not errs, "; ".join(e.message for e in errs[:3])


def main():
    total = bad = 0
    names = set()
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                total += 1
                names.add(rec["name"])
                ok, why = check(rec)
                if not ok:
                    bad += 1
                    print("FAIL %s: %s: %r" % (rec["name"], why, rec["output"][:300]))
    print("%d outputs over %d schemas: %d valid, %d invalid" % (total, len(names), total - bad, bad))
    sys.exit(0 if total and not bad else 1)


if __name__ == "__main__":
    main()
