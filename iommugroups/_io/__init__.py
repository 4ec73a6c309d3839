"""Readers and writers of the file formats the library understands."""
