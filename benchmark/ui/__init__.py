"""Terminal output: consoles for logs/progress (stderr) and results (stdout), rich tables."""
