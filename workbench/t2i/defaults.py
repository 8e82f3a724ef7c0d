"""The T2I refine's defaults, in one place for the tab, the batch CLI and the eval: facet-directed candidates (every
facet of assets/t2i_facets.yaml, one per candidate) with the settings chosen on the validation split
(assets/t2i_pairs/validation_ids.txt; README, "Facets", says how, and what the held-out split then measured). The
shared RefineSettings stay undirected, since the T2V tab refines video prompts with them and image facets are not
video facets."""

from __future__ import annotations

import re
from typing import Any

from workbench.common.facets import check_facets, facet_names
from workbench.common.refiner import RefineSettings

# chosen on the validation split, never on the held-out one (README, "Facets")
# (the fourth pass, on the dev split: set selection at 0.7 over 3 rewrites per facet sampled at temperature 1.1)
FACET_DEFAULTS: dict[str, Any] = {"diversity": 0.7, "overgenerate": 3.0, "temperature": 1.1, "selection": "set",
                                  "further_keep_words": 4, "further_from_kept": True, "facet_openers": 2,
                                  "focus_words": 16}


def parse_facets(text: str) -> tuple[str, ...]:
    """'all' -> every facet, 'none' (or '') -> undirected, else names joined by '+', ',' or spaces."""
    if not isinstance(text, str):
        raise ValueError(f"facets must be text ('all', 'none' or facet names), got {text!r}")
    value = text.strip().lower()
    if value == "all":
        return facet_names()
    if value in ("", "none"):
        return ()
    return check_facets([f for f in re.split(r"[+,\s]+", value) if f])


def t2i_refine_settings(**overrides: Any) -> RefineSettings:
    """RefineSettings with the T2I defaults: every facet and FACET_DEFAULTS; `overrides` whose value is None are
    ignored (an option the user left unset), the others win. An undirected refine (facets=()) keeps the shared
    defaults, which were measured for it."""
    given = {k: v for k, v in overrides.items() if v is not None}
    facets = given.pop("facets", facet_names())
    base = dict(FACET_DEFAULTS) if facets else {}
    return RefineSettings(**{**base, "facets": tuple(facets), **given}).check()
