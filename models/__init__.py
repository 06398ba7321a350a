"""toetwitch's cause and escalation model and its knowledge base.

Imports neither ``drivers`` nor ``pipeline``; takes plain dicts. Public API::

    from toetwitch.models import assess, validate_answers, AnswersError
    result = assess({"twitching_days": 3, "caffeine_mg_per_day": 600})   # docs/contracts.md §4 object

The knowledge base is data in ``models/kb/`` (rules, causes, questions, the generative model
of the synthetic cohort, and the trained cause model); see models/MODEL_CARD.md.
"""

from toetwitch.models.answers import AnswersError, load_answers, validate_answers
from toetwitch.models.assessment import assess
from toetwitch.models.cohort import CAUSES
from toetwitch.models.escalation import LEVELS, escalate, load_rules
from toetwitch.models.facts import SENSOR_KEYS
from toetwitch.models.words import cause_names, level_words

__all__ = [
    "CAUSES",
    "LEVELS",
    "SENSOR_KEYS",
    "AnswersError",
    "assess",
    "cause_names",
    "escalate",
    "level_words",
    "load_answers",
    "load_rules",
    "validate_answers",
]
