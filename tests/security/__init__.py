"""Web security, proved: routes × roles, escaping, request limits, hostile and malformed input."""
