"""The ``emocontext`` commands that outgrew :mod:`emocontext.cli`, one module per command, and what they share.

:mod:`emocontext.cli` holds the app (``emocontext.cli:app``) and registers every command on it, in the
order ``emocontext --help`` lists them.
"""
