"""Model-loading helpers of the vlm plugin: the core's ``eacps.engine.checkpoints``, re-exported."""

from eacps.engine.checkpoints import DTYPES, refuse_pickled_only, resolve_device, resolve_dtype, weights_fingerprint

__all__ = ["DTYPES", "refuse_pickled_only", "resolve_device", "resolve_dtype", "weights_fingerprint"]
