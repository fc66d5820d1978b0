"""Reading finished run stores: ``summary``, ``compare`` (equal-cost comparisons), ``landscape`` and
``step_landscape``, the HTML ``report``, ``serve`` (live view) and ``stats``.
"""
