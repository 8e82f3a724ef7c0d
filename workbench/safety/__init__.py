"""Is a text safe to render: the profile's `safety` role (a trained classifier offline, a guard model on GPU
profiles) combined with a keyword rule that names the words it matched. Used on the user's input and on every
rewrite of the T2I and T2V tabs (workbench/safety/check.py); `python -m workbench.safety eval` reports the
held-out table of the labelled set in assets/safety/."""

from workbench.safety.check import (  # noqa: F401  (the API)
    ROLE, SafetyVerdict, Screened, check_text, check_texts, checker, dropped_note, preview, refuse_unsafe,
    screen,
)
from workbench.safety.rules import LABELS, RULE_ID, check_rule  # noqa: F401
