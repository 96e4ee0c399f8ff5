"""Developer tools: speed benchmarks and the plugin scaffold."""
