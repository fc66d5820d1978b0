"""The ``eacps`` command line: ``cli`` (the click group and the built-in commands), ``generate``, ``doctor`` and
``demo``.
"""
