"""The resource directory, answer templates, FAQ and routing of tsunagu (SQLite store)."""
