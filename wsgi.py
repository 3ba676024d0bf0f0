"""WSGI entry point for any server: `gunicorn wsgi:app` (the supervisor builds it the same way)."""

from memedroid.api.app import create_app

app = create_app()
