"""A local LINE platform simulator for end-to-end tests and development."""

from tests.line_sim.server import ApiCall, Delivery, LineSimulator, WebhookResult

__all__ = ["ApiCall", "Delivery", "LineSimulator", "WebhookResult"]
