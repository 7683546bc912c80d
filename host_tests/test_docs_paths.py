"""Every repository path the README and docs/ name exists, and every command they show in
script form runs as a module: a file move cannot leave the docs pointing at nothing."""
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in
                              glob.glob(os.path.join(ROOT, "docs", "**", "*.md"),
                                        recursive=True))
# A path as the docs write it: firmware/..., tools/..., host_tests/..., boards/... ending in a
# file name with an extension (folders and globs are prose, not links).
PATH = re.compile(r"\b((?:firmware|tools|host_tests|boards)/[\w./-]*\w\.(?:py|json|sh))\b")


def named_paths(doc):
    with open(os.path.join(ROOT, doc)) as f:
        return sorted(set(PATH.findall(f.read())))


@pytest.mark.parametrize("doc", DOCS)
def test_every_path_a_doc_names_exists(doc):
    missing = [p for p in named_paths(doc) if not os.path.exists(os.path.join(ROOT, p))]
    assert missing == [], "%s names paths that do not exist: %s" % (doc, missing)


@pytest.mark.parametrize("doc", DOCS)
def test_campaigns_are_shown_as_modules(doc):
    with open(os.path.join(ROOT, doc)) as f:
        text = f.read()
    assert not re.search(r"python3? tools/campaigns/\w+\.py", text), doc
    assert "tools/gen_vectors.py" not in text and "lockerctl/fw.py" not in text, doc


def test_the_paths_regex_finds_paths():
    assert named_paths("docs/architecture.md")          # the check is not vacuous
    assert PATH.findall("see `firmware/core/locker.py` and tools/campaigns/faultfs.py.") == [
        "firmware/core/locker.py", "tools/campaigns/faultfs.py"]


def test_the_readme_opens_with_exactly_two_commands():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    assert [ln.split("#")[0].strip() for ln in block.strip().splitlines()] == [
        "make demo", "make test"]
    assert text.index("```sh") < 200                      # on the first screen
