"""codesign: the toolkit and the app.

Datasets, models, ticket methods (GEBT, UGS, network slimming, spline), training loops, pipelines
that wire training + cost + search, and the ``codesign`` CLI. May import ``search`` and
``costmodels``; nothing below imports this package.
"""

from costmodels.errors import CodesignError

__all__ = ["CodesignError", "__version__"]
__version__ = "0.1.0"
