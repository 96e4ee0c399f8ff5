"""One module per CLI verb; each defines ``register(app)`` (see ``mmbench.cli``)."""
