"""The router's OpenAI-compatible HTTP front (``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``, ``/health``).

``convert`` maps OpenAI bodies to a ``GenerateRequest`` and answers back (pure),
``app`` is the Starlette application over the shared ``RequestPath``, and
``serve`` runs it with uvicorn inside the router process.
"""
