# SPDX-License-Identifier: MIT
"""The README's Python loop, exactly as written there, against a live engine
(the engine name "demo" replaced by this test's engine). The loop runs until
the engine stops; the test ends it after 50 batches from inside, through a
call added after the loop's own release()."""
import math
import re

from conftest import REPO


class Enough(Exception):
    pass


def readme_python_block():
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README.md has no python block"
    return blocks[0]


def test_readme_loop_runs(engine):
    code = readme_python_block()
    assert 'xring.attach("demo")' in code and "batch.release()" in code
    code = code.replace('"demo"', repr(engine.name))
    code = code.replace("batch.release()", "batch.release(); _after()")
    seen = []

    def after():
        seen.append(1)
        if len(seen) >= 50:
            raise Enough

    ns = {"__name__": "readme", "_after": after}
    try:
        exec(compile(code, "README.md", "exec"), ns)
    except Enough:
        pass
    assert len(seen) == 50
    assert math.isfinite(float(ns["loss"]))
