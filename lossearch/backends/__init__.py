"""Search drivers. Each decides which configs to try; all share
:class:`lossearch.runner.TrialRunner` to run them and :mod:`lossearch.tracking`
to record them."""
