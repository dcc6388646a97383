"""Lists of objects rendered as JSON by PostgreSQL instead of field by field in Python.

A canvas asks for a thousand nodes with twenty fields and their relationships: the executor would
resolve and complete some 35,000 fields one Python call at a time, ten times longer than
PostgreSQL takes to produce the same data. So when every field selected under a list's items can
be expressed in SQL (every field of every object type can, see `compiler`), the statement that
fetches the page renders each item with `json_build_object` and correlated subqueries, and the
item is served as a pre-serialised fragment (`orjson.Fragment`) that the executor passes through
untouched (`graph.strawberry_adapter.RenderingExecutionContext`).

- `planner`: a selection as a hashable plan (or `Unsupported`: a directive other than `@skip` /
  `@include`, more keys than `json_build_object` takes);
- `compiler`: plans into SQL, from the fields' declarations;
- `budget`: how many rendered rows a process holds at once.

`tests/read/test_rendering.py` compares both paths over every field of every type.
`LCT_RENDER_IN_DATABASE=false` switches the whole mechanism off.
"""

from graph.rendering.budget import RenderBudget
from graph.rendering.compiler import build_object, iso_datetime, register, render, render_object
from graph.rendering.planner import Plan, Selected, Unsupported, field_selection
from graph.strawberry_adapter import Rendered, RenderingExecutionContext

__all__ = [
    "Plan",
    "RenderBudget",
    "Rendered",
    "RenderingExecutionContext",
    "Selected",
    "Unsupported",
    "build_object",
    "field_selection",
    "iso_datetime",
    "register",
    "render",
    "render_object",
]
