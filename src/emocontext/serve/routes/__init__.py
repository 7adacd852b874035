"""The service's routes, one router per concern: :mod:`.predict` (uploads), :mod:`.jobs` (a job, its outputs,
the caller's list, cancel), :mod:`.meta` (the page, models, health, metrics, docs). Each ``/v1`` router
carries the :func:`~emocontext.serve.auth.caller` dependency; :func:`~emocontext.serve.app.create_app`
only wires them."""
