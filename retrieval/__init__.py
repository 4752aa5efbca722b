"""Parsing, chunking, embedding and search for file_search. Filled in by the retrieval work."""
