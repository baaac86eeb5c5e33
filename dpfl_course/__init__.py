"""dpfl_course: the helper package of the course on differential privacy and federated learning.

Notebooks import what they need by module::

    from dpfl_course import data, plotting, widgets
"""

__version__ = "0.1.0"

from dpfl_course.reproducibility import seed_everything  # noqa: E402  (light: no torch import at module level)

__all__ = ["__version__", "seed_everything"]
