"""The trainer and what it needs: losses, device tensors, memory, in-model encoders. No files, no registry."""
