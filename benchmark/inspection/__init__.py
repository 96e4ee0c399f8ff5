"""Data inspection: split sizes, class balance, leaks and duplicates, reports."""
