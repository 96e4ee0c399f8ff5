"""Feature extraction from media files into tables the dataset readers load."""
