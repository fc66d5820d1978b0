"""The engine's parts, what runs a search: ``engine.Engine`` (the facade) over the ``scheduler`` (the ask/tell loop
over many searches), the ``planner`` (cache keys, store reads and writes), ``batch`` (generate -> filter -> score
one batch), the ``executor`` (where batches run), the ``meter`` (cost), the ``calibrator``, ``checkpoints`` and
``progress``.
"""
