"""The dialogue engine: conversation state, flow and channel-neutral replies."""
