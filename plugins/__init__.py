"""mmbench's built-in plugins: datasets, encoders and fusions.

They are registered through the project's own ``mmbench`` entry points, the same path a
third-party plugin package uses.
"""
