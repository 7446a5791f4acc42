#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A strict reader of the Prometheus text format 0.0.4, for the metrics test.

  prom.py check FILE                       validate: exits 1 with the first problem
  prom.py get FILE [LABEL=VALUE...]        "NAME VALUE" of every sample with exactly those labels
  prom.py diff BEFORE AFTER [LABEL=VALUE...]
                                           "NAME GROWTH" of the same samples, from BEFORE to AFTER
"""
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
SAMPLE = re.compile(r"([^{ ]+)(?:\{(.*)\})? (\S+)")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_labels(text):
    """key="value",... with \\\\, \\" and \\n the only escapes; returns a dict."""
    labels, i = {}, 0
    while i < len(text):
        m = LABEL_NAME.match(text, i)
        if not m or text[m.end():m.end() + 2] != '="':
            raise ValueError(f"bad label at {text[i:]!r}")
        key, i, value = m.group(0), m.end() + 2, ""
        while True:
            if i >= len(text):
                raise ValueError(f"unterminated value of {key}")
            c = text[i]
            if c == '"':
                i += 1
                break
            if c == "\\":
                esc = text[i + 1:i + 2]
                if esc not in ('\\', '"', "n"):
                    raise ValueError(f"bad escape \\{esc} in {key}")
                value += "\n" if esc == "n" else esc
                i += 2
                continue
            if c == "\n":
                raise ValueError(f"raw newline in {key}")
            value += c
            i += 1
        if key in labels:
            raise ValueError(f"label {key} twice")
        labels[key] = value
        if i < len(text):
            if text[i] != ",":
                raise ValueError(f"expected ',' at {text[i:]!r}")
            i += 1
    return labels


def parse(text):
    """Returns [(name, labels, value)]; raises ValueError on anything the format does not allow."""
    if not text.endswith("\n"):
        raise ValueError("the text does not end with a newline")
    helps, types, samples, seen, family, done = {}, {}, [], set(), None, set()
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n}: {line!r}"
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            if not NAME.fullmatch(name) or name in helps or not help_text:
                raise ValueError(f"bad or repeated HELP, {where}")
            helps[name] = help_text
        elif line.startswith("# TYPE "):
            parts = line[7:].split(" ")
            if len(parts) != 2 or not NAME.fullmatch(parts[0]) or parts[1] not in TYPES:
                raise ValueError(f"bad TYPE, {where}")
            if parts[0] in types:
                raise ValueError(f"TYPE of {parts[0]} twice, {where}")
            if family:
                done.add(family)
            family = parts[0]
            types[family] = parts[1]
            if types[family] == "counter" and not family.endswith("_total"):
                raise ValueError(f"counter {family} does not end in _total")
        elif line.startswith("#") or not line:
            raise ValueError(f"unexpected line, {where}")
        else:
            m = SAMPLE.fullmatch(line)
            if not m or not NAME.fullmatch(m.group(1)):
                raise ValueError(f"bad sample, {where}")
            name, labels = m.group(1), parse_labels(m.group(2) or "")
            if name != family:
                raise ValueError(f"sample of {name} without its TYPE just before, {where}")
            if name in done:
                raise ValueError(f"samples of {name} are not together, {where}")
            value = float(m.group(3))
            key = (name, tuple(sorted(labels.items())))
            if key in seen:
                raise ValueError(f"the same series twice, {where}")
            seen.add(key)
            if types[name] == "counter" and value < 0:
                raise ValueError(f"negative counter, {where}")
            samples.append((name, labels, value))
    for name in types:
        if name not in helps:
            raise ValueError(f"{name} has no HELP")
    for name in helps:
        if name not in types:
            raise ValueError(f"{name} has HELP but no TYPE")
    return samples


def load(path):
    with open(path, encoding="utf-8") as f:
        try:
            return parse(f.read())
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None


def select(samples, labels):
    return {n: v for n, l, v in samples if l == labels}


def number(v):
    return int(v) if v.is_integer() else v


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        if cmd == "check":
            print(f"{len(load(args[0]))} samples")
        elif cmd == "get":
            for name, v in select(load(args[0]), dict(a.split("=", 1) for a in args[1:])).items():
                print(name, number(v))
        elif cmd == "diff":
            labels = dict(a.split("=", 1) for a in args[2:])
            before, after = select(load(args[0]), labels), select(load(args[1]), labels)
            for name, v in after.items():
                print(name, number(v - before.get(name, 0)))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except ValueError as e:
        print(e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
