"""``abstractvision serve``: an OpenAI-compatible image server over any backend (``[server]`` extra).

Import :func:`create_app` / :func:`create_app_for_backend` from :mod:`abstractvision.server.app`;
this package's ``__init__`` imports nothing heavy, so the CLI can check for FastAPI first.
"""
