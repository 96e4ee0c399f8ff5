"""File formats: the reference spreadsheet reader/writer and the restricted unpickler."""
