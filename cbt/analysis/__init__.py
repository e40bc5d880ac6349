"""Item analysis: pure numpy functions over examinee x item arrays.

- :mod:`cbt.analysis.ctt`: classical statistics, reliability, distractors, flags
- :mod:`cbt.analysis.irt`: Rasch and 2PL by marginal maximum likelihood, EAP
- :mod:`cbt.analysis.dif`: Mantel-Haenszel DIF with ETS A/B/C classes
- :mod:`cbt.analysis.testlets`: item sets (passages): per-set statistics, testlet alpha
- :func:`analyze_matrix`: all of it as the JSON-shaped report that
  ``cbt analyze`` writes and the exam board's pages show

Only numpy is imported (the inverse normal and the chi-square tail come
from the standard library), so the package runs wherever numpy does.
"""

from cbt.analysis.ctt import NOT_PRESENTED, OMITTED, FlagThresholds
from cbt.analysis.report import AnalysisInputError, analyze_matrix

__all__ = ["NOT_PRESENTED", "OMITTED", "AnalysisInputError", "FlagThresholds", "analyze_matrix"]
