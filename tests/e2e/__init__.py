"""End-to-end tests: the real app in Chromium and against the LINE simulator."""
