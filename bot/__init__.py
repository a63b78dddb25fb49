"""The tsunagu application: CLI, aiohttp app, dialogue engine, channels and web UIs."""
