#!/usr/bin/env python3
"""Copies embedding goldens (a Hugging Face reference run, see the goldens
README) into tests/fixtures/goldens/, dropping the bulky per-token
`last_hidden_state` of expected.jsonl (tests compare the pooled embedding).

Usage: scripts/import_goldens.py SRC_GOLDENS_DIR [CASE ...]
"""
import json
import os
import shutil
import sys

def main():
    src = sys.argv[1]
    cases = sys.argv[2:] or sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    dst_root = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "goldens")
    for case in cases:
        s, d = os.path.join(src, case), os.path.join(dst_root, case)
        if os.path.exists(d):
            shutil.rmtree(d)
        shutil.copytree(s, d)
        exp = os.path.join(d, "expected.jsonl")
        with open(exp) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        with open(exp, "w") as f:
            for r in rows:
                r.pop("last_hidden_state", None)
                f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
        print(f"{case}: {len(rows)} rows")

if __name__ == "__main__":
    main()
