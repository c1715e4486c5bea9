#!/usr/bin/env python3
"""Fails when a reader of the built book would meet a broken formula or a script from the
network. Run from the project's root after `mdbook build book` (the HTML in book/book).
  python3 .ci/book_math.py [HTML_DIR]
Checks: no page loads a script over the network (MathJax is served from the book); no formula
that Markdown broke before MathJax saw it (emphasis or curly quotes inside \\( \\) or \\[ \\]);
every page's delimiters balanced; no single-backslash delimiter in the sources (Markdown eats
the backslash: write \\\\( \\\\) and \\\\[ \\\\])."""
import os
import re
import sys

html_dir = sys.argv[1] if len(sys.argv) > 1 else "book/book"
problems = []
for name in sorted(os.listdir(html_dir)):
    if not name.endswith(".html") or name == "print.html":
        continue
    page = open(os.path.join(html_dir, name), errors="replace").read()
    for src in re.findall(r'<script[^>]+src="(https?://[^"]+)"', page):
        problems.append(f"{name}: loads {src} from the network")
    body = re.sub(r"<(pre|code)[^>]*>.*?</\1>", "", page, flags=re.S)
    for opening, closing in (("\\(", "\\)"), ("\\[", "\\]")):
        if body.count(opening) != body.count(closing):
            problems.append(f"{name}: {body.count(opening)} {opening} but {body.count(closing)} {closing}")
    for match in re.finditer(r"\\\((.*?)\\\)|\\\[(.*?)\\\]", body, re.S):
        formula = match.group(1) or match.group(2) or ""
        if re.search(r"<em>|</em>|<strong>|[\u2018\u2019\u201c\u201d]", formula):
            problems.append(f"{name}: Markdown broke the formula {formula.strip()[:80]!r}")
for name in sorted(os.listdir("book/src")):
    if name.endswith(".md"):
        text = re.sub(r"```.*?```", "", open(os.path.join("book/src", name)).read(), flags=re.S)
        text = re.sub(r"`[^`\n]*`", "", text)
        for line in text.splitlines():
            if re.search(r"(?<!\\)\\[(\[](?=\S)", line):
                problems.append(f"book/src/{name}: a single-backslash delimiter: {line.strip()[:80]}")
for problem in problems:
    print(problem)
print(f"book math: {len(problems)} problems")
sys.exit(1 if problems else 0)
