"""Staff web UIs (admin, console) and their shared auth and security layer."""
