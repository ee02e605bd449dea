"""The index directory: a Tantivy index for search and SQLite for everything else."""
