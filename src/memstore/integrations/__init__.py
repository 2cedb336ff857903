"""Integrations with agent frameworks; each module imports its framework, so import the one
you use (``memstore.integrations.crewai`` needs ``pip install 'memstore-ai[crewai]'``)."""
